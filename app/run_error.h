/*
 * Why an input failed, in the words the report uses: the kinds filters/
 * gives (error.h), and the ones only the run can tell (a worker that died
 * or ran out of time, an output another input owns).
 */
#ifndef IB_APP_RUN_ERROR_H
#define IB_APP_RUN_ERROR_H

#include "error.h"

/* Numbered on from filters/' kinds; plain ints, since they travel in an
 * ib_error_t's kind beside those. */
/* over --timeout */
#define IB_ERR_TIMEOUT ((int)IB_ERR_FILTERS_END)
/* the worker died on it */
#define IB_ERR_CRASH ((int)IB_ERR_FILTERS_END + 1)
/* another input already wrote this output */
#define IB_ERR_COLLISION ((int)IB_ERR_FILTERS_END + 2)

/* The kind's name in reports and in JSON's error.kind. */
const char *ib_error_kind_name(int kind);

#endif
