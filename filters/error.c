/*
 * Error kinds and messages.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *ib_error_kind_name(ib_error_kind_t kind)
{
    switch (kind) {
    case IB_ERR_NONE:
        return "none";
    case IB_ERR_READ:
        return "read";
    case IB_ERR_DECODE:
        return "decode";
    case IB_ERR_UNSUPPORTED:
        return "unsupported";
    case IB_ERR_TOO_LARGE:
        return "too_large";
    case IB_ERR_TIMEOUT:
        return "timeout";
    case IB_ERR_CRASH:
        return "crash";
    case IB_ERR_WRITE:
        return "write";
    case IB_ERR_COLLISION:
        return "collision";
    case IB_ERR_INTERNAL:
        return "internal";
    }
    return "internal";
}

int ib_fail(ib_error_t *err, ib_error_kind_t kind, const char *fmt, ...)
{
    va_list ap;
    err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}
