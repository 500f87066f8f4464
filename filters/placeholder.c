/*
 * Web placeholders: dominant colour, BlurHash, LQIP (placeholder.h).
 *
 * NOTES
 * - libvips does every resize, colour conversion and encode; the pixel
 *   loops here are only the histogram and the BlurHash transform, on
 *   copies of at most 512 and 64 pixels a side.
 * - im is read once, top to bottom, into a point sample in memory; the
 *   rest works from that. A sequential decode of a file can be passed
 *   as it is.
 * - Everything is computed from one sRGB, 8-bit, 3-band version of the
 *   image with alpha flattened on white: a placeholder is painted before
 *   the image on a page whose background is unknown, and white is the
 *   common one. The three then describe the same picture.
 * - The dominant colour comes from the point sample (every k-th pixel),
 *   not a resized copy: averaging mixes red and blue speckles into a
 *   purple that is nowhere in the picture, while a sample keeps the
 *   proportions of the colours that are. The BlurHash and the LQIP are
 *   Lanczos-resized from the same sample: at 512 px, each of the LQIP's
 *   pixels still averages some 250 samples.
 * - The BlurHash follows Wolt's reference encoder (github.com/woltapp/
 *   blurhash, the C and TypeScript ones): basis cos(pi i x / w) at the
 *   pixels' left edges, the largest |AC| quantised, base83. Any decoder
 *   reads it; tests/test_placeholder.c checks it against the reference's
 *   output. One consequence of that basis: a solid image has small odd AC
 *   terms (about 2 / width of its DC), which the reference gives too.
 * - Nothing here is static but constant tables: callers may use it from
 *   any thread.
 */
#include "placeholder.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The sides of the point sample and of the copy the BlurHash reads. */
#define SAMPLE_SIDE 512
#define BLURHASH_SIDE 64

static const char base83_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "abcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/* ---- BlurHash ---- */

static char *base83_put(unsigned value, unsigned digits, char *dst)
{
    for (unsigned i = digits; i-- > 0;) {
        dst[i] = base83_digits[value % 83];
        value /= 83;
    }
    return dst + digits;
}

static double srgb_to_linear(unsigned v)
{
    double c = v / 255.0;
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

/* Truncation after + 0.5, as the reference rounds. */
static unsigned linear_to_srgb(double v)
{
    double c = v < 0 ? 0 : v > 1 ? 1 : v;
    if (c <= 0.0031308)
        return (unsigned)(c * 12.92 * 255 + 0.5);
    return (unsigned)((1.055 * pow(c, 1 / 2.4) - 0.055) * 255 + 0.5);
}

/* One component: the mean of the linear pixels times its cosine basis. */
static void blurhash_factor(const unsigned char *rgb, unsigned w, unsigned h, size_t stride,
                            unsigned i, unsigned j, const double *linear, double f[3])
{
    double norm = (i == 0 && j == 0) ? 1 : 2, sum[3] = {0, 0, 0};
    for (unsigned y = 0; y < h; y++) {
        const unsigned char *row = rgb + y * stride;
        double cy = cos(M_PI * j * y / h);
        for (unsigned x = 0; x < w; x++) {
            double basis = norm * cos(M_PI * i * x / w) * cy;
            for (int c = 0; c < 3; c++)
                sum[c] += basis * linear[row[3 * x + c]];
        }
    }
    for (int c = 0; c < 3; c++)
        f[c] = sum[c] / ((double)w * h);
}

/* 0..18 for v in -1..1, square-root spaced so small terms keep detail. */
static unsigned quantise_ac(double v)
{
    double q = floor(copysign(sqrt(fabs(v)), v) * 9 + 9.5);
    return q < 0 ? 0 : q > 18 ? 18 : (unsigned)q;
}

int ib_placeholder_blurhash(const unsigned char *rgb, unsigned w, unsigned h, size_t stride,
                            unsigned cx, unsigned cy, char *out, size_t cap)
{
    if (cx < 1 || cx > 9 || cy < 1 || cy > 9 || w == 0 || h == 0 || cap < 4 + 2 * cx * cy + 1)
        return -1;
    double linear[256], f[81][3];
    for (unsigned v = 0; v < 256; v++)
        linear[v] = srgb_to_linear(v);
    double max_ac = 0;
    for (unsigned j = 0; j < cy; j++)
        for (unsigned i = 0; i < cx; i++) {
            double *fi = f[j * cx + i];
            blurhash_factor(rgb, w, h, stride, i, j, linear, fi);
            for (int c = 0; c < 3 && (i | j) != 0; c++)
                max_ac = fmax(max_ac, fabs(fi[c]));
        }

    char *p = base83_put((cx - 1) + (cy - 1) * 9, 1, out);
    /* The AC terms are sent relative to their largest magnitude, itself
     * sent in 83 steps: a flat image keeps the resolution for its little
     * detail. Without AC terms the scale is unused. */
    double q_max = cx * cy > 1 ? floor(max_ac * 166 - 0.5) : 0;
    q_max = q_max < 0 ? 0 : q_max > 82 ? 82 : q_max;
    double scale = (q_max + 1) / 166;
    p = base83_put((unsigned)q_max, 1, p);
    p = base83_put(linear_to_srgb(f[0][0]) << 16 | linear_to_srgb(f[0][1]) << 8 |
                       linear_to_srgb(f[0][2]),
                   4, p);
    for (unsigned k = 1; k < cx * cy; k++)
        p = base83_put(quantise_ac(f[k][0] / scale) * 19 * 19 + quantise_ac(f[k][1] / scale) * 19 +
                           quantise_ac(f[k][2] / scale),
                       2, p);
    *p = '\0';
    return (int)(p - out);
}

/* ---- dominant colour ---- */

void ib_placeholder_dominant(const unsigned char *rgb, unsigned w, unsigned h, size_t stride,
                             unsigned char colour[3])
{
    /* 8 levels a channel: coarse enough that a photo's shades of one
     * colour share a cell, fine enough that red and orange do not. The
     * cell's mean, not its centre, so a solid image keeps its colour. */
    struct {
        uint64_t n, sum[3];
    } cell[512];
    memset(cell, 0, sizeof cell);
    for (unsigned y = 0; y < h; y++) {
        const unsigned char *px = rgb + y * stride;
        for (unsigned x = 0; x < w; x++, px += 3) {
            unsigned k = (unsigned)(px[0] >> 5) << 6 | (unsigned)(px[1] >> 5) << 3 | px[2] >> 5;
            cell[k].n++;
            for (int c = 0; c < 3; c++)
                cell[k].sum[c] += px[c];
        }
    }
    unsigned best = 0;
    for (unsigned k = 1; k < 512; k++)
        if (cell[k].n > cell[best].n)
            best = k;
    for (int c = 0; c < 3; c++)
        colour[c] = cell[best].n == 0
                        ? 0
                        : (unsigned char)((cell[best].sum[c] + cell[best].n / 2) / cell[best].n);
}

/* ---- images ---- */

/* sRGB, 8 bits, 3 bands, alpha flattened on white; *out lives in scope. */
static int to_srgb8(VipsObject *scope, VipsImage *in, VipsImage **out)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 4);
    /* colourspace takes 16-bit, grey and float images to 8-bit sRGB,
     * alpha scaled with them, so flatten's 8-bit white is right. */
    if (vips_colourspace(in, &t[0], VIPS_INTERPRETATION_sRGB, NULL) != 0)
        return -1;
    VipsImage *im = t[0];
    if (vips_image_hasalpha(im)) {
        VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
        int rc = vips_flatten(im, &t[1], "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (rc != 0)
            return -1;
        im = t[1];
    }
    if (vips_cast(im, &t[2], VIPS_FORMAT_UCHAR, NULL) != 0)
        return -1;
    im = t[2];
    if (im->Bands > 3 && vips_extract_band(im, &t[3], 0, "n", 3, NULL) != 0)
        return -1;
    *out = im->Bands > 3 ? t[3] : im;
    if ((*out)->Bands != 3) {
        vips_error("placeholder", "%d bands after conversion to sRGB", (*out)->Bands);
        return -1;
    }
    return 0;
}

/*
 * The one read of im (sRGB8): a point sample, every k-th pixel of every
 * k-th line, at most SAMPLE_SIDE pixels a side, in memory. One branch
 * streams: a box-shrunk copy beside it would ask for the lines in another
 * order, which a sequential decode cannot give twice.
 */
static VipsImage *read_once(VipsObject *scope, VipsImage *im)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);
    int longest = im->Xsize > im->Ysize ? im->Xsize : im->Ysize;
    int k = (longest + SAMPLE_SIDE - 1) / SAMPLE_SIDE;
    /* A very long, thin image is sampled less across than along. */
    int kx = k < im->Xsize ? k : im->Xsize, ky = k < im->Ysize ? k : im->Ysize;
    VipsImage *sample = im;
    if (k > 1) {
        if (vips_subsample(im, &t[0], kx, ky, NULL) != 0)
            return NULL;
        sample = t[0];
    }
    t[1] = vips_image_copy_memory(sample);
    return t[1];
}

/* in resized (Lanczos) to at most side pixels a side, in memory. */
static int fit(VipsObject *scope, VipsImage *in, int side, VipsImage **out)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);
    int longest = in->Xsize > in->Ysize ? in->Xsize : in->Ysize;
    VipsImage *sized = in;
    if (longest > side) {
        if (vips_resize(in, &t[0], (double)side / longest, NULL) != 0)
            return -1;
        sized = t[0];
    }
    t[1] = vips_image_copy_memory(sized);
    *out = t[1];
    return t[1] != NULL ? 0 : -1;
}

/* The dominant colour of a point sample (sRGB8, in memory) as "#rrggbb". */
static void dominant_of(VipsImage *sample, char *out, size_t len)
{
    unsigned char c[3];
    ib_placeholder_dominant((const unsigned char *)VIPS_IMAGE_ADDR(sample, 0, 0),
                            (unsigned)sample->Xsize, (unsigned)sample->Ysize,
                            (size_t)VIPS_IMAGE_SIZEOF_LINE(sample), c);
    snprintf(out, len, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/*
 * The BlurHash of the sample resized to BLURHASH_SIDE square, whatever
 * its shape: the hash's terms are relative to the sides, and the reference
 * basis, sampled at the pixels' edges, gives a flat image terms of 2 / side
 * of its colour, which would swamp a 1-pixel side. 3x4 components when the
 * image stands upright, 4x3 otherwise, so more follow the longer side;
 * both are 28 characters.
 */
static int blurhash_of(VipsObject *scope, VipsImage *sample, int portrait, char *out, size_t len)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);
    if (vips_resize(sample, &t[0], (double)BLURHASH_SIDE / sample->Xsize, "vscale",
                    (double)BLURHASH_SIDE / sample->Ysize, NULL) != 0 ||
        (t[1] = vips_image_copy_memory(t[0])) == NULL)
        return -1;
    if (ib_placeholder_blurhash((const unsigned char *)VIPS_IMAGE_ADDR(t[1], 0, 0),
                                (unsigned)t[1]->Xsize, (unsigned)t[1]->Ysize,
                                (size_t)VIPS_IMAGE_SIZEOF_LINE(t[1]), portrait ? 3 : 4,
                                portrait ? 4 : 3, out, len) < 0) {
        vips_error("placeholder", "no room for a BlurHash in %zu bytes", len);
        return -1;
    }
    return 0;
}

/* ---- LQIP ---- */

/* im encoded at quality q, metadata dropped; g_free() the bytes. */
static void *encode_lqip(VipsImage *im, int webp, int q, size_t *len)
{
    void *buf = NULL;
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 && VIPS_MINOR_VERSION >= 15)
    int rc = webp
                 ? vips_webpsave_buffer(im, &buf, len, "Q", q, "keep", VIPS_FOREIGN_KEEP_NONE, NULL)
                 : vips_jpegsave_buffer(im, &buf, len, "Q", q, "optimize_coding", TRUE, "keep",
                                        VIPS_FOREIGN_KEEP_NONE, NULL);
#else
    int rc = webp ? vips_webpsave_buffer(im, &buf, len, "Q", q, "strip", TRUE, NULL)
                  : vips_jpegsave_buffer(im, &buf, len, "Q", q, "optimize_coding", TRUE, "strip",
                                         TRUE, NULL);
#endif
    return rc == 0 ? buf : NULL;
}

/* The data: URI of the bytes, if it is shorter than the limit. */
static int lqip_uri(const void *buf, size_t n, int webp, char *out, size_t cap)
{
    gchar *b64 = g_base64_encode(buf, n);
    int len = snprintf(out, cap, "data:image/%s;base64,%s", webp ? "webp" : "jpeg", b64);
    g_free(b64);
    return len > 0 && (size_t)len < cap && len < IB_PLACEHOLDER_LQIP_MAX ? 0 : -1;
}

/*
 * The LQIP in one format: 32 px at a quality where a small image still
 * reads, then lower qualities, then smaller sizes, until the URI fits. An
 * 8 px copy at the lowest quality takes under 300 bytes of WebP even of
 * pure noise (some 400 of JPEG), so it always does. 0, or -1 if the encoder failed.
 */
static int lqip_in(VipsObject *scope, VipsImage *small, int webp, char *out, size_t cap)
{
    static const int sides[] = {IB_PLACEHOLDER_LQIP_SIDE, 24, 16, 8};
    static const int qualities[] = {50, 35, 20, 10};
    for (size_t s = 0; s < sizeof sides / sizeof sides[0]; s++) {
        VipsImage *im;
        if (fit(scope, small, sides[s], &im) != 0)
            return -1;
        for (size_t i = 0; i < sizeof qualities / sizeof qualities[0]; i++) {
            size_t n;
            void *buf = encode_lqip(im, webp, qualities[i], &n);
            if (buf == NULL)
                return -1;
            int fits = lqip_uri(buf, n, webp, out, cap) == 0;
            g_free(buf);
            if (fits)
                return 0;
        }
    }
    vips_error("placeholder", "no %s LQIP under %d bytes", webp ? "WebP" : "JPEG",
               IB_PLACEHOLDER_LQIP_MAX);
    return -1;
}

/* WebP: at 32 px a little smaller than JPEG (370 bytes against 400 for
 * samples/landscape.jpg at quality 50), where JPEG's headers and tables
 * are much of the file, and every current browser shows it. JPEG if this
 * libvips cannot write WebP. */
static int lqip_of(VipsObject *scope, VipsImage *small, char *out, size_t cap)
{
    if (lqip_in(scope, small, 1, out, cap) == 0)
        return 0;
    vips_error_clear();
    return lqip_in(scope, small, 0, out, cap);
}

/* ---- all three ---- */

int ib_placeholder_make(VipsImage *im, ib_placeholder_t *out)
{
    memset(out, 0, sizeof *out);
    /* Every intermediate is local to scope: one unref frees them all. */
    VipsObject *scope = VIPS_OBJECT(vips_image_new());
    VipsImage *srgb, *sample, *small;
    int rc = -1;
    if (to_srgb8(scope, im, &srgb) == 0 && (sample = read_once(scope, srgb)) != NULL &&
        blurhash_of(scope, sample, im->Ysize > im->Xsize, out->blurhash, sizeof out->blurhash) ==
            0 &&
        fit(scope, sample, IB_PLACEHOLDER_LQIP_SIDE, &small) == 0 &&
        lqip_of(scope, small, out->lqip, sizeof out->lqip) == 0) {
        dominant_of(sample, out->color, sizeof out->color);
        rc = 0;
    }
    g_object_unref(scope);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}
