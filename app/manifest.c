/*
 * The --manifest document (manifest.h).
 *
 * NOTES
 * - Entries go to the temporary file as results arrive, so the parent's
 *   memory does not grow with the batch (an entry with placeholders is
 *   some 2 KB). The document is an object, one entry a line:
 *     {
 *       "in/a.jpg": {"status":"ok","width":4000,"height":3000,"outputs":[...]},
 *       ...
 *     }
 * - Write errors are sticky: the stream's error flag is checked once, when
 *   the manifest is closed, and a failed manifest never replaces FILE.
 * - The temporary file is in FILE's directory (rename() does not cross
 *   filesystems) and named .NAME.XXXXXX.tmp, like the outputs' own.
 */
#include "manifest.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aside.h"
#include "report.h"
#include "run_error.h"

struct ib_manifest {
    const ib_plan_t *plan;
    FILE *f;
    unsigned long entries;
    char path[PATH_MAX];
    char tmp[PATH_MAX];
};

int ib_manifest_path(const char *tmpl, const ib_plan_t *plan, char *out, size_t cap)
{
    static const char field[] = "{shard}";
    unsigned k = plan->has_shard ? plan->shard.index : 1;
    size_t n = 0;
    for (const char *s = tmpl; *s != '\0';) {
        int wrote;
        if (strncmp(s, field, sizeof field - 1) == 0) {
            wrote = snprintf(out + n, cap - n, "%u", k);
            s += sizeof field - 1;
        } else {
            wrote = snprintf(out + n, cap - n, "%c", *s++);
        }
        if (wrote < 0 || (size_t)wrote >= cap - n)
            return -1;
        n += (size_t)wrote;
    }
    return n == 0 ? -1 : 0;
}

ib_manifest_t *ib_manifest_open(const ib_plan_t *plan, char *err, size_t errlen)
{
    ib_manifest_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->plan = plan;
    if (ib_manifest_path(plan->manifest, plan, m->path, sizeof m->path) < 0 ||
        ib_aside_name(m->path, ".tmp", m->tmp, sizeof m->tmp) < 0) {
        snprintf(err, errlen, "--manifest %s: path too long", plan->manifest);
        free(m);
        return NULL;
    }
    m->f = ib_aside_open(m->tmp, "--manifest", err, errlen);
    if (m->f == NULL) {
        free(m);
        return NULL;
    }
    fputs("{", m->f);
    return m;
}

/* The outputs as the file event lists them, with each one's variant. */
static void put_outputs(FILE *f, const ib_plan_t *plan, const ib_job_t *job, const ib_result_t *res)
{
    fputs("\"outputs\":[", f);
    for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
        const ib_output_info_t *o = &res->out[i];
        char dest[PATH_MAX];
        if (ib_job_output_path(plan, job, o, dest, sizeof dest) < 0)
            dest[0] = '\0';
        fputs(i ? ",{\"path\":" : "{\"path\":", f);
        ib_json_string(f, dest);
        fprintf(f, ",\"width\":%u,\"height\":%u,\"format\":", o->width, o->height);
        ib_json_string(f, o->format);
        fprintf(f, ",\"bytes\":%llu,\"variant\":", (unsigned long long)o->bytes);
        if (o->variant >= 0 && (unsigned)o->variant < plan->n_variants)
            ib_json_string(f, plan->variants[o->variant].name);
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputc(']', f);
}

void ib_manifest_add(ib_manifest_t *m, const ib_job_t *job, const ib_result_t *res)
{
    FILE *f = m->f;
    fputs(m->entries++ ? ",\n  " : "\n  ", f);
    ib_json_string(f, job->path);
    fprintf(f, ": {\"status\":\"%s\",",
            res->status == IB_STATUS_OK        ? "ok"
            : res->status == IB_STATUS_SKIPPED ? "skipped"
                                               : "failed");
    /* A worker that died before probing the input leaves its size unknown. */
    if (res->src_width > 0)
        fprintf(f, "\"width\":%u,\"height\":%u,", res->src_width, res->src_height);
    else
        fputs("\"width\":null,\"height\":null,", f);
    put_outputs(f, m->plan, job, res);
    if (m->plan->placeholders)
        ib_json_placeholder(f, res);
    ib_json_error(f, res);
    fputc('}', f);
}

int ib_manifest_close(ib_manifest_t *m, int commit, char *err, size_t errlen)
{
    if (commit)
        fputs(m->entries ? "\n}\n" : "}\n", m->f);
    int rc = ib_aside_close(m->f, m->tmp, m->path, commit, "--manifest", err, errlen);
    free(m);
    return rc;
}
