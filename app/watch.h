/*
 * The watcher behind --watch: the scan of the input directories first,
 * then whatever appears or changes under them, read from inotify on the
 * parent's poll loop (no thread, and no read that waits).
 *
 * Rules:
 * - Directories are watched as the scan enters them, before their entries
 *   are read, so the watcher watches exactly what the scan walks and
 *   nothing lands unseen in between. A new directory (made, or a whole
 *   tree moved in) is scanned once, which watches it and finds the files
 *   that landed before.
 * - A file is taken after IN_CLOSE_WRITE or IN_MOVED_TO, never while it
 *   is open for writing. Events for one path are debounced into one; a
 *   path whose job is in flight waits for it, then is done again.
 * - An overflowed event queue is followed by a rescan of every input, so
 *   nothing is missed; the watch limit and the queue's size are named
 *   with their sysctl.
 * - Memory: one entry per watched directory and at most WATCH_PENDING_MAX
 *   paths waiting; past that, events wait in the kernel's queue.
 */
#ifndef IB_APP_WATCH_H
#define IB_APP_WATCH_H

#include <stddef.h>

#include "scan.h"

typedef struct ib_watch ib_watch_t;

typedef struct {
    /* How to scan; copied, with its entered hook taken by the watcher. */
    const ib_scan_opts_t *scan;
    char **inputs; /* directories */
    int n_inputs;
    /* Whether a job for path is in flight: its new events wait for it. */
    int (*busy)(void *ctx, const char *path);
    void *ctx;
} ib_watch_config_t;

/* NULL with a message in err (no inotify instance to be had). */
ib_watch_t *ib_watch_new(const ib_watch_config_t *cfg, char *err, size_t errlen);
void ib_watch_free(ib_watch_t *w);

/* As ib_scan_next(): 1 with an item (the scan of the inputs, then what
 * lands, and the watcher's own errors and notes), IB_SCAN_WAITING while
 * nothing is due, 0 once no input directory is left to watch. */
int ib_watch_next(ib_watch_t *w, ib_scan_item_t *item);

/* The fd to poll while ib_watch_next() waits, or -1 while enough is
 * pending that new events are left in the kernel's queue. */
int ib_watch_fd(const ib_watch_t *w);

/* Milliseconds until a waiting path is due, or -1 when none waits. */
int ib_watch_due_ms(const ib_watch_t *w);

/* Nothing to scan and nothing waiting. */
int ib_watch_idle(const ib_watch_t *w);

#endif
