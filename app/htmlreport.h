/*
 * --report FILE.html: one self-contained page that shows the run: the
 * command, the counts and bytes, then a row per input with its outputs'
 * thumbnails, sizes, formats, time and, for a failure, why. The parent
 * writes it from the results it receives (it never decodes an image):
 * rows stream into temporary files as results arrive, and the page is
 * put together from them and given its name atomically.
 */
#ifndef IB_APP_HTMLREPORT_H
#define IB_APP_HTMLREPORT_H

#include <stddef.h>

#include "job.h"
#include "plan.h"

typedef struct ib_htmlreport ib_htmlreport_t;

/*
 * Whether every output of the plan lands under the folder of its report,
 * so the page can link them by relative path; otherwise workers make each
 * input's tiny inline copy (plan->report_inline). Decided from the paths
 * alone, as a browser resolves a relative link.
 */
int ib_htmlreport_links_outputs(const ib_plan_t *plan);

/*
 * Starts the report of plan->report: creates its row files beside it, so
 * a report that cannot be written stops the run before it begins. argv is
 * the command line shown in the page. NULL with err filled.
 */
ib_htmlreport_t *ib_htmlreport_open(const ib_plan_t *plan, int argc, char **argv, char *err,
                                    size_t errlen);

/* One input's row, keyed by job->path as the file events print it. */
void ib_htmlreport_add(ib_htmlreport_t *h, const ib_job_t *job, const ib_result_t *res);
/* A directory the scan could not read: a failed row of its own. */
void ib_htmlreport_scan_error(ib_htmlreport_t *h, const char *path, const char *message);
/* A file that is not an image: counted. */
void ib_htmlreport_ignored(ib_htmlreport_t *h);

/*
 * Writes the page from every row so far and gives it its name; may be
 * called as often as wanted (a hot folder rewrites it now and then).
 * running says the batch is not over; interrupted that it was stopped.
 * 0, or -1 with err filled (an older page stays as it was).
 */
int ib_htmlreport_write(ib_htmlreport_t *h, int running, int interrupted, char *err, size_t errlen);

/* Frees h and its row files (the page written last stays). */
void ib_htmlreport_free(ib_htmlreport_t *h);

/* s as HTML text or an attribute's value: & < > " ' escaped, bytes that
 * are not UTF-8 (and control characters) shown as U+FFFD. */
void ib_html_text(FILE *f, const char *s);

#endif
