/*
 * The libvips side of the pipeline.
 *
 * NOTES
 * - Workers run libvips with one thread and no operation cache: the pool
 *   gives the parallelism, and a cache only grows in a process that never
 *   sees the same image twice.
 * - Loading is strict by default (fail on the first warning, as sharp does):
 *   a truncated JPEG must fail, not come out with a grey band.
 * - Each step takes a reference and hands back a new one (or NULL), dropping
 *   its intermediates itself, so a failure anywhere leaves nothing for the
 *   caller to free; resample() keeps its few in one array freed at one exit.
 * - libvips and the codecs below it report warnings through GLib; they are
 *   added to libvips' error buffer instead of the terminal, so that they
 *   reach the file's result and not the user's screen.
 * - What outlives an image is in the worker's context (ib_image_ctx_t),
 *   made by ib_image_init() and kept by the caller: the switches from the
 *   front end, the PNG fast path's inflate buffer (within the worker's
 *   --max-memory) and the looked-up loaders and savers. Nothing here is
 *   static but libvips' own per-process state.
 */
#include "image.h"

#include "clock.h"
#include "encode.h"
#include "exif.h"
#include "fastjpeg.h"
#include "fastpath.h"
#include "fastpng.h"
#include "fileio.h"
#include "sniff.h"
#include "ops_vips.h"
#include "placeholder.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

static void keep_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data)
{
    (void)level;
    (void)data;
    vips_error(domain != NULL ? domain : "warning", "%s", message);
}

struct ib_image_ctx {
    ib_image_config_t cfg;
    /* NULL: no fast PNG. */
    ib_fastpng_ctx_t *fastpng;
    /* The fast JPEG's decode buffer, kept for the next (NULL: none). */
    ib_fastpath_spare_t *spare;
    /* Whether this libvips has each common loader (0 not looked up yet, 1
     * yes, 2 no): the lookup walks every class libvips has. */
    int loader_present[4];
    /* The last extension ib_image_can_save() was asked about, and its
     * answer (-1: none yet): nearly every image asks about the same one,
     * and the search goes through every saver. */
    char save_ext[32];
    int save_answer;
    /* The overlays, each decoded once for the run. */
    ib_ops_cache_t *ops;
};

struct ib_probe {
    ib_header_t h;
    /* A JPEG's first bytes, read by the probe for the decode: the render
     * uses them up, ib_image_probe_free() frees what is left. */
    ib_fastjpeg_bytes_t *jpeg;
};

ib_image_ctx_t *ib_image_init(const char *prog, const ib_image_config_t *cfg)
{
    /* A worker decodes image after image into buffers of like sizes.
     * Past glibc's adaptive threshold each would be a fresh mmap, its
     * pages faulted in and zeroed by the kernel every time; kept in the
     * heap they are reused (about half the system time on small JPEGs). */
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
    if (VIPS_INIT(prog))
        return NULL;
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    g_log_set_handler(NULL, G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, keep_warning, NULL);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, keep_warning, NULL);
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING, keep_warning, NULL);
    ib_image_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->cfg = *cfg;
    ctx->fastpng = ib_fastpng_ctx_new(cfg->max_memory);
    ctx->spare = ib_fastpath_spare_new(cfg->max_memory);
    ctx->save_answer = -1;
    ctx->ops = ib_ops_cache_new();
    return ctx;
}

void ib_image_ctx_free(ib_image_ctx_t *ctx)
{
    if (ctx != NULL) {
        ib_fastpng_ctx_free(ctx->fastpng);
        ib_fastpath_spare_free(ctx->spare);
        ib_ops_cache_free(ctx->ops);
    }
    free(ctx);
}

/* With the debug switch, says on stderr that path took a fast path and
 * how much it shrank on load, so tests can tell it ran. */
static void trace_fast(const ib_image_ctx_t *ctx, const char *path, const char *codec,
                       unsigned xshrink, unsigned yshrink)
{
    if (ctx->cfg.debug)
        fprintf(stderr, "imgbatch: %s: fast %s decode, shrunk %ux%u on load\n", path, codec,
                xshrink, yshrink);
}

void ib_image_take_warnings(const char *path, char *buf, size_t len)
{
    ib_error_t e;
    buf[0] = '\0';
    if (vips_error_buffer()[0] == '\0')
        return;
    ib_fail_vips(&e, IB_ERR_NONE, path);
    snprintf(buf, len, "%s", e.message);
}

/* PNGs smaller than this go to libvips (see fast_load). */
#define FASTPNG_MIN_PIXELS (1000 * 1000)

static VipsFailOn fail_on(const ib_render_t *r)
{
    return r->fail_on_warning ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_NONE;
}

/*
 * Walks a PNG's chunk headers (8 bytes each, the data skipped) and refuses
 * a chunk that claims more bytes than the file holds. libpng allocates a
 * text chunk's claimed size before reading it, so a few hundred bytes
 * whose iTXt says 2 GB would cost a worker 2 GB and seconds before failing.
 */
static int check_png_chunks(int fd, const char *path, ib_error_t *err)
{
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) == 0) {
        off_t at = 8, size = st.st_size;
        unsigned char h[8];
        while (at + 8 <= size && pread(fd, h, 8, at) == 8) {
            uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
            if ((off_t)len > size - at - 12) {
                rc = ib_fail(err, IB_ERR_DECODE,
                             "%s: PNG chunk %.4s claims %u bytes, but the file has %lld left", path,
                             (const char *)h + 4, len, (long long)(size - at - 12));
                break;
            }
            if (memcmp(h + 4, "IEND", 4) == 0)
                break;
            at += 12 + (off_t)len;
        }
    }
    return rc;
}

/*
 * The loader of the formats users have most of, told from their first
 * bytes as libvips tells them; NULL leaves it to libvips' search, which
 * asks every loader in turn, most of them opening the file to look.
 */
static const char *common_loader(ib_image_ctx_t *ctx, const unsigned char *head, size_t n)
{
    static const char *const known[][2] = {
        {"jpeg", "jpegload"}, {"png", "pngload"}, {"webp", "webpload"}, {"gif", "gifload"}};
    _Static_assert(sizeof known / sizeof known[0] ==
                       sizeof ctx->loader_present / sizeof ctx->loader_present[0],
                   "a presence flag per common loader");
    int *present = ctx->loader_present;
    const char *format = ib_sniff_magic(head, n);
    for (size_t i = 0; format != NULL && i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(format, known[i][0]) != 0)
            continue;
        if (present[i] == 0)
            present[i] = vips_type_find("VipsOperation", known[i][1]) != 0 ? 1 : 2;
        return present[i] == 1 ? known[i][1] : NULL;
    }
    return NULL;
}

static void release_bytes(ib_probe_t *probe)
{
    ib_fastjpeg_bytes_free(probe->jpeg);
    probe->jpeg = NULL;
}

void ib_image_probe_free(ib_probe_t *probe)
{
    if (probe == NULL)
        return;
    release_bytes(probe);
    free(probe);
}

const ib_header_t *ib_probe_header(const ib_probe_t *probe)
{
    return &probe->h;
}

/*
 * Opens path and reads its first bytes into head (IB_SNIFF_BYTES), so that
 * an unreadable file is told from an unknown format before libvips does:
 * its message would blame the format either way. The descriptor, or -1.
 */
static int read_head(const char *path, unsigned char *head, size_t *got, ib_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ib_fail(err, IB_ERR_READ, "open(\"%s\") failed: %s", path, strerror(errno));
    ssize_t n = ib_read_upto(fd, head, IB_SNIFF_BYTES);
    if (n <= 0) {
        int e = errno;
        close(fd);
        if (n < 0)
            return ib_fail(err, IB_ERR_READ, "read(\"%s\") failed: %s", path, strerror(e));
        return ib_fail(err, IB_ERR_DECODE, "%s: empty file", path);
    }
    *got = (size_t)n;
    return fd;
}

/* Why no loader here takes path, from its first bytes and its name. */
static int no_loader(const char *path, const unsigned char *head, size_t got, ib_error_t *err)
{
    vips_error_clear();
    /* Bytes of a known format that nothing here loads: unsupported.
     * Bytes of no known format under a name that says image: damaged.
     * Neither (notes.txt named on the command line): not an image at
     * all, which no decoder could have read. */
    const char *format = ib_sniff_magic(head, got);
    if (format != NULL)
        return ib_fail(err, IB_ERR_UNSUPPORTED, "%s: this libvips cannot read %s images", path,
                       format);
    if (!ib_sniff_image_name(path))
        return ib_fail(err, IB_ERR_UNSUPPORTED,
                       "%s: not an image: neither its bytes nor its name match a format "
                       "this libvips reads",
                       path);
    return ib_fail(err, IB_ERR_DECODE,
                   "%s: not an image: its bytes match no format this libvips reads", path);
}

/* The header of a common JPEG through libjpeg-turbo: libvips' loader
 * would cost a small one about a twentieth of its time. -1 leaves the
 * file to libvips. */
static int probe_fast_jpeg(int fd, ib_probe_t *probe)
{
    ib_fastjpeg_header_t hdr;
    if (ib_fastjpeg_probe(fd, &hdr, &probe->jpeg) != 0)
        return -1;
    snprintf(probe->h.loader, sizeof probe->h.loader, "jpeg");
    probe->h.width = hdr.width;
    probe->h.height = hdr.height;
    probe->h.orientation = hdr.orientation;
    probe->h.pages = 1;
    probe->h.bits = 8;
    probe->h.xres = hdr.xres;
    probe->h.yres = hdr.yres;
    return 0;
}

/* The loader's nickname without "load": libvips' search gives a type
 * name, common_loader() a nickname. */
static void name_loader(ib_probe_t *probe, const char *loader)
{
    GType type = g_type_from_name(loader);
    const char *nick = type != 0 ? vips_nickname_find(type) : NULL;
    snprintf(probe->h.loader, sizeof probe->h.loader, "%s", nick != NULL ? nick : loader);
    char *suffix = strstr(probe->h.loader, "load");
    if (suffix != NULL)
        *suffix = '\0';
}

/* The header through libvips' loader, the size as stored. */
static int probe_vips(const char *path, const char *loader, const ib_render_t *r, ib_probe_t *probe,
                      ib_error_t *err)
{
    /* The loader called by name: libvips' own open would search for it
     * again. A name with "[" goes through that open like the rest of the
     * pipeline, which reads "[...]" as load options, so that the probe and
     * the render read the same file. */
    VipsImage *im = NULL;
    if (strchr(path, '[') != NULL)
        im = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", fail_on(r),
                                      NULL);
    else if (vips_call(loader, path, &im, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", fail_on(r),
                       NULL) != 0)
        im = NULL;
    if (im == NULL)
        return ib_fail_vips(err, IB_ERR_DECODE, path);

    int orientation = ib_fastpath_orientation(im);
    probe->h.width = (unsigned)im->Xsize;
    probe->h.height = (unsigned)im->Ysize;
    probe->h.orientation = orientation;
    probe->h.has_alpha = vips_image_hasalpha(im);
    probe->h.pages = vips_image_get_n_pages(im);
    probe->h.xres = im->Xres;
    probe->h.yres = im->Yres;
    probe->h.bits = im->BandFmt == VIPS_FORMAT_USHORT  ? 16
                    : im->BandFmt == VIPS_FORMAT_UCHAR ? 8
                                                       : 32;
    g_object_unref(im);
    return 0;
}

/*
 * The capture date for {date}: EXIF DateTimeOriginal, else DateTime, else
 * the file's modification time. Read here, in the probe, so that a dry run
 * names the same paths as a real one. libvips' header read (no pixels)
 * finds the EXIF of every format it knows; it costs a small JPEG its fast
 * probe's saving, so only runs that use {date} pay it.
 */
static void read_date(const char *path, ib_probe_t *probe)
{
    const void *blob;
    size_t len;
    int64_t wall;
    VipsImage *im = vips_image_new_from_file(path, NULL);
    int found = im != NULL && vips_image_get_typeof(im, VIPS_META_EXIF_NAME) != 0 &&
                vips_image_get_blob(im, VIPS_META_EXIF_NAME, &blob, &len) == 0 &&
                ib_exif_date(blob, len, &wall) == 0;
    if (im != NULL)
        g_object_unref(im);
    vips_error_clear();
    struct stat st;
    if (found)
        probe->h.date = wall;
    else if (stat(path, &st) == 0)
        probe->h.date = ib_date_local((int64_t)st.st_mtim.tv_sec);
}

/* The size as displayed, the --max-pixels check, and the date if asked. */
static int probe_done(const char *path, const ib_render_t *r, ib_probe_t *probe, ib_error_t *err)
{
    if (r->want_date)
        read_date(path, probe);
    unsigned w = probe->h.width, h = probe->h.height;
    if (r->autorotate && probe->h.orientation >= 5) {
        probe->h.width = h;
        probe->h.height = w;
    }
    if (r->max_pixels > 0 && (uint64_t)w * h > r->max_pixels)
        return ib_fail(err, IB_ERR_TOO_LARGE,
                       "%s: %ux%u is %llu pixels, over the limit of %llu (--max-pixels)", path,
                       probe->h.width, probe->h.height, (unsigned long long)w * h,
                       (unsigned long long)r->max_pixels);
    return 0;
}

static int probe_file(ib_image_ctx_t *ctx, const char *path, const ib_render_t *r,
                      ib_probe_t *probe, ib_error_t *err)
{
    unsigned char head[IB_SNIFF_BYTES];
    size_t got = 0;
    vips_error_clear();
    int fd = read_head(path, head, &got, err);
    if (fd < 0)
        return -1;
    const char *loader = common_loader(ctx, head, got);
    if (loader == NULL)
        loader = vips_foreign_find_load(path);
    if (loader == NULL) {
        close(fd);
        return no_loader(path, head, got, err);
    }
    if (strcmp(loader, "jpegload") == 0 && ctx->cfg.fast_paths && strchr(path, '[') == NULL &&
        probe_fast_jpeg(fd, probe) == 0) {
        close(fd);
        return probe_done(path, r, probe, err);
    }
    name_loader(probe, loader);
    int bad = strcmp(probe->h.loader, "png") == 0 && check_png_chunks(fd, path, err) < 0;
    close(fd);
    if (bad || probe_vips(path, loader, r, probe, err) < 0)
        return -1;
    return probe_done(path, r, probe, err);
}

ib_probe_t *ib_image_probe(ib_image_ctx_t *ctx, const char *path, const ib_render_t *r,
                           ib_error_t *err)
{
    ib_probe_t *probe = calloc(1, sizeof *probe);
    if (probe == NULL) {
        ib_fail(err, IB_ERR_INTERNAL, "%s: calloc() failed: out of memory", path);
        return NULL;
    }
    if (probe_file(ctx, path, r, probe, err) < 0) {
        ib_image_probe_free(probe);
        return NULL;
    }
    return probe;
}

int ib_image_can_save(ib_image_ctx_t *ctx, const char *ext)
{
    /* libvips' own format has a target saver that only works on files. */
    if (strcasecmp(ext, "v") == 0 || strcasecmp(ext, "vips") == 0)
        return 0;
    if (ctx->save_answer >= 0 && strcmp(ext, ctx->save_ext) == 0)
        return ctx->save_answer;
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".%s", ext);
    const char *saver = vips_foreign_find_save_target(suffix);
    vips_error_clear();
    snprintf(ctx->save_ext, sizeof ctx->save_ext, "%s", ext);
    ctx->save_answer = saver != NULL;
    return ctx->save_answer;
}

void ib_image_same_ext(ib_image_ctx_t *ctx, const char *input_name, char *ext, size_t len)
{
    const char *slash = strrchr(input_name, '/');
    const char *base = slash != NULL ? slash + 1 : input_name;
    const char *dot = strrchr(base, '.');
    if (dot != NULL && dot != base && dot[1] != '\0' && strlen(dot + 1) < len &&
        ib_image_can_save(ctx, dot + 1)) {
        snprintf(ext, len, "%s", dot + 1);
        return;
    }
    snprintf(ext, len, "png");
}

int ib_image_target_size(const ib_probe_t *probe, const ib_render_t *r, unsigned *w, unsigned *h)
{
    /* Loading turns the image upright unless --no-autorotate. */
    return ib_chain_size(r->chain, probe->h.width, probe->h.height,
                         r->autorotate ? 1 : probe->h.orientation, w, h);
}

int ib_image_animates(const char *ext)
{
    return strcasecmp(ext, "gif") == 0 || strcasecmp(ext, "webp") == 0;
}

int ib_image_is_animation(const ib_probe_t *probe)
{
    return probe->h.pages > 1 &&
           (strcmp(probe->h.loader, "gif") == 0 || strcmp(probe->h.loader, "webp") == 0);
}

/* Whether this render keeps every frame of the input. */
static int keeps_frames(const ib_probe_t *probe, const ib_encode_t *enc)
{
    return ib_image_is_animation(probe) && ib_image_animates(enc->ext);
}

/*
 * The size to decode to: a leading resize's, or with no ops at all the
 * hint (the largest variant), else the image's own. Returns how many ops
 * that takes care of (0 or 1).
 */
static unsigned load_size(const ib_probe_t *probe, const ib_render_t *r, const ib_size_t *hint,
                          unsigned *tw, unsigned *th)
{
    const ib_chain_t *c = r->chain;
    *tw = probe->h.width;
    *th = probe->h.height;
    if (c->n > 0 && c->op[0].kind == IB_OP_RESIZE) {
        ib_geometry_apply(&c->op[0].geom, probe->h.width, probe->h.height, tw, th);
        return 1;
    }
    if (c->n == 0 && hint != NULL) {
        *tw = hint->width;
        *th = hint->height;
    }
    return 0;
}

/*
 * A new reference to the decoded, upright image, or NULL. A leading resize
 * is done here, with shrink-on-load; *used says how many ops that took.
 */
static VipsImage *load(const char *path, const ib_probe_t *probe, const ib_render_t *r,
                       const ib_size_t *hint, unsigned *used)
{
    unsigned tw, th;
    *used = load_size(probe, r, hint, &tw, &th);
    if (tw != probe->h.width || th != probe->h.height) {
        /* Orientation and colour handling in the same call; FORCE because
         * the geometry has already decided the exact size. */
        VipsImage *out;
        if (vips_thumbnail(path, &out, (int)tw, "height", (int)th, "size", VIPS_SIZE_FORCE,
                           "no_rotate", !r->autorotate, "fail_on", fail_on(r), NULL) != 0)
            return NULL;
        return out;
    }

    int rotate = r->autorotate && probe->h.orientation > 1;
    VipsImage *im = vips_image_new_from_file(path, "access",
                                             rotate ? VIPS_ACCESS_RANDOM : VIPS_ACCESS_SEQUENTIAL,
                                             "fail_on", fail_on(r), NULL);
    if (im == NULL || !rotate)
        return im;
    VipsImage *upright;
    int rc = vips_autorot(im, &upright, NULL);
    g_object_unref(im);
    return rc == 0 ? upright : NULL;
}

/* Runs the chain from op `first` on one image, sized to size if given. */
static VipsImage *finish(VipsImage *in, const ib_render_t *r, unsigned first, const ib_size_t *size,
                         ib_ops_env_t *env)
{
    VipsImage *out = ib_chain_apply(in, r->chain, first, env);
    if (out == NULL || size == NULL ||
        ((int)size->width == out->Xsize && (int)size->height == out->Ysize))
        return out;
    VipsImage *sized;
    int rc = vips_thumbnail_image(out, &sized, (int)size->width, "height", (int)size->height,
                                  "size", VIPS_SIZE_FORCE, "no_rotate", TRUE, NULL);
    g_object_unref(out);
    return rc == 0 ? sized : NULL;
}

/*
 * Every frame of an animation through the chain, joined back into one
 * tall image with the frame delays and loop count of the input.
 */
static VipsImage *animate(VipsImage *all, const ib_render_t *r, const ib_size_t *size,
                          ib_ops_env_t *env)
{
    int ph = vips_image_get_page_height(all);
    int n = all->Ysize / ph;
    VipsImage **frames = g_new0(VipsImage *, n);
    VipsImage *joined = NULL;
    const ib_chain_t *c = r->chain;
    int i;
    for (i = 0; i < n; i++) {
        VipsImage *frame;
        if (vips_extract_area(all, &frame, 0, i * ph, all->Xsize, ph, NULL) != 0)
            break;
        unsigned first = 0;
        if (c->n > 0 && c->op[0].kind == IB_OP_RESIZE) {
            unsigned w, h;
            ib_geometry_apply(&c->op[0].geom, (unsigned)all->Xsize, (unsigned)ph, &w, &h);
            VipsImage *small;
            int rc = vips_thumbnail_image(frame, &small, (int)w, "height", (int)h, "size",
                                          VIPS_SIZE_FORCE, "no_rotate", TRUE, NULL);
            g_object_unref(frame);
            if (rc != 0)
                break;
            frame = small;
            first = 1;
        }
        frames[i] = finish(frame, r, first, size, env);
        g_object_unref(frame);
        if (frames[i] == NULL)
            break;
        if (frames[i]->Xsize != frames[0]->Xsize || frames[i]->Ysize != frames[0]->Ysize) {
            vips_error("animation", "frame %d came out %dx%d, frame 0 %dx%d", i, frames[i]->Xsize,
                       frames[i]->Ysize, frames[0]->Xsize, frames[0]->Ysize);
            i++;
            break;
        }
    }
    if (i == n && vips_arrayjoin(frames, &joined, n, "across", 1, NULL) == 0) {
        vips_image_set_int(joined, VIPS_META_PAGE_HEIGHT, frames[0]->Ysize);
        int *delay, count;
        if (vips_image_get_typeof(all, "delay") &&
            vips_image_get_array_int(all, "delay", &delay, &count) == 0)
            vips_image_set_array_int(joined, "delay", delay, count);
        int loop;
        if (vips_image_get_typeof(all, "loop") && vips_image_get_int(all, "loop", &loop) == 0)
            vips_image_set_int(joined, "loop", loop);
    }
    for (int k = 0; k < n; k++)
        if (frames[k] != NULL)
            g_object_unref(frames[k]);
    g_free(frames);
    return joined;
}

/*
 * Resamples a fast decoder's output by hscale x vscale, which must give
 * exactly w x h. With alpha, in premultiplied form as vips_thumbnail
 * does, so transparent pixels lend no colour.
 */
static VipsImage *resample(VipsImage *raw, double hscale, double vscale, unsigned w, unsigned h)
{
    VipsImage *t[4] = {NULL};
    VipsImage *in = raw, *out = NULL;
    int alpha = vips_image_hasalpha(raw);
    if (alpha && vips_premultiply(raw, &t[0], NULL) != 0)
        goto done;
    if (alpha)
        in = t[0];
    if (vips_resize(in, &t[1], hscale, "vscale", vscale, NULL) != 0)
        goto done;
    if (alpha && (vips_unpremultiply(t[1], &t[2], NULL) != 0 ||
                  vips_cast(t[2], &t[3], VIPS_FORMAT_UCHAR, NULL) != 0))
        goto done;
    out = alpha ? t[3] : t[1];
    if (out->Xsize != (int)w || out->Ysize != (int)h)
        out = NULL;
    else
        g_object_ref(out);
done:
    for (int i = 0; i < 4; i++)
        if (t[i] != NULL)
            g_object_unref(t[i]);
    return out;
}

/*
 * The fast paths (fastjpeg.c, fastpng.c) in place of load(), for a JPEG
 * or PNG being shrunk: decode shrunk, resample to the exact size, turn
 * upright. NULL when none applies or it declines; load() then does the
 * work.
 */
static VipsImage *fast_load(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe,
                            const ib_render_t *r, const ib_encode_t *enc, const ib_size_t *hint,
                            unsigned *used)
{
    unsigned tw, th;
    int jpeg = strcmp(probe->h.loader, "jpeg") == 0, png = strcmp(probe->h.loader, "png") == 0;
    if (!ctx->cfg.fast_paths || !(jpeg || png) || enc->metadata == IB_META_KEEP)
        return NULL;
    unsigned ops = load_size(probe, r, hint, &tw, &th);
    if (tw >= probe->h.width || th >= probe->h.height)
        return NULL;
    /* A small PNG saves little, and its box grid, placed a little unlike
     * libvips' (fastpng.c), shows on charts shrunk to a few pixels. A PNG
     * needs at least a 2x2 box, and 8-bit samples. */
    if (png &&
        (ctx->fastpng == NULL || (uint64_t)probe->h.width * probe->h.height < FASTPNG_MIN_PIXELS ||
         probe->h.bits != 8 || probe->h.width < 4 * tw || probe->h.height < 4 * th))
        return NULL;

    /* The decoder sees the image as stored; the size wanted is upright. */
    int turned = r->autorotate && probe->h.orientation >= 5;
    unsigned sw = turned ? th : tw, sh = turned ? tw : th;
    unsigned kx = 0, ky = 0;
    VipsImage *raw =
        jpeg ? ib_fastjpeg_load(path, &probe->jpeg, sw, sh, r->fail_on_warning, ctx->spare, &kx)
             : ib_fastpng_load(ctx->fastpng, path, sw, sh, &kx, &ky);
    if (raw == NULL) {
        vips_error_clear();
        return NULL;
    }
    trace_fast(ctx, path, jpeg ? "jpeg" : "png", kx, jpeg ? kx : ky);
    /* The density the output gets, as from libvips' loader. */
    raw->Xres = probe->h.xres;
    raw->Yres = probe->h.yres;
    /* A JPEG's shrunk size is whole blocks: libvips resamples from it. A
     * PNG's box shrink counts partial boxes: resample by what is left of
     * the whole shrink, as libvips' resize does (see fastpng.c). */
    unsigned stored_w = turned ? probe->h.height : probe->h.width;
    unsigned stored_h = turned ? probe->h.width : probe->h.height;
    double hscale = jpeg ? (double)sw / raw->Xsize : (double)sw * kx / stored_w;
    double vscale = jpeg ? (double)sh / raw->Ysize : (double)sh * ky / stored_h;
    VipsImage *sized = resample(raw, hscale, vscale, sw, sh);
    g_object_unref(raw);
    if (sized == NULL) {
        vips_error_clear();
        return NULL;
    }
    if (r->autorotate && probe->h.orientation > 1) {
        VipsImage *tagged, *upright = NULL;
        if (vips_copy(sized, &tagged, NULL) == 0) {
            vips_image_set_int(tagged, VIPS_META_ORIENTATION, probe->h.orientation);
            if (vips_autorot(tagged, &upright, NULL) != 0)
                upright = NULL;
            g_object_unref(tagged);
        }
        g_object_unref(sized);
        if (upright == NULL)
            return NULL;
        sized = upright;
    }
    *used = ops;
    return sized;
}

/* The decoded input in the colour space the ops work in; *used as load(). */
static VipsImage *open_input(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe,
                             const ib_render_t *r, const ib_encode_t *enc, const ib_size_t *hint,
                             unsigned *used)
{
    VipsImage *loaded;
    *used = 0;
    int animated = keeps_frames(probe, enc);
    loaded = animated ? NULL : fast_load(ctx, path, probe, r, enc, hint, used);
    /* Under --max-memory an idle decode buffer is not held through a
     * decode that did not take it (see fastpath.h). */
    if (ctx->cfg.max_memory > 0)
        ib_fastpath_spare_drop(ctx->spare);
    /* Bytes the fast path did not use are not held through libvips' decode. */
    release_bytes(probe);
    if (loaded == NULL && animated)
        loaded = vips_image_new_from_file(path, "n", -1, "access", VIPS_ACCESS_RANDOM, "fail_on",
                                          fail_on(r), NULL);
    else if (loaded == NULL)
        loaded = load(path, probe, r, hint, used);
    if (loaded == NULL)
        return NULL;
    VipsImage *coloured = ib_encode_colour(loaded, enc);
    g_object_unref(loaded);
    return coloured;
}

/* What the ops need besides the pixels; stem is its buffer. */
static void ops_env(ib_image_ctx_t *ctx, const char *path, const ib_probe_t *probe,
                    const ib_render_t *r, const ib_encode_t *enc, char *stem, size_t len,
                    ib_ops_env_t *env)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    snprintf(stem, len, "%.*s", dot != NULL && dot != base ? (int)(dot - base) : (int)strlen(base),
             base);
    *env = (ib_ops_env_t){.cache = ctx->ops,
                          .font = r->font,
                          .text = {.stem = stem, .ext = enc->ext, .date = probe->h.date}};
}

/*
 * r->placeholder from the decoded input: the chain's result at its own
 * size, whatever sizes the variants then take, so that every output of
 * the input shares one placeholder. An animation gives its first frame.
 */
static int make_placeholder(VipsImage *input, const ib_render_t *r, unsigned used, int animated,
                            ib_ops_env_t *env)
{
    VipsImage *frame = input;
    if (animated) {
        int ph = vips_image_get_page_height(input);
        if (vips_extract_area(input, &frame, 0, 0, input->Xsize, ph, NULL) != 0)
            return -1;
    } else {
        g_object_ref(frame);
    }
    VipsImage *result = finish(frame, r, used, NULL, env);
    g_object_unref(frame);
    if (result == NULL)
        return -1;
    int rc = ib_placeholder_make(result, r->placeholder);
    g_object_unref(result);
    return rc;
}

/* The side a placeholder needs at most: its sample is no larger. */
#define PLACEHOLDER_DECODE_SIDE 512

/* The image's size fitted within the placeholder's sample, never larger. */
static ib_size_t placeholder_hint(const ib_probe_t *probe)
{
    unsigned w = probe->h.width, h = probe->h.height, side = w > h ? w : h;
    if (side <= PLACEHOLDER_DECODE_SIDE)
        return (ib_size_t){w, h};
    unsigned sw = (unsigned)((uint64_t)w * PLACEHOLDER_DECODE_SIDE / side);
    unsigned sh = (unsigned)((uint64_t)h * PLACEHOLDER_DECODE_SIDE / side);
    return (ib_size_t){sw > 0 ? sw : 1, sh > 0 ? sh : 1};
}

int ib_image_placeholder(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe,
                         const ib_render_t *r, ib_error_t *err)
{
    vips_error_clear();
    /* PNG: a format that never keeps frames, so an animation decodes only
     * its first; with no ops the decode shrinks on load to what the
     * placeholder reads. */
    ib_encode_t enc = {.ext = "png", .compression = -1};
    ib_size_t hint = placeholder_hint(probe);
    unsigned used;
    VipsImage *input = open_input(ctx, path, probe, r, &enc, &hint, &used);
    if (input == NULL)
        return ib_fail_vips(err, IB_ERR_DECODE, path);
    char stem[256];
    ib_ops_env_t env;
    ops_env(ctx, path, probe, r, &enc, stem, sizeof stem, &env);
    int rc = make_placeholder(input, r, used, 0, &env);
    g_object_unref(input);
    return rc == 0 ? 0 : ib_fail_vips(err, IB_ERR_DECODE, path);
}

/* Whether every output can be written here; *animated when one keeps
 * the input's frames. */
static int check_savers(ib_image_ctx_t *ctx, const char *path, const ib_probe_t *probe,
                        const ib_encode_t *enc, unsigned n, int *animated, ib_error_t *err)
{
    *animated = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!ib_image_can_save(ctx, enc[i].ext))
            return ib_fail(err, IB_ERR_UNSUPPORTED, "%s: this libvips cannot write .%s files", path,
                           enc[i].ext);
        *animated |= keeps_frames(probe, &enc[i]);
    }
    return 0;
}

/* The size to decode for: the largest variant (NULL without variants),
 * or, with a placeholder, at least what it samples (in *enough): a decode
 * shrunk for small variants would give it less, and another colour than a
 * re-run that decodes for the placeholder alone. */
static const ib_size_t *decode_size(const ib_probe_t *probe, const ib_render_t *r,
                                    const ib_size_t *sizes, unsigned n, ib_size_t *enough)
{
    const ib_size_t *largest = NULL;
    for (unsigned i = 0; sizes != NULL && i < n; i++)
        if (largest == NULL ||
            (uint64_t)sizes[i].width * sizes[i].height > (uint64_t)largest->width * largest->height)
            largest = &sizes[i];
    *enough = placeholder_hint(probe);
    if (r->placeholder != NULL && largest != NULL &&
        (uint64_t)enough->width * enough->height > (uint64_t)largest->width * largest->height)
        largest = enough;
    return largest;
}

/* *im replaced by a copy in memory (its reference dropped); -1 on failure,
 * with *im NULL. */
static int to_memory(VipsImage **im)
{
    VipsImage *mem = vips_image_copy_memory(*im);
    g_object_unref(*im);
    *im = mem;
    return mem != NULL ? 0 : -1;
}

int ib_image_render(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe, const ib_render_t *r,
                    const ib_encode_t *enc, const ib_size_t *sizes, unsigned n, ib_encoded_t *out,
                    ib_error_t *err)
{
    memset(out, 0, n * sizeof *out);
    vips_error_clear();
    int animated;
    if (check_savers(ctx, path, probe, enc, n, &animated, err) < 0)
        return -1;
    unsigned used;
    ib_ops_env_t env;
    ib_size_t enough;
    VipsImage *input =
        open_input(ctx, path, probe, r, enc, decode_size(probe, r, sizes, n, &enough), &used);
    /* Several outputs from one decode read it several times, and so does
     * a placeholder (a sequential decode can be read once). */
    int again = n > 1 || animated || r->placeholder != NULL;
    if (input == NULL || (again && to_memory(&input) < 0))
        return ib_fail_vips(err, IB_ERR_DECODE, path);
    int rc = 0;
    char stem[256];
    ops_env(ctx, path, probe, r, enc, stem, sizeof stem, &env);
    if (r->placeholder != NULL && make_placeholder(input, r, used, animated, &env) != 0)
        rc = ib_fail_vips(err, IB_ERR_DECODE, path);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const ib_size_t *size = sizes != NULL ? &sizes[i] : NULL;
        VipsImage *result = keeps_frames(probe, &enc[i]) ? animate(input, r, size, &env)
                                                         : finish(input, r, used, size, &env);
        if (!again && input != NULL) {
            /* The only reader: drop our reference so the pipeline streams. */
            g_object_unref(input);
            input = NULL;
        }
        /* Under a byte budget it is encoded again and again: decode and
         * resize only once. */
        if (result == NULL || (enc[i].max_bytes > 0 && to_memory(&result) < 0)) {
            rc = ib_fail_vips(err, IB_ERR_DECODE, path);
            break;
        }
        rc = ib_encode_within(result, &enc[i], &out[i], path, err);
        g_object_unref(result);
    }
    if (input != NULL)
        g_object_unref(input);
    if (rc != 0)
        for (unsigned i = 0; i < n; i++)
            ib_encoded_free(&out[i]);
    return rc;
}

void ib_encoded_free(ib_encoded_t *out)
{
    g_free(out->data);
    out->data = NULL;
    out->len = 0;
}
