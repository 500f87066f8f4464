/*
 * What the harnesses on libvips share: starting libvips as a worker does,
 * and an in-memory file for code that opens a path (a memfd, opened again
 * through /proc/self/fd/N). Header-only, so that tests/fuzz/build.sh and
 * meson build each harness from its own source.
 */
#ifndef IB_TESTS_FUZZ_COMMON_H
#define IB_TESTS_FUZZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vips/vips.h>

#include "fileio.h"

/* libvips on one thread and without its operation cache, so that each
 * input is decoded afresh and a finding reproduces alone. */
static inline void ib_fuzz_start_vips(const char *argv0)
{
    if (VIPS_INIT(argv0) != 0)
        abort();
    vips_concurrency_set(1);
    vips_cache_set_max(0);
}

typedef struct {
    int fd;
    char path[64];
} ib_memfile_t;

/* Creates the file, or exits saying why (who: the harness's name). */
static inline void ib_memfile_open(ib_memfile_t *m, const char *who)
{
    m->fd = memfd_create("ibfuzz", MFD_CLOEXEC);
    if (m->fd < 0) {
        fprintf(stderr, "%s: memfd_create() failed: %s\n", who, strerror(errno));
        exit(1);
    }
    snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
}

/* Replaces the file's bytes with data. 0, or -1. */
static inline int ib_memfile_put(ib_memfile_t *m, const uint8_t *data, size_t size)
{
    /* Readers start at offset 0, as they do on a freshly opened file. */
    if (ftruncate(m->fd, 0) < 0 || lseek(m->fd, 0, SEEK_SET) != 0 ||
        ib_full_write(m->fd, data, size) < 0)
        return -1;
    return lseek(m->fd, 0, SEEK_SET) == 0 ? 0 : -1;
}

#endif
