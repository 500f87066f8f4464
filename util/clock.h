/*
 * The one clock: monotonic milliseconds, for deadlines, timeouts and the
 * times reports show. Shared by the parent and the workers.
 */
#ifndef IB_UTIL_CLOCK_H
#define IB_UTIL_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC since an arbitrary start. */
int64_t ib_now_ms(void);

#endif
