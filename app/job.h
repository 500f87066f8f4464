/*
 * What travels through the pool: a job (one input) from the parent to a
 * worker, and its result back. Both are fixed-size, plain data: the queue
 * and the channel copy them as bytes.
 */
#ifndef IB_APP_JOB_H
#define IB_APP_JOB_H

#include <limits.h>
#include <stdint.h>

#include "claims.h"
#include "error.h"
#include "hash.h"
#include "image.h"
#include "plan.h"
#include "pool.h"

typedef struct {
    char path[PATH_MAX];
    char rel[PATH_MAX];
} ib_job_t;

typedef enum { IB_STATUS_OK, IB_STATUS_SKIPPED, IB_STATUS_FAILED } ib_status_t;

typedef struct {
    uint32_t width;
    uint32_t height;
    uint64_t bytes;
    char ext[16];
    char format[16];
    int32_t variant;               /* index into the plan's variants, -1 for none */
    int32_t quality;               /* the encoder's quality for a lossy format, else 0 */
    int32_t colors;                /* the palette's size, 0 without one */
    int64_t date;                  /* the input's capture date, for {date} in names */
    char hash[IB_HASH_DIGITS + 1]; /* {hash}: of the encoded bytes, "" before */
    uint8_t kept_input;            /* --keep-smaller wrote the input's bytes */
} ib_output_info_t;

typedef struct {
    int32_t status;
    int32_t kind; /* ib_error_kind_t when failed */
    uint32_t ms;
    uint32_t n_outputs;
    uint64_t input_bytes;
    ib_output_info_t out[IB_MAX_OUTPUTS];
    /* Why it failed; for a file that did not fail, a warning or "". */
    char message[1024];
    /* The input as the pipeline sees it (upright); 0 when it was never
     * probed. For --manifest. */
    uint32_t src_width;
    uint32_t src_height;
    /* With --placeholders, once made (its color is "" before). Last, so
     * that a result without it ends in zeros the channel does not send. */
    ib_placeholder_t placeholder;
} ib_result_t;

_Static_assert(sizeof(ib_result_t) <= IB_RESULT_MAX, "a result must fit in its frames");

/* What every worker is given: the plan and the shared output claims, and
 * what it keeps between images (made by ib_job_init in the worker). */
typedef struct {
    const ib_plan_t *plan;
    ib_claims_t *claims;
    ib_image_ctx_t *image;
} ib_job_ctx_t;

/* The pool's callbacks; ctx is an ib_job_ctx_t. */
int ib_job_init(void *ctx);
void ib_job_run(void *ctx, ib_worker_t *self, const void *job, size_t len, void *result);

/* The output path of output i of this job (parent and worker alike). */
int ib_job_output_path(const ib_plan_t *plan, const ib_job_t *job, const ib_output_info_t *o,
                       char *out, size_t cap);

#endif
