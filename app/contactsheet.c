/*
 * --contact-sheet (contactsheet.h).
 *
 * NOTES
 * - The list is a file, not memory: one record per input, a status byte
 *   and three NUL-ended strings (the input path, which orders the tiles;
 *   the image to show; its label). Paths may hold any byte but NUL.
 * - The list sits beside the sheet, named .NAME.XXXXXX.list, and is
 *   removed by the parent when the run ends, whatever became of the job.
 * - The worker reads the whole list and sorts it by input path, so a sheet
 *   does not depend on the order the workers finished in.
 */
#include "contactsheet.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aside.h"
#include "manifest.h"
#include "sheet.h"

struct ib_sheet {
    const ib_plan_t *plan;
    FILE *list;
    unsigned long tiles;
    char dest[PATH_MAX - 64];
    char list_path[PATH_MAX];
};

void ib_sheet_layout(unsigned long n, unsigned columns, unsigned tile_w, unsigned tile_h,
                     ib_sheet_layout_t *out)
{
    unsigned long long by_pixels = IB_SHEET_MAX_PIXELS / ((unsigned long long)tile_w * tile_h);
    unsigned long per =
        by_pixels < IB_SHEET_MAX_TILES ? (unsigned long)by_pixels : IB_SHEET_MAX_TILES;
    if (per == 0)
        per = 1;
    out->per_sheet = (unsigned)(n < per ? n : per);
    out->sheets = n == 0 ? 0 : (unsigned)((n + per - 1) / per);
    if (columns == 0) {
        columns = (unsigned)ceil(sqrt((double)out->per_sheet));
        if (columns == 0)
            columns = 1;
    }
    /* More columns than tiles would only widen the canvas with empty
     * slots, past the pixel cap. */
    if (out->per_sheet > 0 && columns > out->per_sheet)
        columns = out->per_sheet;
    out->columns = columns;
}

int ib_sheet_name(const char *dest, unsigned k, unsigned sheets, char *out, size_t cap)
{
    int n;
    if (sheets <= 1) {
        n = snprintf(out, cap, "%s", dest);
    } else {
        const char *dot = strrchr(dest, '.');
        n = snprintf(out, cap, "%.*s-%u%s", (int)(dot - dest), dest, k, dot);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- the parent ---- */

/* Names the sheet and creates its list beside it. 0, or -1 with err. */
static int open_list(ib_sheet_t *s, const ib_plan_t *plan, char *err, size_t errlen)
{
    if (ib_manifest_path(plan->contact_sheet, plan, s->dest, sizeof s->dest) < 0) {
        snprintf(err, errlen, "--contact-sheet %s: path too long", plan->contact_sheet);
        return -1;
    }
    /* list_path has room for any dest's name. */
    ib_aside_name(s->dest, ".list", s->list_path, sizeof s->list_path);
    int fd = mkostemps(s->list_path, (int)strlen(".list"), O_CLOEXEC);
    if (fd < 0 || (s->list = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "--contact-sheet: open(\"%s\") failed: %s", s->list_path,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(s->list_path);
        }
        return -1;
    }
    return 0;
}

ib_sheet_t *ib_sheet_open(const ib_plan_t *plan, char *err, size_t errlen)
{
    ib_sheet_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (open_list(s, plan, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->plan = plan;
    return s;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

void ib_sheet_add(ib_sheet_t *s, const ib_job_t *job, const ib_result_t *res)
{
    char dest[PATH_MAX] = "";
    const char *show = job->path;
    if (res->status == IB_STATUS_FAILED)
        show = "";
    else if (res->n_outputs > 0 &&
             ib_job_output_path(s->plan, job, &res->out[0], dest, sizeof dest) == 0)
        show = dest;
    fputc(res->status == IB_STATUS_FAILED ? 'f' : 'o', s->list);
    fwrite(job->path, 1, strlen(job->path) + 1, s->list);
    fwrite(show, 1, strlen(show) + 1, s->list);
    const char *label = base_name(show[0] != '\0' ? show : job->path);
    fwrite(label, 1, strlen(label) + 1, s->list);
    s->tiles++;
}

int ib_sheet_job(ib_sheet_t *s, ib_sheet_job_t *job, char *err, size_t errlen)
{
    if (fflush(s->list) != 0 || ferror(s->list)) {
        snprintf(err, errlen, "--contact-sheet: write(\"%s\") failed: %s", s->list_path,
                 strerror(errno));
        return -1;
    }
    if (s->tiles == 0) {
        snprintf(err, errlen, "no contact sheet: no images were processed");
        return -1;
    }
    memset(job, 0, sizeof *job);
    job->columns = s->plan->sheet_columns;
    job->tile_w = s->plan->tile_w > 0 ? s->plan->tile_w : 200;
    job->tile_h = s->plan->tile_h > 0 ? s->plan->tile_h : 200;
    snprintf(job->list, sizeof job->list, "%s", s->list_path);
    snprintf(job->dest, sizeof job->dest, "%s", s->dest);
    return 0;
}

int ib_sheet_done(const ib_sheet_t *s, const ib_sheet_result_t *res, int quiet)
{
    if (res->failed) {
        fprintf(stderr, "imgbatch: %s\n", res->message);
        return -1;
    }
    if (quiet)
        return 0;
    char first[PATH_MAX], last[PATH_MAX];
    ib_sheet_name(s->dest, 1, res->sheets, first, sizeof first);
    ib_sheet_name(s->dest, res->sheets, res->sheets, last, sizeof last);
    if (res->sheets == 1)
        fprintf(stderr, "imgbatch: contact sheet: %s (%u tiles)\n", first, res->tiles);
    else
        fprintf(stderr,
                "imgbatch: contact sheet: %u tiles are too many for one image: %u sheets, "
                "%s to %s\n",
                res->tiles, res->sheets, first, last);
    return 0;
}

void ib_sheet_free(ib_sheet_t *s)
{
    if (s != NULL) {
        /* The list was only for the sheet's job. */
        fclose(s->list);
        unlink(s->list_path);
    }
    free(s);
}

/* ---- the worker ---- */

typedef struct {
    const char *key;
    ib_sheet_tile_t tile;
} entry_t;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->key, ((const entry_t *)b)->key);
}

/* The whole list file, NUL-ended, into *buf. Its length, or -1. */
static long read_list(const char *path, char **buf)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, n = 0, got;
    char *b = malloc(cap + 1);
    while (b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(b, 2 * cap + 1);
            if (bigger == NULL) {
                free(b);
                b = NULL;
            }
            b = bigger;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (b == NULL || bad) {
        free(b);
        return -1;
    }
    b[n] = '\0';
    *buf = b;
    return (long)n;
}

/* The records of buf[0 .. len) as entries; how many, or -1. */
static long parse_list(char *buf, long len, entry_t **out)
{
    size_t cap = 1024, n = 0;
    entry_t *e = malloc(cap * sizeof *e);
    for (long at = 0; e != NULL && at < len;) {
        char status = buf[at++];
        const char *key = buf + at, *show, *label;
        at += (long)strlen(key) + 1;
        show = at < len ? buf + at : "";
        at += (long)strlen(show) + 1;
        label = at < len ? buf + at : "";
        at += (long)strlen(label) + 1;
        if (n == cap) {
            entry_t *bigger = realloc(e, 2 * cap * sizeof *e);
            if (bigger == NULL)
                free(e);
            e = bigger;
            cap *= 2;
        }
        if (e != NULL)
            e[n++] = (entry_t){key, {status == 'f' || show[0] == '\0' ? NULL : show, label}};
    }
    *out = e;
    return e == NULL ? -1 : (long)n;
}

static void guard_sheet(void *arg, const char *tmp)
{
    ib_worker_guard_file(arg, tmp);
}

/* Each sheet of the sorted entries, in turn. */
static int render_sheets(const ib_job_ctx_t *ctx, ib_worker_t *self, const ib_sheet_job_t *job,
                         entry_t *e, unsigned long n, ib_sheet_result_t *res)
{
    ib_sheet_layout_t lay;
    ib_sheet_layout(n, job->columns, job->tile_w, job->tile_h, &lay);
    ib_sheet_tile_t *tiles = malloc(n * sizeof *tiles);
    if (tiles == NULL)
        return snprintf(res->message, sizeof res->message, "contact sheet: out of memory"), -1;
    for (unsigned long i = 0; i < n; i++)
        tiles[i] = e[i].tile;
    ib_sheet_opts_t opts = {lay.columns, job->tile_w, job->tile_h, ctx->plan->font};
    ib_output_opts_t wo = {.guard = guard_sheet, .hook_arg = self};
    int rc = 0;
    for (unsigned k = 0; k < lay.sheets && rc == 0; k++) {
        char name[PATH_MAX];
        ib_error_t err = {0};
        unsigned long first = (unsigned long)k * lay.per_sheet;
        unsigned long count = n - first < lay.per_sheet ? n - first : lay.per_sheet;
        wo.tag = k;
        if (ib_sheet_name(job->dest, k + 1, lay.sheets, name, sizeof name) < 0)
            rc = ib_fail(&err, IB_ERR_WRITE, "contact sheet %s: name too long", job->dest);
        else
            rc = ib_sheet_render(tiles + first, count, &opts, name, &wo, &err);
        if (rc < 0)
            snprintf(res->message, sizeof res->message, "%s", err.message);
    }
    free(tiles);
    res->sheets = lay.sheets;
    res->tiles = (uint32_t)n;
    return rc;
}

void ib_sheet_run(const ib_job_ctx_t *ctx, ib_worker_t *self, const ib_sheet_job_t *job,
                  ib_sheet_result_t *res)
{
    char *buf = NULL;
    entry_t *e = NULL;
    long len = read_list(job->list, &buf);
    long n = len < 0 ? -1 : parse_list(buf, len, &e);
    if (n < 0) {
        snprintf(res->message, sizeof res->message,
                 "contact sheet: reading its list \"%.900s\" failed: %s", job->list,
                 len < 0 ? strerror(errno) : "out of memory");
        res->failed = 1;
    } else {
        qsort(e, (size_t)n, sizeof *e, by_key);
        res->failed = render_sheets(ctx, self, job, e, (unsigned long)n, res) < 0;
    }
    free(e);
    free(buf);
}
