/*
 * Why an image failed, as far as reading, decoding and writing it can
 * tell, and the message that goes with it. The message always names the
 * file and the cause.
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
    IB_ERR_WRITE,       /* the output could not be written */
    IB_ERR_BUDGET,      /* no encoding fits --max-bytes */
    IB_ERR_INTERNAL,    /* a bug or resource failure of ours */
    /* Kinds from here on belong to the run above filters/ (timeouts,
     * crashes, collisions: app/run_error.h), which also names them. */
    IB_ERR_FILTERS_END,
} ib_error_kind_t;

typedef struct {
    ib_error_kind_t kind;
    char message[1024];
} ib_error_t;

/* Sets kind and a printf-style message; returns -1 for `return ib_fail(...)`. */
int ib_fail(ib_error_t *err, ib_error_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
