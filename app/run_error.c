/*
 * The names of error kinds, filters/' and the run's alike.
 */
#include "run_error.h"

const char *ib_error_kind_name(int kind)
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
    case IB_ERR_BUDGET:
        return "budget";
    case IB_ERR_COLLISION:
        return "collision";
    case IB_ERR_INTERNAL:
        return "internal";
    }
    return "internal";
}
