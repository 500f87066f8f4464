/*
 * The worker's one entry point: the pool hands every job here, and its
 * kind says what it is (an image, or the batch's contact sheet).
 */
#ifndef IB_APP_TASK_H
#define IB_APP_TASK_H

#include <stddef.h>

#include "pool.h"

/* The pool's run callback; ctx is an ib_job_ctx_t. */
void ib_task_run(void *ctx, ib_worker_t *self, const void *job, size_t len, void *result);

#endif
