/*
 * The one clock: monotonic milliseconds, for deadlines, timeouts and the
 * times reports show. Shared by the parent and the workers.
 */
#ifndef IB_UTIL_CLOCK_H
#define IB_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC since an arbitrary start. */
int64_t ib_now_ms(void);

/* A capture date as its wall-clock reading, counted in seconds as if it
 * were UTC: EXIF dates carry no zone, so they are never converted, and a
 * file's time is read in the local zone once, where it is found. */
#define IB_DATE_DEFAULT_FORMAT "%Y-%m-%d"

/* Formats a wall-clock date with strftime's fmt (NULL or "": the default).
 * 0, or -1 if it does not fit or comes out empty. */
int ib_date_format(int64_t wall, const char *fmt, char *out, size_t cap);

/* The wall-clock reading of a time_t in the local zone. */
int64_t ib_date_local(int64_t t);

#endif
