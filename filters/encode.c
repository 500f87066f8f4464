/*
 * Colour, metadata and encoding. See encode.h.
 *
 * NOTES
 * - Colour: outputs that hold 8 bits get sRGB pixels tagged with an sRGB
 *   profile, whatever profile the input carried: browsers and thumbnails
 *   viewers that ignore profiles then still show the right colours.
 *   16-bit PNG/TIFF outputs keep their input's profile and depth.
 * - A broken embedded profile is not a reason to lose the image: the
 *   pixels go out unconverted.
 */
#include "encode.h"

#include "exif.h"

#include "sniff.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * libheif without an HEVC codec (the bundled libvips, -Dlibvips=bundled)
 * still opens a HEIC file, then fails deep in the decode or the save,
 * after lines of noise. The line that says so, or NULL.
 */
static const char *missing_codec(const char *buf, size_t *len)
{
    static const char *const says[] = {"has not been built in",
                                       "heifsave: Unsupported compression"};
    for (size_t i = 0; i < sizeof says / sizeof says[0]; i++) {
        const char *hit = strstr(buf, says[i]);
        if (hit == NULL)
            continue;
        const char *start = hit;
        while (start > buf && start[-1] != '\n')
            start--;
        *len = strcspn(start, "\n");
        return start;
    }
    return NULL;
}

int ib_fail_vips(ib_error_t *err, ib_error_kind_t kind, const char *path)
{
    size_t n;
    /* Failures only: warnings (IB_ERR_NONE) are passed on as they are. */
    const char *codec = kind != IB_ERR_NONE ? missing_codec(vips_error_buffer(), &n) : NULL;
    if (codec != NULL) {
        int rc = ib_fail(err, IB_ERR_UNSUPPORTED, "%s: this libvips lacks the codec it needs: %.*s",
                         path, (int)n, codec);
        vips_error_clear();
        return rc;
    }
    char why[900];
    size_t o = 0;
    int gap = 0;
    for (const char *p = vips_error_buffer(); *p != '\0' && o + 3 < sizeof why; p++) {
        if (*p == '\n') {
            gap = 1;
            continue;
        }
        if (gap && o > 0) {
            why[o++] = ';';
            why[o++] = ' ';
        }
        gap = 0;
        why[o++] = *p;
    }
    why[o] = '\0';
    vips_error_clear();
    return ib_fail(err, kind, "%s: %s", path, o > 0 ? why : "libvips gave no reason");
}

static int ext_in(const char *ext, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(ext, list[i]) == 0)
            return 1;
    return 0;
}

#define EXT_IN(ext, ...)                                                                           \
    ext_in((ext), (const char *const[]){__VA_ARGS__},                                              \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

int ib_encode_is_8bit(const char *ext)
{
    return EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif", "webp", "gif", "avif", "heic", "heif");
}

static int has_alpha_channel(const char *ext)
{
    return !EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif", "ppm", "pgm", "pnm", "pbm");
}

int ib_image_lossless(const char *ext)
{
    if (EXT_IN(ext, "png", "tif", "tiff"))
        return IB_LOSSLESS_ALWAYS;
    if (EXT_IN(ext, "webp", "avif", "heic", "heif", "jxl", "jp2"))
        return IB_LOSSLESS_MODE;
    return 0;
}

int ib_image_default_quality(const char *ext)
{
    if (EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif"))
        return 85;
    if (EXT_IN(ext, "webp"))
        return 80;
    if (EXT_IN(ext, "avif", "heic", "heif"))
        return 50;
    if (EXT_IN(ext, "jxl", "jp2"))
        return 75;
    return 0;
}

static int is_srgb(VipsImage *in)
{
    const void *data;
    size_t len;
    if (vips_image_get_blob(in, VIPS_META_ICC_NAME, &data, &len) != 0) {
        vips_error_clear();
        return 0;
    }
    return ib_icc_is_srgb(data, len);
}

VipsImage *ib_encode_colour(VipsImage *in, const ib_encode_t *enc)
{
    VipsImage *out = NULL;
    int cmyk = in->Type == VIPS_INTERPRETATION_CMYK;
    int tagged = vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0;
    int eight = ib_encode_is_8bit(enc->ext) || in->BandFmt == VIPS_FORMAT_UCHAR;

    if (cmyk) {
        if (vips_icc_transform(in, &out, "srgb", "embedded", TRUE, "input_profile", "cmyk",
                               "intent", VIPS_INTENT_RELATIVE, NULL) == 0)
            return out;
        vips_error_clear();
        return vips_colourspace(in, &out, VIPS_INTERPRETATION_sRGB, NULL) ? NULL : out;
    }
    if (tagged && eight && enc->metadata != IB_META_KEEP && !is_srgb(in)) {
        if (vips_icc_transform(in, &out, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_RELATIVE,
                               "depth", 8, NULL) == 0)
            return out;
        vips_error_clear();
    }
    g_object_ref(in);
    return in;
}

/* Metadata the default policy strips. The EXIF thumbnail too: libvips'
 * JPEG writer puts it back into the fresh EXIF block it makes, and it
 * shows the original picture. */
static int stripped_by_default(const char *name)
{
    return strncmp(name, "exif-", 5) == 0 || strcmp(name, VIPS_META_XMP_NAME) == 0 ||
           strcmp(name, VIPS_META_IPTC_NAME) == 0 || strcmp(name, VIPS_META_PHOTOSHOP_NAME) == 0 ||
           strcmp(name, VIPS_META_ORIENTATION) == 0 || strcmp(name, "jpeg-thumbnail-data") == 0;
}

/* Whether in holds metadata the default policy strips. */
static int has_stripped_fields(VipsImage *in)
{
    gchar **names = vips_image_get_fields(in);
    int found = 0;
    for (int i = 0; !found && names[i] != NULL; i++)
        found = stripped_by_default(names[i]);
    g_strfreev(names);
    return found;
}

/* Metadata of any kind: what --strip removes. */
static int is_metadata(const char *name)
{
    return stripped_by_default(name) || strcmp(name, VIPS_META_ICC_NAME) == 0 ||
           strstr(name, "comment") != NULL;
}

int ib_encode_policy_keeps_all(VipsImage *in, ib_metadata_t policy, int no_gps)
{
    gchar **names = vips_image_get_fields(in);
    int dropped = 0;
    for (int i = 0; !dropped && names[i] != NULL; i++)
        dropped = policy == IB_META_STRIP     ? is_metadata(names[i])
                  : policy == IB_META_DEFAULT ? stripped_by_default(names[i])
                                              : no_gps && strncmp(names[i], "exif-ifd3-", 10) == 0;
    g_strfreev(names);
    return !dropped;
}

/*
 * The GPS position out of kept EXIF: the block loses its GPS IFD
 * (exif.c), and the fields libvips parsed from it (exif-ifd3-*, libexif's
 * number for the GPS IFD) go too, or its savers would write them back.
 * libvips 8.15's keep option cannot drop one IFD and keep the others.
 */
static void strip_gps(VipsImage *out)
{
    const void *blob;
    size_t len;
    if (vips_image_get_typeof(out, VIPS_META_EXIF_NAME) != 0 &&
        vips_image_get_blob(out, VIPS_META_EXIF_NAME, &blob, &len) == 0) {
        unsigned char *copy = g_memdup2(blob, len);
        if (ib_exif_strip_gps(copy, len) > 0)
            vips_image_set_blob_copy(out, VIPS_META_EXIF_NAME, copy, len);
        g_free(copy);
    }
    gchar **names = vips_image_get_fields(out);
    for (int i = 0; names[i] != NULL; i++)
        if (strncmp(names[i], "exif-ifd3-", 10) == 0)
            vips_image_remove(out, names[i]);
    g_strfreev(names);
}

/* in, or a copy of it, whose metadata follows the policy; new reference
 * or NULL. */
static VipsImage *apply_metadata(VipsImage *in, ib_metadata_t policy, int no_gps)
{
    VipsImage *out;
    /* The fast decoders' images carry nothing to strip: no copy. */
    if (policy == IB_META_DEFAULT && !has_stripped_fields(in)) {
        g_object_ref(in);
        return in;
    }
    if (vips_copy(in, &out, NULL) != 0)
        return NULL;
    if (policy == IB_META_DEFAULT) {
        /* Collect the names first: removing while mapping is not safe. */
        gchar **names = vips_image_get_fields(out);
        for (int i = 0; names[i] != NULL; i++)
            if (stripped_by_default(names[i]))
                vips_image_remove(out, names[i]);
        g_strfreev(names);
    } else if (policy == IB_META_KEEP) {
        /* The pixels are upright now; a kept orientation tag would turn
         * them again in every viewer. */
        vips_image_set_int(out, VIPS_META_ORIENTATION, 1);
        if (no_gps)
            strip_gps(out);
    }
    return out;
}

/* Appends "name" or "name=value" (value >= 0) to a saver option list. */
static void add_option(char *opts, size_t len, const char *name, int value)
{
    size_t n = strlen(opts);
    if (value >= 0)
        snprintf(opts + n, len - n, "%s%s=%d", n ? "," : "", name, value);
    else
        snprintf(opts + n, len - n, "%s%s", n ? "," : "", name);
}

/* The palette, effort and chroma options, where the saver has them. */
static void encoder_controls(const ib_encode_t *enc, char *opts, size_t len)
{
    const char *ext = enc->ext;
    static const char *const subsample[] = {"auto", "on", "off"};
    if (enc->palette && EXT_IN(ext, "png"))
        add_option(opts, len, "palette", -1);
    if (enc->palette && EXT_IN(ext, "png", "gif"))
        add_option(opts, len, "bitdepth", enc->palette_bits > 0 ? enc->palette_bits : 8);
    if (enc->palette && enc->dither >= 0 && EXT_IN(ext, "png", "gif")) {
        size_t n = strlen(opts);
        snprintf(opts + n, len - n, ",dither=%g", enc->dither);
    }
    /* Each saver's own scale: WebP 0-6, AVIF/HEIF 0-9, JPEG XL 1-9. */
    if (enc->effort >= 0 && EXT_IN(ext, "webp"))
        add_option(opts, len, "effort", enc->effort < 6 ? enc->effort : 6);
    if (enc->effort >= 0 && EXT_IN(ext, "avif", "heic", "heif"))
        add_option(opts, len, "effort", enc->effort);
    if (enc->effort >= 0 && EXT_IN(ext, "jxl"))
        add_option(opts, len, "effort", enc->effort > 0 ? enc->effort : 1);
    if (enc->subsample != IB_SUBSAMPLE_AUTO &&
        EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif", "avif", "heic", "heif")) {
        size_t n = strlen(opts);
        snprintf(opts + n, len - n, "%ssubsample-mode=%s", n ? "," : "", subsample[enc->subsample]);
    }
}

static void saver_options(const ib_encode_t *enc, char *opts, size_t len)
{
    const char *ext = enc->ext;
    opts[0] = '\0';
    int q = enc->quality > 0 ? enc->quality : ib_image_default_quality(ext);
    if (enc->lossless && ib_image_lossless(ext) == IB_LOSSLESS_MODE)
        add_option(opts, len, "lossless", -1);
    else if (q > 0)
        add_option(opts, len, "Q", q);
    if (enc->interlace && EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif", "png"))
        add_option(opts, len, "interlace", -1);
    /* Huffman tables made for the image, as sharp writes by default:
     * 2% fewer bytes at 1600 px for about 5 ms an image, and the same
     * pixels. */
    if (EXT_IN(ext, "jpg", "jpeg", "jpe", "jfif"))
        add_option(opts, len, "optimize_coding", -1);
    if (enc->compression >= 0 && EXT_IN(ext, "png"))
        add_option(opts, len, "compression", enc->compression);
    encoder_controls(enc, opts, len);
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 && VIPS_MINOR_VERSION >= 15)
    /* From libvips 8.15 the savers write what they are told to keep, and
     * make a fresh EXIF block unless told otherwise: the default policy
     * names what it keeps. Before, apply_metadata() alone decides. */
    if (enc->metadata == IB_META_DEFAULT)
        add_option(opts, len, "keep=icc:other", -1);
#endif
    if (enc->metadata == IB_META_STRIP)
        add_option(opts, len, "strip", -1);
}

/*
 * libpng before 1.6.40 writes an eXIf chunk twice, before the image data
 * and again after it (pnggroup/libpng#480), and libvips' PNG writer meets
 * that whenever EXIF is kept. PNG allows one eXIf: the repeats go. A file
 * that is not a well-formed run of chunks is left as it is.
 */
static void drop_repeated_exif(unsigned char *png, size_t *len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int seen = 0;
    if (*len < sizeof sig || memcmp(png, sig, sizeof sig) != 0)
        return;
    for (size_t i = sizeof sig; i + 12 <= *len;) {
        size_t n =
            (size_t)png[i] << 24 | (size_t)png[i + 1] << 16 | (size_t)png[i + 2] << 8 | png[i + 3];
        if (n > *len - i - 12)
            return;
        size_t chunk = n + 12;
        if (memcmp(png + i + 4, "eXIf", 4) == 0 && seen++ > 0) {
            memmove(png + i, png + i + chunk, *len - i - chunk);
            *len -= chunk;
            continue;
        }
        i += chunk;
    }
}

int ib_encode(VipsImage *in, const ib_encode_t *enc, ib_encoded_t *out, const char *path,
              ib_error_t *err)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 3);
    int rc = -1;

    if (!has_alpha_channel(enc->ext) && vips_image_hasalpha(in)) {
        double white = in->BandFmt == VIPS_FORMAT_USHORT ? 65535.0 : 255.0;
        VipsArrayDouble *bg = vips_array_double_newv(1, white);
        int frc = vips_flatten(in, &t[0], "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (frc != 0)
            goto vips_failed;
        in = t[0];
    }
    t[1] = apply_metadata(in, enc->metadata, enc->strip_gps);
    if (t[1] == NULL)
        goto vips_failed;
    in = t[1];

    char opts[256], suffix[300];
    saver_options(enc, opts, sizeof opts);
    snprintf(suffix, sizeof suffix, ".%s%s%s%s", enc->ext, opts[0] ? "[" : "", opts,
             opts[0] ? "]" : "");
    VipsTarget *target = vips_target_new_to_memory();
    if (vips_image_write_to_target(in, suffix, target, NULL) != 0) {
        g_object_unref(target);
        goto vips_failed;
    }
    VipsBlob *blob = NULL;
    g_object_get(target, "blob", &blob, NULL);
    size_t len = 0;
    const void *data = blob != NULL ? vips_blob_get(blob, &len) : NULL;
    if (data != NULL && len > 0) {
        out->data = g_memdup2(data, len);
        out->len = len;
        if (enc->metadata == IB_META_KEEP && EXT_IN(enc->ext, "png"))
            drop_repeated_exif(out->data, &out->len);
        out->width = (unsigned)in->Xsize;
        out->height = (unsigned)vips_image_get_page_height(in);
        int q = enc->quality > 0 ? enc->quality : ib_image_default_quality(enc->ext);
        out->quality = (enc->lossless && ib_image_lossless(enc->ext)) ||
                               ib_image_default_quality(enc->ext) == 0
                           ? 0
                           : q;
        out->palette_bits = enc->palette && EXT_IN(enc->ext, "png", "gif")
                                ? (enc->palette_bits > 0 ? enc->palette_bits : 8)
                                : 0;
        rc = 0;
    } else {
        ib_fail(err, IB_ERR_INTERNAL, "%s: the encoder produced no data", path);
    }
    if (blob != NULL)
        vips_area_unref(VIPS_AREA(blob));
    g_object_unref(target);
    g_object_unref(base);
    return rc;

vips_failed:
    g_object_unref(base);
    return ib_fail_vips(err, IB_ERR_DECODE, path);
}

int ib_image_has_budget(const char *ext, int palette)
{
    return ib_image_default_quality(ext) > 0 || (palette && EXT_IN(ext, "png", "gif"));
}

/* Encodes at quality q (a palette depth, for palettes); 1 when it fits. */
static int try_encode(VipsImage *in, ib_encode_t *e, int q, ib_encoded_t *out, const char *path,
                      ib_error_t *err)
{
    if (e->palette && EXT_IN(e->ext, "png", "gif"))
        e->palette_bits = q;
    else
        e->quality = q;
    ib_encoded_free(out);
    if (ib_encode(in, e, out, path, err) < 0)
        return -1;
    return out->len <= e->max_bytes;
}

/* The palette depths to try, most colours first. */
static const int depths[] = {8, 4, 2, 1};

int ib_encode_within(VipsImage *in, const ib_encode_t *enc, ib_encoded_t *out, const char *path,
                     ib_error_t *err)
{
    if (enc->max_bytes == 0)
        return ib_encode(in, enc, out, path, err);
    if (!ib_image_has_budget(enc->ext, enc->palette))
        return ib_fail(err, IB_ERR_BUDGET,
                       "%s: .%s has no quality to trade for --max-bytes (use a lossy -F, or "
                       "--palette for PNG and GIF)",
                       path, enc->ext);
    ib_encode_t e = *enc;
    int fits;
    if (e.palette && EXT_IN(e.ext, "png", "gif")) {
        /* Fewer colours, smaller file: the first depth that fits. */
        fits = 0;
        for (size_t i = 0; i < sizeof depths / sizeof depths[0] && fits == 0; i++)
            if (enc->palette_bits == 0 || depths[i] <= enc->palette_bits)
                fits = try_encode(in, &e, depths[i], out, path, err);
    } else {
        /* The highest quality that fits: the top first, then bisection. */
        int hi = enc->quality > 0 ? enc->quality : 100, lo = 1, best = 0;
        fits = try_encode(in, &e, hi, out, path, err);
        while (fits == 0 && lo < hi) {
            int mid = (lo + hi) / 2;
            int ok = try_encode(in, &e, mid, out, path, err);
            if (ok < 0)
                return -1;
            if (ok)
                best = mid, lo = mid + 1;
            else
                hi = mid;
        }
        if (fits == 0 && best > 0)
            fits = try_encode(in, &e, best, out, path, err);
    }
    if (fits > 0)
        return 0;
    if (fits == 0)
        ib_fail(err, IB_ERR_BUDGET, "%s: %zu bytes as .%s at its %s, over --max-bytes %llu", path,
                out->len, enc->ext,
                e.palette && EXT_IN(e.ext, "png", "gif") ? "fewest colours" : "lowest quality",
                (unsigned long long)enc->max_bytes);
    ib_encoded_free(out);
    return -1;
}
