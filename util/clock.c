/*
 * The monotonic clock. See clock.h.
 */
#include "clock.h"

#include <time.h>

int64_t ib_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ib_date_format(int64_t wall, const char *fmt, char *out, size_t cap)
{
    time_t t = (time_t)wall;
    struct tm tm;
    if (cap == 0 || gmtime_r(&t, &tm) == NULL)
        return -1;
        /* The format is the user's ({date:FORMAT}): strftime takes any text,
         * and an unknown conversion comes out as it is, never read as an
         * argument. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, cap, fmt != NULL && *fmt != '\0' ? fmt : IB_DATE_DEFAULT_FORMAT, &tm);
#pragma GCC diagnostic pop
    return n > 0 ? 0 : -1;
}

int64_t ib_date_local(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return t;
    return (int64_t)timegm(&tm);
}
