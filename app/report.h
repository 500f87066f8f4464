/*
 * What the person or the script running imgbatch sees: per-file lines,
 * the live progress line on a terminal, JSON events, and the summary.
 * Human text goes to stderr; stdout carries only --json events and
 * --dry-run listings, so it can be piped.
 */
#ifndef IB_APP_REPORT_H
#define IB_APP_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "job.h"
#include "plan.h"

typedef struct ib_report ib_report_t;

ib_report_t *ib_report_new(const ib_plan_t *plan);
void ib_report_free(ib_report_t *r);

/* A job's result; worker is the pool slot that ran it (-1 for none). */
void ib_report_file(ib_report_t *r, const ib_job_t *job, const ib_result_t *res, int worker);

/* A scan problem (an unreadable directory): counted as a failure. */
void ib_report_scan_error(ib_report_t *r, const char *path, const char *message);
/* A file inside an input directory that is not an image: counted, and
 * named with -v. */
void ib_report_ignored(ib_report_t *r, const char *path);
/* Something worth saying that is not a failure (a symlink loop). */
void ib_report_note(ib_report_t *r, const char *message);

/* A job was handed to the pool (the total grows while the scan runs). */
void ib_report_queued(ib_report_t *r);
void ib_report_scan_done(ib_report_t *r);

/* --watch, before each wait: jobs in flight, and whether nothing is being
 * done or waiting. The progress line shows a running count and the idle
 * state instead of a bar; -v says when the watcher falls idle. */
void ib_report_watching(ib_report_t *r, unsigned in_flight, int idle);
/* --watch ended by SIGTERM: the summary says it stopped, and the exit
 * status is 0. */
void ib_report_stopped(ib_report_t *r);

/* Failures so far (files and scan errors). */
unsigned long ib_report_failed(const ib_report_t *r);

/* Redraws the progress line if it is due. */
void ib_report_tick(ib_report_t *r);

/* Ends the progress line and prints the summary; returns the exit status. */
int ib_report_finish(ib_report_t *r, int interrupted);

/* Writes s as a JSON string (with quotes). Invalid UTF-8 becomes U+FFFD. */
void ib_json_string(FILE *f, const char *s);

/* With --placeholders, the input's ,"color":...,"blurhash":...,"lqip":...
 * (to follow an object's other fields); nothing when it has none. */
void ib_json_placeholder(FILE *f, const ib_result_t *res);

/* ,"error":{"kind":...,"message":...} for a failed result, else nothing. */
void ib_json_error(FILE *f, const ib_result_t *res);

#endif
