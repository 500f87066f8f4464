/*
 * Why an image failed, in the words the report uses, and the message that
 * goes with it. The message always names the file and the cause.
 */
#ifndef IB_FILTERS_ERROR_H
#define IB_FILTERS_ERROR_H

#include <stddef.h>

typedef enum {
    IB_ERR_NONE = 0,
    IB_ERR_READ,        /* the input could not be opened or read */
    IB_ERR_DECODE,      /* the input is damaged or not what it claims */
    IB_ERR_UNSUPPORTED, /* no loader or saver for it here */
    IB_ERR_TOO_LARGE,   /* over --max-pixels */
    IB_ERR_TIMEOUT,     /* over --timeout */
    IB_ERR_CRASH,       /* the worker died on it */
    IB_ERR_WRITE,       /* the output could not be written */
    IB_ERR_COLLISION,   /* another input already wrote this output */
    IB_ERR_INTERNAL,    /* a bug or resource failure of ours */
} ib_error_kind_t;

typedef struct {
    ib_error_kind_t kind;
    char message[1024];
} ib_error_t;

const char *ib_error_kind_name(ib_error_kind_t kind);

/* Sets kind and a printf-style message; returns -1 for `return ib_fail(...)`. */
int ib_fail(ib_error_t *err, ib_error_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
