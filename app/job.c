/*
 * The worker's side of a job: probe, decide the output, skip it if it is up
 * to date, render, write. Runs in worker processes only (it calls libvips).
 */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "naming.h"
#include "output.h"

/* A worker's stdout would corrupt --json, and codecs print to stderr on
 * their own; what matters reaches the user through the result instead. */
static void silence_worker(const ib_plan_t *plan)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0)
        return;
    dup2(null, STDOUT_FILENO);
    if (!plan->verbose && getenv("IMGBATCH_DEBUG") == NULL)
        dup2(null, STDERR_FILENO);
    close(null);
}

int ib_job_init(void *ctx)
{
    const ib_job_ctx_t *jc = ctx;
    silence_worker(jc->plan);
    if (ib_image_init("imgbatch", jc->plan->max_memory) != 0)
        return -1;
    /* The limit is room for images on top of what a started worker already
     * holds: libvips reserves a few hundred MB of address space for its
     * threads and allocator before it reads a pixel, which says nothing
     * about the memory an image costs. An image that needs more fails on
     * its own (an allocation fails, or the worker dies and is replaced).
     * The PNG fast path's inflate buffer is allocated later, so it counts
     * against the limit; ib_image_init() held it to the same budget. */
    if (jc->plan->max_memory > 0) {
        unsigned long pages = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        if (f != NULL) {
            if (fscanf(f, "%lu", &pages) != 1)
                pages = 0;
            fclose(f);
        }
        rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + jc->plan->max_memory;
        struct rlimit rl = {.rlim_cur = limit, .rlim_max = limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return -1;
    }
    return 0;
}

int ib_job_output_path(const ib_plan_t *plan, const ib_job_t *job, const ib_output_info_t *o,
                       char *out, size_t cap)
{
    ib_name_vars_t v = {.rel = job->rel,
                        .ext = o->ext,
                        .width = o->width,
                        .height = o->height,
                        .variant = o->variant >= 0 && (unsigned)o->variant < plan->n_variants
                                       ? plan->variants[o->variant].name
                                       : NULL};
    if (plan->in_place) {
        /* Beside the input, under its own name (or its stem with the new
         * extension when -F changes the format). */
        char dir[PATH_MAX];
        const char *slash = strrchr(job->path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash != NULL ? (int)(slash - job->path) : 1,
                 slash != NULL ? job->path : ".");
        if (dir[0] == '\0')
            snprintf(dir, sizeof dir, "/");
        v.rel = slash != NULL ? slash + 1 : job->path;
        return ib_name_render(dir, "{stem}.{ext}", &v, out, cap);
    }
    return ib_name_render(plan->output, plan->name_template, &v, out, cap);
}

static void guard(void *arg, const char *tmp)
{
    ib_worker_guard_file(arg, tmp);
}

static int newer_or_same(const struct stat *out, const struct stat *in)
{
    if (out->st_mtim.tv_sec != in->st_mtim.tv_sec)
        return out->st_mtim.tv_sec > in->st_mtim.tv_sec;
    return out->st_mtim.tv_nsec >= in->st_mtim.tv_nsec;
}

/* Whether an existing output means this job has nothing to do. -1 on "fail". */
static int up_to_date(const ib_plan_t *plan, const ib_job_t *job, const char *dest, ib_error_t *err)
{
    struct stat out, in;
    if (plan->if_exists == IB_EXISTS_OVERWRITE || stat(dest, &out) < 0)
        return 0;
    if (plan->if_exists == IB_EXISTS_SKIP)
        return 1;
    if (plan->if_exists == IB_EXISTS_FAIL)
        return ib_fail(err, IB_ERR_WRITE, "%s: output %s already exists (--if-exists fail)",
                       job->path, dest);
    char recipe[sizeof plan->recipe];
    int tagged = ib_output_recipe(dest, recipe, sizeof recipe);
    if (strcmp(dest, job->path) == 0)
        /* Replaced in place: only the recipe it carries can tell that this
         * file is already our output, not an original. */
        return tagged && strcmp(recipe, plan->recipe) == 0;
    if (stat(job->path, &in) < 0 || !newer_or_same(&out, &in))
        return 0;
    if (tagged)
        return strcmp(recipe, plan->recipe) == 0;
    return 1; /* no extended attributes here: the times decide */
}

/*
 * Whether dest exists and records another input that still exists as its
 * maker (named in owner): then it is that input's output, and writing over
 * it (or calling it up to date for us) would be a collision, whichever
 * input this run meets first.
 */
static int made_by_another(const ib_plan_t *plan, const char *dest, const char *self, char *owner,
                           size_t len)
{
    if (plan->if_exists == IB_EXISTS_OVERWRITE || plan->in_place ||
        !ib_output_source(dest, owner, len))
        return 0;
    return strcmp(owner, self) != 0 && access(owner, F_OK) == 0;
}

static void fill_failure(ib_result_t *res, const ib_error_t *err)
{
    res->status = IB_STATUS_FAILED;
    res->kind = err->kind;
    snprintf(res->message, sizeof res->message, "%s", err->message);
}

/* The extension and format name of this job's outputs. */
static void pick_format(const ib_plan_t *plan, const char *path, ib_output_info_t *o)
{
    if (plan->format[0] != '\0')
        snprintf(o->ext, sizeof o->ext, "%s", plan->format);
    else
        ib_image_same_ext(path, o->ext, sizeof o->ext);
    for (size_t i = 0; o->ext[i] != '\0' && i + 1 < sizeof o->format; i++)
        o->format[i] = (char)(o->ext[i] | 0x20);
    o->format[strlen(o->ext) < sizeof o->format ? strlen(o->ext) : sizeof o->format - 1] = '\0';
    static const char *aliases[][2] = {
        {"jpg", "jpeg"}, {"jpe", "jpeg"}, {"jfif", "jpeg"}, {"tif", "tiff"}, {"heic", "heif"}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(o->format, aliases[i][0]) == 0)
            snprintf(o->format, sizeof o->format, "%s", aliases[i][1]);
}

void ib_job_run(void *ctx, ib_worker_t *self, const void *data, size_t len, void *result)
{
    const ib_job_ctx_t *jc = ctx;
    const ib_plan_t *plan = jc->plan;
    const ib_job_t *job = data;
    ib_result_t *res = result;
    ib_error_t err = {0};
    int64_t t0 = ib_pool_now_ms();
    (void)len;

    ib_render_t r = {
        .chain = &plan->chain,
        .autorotate = plan->autorotate,
        .fail_on_warning = plan->strict,
        .max_pixels = plan->max_pixels,
    };
    ib_probe_t probe = {0};
    unsigned n = plan->n_variants > 0 ? plan->n_variants : 1;
    ib_size_t sizes[IB_MAX_OUTPUTS];
    char dest[IB_MAX_OUTPUTS][PATH_MAX];
    ib_encoded_t coded[IB_MAX_OUTPUTS];
    unsigned w, h;

    struct stat in;
    if (stat(job->path, &in) == 0)
        res->input_bytes = (uint64_t)in.st_size;
    if (ib_image_probe(job->path, &r, &probe, &err) < 0)
        goto failed;
    if (ib_image_target_size(&probe, &r, &w, &h))
        snprintf(res->message, sizeof res->message,
                 "%.900s: kept at %ux%u: the geometry asks for a side over %d pixels", job->path, w,
                 h, IB_GEOM_MAX_SIDE);

    /* Who we are, as recorded on our outputs, whatever the current directory. */
    char self_path[PATH_MAX], owner[PATH_MAX];
    if (realpath(job->path, self_path) == NULL)
        snprintf(self_path, sizeof self_path, "%s", job->path);
    res->n_outputs = n;
    int fresh = 1;
    for (unsigned i = 0; i < n; i++) {
        ib_output_info_t *o = &res->out[i];
        pick_format(plan, job->path, o);
        o->variant = plan->n_variants > 0 ? (int32_t)i : -1;
        o->width = w;
        o->height = h;
        if (plan->n_variants > 0)
            ib_geometry_apply(&plan->variants[i].geom, w, h, &o->width, &o->height);
        sizes[i] = (ib_size_t){o->width, o->height};
        if (ib_job_output_path(plan, job, o, dest[i], sizeof dest[i]) < 0) {
            ib_fail(&err, IB_ERR_WRITE, "%s: output path too long", job->path);
            goto failed;
        }
        if (made_by_another(plan, dest[i], self_path, owner, sizeof owner)) {
            ib_fail(&err, IB_ERR_COLLISION,
                    "%s: output %s was made from %s, another input (--if-exists overwrite "
                    "replaces it)",
                    job->path, dest[i], owner);
            goto failed;
        }
        if (jc->claims != NULL && ib_claims_take(jc->claims, dest[i]) == 0) {
            ib_fail(&err, IB_ERR_COLLISION,
                    "%s: output %s is also the output of another input of this run", job->path,
                    dest[i]);
            goto failed;
        }
        if (!plan->dry_run) {
            int up = up_to_date(plan, job, dest[i], &err);
            if (up < 0)
                goto failed;
            fresh &= up;
        }
    }
    /* JPEG 2000 counts resolution levels as pages: nothing is lost there. */
    if (probe.pages > 1 && strcmp(probe.loader, "jp2k") != 0 &&
        !(ib_image_animates(res->out[0].ext) &&
          (strcmp(probe.loader, "gif") == 0 || strcmp(probe.loader, "webp") == 0)))
        snprintf(res->message, sizeof res->message, "%.900s: only the first of its %d %s",
                 job->path, probe.pages,
                 strcmp(probe.loader, "gif") == 0 || strcmp(probe.loader, "webp") == 0
                     ? "frames is written (write gif or webp to keep the animation)"
                     : "pages is written");
    if (plan->dry_run) {
        res->status = IB_STATUS_OK;
        goto done;
    }
    if (fresh) {
        for (unsigned i = 0; i < n; i++) {
            struct stat st;
            if (stat(dest[i], &st) == 0)
                res->out[i].bytes = (uint64_t)st.st_size;
        }
        res->status = IB_STATUS_SKIPPED;
        goto done;
    }

    ib_encode_t enc = {.quality = plan->quality,
                       .interlace = plan->interlace,
                       .lossless = plan->lossless,
                       .compression = plan->compression,
                       .metadata = (ib_metadata_t)plan->metadata};
    snprintf(enc.ext, sizeof enc.ext, "%s", res->out[0].ext);
    if (ib_image_render(job->path, &probe, &r, &enc, plan->n_variants > 0 ? sizes : NULL, n, coded,
                        &err) < 0)
        goto failed;
    int wrc = 0;
    for (unsigned i = 0; i < n; i++) {
        ib_output_info_t *o = &res->out[i];
        o->width = coded[i].width;
        o->height = coded[i].height;
        o->bytes = coded[i].len;
        ib_output_opts_t wo = {.guard = guard,
                               .guard_arg = self,
                               .recipe = plan->recipe,
                               .source = self_path,
                               .tag = (unsigned long)t0 * IB_MAX_OUTPUTS + i};
        if (wrc == 0)
            wrc = ib_output_write(dest[i], coded[i].data, coded[i].len, &wo, &err);
        ib_encoded_free(&coded[i]);
    }
    if (wrc < 0)
        goto failed;
    res->status = IB_STATUS_OK;
    if (res->message[0] == '\0')
        ib_image_take_warnings(job->path, res->message, sizeof res->message);
    goto done;

failed:
    res->n_outputs = 0;
    fill_failure(res, &err);
done:
    ib_image_probe_release(&probe);
    res->ms = (uint32_t)(ib_pool_now_ms() - t0);
}
