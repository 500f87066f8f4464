/*
 * --contact-sheet FILE: the parent lists each input's first output (or
 * its failure) in a file as results arrive; when every image is done it
 * hands one job of kind IB_TASK_SHEET to the pool, and a worker makes the
 * sheet from the outputs on disk (filters/sheet.c). The parent never
 * touches a pixel.
 */
#ifndef IB_APP_CONTACTSHEET_H
#define IB_APP_CONTACTSHEET_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "plan.h"

/* The pool job kind of a contact sheet (0 is an image). */
#define IB_TASK_SHEET 1

/* One sheet holds at most this many tiles and this many pixels; past
 * that, numbered sheets. */
#define IB_SHEET_MAX_TILES 2500
#define IB_SHEET_MAX_PIXELS 100000000ULL

/* How n tiles are laid out. */
typedef struct {
    unsigned columns;   /* tiles across each sheet */
    unsigned per_sheet; /* tiles on each sheet but the last */
    unsigned sheets;
} ib_sheet_layout_t;

/* The layout for n tiles of tile_w x tile_h, with columns across (0:
 * about square). Pure. */
void ib_sheet_layout(unsigned long n, unsigned columns, unsigned tile_w, unsigned tile_h,
                     ib_sheet_layout_t *out);

/* The name of sheet k (1-based) of sheets: dest itself for one, else
 * DIR/STEM-K.EXT. 0, or -1 if it does not fit. */
int ib_sheet_name(const char *dest, unsigned k, unsigned sheets, char *out, size_t cap);

/* The job handed to the pool; no larger than an image's ib_job_t. */
typedef struct {
    uint32_t columns, tile_w, tile_h, pad;
    char list[PATH_MAX];
    char dest[PATH_MAX - 64];
} ib_sheet_job_t;

_Static_assert(sizeof(ib_sheet_job_t) <= sizeof(ib_job_t), "a sheet job fits a job slot");

/* What the worker answers. */
typedef struct {
    int32_t failed;
    uint32_t sheets;
    uint32_t tiles;
    uint32_t pad;
    char message[1024];
} ib_sheet_result_t;

_Static_assert(sizeof(ib_sheet_result_t) <= IB_RESULT_MAX, "a sheet result fits its frames");

typedef struct ib_sheet ib_sheet_t;

/* Starts the list beside the sheet's name: a sheet that cannot be written
 * stops the run before it begins. NULL with err filled. */
ib_sheet_t *ib_sheet_open(const ib_plan_t *plan, char *err, size_t errlen);

/* One input's tile. */
void ib_sheet_add(ib_sheet_t *s, const ib_job_t *job, const ib_result_t *res);

/* The job that makes the sheet, once every result is in. 0, or -1 with
 * err filled (the list could not be written, or there is nothing to show). */
int ib_sheet_job(ib_sheet_t *s, ib_sheet_job_t *job, char *err, size_t errlen);

/* Says what the worker made (unless quiet); 0, or -1 after a failure. */
int ib_sheet_done(const ib_sheet_t *s, const ib_sheet_result_t *res, int quiet);

/* Removes the list and frees s. */
void ib_sheet_free(ib_sheet_t *s);

/* In a worker: makes the sheets of job. ctx is the ib_job_ctx_t. */
void ib_sheet_run(const ib_job_ctx_t *ctx, ib_worker_t *self, const ib_sheet_job_t *job,
                  ib_sheet_result_t *res);

#endif
