/*
 * The worker's side of a job: probe, decide the output, skip it if it is up
 * to date, render, write.
 *
 * NOTES
 * - Everything here runs in worker processes (it calls libvips), except
 *   ib_job_output_path(), which the parent calls too, to name the outputs
 *   of a worker that died: both sides must agree on every name.
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

#include "clock.h"
#include "image.h"
#include "naming.h"
#include "output.h"
#include "run_error.h"

/* A worker's stdout would corrupt --json, and codecs print to stderr on
 * their own; what matters reaches the user through the result instead. */
static void silence_worker(const ib_plan_t *plan)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0)
        return;
    dup2(null, STDOUT_FILENO);
    if (!plan->verbose && !plan->debug)
        dup2(null, STDERR_FILENO);
    close(null);
}

int ib_job_init(void *ctx)
{
    ib_job_ctx_t *jc = ctx;
    silence_worker(jc->plan);
    ib_image_config_t cfg = {.max_memory = jc->plan->max_memory,
                             .fast_paths = jc->plan->fast_paths,
                             .debug = jc->plan->debug};
    jc->image = ib_image_init("imgbatch", &cfg);
    if (jc->image == NULL)
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
                        .date = o->date,
                        .hash = o->hash[0] != '\0' ? o->hash : NULL,
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

_Static_assert(IB_MAX_OUTPUTS <= IB_POOL_MAX_OUTPUTS, "the pool records every output");
_Static_assert(sizeof(ib_output_info_t) <= IB_POOL_OUTPUT_INFO_MAX, "an output's note fits");

/* Output k of the job in hand, as the worker's slot records it. */
typedef struct {
    ib_worker_t *self;
    unsigned k;
    const char *dest;
    const ib_output_info_t *info;
} commit_note_t;

static void guard(void *arg, const char *tmp)
{
    const commit_note_t *c = arg;
    ib_worker_guard_file(c->self, tmp);
}

/* Recorded before the output takes its name, so that a worker dying
 * between that and its result is reported by what is on disk. */
static void committing(void *arg, const struct stat *st)
{
    const commit_note_t *c = arg;
    ib_worker_output_begin(c->self, c->k, c->dest, st->st_dev, st->st_ino, c->info,
                           sizeof *c->info);
}

static int newer_or_same(const struct stat *out, const struct stat *in)
{
    if (out->st_mtim.tv_sec != in->st_mtim.tv_sec)
        return out->st_mtim.tv_sec > in->st_mtim.tv_sec;
    return out->st_mtim.tv_nsec >= in->st_mtim.tv_nsec;
}

/* Whether an existing output means this job has nothing to do. -1 on "fail". */
static int up_to_date(const ib_plan_t *plan, const ib_job_t *job, const char *want,
                      const char *dest, ib_error_t *err)
{
    struct stat out, in;
    if (plan->if_exists == IB_EXISTS_OVERWRITE || stat(dest, &out) < 0)
        return 0;
    if (plan->if_exists == IB_EXISTS_SKIP)
        return 1;
    if (plan->if_exists == IB_EXISTS_FAIL)
        return ib_fail(err, IB_ERR_WRITE, "%s: output %s already exists (--if-exists fail)",
                       job->path, dest);
    char recipe[sizeof plan->recipe + 64];
    int tagged = ib_output_recipe(dest, recipe, sizeof recipe);
    if (strcmp(dest, job->path) == 0)
        /* Replaced in place: only the recipe it carries can tell that this
         * file is already our output, not an original. */
        return tagged && strcmp(recipe, want) == 0;
    if (stat(job->path, &in) < 0 || !newer_or_same(&out, &in))
        return 0;
    if (tagged)
        return strcmp(recipe, want) == 0;
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

/* An output's extension and format name, from -F's name ("" keeps the
 * input's format). */
static void pick_format(ib_image_ctx_t *image, const char *name, const char *path,
                        ib_output_info_t *o)
{
    if (name[0] != '\0')
        snprintf(o->ext, sizeof o->ext, "%s", name);
    else
        ib_image_same_ext(image, path, o->ext, sizeof o->ext);
    for (size_t i = 0; o->ext[i] != '\0' && i + 1 < sizeof o->format; i++)
        o->format[i] = (char)(o->ext[i] | 0x20);
    o->format[strlen(o->ext) < sizeof o->format ? strlen(o->ext) : sizeof o->format - 1] = '\0';
    static const char *aliases[][2] = {
        {"jpg", "jpeg"}, {"jpe", "jpeg"}, {"jfif", "jpeg"}, {"tif", "tiff"}, {"heic", "heif"}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(o->format, aliases[i][0]) == 0)
            snprintf(o->format, sizeof o->format, "%s", aliases[i][1]);
}

/*
 * Writes the encoded outputs (and frees them), recording each in the
 * worker's slot. After a failure the result lists only the outputs
 * already whole on disk, so that its event says what is there.
 */
static int write_outputs(const ib_output_opts_t *how, ib_worker_t *self, unsigned long tag,
                         char dest[][PATH_MAX], ib_encoded_t *coded, ib_result_t *res,
                         ib_error_t *err)
{
    unsigned n = res->n_outputs, written = 0;
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        ib_output_info_t *o = &res->out[i];
        o->width = coded[i].width;
        o->height = coded[i].height;
        o->bytes = coded[i].len;
        o->quality = coded[i].quality;
        o->colors = coded[i].palette_bits > 0 ? 1 << coded[i].palette_bits : 0;
        commit_note_t note = {.self = self, .k = i, .dest = dest[i], .info = o};
        ib_output_opts_t wo = *how;
        wo.guard = guard;
        wo.committing = committing;
        wo.hook_arg = &note;
        wo.tag = tag * IB_MAX_OUTPUTS + i;
        if (rc == 0)
            rc = ib_output_write(dest[i], coded[i].data, coded[i].len, &wo, err);
        if (rc == 0) {
            ib_worker_output_done(self, i);
            written++;
        }
        ib_encoded_free(&coded[i]);
    }
    if (rc < 0)
        res->n_outputs = written;
    return rc;
}

/* One job's working state in the worker. */
typedef struct {
    const ib_job_ctx_t *jc;
    const ib_plan_t *plan;
    const ib_job_t *job;
    ib_result_t *res;
    ib_render_t r;
    ib_probe_t *probe;
    unsigned n;
    ib_size_t sizes[IB_MAX_OUTPUTS];
    char dest[IB_MAX_OUTPUTS][PATH_MAX];
    /* Who we are, as recorded on our outputs, whatever the current directory. */
    char self_path[PATH_MAX];
    /* The plan's recipe and, but for --in-place, the input's time and
     * size: an output is up to date only for the same input bytes, even
     * when it carries the input's time (--preserve-times). */
    char recipe[sizeof(((ib_plan_t *)0)->recipe) + 64];
    struct timespec mtime;
    int hashed; /* named by {hash} */
} job_state_t;

/*
 * Whether dest, claimed earlier in this run by another input, was made
 * from an input that is gone, the claim now self's. A watcher meets this
 * when photo.png is deleted and photo.jpg added: both make photo.webp.
 * Without a recorded maker (no extended attributes) the claim stands.
 */
static int maker_gone(ib_claims_t *claims, const char *dest, const char *self)
{
    char maker[PATH_MAX];
    return ib_output_source(dest, maker, sizeof maker) && access(maker, F_OK) < 0 &&
           errno == ENOENT && ib_claims_pass(claims, dest, maker, self);
}

/* Output i's path, unless another input owns it (this run or an earlier one). */
static int claim_output(job_state_t *js, unsigned i, ib_error_t *err)
{
    const char *in = js->job->path, *dest = js->dest[i];
    char owner[PATH_MAX];
    if (made_by_another(js->plan, dest, js->self_path, owner, sizeof owner))
        return ib_fail(err, IB_ERR_COLLISION,
                       "%s: output %s was made from %s, another input (--if-exists overwrite "
                       "replaces it)",
                       in, dest, owner);
    if (js->jc->claims != NULL && ib_claims_take(js->jc->claims, dest, js->self_path) == 0 &&
        !maker_gone(js->jc->claims, dest, js->self_path))
        return ib_fail(err, IB_ERR_COLLISION,
                       "%s: output %s is also the output of another input of this run", in, dest);
    return 0;
}

/* Appends the outputs of variant v (-1: the one output without
 * variants), one per format, sized for an image of w x h. */
static void add_outputs(job_state_t *js, int v, unsigned w, unsigned h)
{
    const ib_plan_t *plan = js->plan;
    const ib_variant_t *var = v >= 0 ? &plan->variants[v] : NULL;
    unsigned n_formats = var != NULL && var->format[0] != '\0' ? 1
                         : plan->n_formats > 0                 ? plan->n_formats
                                                               : 1;
    for (unsigned f = 0; f < n_formats && js->n < IB_MAX_OUTPUTS; f++) {
        ib_output_info_t *o = &js->res->out[js->n];
        const char *name = var != NULL && var->format[0] != '\0' ? var->format
                           : plan->n_formats > 0                 ? plan->formats[f]
                                                                 : "";
        pick_format(js->jc->image, name, js->job->path, o);
        o->variant = v;
        o->date = ib_probe_header(js->probe)->date;
        o->quality = var != NULL && var->quality > 0 ? var->quality : plan->quality;
        if (o->quality == 0 && !plan->lossless)
            o->quality = ib_image_default_quality(o->ext);
        if (plan->lossless && ib_image_lossless(o->ext) != 0)
            o->quality = 0;
        o->width = w;
        o->height = h;
        if (var != NULL)
            ib_geometry_apply(&var->geom, w, h, &o->width, &o->height);
        js->n++;
    }
}

/* The size output o's variant asks for, its ">" aside (w x h without a
 * variant). */
static void wanted_size(const job_state_t *js, const ib_output_info_t *o, unsigned w, unsigned h,
                        unsigned *vw, unsigned *vh)
{
    *vw = w, *vh = h;
    if (o->variant >= 0) {
        ib_geometry_t g = js->plan->variants[o->variant].geom;
        g.flags &= ~(unsigned)IB_GEOM_SHRINK;
        ib_geometry_apply(&g, w, h, vw, vh);
    }
}

/* A variant whose geometry is shrink-only (">") is not written when it
 * would have to enlarge the image: a web page wants no 1600 px copy of a
 * 900 px photo. Without ">", a geometry is followed as ImageMagick
 * follows it. */
static int enlarges(const job_state_t *js, const ib_output_info_t *o, unsigned w, unsigned h)
{
    unsigned vw, vh;
    if (o->variant < 0 || !(js->plan->variants[o->variant].geom.flags & IB_GEOM_SHRINK))
        return 0;
    wanted_size(js, o, w, h, &vw, &vh);
    return vw > w || vh > h;
}

/* The same format, size and quality as an earlier output: the same bytes. */
static int repeats(const job_state_t *js, unsigned i)
{
    const ib_output_info_t *o = &js->res->out[i];
    for (unsigned k = 0; k < i; k++) {
        const ib_output_info_t *e = &js->res->out[k];
        if (strcmp(e->format, o->format) == 0 && e->width == o->width && e->height == o->height &&
            e->quality == o->quality)
            return 1;
    }
    return 0;
}

/* Drops the shrink-only variants that would enlarge an image of w x h;
 * when every one would, the largest is kept at w x h. Then drops
 * repeats. */
static void drop_needless(job_state_t *js, unsigned w, unsigned h)
{
    ib_output_info_t *out = js->res->out;
    unsigned kept = 0, largest = 0;
    uint64_t most = 0;
    for (unsigned i = 0; i < js->n; i++) {
        unsigned vw, vh;
        wanted_size(js, &out[i], w, h, &vw, &vh);
        if ((uint64_t)vw * vh > most)
            most = (uint64_t)vw * vh, largest = i;
    }
    int32_t largest_variant = out[largest].variant;
    for (unsigned i = 0; i < js->n; i++)
        if (!enlarges(js, &out[i], w, h))
            out[kept++] = out[i];
    if (kept == 0) {
        for (unsigned i = 0; i < js->n; i++)
            if (out[i].variant == largest_variant) {
                out[kept] = out[i];
                out[kept].width = w;
                out[kept++].height = h;
            }
    }
    js->n = kept;
    kept = 0;
    for (unsigned i = 0; i < js->n; i++)
        if (!repeats(js, i))
            out[kept++] = out[i];
    js->n = kept;
}

/* Two outputs of this input under one name: neither may be written. */
static int check_names(const job_state_t *js, ib_error_t *err)
{
    for (unsigned i = 0; i < js->n; i++)
        for (unsigned k = 0; k < i; k++)
            if (strcmp(js->dest[i], js->dest[k]) == 0)
                return ib_fail(err, IB_ERR_COLLISION,
                               "%s: two of its outputs would both be %s: add {variant}, {w} or "
                               "{ext} to --name",
                               js->job->path, js->dest[i]);
    return 0;
}

/* Each output's path. */
static int name_outputs(job_state_t *js, ib_error_t *err)
{
    for (unsigned i = 0; i < js->n; i++)
        if (ib_job_output_path(js->plan, js->job, &js->res->out[i], js->dest[i], PATH_MAX) < 0)
            return ib_fail(err, IB_ERR_WRITE, "%s: output path too long", js->job->path);
    return 0;
}

/* Claims the named outputs: 1 if every one is already up to date, 0 if
 * there is work, -1 on a failure. */
static int claim_outputs(job_state_t *js, ib_error_t *err)
{
    int fresh = 1;
    if (check_names(js, err) < 0)
        return -1;
    for (unsigned i = 0; i < js->n; i++) {
        if (claim_output(js, i, err) < 0)
            return -1;
        if (!js->plan->dry_run) {
            int up = up_to_date(js->plan, js->job, js->recipe, js->dest[i], err);
            if (up < 0)
                return -1;
            fresh &= up;
        }
    }
    return fresh;
}

/* Each output's format, size and path, for an image of w x h. 1 if every
 * output is already up to date, 0 if there is work, -1 on a failure.
 * Names by {hash} wait for the encoded bytes (name_by_hash()). */
static int plan_outputs(job_state_t *js, unsigned w, unsigned h, ib_error_t *err)
{
    const ib_plan_t *plan = js->plan;
    js->n = 0;
    for (int v = plan->n_variants > 0 ? 0 : -1; v < (int)plan->n_variants; v++)
        add_outputs(js, v, w, h);
    drop_needless(js, w, h);
    js->res->n_outputs = js->n;
    for (unsigned i = 0; i < js->n; i++)
        js->sizes[i] = (ib_size_t){js->res->out[i].width, js->res->out[i].height};
    if (name_outputs(js, err) < 0)
        return -1;
    return js->hashed ? 0 : claim_outputs(js, err);
}

/* Names the encoded outputs by their bytes' hash and claims them, as
 * plan_outputs() does for other names. An output with such a name that is
 * up to date holds these very bytes. */
static int name_by_hash(job_state_t *js, const ib_encoded_t *coded, ib_error_t *err)
{
    for (unsigned i = 0; i < js->n; i++)
        ib_hash_hex(coded[i].data, coded[i].len, js->res->out[i].hash);
    if (name_outputs(js, err) < 0)
        return -1;
    return claim_outputs(js, err);
}

/* A warning when only the first page or frame of the input is written.
 * JPEG 2000 counts resolution levels as pages: nothing is lost there. */
static void note_pages(job_state_t *js)
{
    const ib_header_t *p = ib_probe_header(js->probe);
    int framed = ib_image_is_animation(js->probe);
    if (p->pages <= 1 || strcmp(p->loader, "jp2k") == 0 ||
        (framed && ib_image_animates(js->res->out[0].ext)))
        return;
    snprintf(js->res->message, sizeof js->res->message, "%.900s: only the first of its %d %s",
             js->job->path, p->pages,
             framed ? "frames is written (write gif or webp to keep the animation)"
                    : "pages is written");
}

/* Every output is up to date: the result reports them as they are. With
 * --placeholders the image is still decoded for them (nothing is written):
 * a re-run's manifest must be as complete as the first run's. */
static void mark_skipped(job_state_t *js, ib_error_t *err)
{
    for (unsigned i = 0; i < js->n; i++) {
        struct stat st;
        if (stat(js->dest[i], &st) == 0)
            js->res->out[i].bytes = (uint64_t)st.st_size;
    }
    js->res->status = IB_STATUS_SKIPPED;
    if (js->r.placeholder != NULL && js->res->placeholder.color[0] == '\0' &&
        ib_image_placeholder(js->jc->image, js->job->path, js->probe, &js->r, err) < 0) {
        /* Its outputs are whole: a warning, not a failure. */
        snprintf(js->res->message, sizeof js->res->message, "no placeholders: %.900s",
                 err->message);
        js->res->placeholder.color[0] = '\0';
    }
}

/* The palette depth for at most colors colours (0: any, 256): libvips
 * writes palettes of 2, 4, 16 or 256 entries. */
static int palette_bits(unsigned colors)
{
    static const int bits[] = {8, 4, 2, 1};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (colors == 0 || (1u << bits[i]) <= colors)
            return bits[i];
    return 1;
}

/* --keep-smaller: outputs larger than the input that may be the input's
 * bytes become them. 0, or -1 when the input could not be read again. */
static int keep_smaller(job_state_t *js, const ib_encode_t *enc, ib_encoded_t *coded,
                        ib_error_t *err)
{
    for (unsigned i = 0; i < js->n; i++) {
        ib_output_info_t *o = &js->res->out[i];
        int in_place = js->plan->in_place && strcmp(js->dest[i], js->job->path) == 0, forced;
        size_t encoded = coded[i].len;
        int kept = ib_image_keep_smaller(js->job->path, js->probe, &js->r, o->format, &enc[i],
                                         in_place, &coded[i], &forced, err);
        if (kept < 0)
            return -1;
        o->kept_input = kept == 1;
        if (forced)
            snprintf(js->res->message, sizeof js->res->message,
                     "%.700s: kept as it was: encoded again it came to %zu bytes, more than its "
                     "%zu, and --keep-smaller never grows a file in place (the options' edits "
                     "and metadata changes are not applied)",
                     js->job->path, encoded, coded[i].len);
    }
    return 0;
}

/* Decodes once, renders every output and writes them. */
static int render_and_write(job_state_t *js, ib_worker_t *self, unsigned long tag, ib_error_t *err)
{
    const ib_plan_t *plan = js->plan;
    ib_encoded_t coded[IB_MAX_OUTPUTS];
    ib_encode_t enc[IB_MAX_OUTPUTS];
    for (unsigned i = 0; i < js->n; i++) {
        enc[i] = (ib_encode_t){.quality = js->res->out[i].quality,
                               .interlace = plan->interlace,
                               .lossless = plan->lossless,
                               .compression = plan->compression,
                               .metadata = plan->metadata,
                               .palette = plan->palette,
                               .palette_bits = palette_bits(plan->colors),
                               .dither = plan->dither,
                               .effort = plan->effort,
                               .subsample = plan->subsample,
                               .max_bytes = plan->max_bytes,
                               .strip_gps = plan->strip_gps};
        snprintf(enc[i].ext, sizeof enc[i].ext, "%s", js->res->out[i].ext);
    }
    if (ib_image_render(js->jc->image, js->job->path, js->probe, &js->r, enc,
                        plan->n_variants > 0 ? js->sizes : NULL, js->n, coded, err) < 0) {
        js->res->n_outputs = 0;
        return -1;
    }
    int fresh = plan->keep_smaller ? keep_smaller(js, enc, coded, err) : 0;
    if (fresh == 0 && js->hashed)
        fresh = name_by_hash(js, coded, err);
    if (fresh != 0) {
        for (unsigned i = 0; i < js->n; i++)
            ib_encoded_free(&coded[i]);
        if (fresh < 0) {
            js->res->n_outputs = 0;
            return -1;
        }
        mark_skipped(js, err);
        return 0;
    }
    ib_output_opts_t how = {.recipe = js->recipe,
                            .source = js->self_path,
                            .mtime = plan->preserve_times ? &js->mtime : NULL};
    if (write_outputs(&how, self, tag, js->dest, coded, js->res, err) < 0)
        return -1;
    js->res->status = IB_STATUS_OK;
    if (js->res->message[0] == '\0')
        ib_image_take_warnings(js->job->path, js->res->message, sizeof js->res->message);
    return 0;
}

/* Probe, plan, then skip, list (--dry-run) or render. -1 on a failure,
 * with res->n_outputs counting the outputs left whole on disk. */
static int run_job(job_state_t *js, ib_worker_t *self, unsigned long tag, ib_error_t *err)
{
    const char *in = js->job->path;
    unsigned w, h;
    struct stat st;
    snprintf(js->recipe, sizeof js->recipe, "%s", js->plan->recipe);
    if (stat(in, &st) == 0) {
        js->res->input_bytes = (uint64_t)st.st_size;
        js->mtime = st.st_mtim;
        if (!js->plan->in_place)
            snprintf(js->recipe, sizeof js->recipe, "%s;src=%lld.%09ld:%lld", js->plan->recipe,
                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_size);
    }
    js->probe = ib_image_probe(js->jc->image, in, &js->r, err);
    if (js->probe == NULL)
        return -1;
    js->res->src_width = ib_probe_header(js->probe)->width;
    js->res->src_height = ib_probe_header(js->probe)->height;
    if (ib_image_target_size(js->probe, &js->r, &w, &h))
        snprintf(js->res->message, sizeof js->res->message,
                 "%.900s: kept at %ux%u: the geometry asks for a side over %d pixels", in, w, h,
                 IB_GEOM_MAX_SIDE);
    js->hashed = ib_name_has_hash(js->plan->name_template) && !js->plan->in_place;
    if (realpath(in, js->self_path) == NULL)
        snprintf(js->self_path, sizeof js->self_path, "%s", in);
    int fresh = plan_outputs(js, w, h, err);
    if (fresh < 0) {
        js->res->n_outputs = 0;
        return -1;
    }
    note_pages(js);
    if (js->plan->dry_run)
        js->res->status = IB_STATUS_OK;
    else if (fresh)
        mark_skipped(js, err);
    else
        return render_and_write(js, self, tag, err);
    return 0;
}

void ib_job_run(void *ctx, ib_worker_t *self, const void *data, size_t len, void *result)
{
    const ib_job_ctx_t *jc = ctx;
    const ib_plan_t *plan = jc->plan;
    int64_t t0 = ib_now_ms();
    job_state_t js = {
        .jc = jc,
        .plan = plan,
        .job = data,
        .res = result,
        .r = {.chain = &plan->chain,
              .autorotate = plan->autorotate,
              .fail_on_warning = plan->strict,
              .max_pixels = plan->max_pixels,
              .font = plan->font,
              .want_date = plan->want_date,
              .placeholder = plan->placeholders || plan->report_inline
                                 ? &((ib_result_t *)result)->placeholder
                                 : NULL},
    };
    ib_error_t err = {0};
    (void)len;
    if (run_job(&js, self, (unsigned long)t0, &err) < 0)
        fill_failure(js.res, &err);
    ib_image_probe_free(js.probe);
    js.res->ms = (uint32_t)(ib_now_ms() - t0);
}
