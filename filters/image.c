/*
 * The libvips side of the pipeline.
 *
 * NOTES
 * - Workers run libvips with one thread and no operation cache: the pool
 *   gives the parallelism, and a cache only grows in a process that never
 *   sees the same image twice.
 * - Loading is strict by default (fail on the first warning, as sharp does):
 *   a truncated JPEG must fail, not come out with a grey band.
 * - Intermediate images live in a local array of one parent object, so every
 *   exit path frees them with one unref.
 * - libvips and the codecs below it report warnings through GLib; they are
 *   added to libvips' error buffer instead of the terminal, so that they
 *   reach the file's result and not the user's screen.
 */
#include "image.h"

#include "ops_vips.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <vips/vips.h>

static void keep_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data)
{
    (void)level;
    (void)data;
    vips_error(domain != NULL ? domain : "warning", "%s", message);
}

int ib_image_init(const char *prog)
{
    if (VIPS_INIT(prog))
        return -1;
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    g_log_set_handler(NULL, G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, keep_warning, NULL);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, keep_warning, NULL);
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING, keep_warning, NULL);
    return 0;
}

const char *ib_image_vips_version(void)
{
    return vips_version_string();
}

/* libvips' error text as one line: "a; b; c". */
static void take_vips_error(char *buf, size_t len)
{
    const char *e = vips_error_buffer();
    size_t o = 0;
    int gap = 0;
    for (const char *p = e; *p != '\0' && o + 3 < len; p++) {
        if (*p == '\n') {
            gap = 1;
            continue;
        }
        if (gap && o > 0) {
            buf[o++] = ';';
            buf[o++] = ' ';
        }
        gap = 0;
        buf[o++] = *p;
    }
    buf[o] = '\0';
    if (o == 0)
        snprintf(buf, len, "libvips gave no reason");
    vips_error_clear();
}

static int fail_vips(ib_error_t *err, ib_error_kind_t kind, const char *path)
{
    char why[900];
    take_vips_error(why, sizeof why);
    return ib_fail(err, kind, "%s: %s", path, why);
}

static VipsFailOn fail_on(const ib_render_t *r)
{
    return r->fail_on_warning ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR;
}

int ib_image_probe(const char *path, const ib_render_t *r, ib_probe_t *probe, ib_error_t *err)
{
    memset(probe, 0, sizeof *probe);
    vips_error_clear();

    /* Tell an unreadable file from an unknown format before libvips does:
     * its message would blame the format either way. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ib_fail(err, IB_ERR_READ, "open(\"%s\") failed: %s", path, strerror(errno));
    char byte;
    ssize_t n = read(fd, &byte, 1);
    int read_errno = errno;
    close(fd);
    if (n < 0)
        return ib_fail(err, IB_ERR_READ, "read(\"%s\") failed: %s", path, strerror(read_errno));
    if (n == 0)
        return ib_fail(err, IB_ERR_DECODE, "%s: empty file", path);

    const char *loader = vips_foreign_find_load(path);
    if (loader == NULL) {
        vips_error_clear();
        return ib_fail(err, IB_ERR_UNSUPPORTED, "%s: not an image format this libvips can read",
                       path);
    }
    const char *nick = vips_nickname_find(g_type_from_name(loader));
    snprintf(probe->loader, sizeof probe->loader, "%s", nick != NULL ? nick : loader);
    char *suffix = strstr(probe->loader, "load");
    if (suffix != NULL)
        *suffix = '\0';

    VipsImage *im = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                             fail_on(r), NULL);
    if (im == NULL)
        return fail_vips(err, IB_ERR_DECODE, path);

    unsigned w = (unsigned)im->Xsize, h = (unsigned)im->Ysize;
    int orientation = 1;
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &orientation) != 0)
        orientation = 1;
    if (orientation < 1 || orientation > 8)
        orientation = 1;
    probe->orientation = orientation;
    probe->has_alpha = vips_image_hasalpha(im);
    g_object_unref(im);

    if (r->autorotate && orientation >= 5) {
        unsigned t = w;
        w = h;
        h = t;
    }
    probe->width = w;
    probe->height = h;
    if (r->max_pixels > 0 && (uint64_t)w * h > r->max_pixels)
        return ib_fail(err, IB_ERR_TOO_LARGE,
                       "%s: %ux%u is %llu pixels, over the limit of %llu (--max-pixels)", path, w,
                       h, (unsigned long long)w * h, (unsigned long long)r->max_pixels);
    return 0;
}

int ib_image_can_save(const char *ext)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".%s", ext);
    const char *saver = vips_foreign_find_save_target(suffix);
    vips_error_clear();
    return saver != NULL;
}

void ib_image_same_ext(const char *input_name, char *ext, size_t len)
{
    const char *slash = strrchr(input_name, '/');
    const char *base = slash != NULL ? slash + 1 : input_name;
    const char *dot = strrchr(base, '.');
    if (dot != NULL && dot != base && dot[1] != '\0' && strlen(dot + 1) < len &&
        ib_image_can_save(dot + 1)) {
        snprintf(ext, len, "%s", dot + 1);
        return;
    }
    snprintf(ext, len, "png");
}

int ib_image_target_size(const ib_probe_t *probe, const ib_render_t *r, unsigned *w, unsigned *h)
{
    return ib_chain_size(r->chain, probe->width, probe->height, w, h);
}

static int ext_has_alpha(const char *ext)
{
    static const char *opaque[] = {"jpg", "jpeg", "jpe", "jfif", "ppm", "pgm", "pnm", "pbm"};
    for (size_t i = 0; i < sizeof opaque / sizeof opaque[0]; i++)
        if (strcasecmp(ext, opaque[i]) == 0)
            return 0;
    return 1;
}

static int ext_is_lossy(const char *ext)
{
    static const char *lossy[] = {"jpg",  "jpeg", "jpe",  "jfif", "webp",
                                  "avif", "heic", "heif", "jxl",  "jp2"};
    for (size_t i = 0; i < sizeof lossy / sizeof lossy[0]; i++)
        if (strcasecmp(ext, lossy[i]) == 0)
            return 1;
    return 0;
}

/*
 * A new reference to the decoded, upright image, or NULL. A leading resize
 * is done here, with shrink-on-load; *used says how many ops that took.
 * With no ops at all, hint (if not NULL) is the largest size wanted.
 */
static VipsImage *load(const char *path, const ib_probe_t *probe, const ib_render_t *r,
                       const ib_size_t *hint, unsigned *used)
{
    const ib_chain_t *c = r->chain;
    unsigned tw = probe->width, th = probe->height;
    *used = 0;
    if (c->n > 0 && c->op[0].kind == IB_OP_RESIZE) {
        ib_geometry_apply(&c->op[0].geom, probe->width, probe->height, &tw, &th);
        *used = 1;
    } else if (c->n == 0 && hint != NULL) {
        tw = hint->width;
        th = hint->height;
    }
    if (tw != probe->width || th != probe->height) {
        /* Orientation and colour handling in the same call; FORCE because
         * the geometry has already decided the exact size. */
        VipsImage *out;
        if (vips_thumbnail(path, &out, (int)tw, "height", (int)th, "size", VIPS_SIZE_FORCE,
                           "no_rotate", !r->autorotate, "fail_on", fail_on(r), NULL) != 0)
            return NULL;
        return out;
    }

    int rotate = r->autorotate && probe->orientation > 1;
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

static int encode(VipsImage *in, const ib_encode_t *enc, ib_encoded_t *out, const char *path,
                  ib_error_t *err)
{
    VipsImage *flat = NULL;
    if (!ext_has_alpha(enc->ext) && vips_image_hasalpha(in)) {
        double white =
            (in->Type == VIPS_INTERPRETATION_RGB16 || in->Type == VIPS_INTERPRETATION_GREY16)
                ? 65535.0
                : 255.0;
        VipsArrayDouble *bg = vips_array_double_newv(1, white);
        int frc = vips_flatten(in, &flat, "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (frc != 0)
            return fail_vips(err, IB_ERR_DECODE, path);
        in = flat;
    }

    char suffix[64];
    if (enc->quality > 0 && ext_is_lossy(enc->ext))
        snprintf(suffix, sizeof suffix, ".%s[Q=%d]", enc->ext, enc->quality);
    else
        snprintf(suffix, sizeof suffix, ".%s", enc->ext);

    VipsTarget *target = vips_target_new_to_memory();
    int rc = vips_image_write_to_target(in, suffix, target, NULL);
    VipsBlob *blob = NULL;
    if (rc == 0)
        g_object_get(target, "blob", &blob, NULL);
    size_t len = 0;
    const void *data = blob != NULL ? vips_blob_get(blob, &len) : NULL;
    if (rc != 0)
        fail_vips(err, IB_ERR_DECODE, path);
    else if (data == NULL || len == 0)
        rc = ib_fail(err, IB_ERR_INTERNAL, "%s: the encoder produced no data", path);
    else {
        out->data = g_memdup2(data, len);
        out->len = len;
        out->width = (unsigned)in->Xsize;
        out->height = (unsigned)in->Ysize;
    }
    if (blob != NULL)
        vips_area_unref(VIPS_AREA(blob));
    g_object_unref(target);
    if (flat != NULL)
        g_object_unref(flat);
    return rc == 0 ? 0 : -1;
}

int ib_image_render(const char *path, const ib_probe_t *probe, const ib_render_t *r,
                    const ib_encode_t *enc, const ib_size_t *sizes, unsigned n, ib_encoded_t *out,
                    ib_error_t *err)
{
    memset(out, 0, n * sizeof *out);
    vips_error_clear();
    if (!ib_image_can_save(enc->ext))
        return ib_fail(err, IB_ERR_UNSUPPORTED, "%s: this libvips cannot write .%s files", path,
                       enc->ext);

    /* Decode no more pixels than the largest variant needs. */
    const ib_size_t *largest = NULL;
    for (unsigned i = 0; sizes != NULL && i < n; i++)
        if (largest == NULL ||
            (uint64_t)sizes[i].width * sizes[i].height > (uint64_t)largest->width * largest->height)
            largest = &sizes[i];

    unsigned used;
    VipsImage *loaded = load(path, probe, r, largest, &used);
    if (loaded == NULL)
        return fail_vips(err, IB_ERR_DECODE, path);
    VipsImage *result = ib_chain_apply(loaded, r->chain, used);
    g_object_unref(loaded);
    if (result == NULL)
        return fail_vips(err, IB_ERR_DECODE, path);
    if (sizes == NULL) {
        int rc = encode(result, enc, out, path, err);
        g_object_unref(result);
        return rc;
    }

    /* Several reads of one decode: keep it in memory. */
    VipsImage *base = n > 1 ? vips_image_copy_memory(result) : result;
    if (n > 1)
        g_object_unref(result);
    if (base == NULL)
        return fail_vips(err, IB_ERR_DECODE, path);
    int rc = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        VipsImage *sized = NULL;
        if ((int)sizes[i].width == base->Xsize && (int)sizes[i].height == base->Ysize) {
            sized = base;
            g_object_ref(sized);
        } else if (vips_thumbnail_image(base, &sized, (int)sizes[i].width, "height",
                                        (int)sizes[i].height, "size", VIPS_SIZE_FORCE, "no_rotate",
                                        TRUE, NULL) != 0) {
            rc = fail_vips(err, IB_ERR_DECODE, path);
            break;
        }
        rc = encode(sized, enc, &out[i], path, err);
        g_object_unref(sized);
    }
    g_object_unref(base);
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
