/*
 * Error messages.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int ib_fail(ib_error_t *err, ib_error_kind_t kind, const char *fmt, ...)
{
    va_list ap;
    err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}
