/*
 * Loops over read()/write() that retry on EINTR and short counts. They live
 * in the lowest layer so that the results channel (pool/) and the output
 * writer (filters/) share one pair.
 */
#ifndef IB_UTIL_FILEIO_H
#define IB_UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes. 0 or -1 (errno). */
int ib_full_write(int fd, const void *buf, size_t n);

/* Reads exactly n bytes. Returns n, 0 at end of file before the first byte,
 * or -1 (errno; EPROTO when end of file cut the data short). */
ssize_t ib_full_read(int fd, void *buf, size_t n);

/* Reads up to n bytes, stopping early only at end of file. */
ssize_t ib_read_upto(int fd, void *buf, size_t n);

/* The whole of a regular file of 1 to max bytes, in a buffer to free(),
 * its size in *len; NULL otherwise. */
unsigned char *ib_read_file(const char *path, size_t max, size_t *len);

/* mkdir -p: 0, or -1 with errno and the component that failed in failed. */
int ib_mkdirs(const char *dir, char *failed, size_t failed_len);

#endif
