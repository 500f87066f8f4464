/*
 * --manifest FILE: one JSON document describing every input of the run
 * and its outputs, for a web site's build to read. The parent writes it
 * from the results it receives (it never decodes an image), entry by
 * entry into a temporary file beside FILE, and gives it FILE's name only
 * when the run ends: a reader never sees half a manifest.
 */
#ifndef IB_APP_MANIFEST_H
#define IB_APP_MANIFEST_H

#include <stddef.h>

#include "job.h"
#include "plan.h"

typedef struct ib_manifest ib_manifest_t;

/*
 * FILE's name for this run: the template with each {shard} replaced by
 * the shard's number K (1 without --shard). 0, or -1 if it does not fit.
 */
int ib_manifest_path(const char *tmpl, const ib_plan_t *plan, char *out, size_t cap);

/* Starts the manifest of plan->manifest: creates its temporary file. NULL
 * with err filled ("open(...) failed: ..."). */
ib_manifest_t *ib_manifest_open(const ib_plan_t *plan, char *err, size_t errlen);

/* One input's entry, keyed by job->path as the file events print it. */
void ib_manifest_add(ib_manifest_t *m, const ib_job_t *job, const ib_result_t *res);

/*
 * Ends the manifest and frees m: with commit, closes the document, syncs
 * it and renames it to its name; without (a run stopped at once), removes
 * the temporary file. 0, or -1 with err filled (a write, fsync or rename
 * failed; the temporary file is removed, an older FILE stays as it was).
 */
int ib_manifest_close(ib_manifest_t *m, int commit, char *err, size_t errlen);

#endif
