/*
 * The PNG fast path. See fastpng.h.
 *
 * NOTES
 * - Why: libvips' own PNG path hands every full-size row through a
 *   pipeline of shrink operations; here each row is folded into a small
 *   accumulator as libpng hands it over, so only the shrunk image is ever
 *   held, and the final resample (Lanczos) runs on far fewer pixels.
 * - The whole factors leave at least twice the target on each axis, as
 *   libvips' resize does before its Lanczos step (its "gap" of 2). As
 *   there, a partial box at the edge becomes a whole one, filled out with
 *   copies of the edge pixels, and the caller resamples by what is left
 *   of the whole shrink, not by the shrunk image's size.
 * - Alignment: libvips' reduce centres its samples by the fractional
 *   size of the box-shrunk image, which a whole-pixel image cannot carry;
 *   fed ours, it would look up to half a box off. So half the filling
 *   goes before the first row and column, the rest after the last, and
 *   the samples land within half a source pixel of libvips' own. The
 *   boxes themselves then fall differently, which shows only on test
 *   charts shrunk to a few pixels; below a megapixel, or with less than a
 *   2x2 box, the saving is small and libvips does the work.
 * - Alpha: a box average weighted by alpha, as libvips' thumbnail does by
 *   premultiplying, so fully transparent pixels lend no colour to their
 *   neighbours.
 * - Cheapest correct settings: libpng still checks every chunk's CRC,
 *   which covers the compressed bytes; zlib's Adler-32 over the inflated
 *   bytes is skipped, since it can only catch what the CRC already has.
 * - Every row is decoded even when the bottom rows are dropped, so a
 *   truncated or damaged file fails here as it would in libvips.
 * - libpng reports errors by longjmp to png_jmpbuf; everything it
 *   allocated is freed by png_destroy_read_struct.
 */
#include "fastpng.h"

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastpath.h"

/* How many times the target a box-shrunk axis keeps (see NOTES). */
#define RESAMPLE_MARGIN 2

/* Smaller images go to libvips (see NOTES). */
#define MIN_PIXELS (1000 * 1000)

typedef struct {
    int warnings;
    const char *path;
} reader_t;

static void on_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)msg;
    ((reader_t *)png_get_error_ptr(png))->warnings++;
}

/* The largest whole factor leaving at least the margin times want. */
static unsigned box_factor(unsigned have, unsigned want)
{
    unsigned k = want > 0 ? have / (RESAMPLE_MARGIN * want) : 1;
    return k > 1 ? k : 1;
}

/*
 * Adds one decoded row into the sums of its output row. Inlined for each
 * band count, so the compiler unrolls the band loops.
 */
static inline __attribute__((always_inline)) void
accumulate_n(uint32_t *sum, const unsigned char *row, unsigned out_w, unsigned kx,
             const unsigned bands, const int alpha)
{
    for (unsigned ox = 0; ox < out_w; ox++, sum += bands) {
        const unsigned char *p = row + (size_t)ox * kx * bands;
        uint32_t s[4] = {0};
        for (unsigned i = 0; i < kx; i++, p += bands) {
            uint32_t a = alpha ? p[bands - 1] : 1;
            for (unsigned b = 0; b + (alpha ? 1 : 0) < bands; b++)
                s[b] += p[b] * a;
            if (alpha)
                s[bands - 1] += a;
        }
        for (unsigned b = 0; b < bands; b++)
            sum[b] += s[b];
    }
}

static void accumulate(uint32_t *sum, const unsigned char *row, unsigned out_w, unsigned kx,
                       unsigned bands)
{
    switch (bands) {
    case 1:
        accumulate_n(sum, row, out_w, kx, 1, 0);
        break;
    case 2:
        accumulate_n(sum, row, out_w, kx, 2, 1);
        break;
    case 3:
        accumulate_n(sum, row, out_w, kx, 3, 0);
        break;
    default:
        accumulate_n(sum, row, out_w, kx, 4, 1);
        break;
    }
}

/* Turns the sums of n samples into one output row, rounding to nearest. */
static void emit(unsigned char *out, const uint32_t *sum, unsigned out_w, unsigned bands,
                 uint32_t n, int alpha)
{
    for (unsigned ox = 0; ox < out_w; ox++, sum += bands, out += bands) {
        if (alpha) {
            uint32_t a = sum[bands - 1];
            for (unsigned b = 0; b + 1 < bands; b++)
                out[b] = a > 0 ? (unsigned char)((sum[b] + a / 2) / a) : 0;
            out[bands - 1] = (unsigned char)((a + n / 2) / n);
        } else {
            for (unsigned b = 0; b < bands; b++)
                out[b] = (unsigned char)((sum[b] + n / 2) / n);
        }
    }
}

static void free_pixels(VipsImage *im, void *pixels)
{
    (void)im;
    free(pixels);
}

VipsImage *ib_fastpng_load(const char *path, unsigned min_w, unsigned min_h, int strict,
                           unsigned *xshrink, unsigned *yshrink)
{
    FILE *fp = fopen(path, "rbe");
    if (fp == NULL)
        return NULL;
    reader_t rd = {0, path};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd, on_error, on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(fp);
        return NULL;
    }
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile row = NULL;
    uint32_t *volatile sum = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(row);
        free(sum);
        fclose(fp);
        return NULL;
    }
    png_init_io(png, fp);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, colour, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &colour, &interlace, NULL, NULL);
    if (depth > 8 || interlace != PNG_INTERLACE_NONE)
        png_longjmp(png, 1);
    /* The same expansions as the libvips loader: palettes to RGB, small
     * grey depths to 8 bits, a tRNS colour key to an alpha channel. */
    if (colour == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (colour == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    png_read_update_info(png, info);

    unsigned bands = png_get_channels(png, info);
    int alpha = bands == 2 || bands == 4;
    unsigned kx = box_factor(w, min_w), ky = box_factor(h, min_h);
    /* Small images gain nothing worth the box grid's small shift (see
     * NOTES): libvips does those. */
    if ((uint64_t)w * h < MIN_PIXELS || kx < 2 || ky < 2)
        png_longjmp(png, 1);
    /* Sums of 255 x 255 per sample must fit 32 bits: bigger boxes, for
     * thumbnails of a tiny fraction of a huge image, go to libvips. */
    if ((uint64_t)kx * ky > UINT32_MAX / (255 * 255))
        png_longjmp(png, 1);
    /* Whole boxes, the filling split between the two edges, where
     * libvips' reduce will look for it (see NOTES). */
    unsigned out_w = (w + kx - 1) / kx, out_h = (h + ky - 1) / ky;
    unsigned gx = (out_w * kx - w) / 2, gy = (out_h * ky - h) / 2;
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t out_stride = (size_t)out_w * bands;
    size_t lead = (size_t)gx * bands, padded = (size_t)out_w * kx * bands;
    if (rowbytes != (size_t)w * bands)
        png_longjmp(png, 1);

    pixels = malloc(out_stride * out_h);
    row = malloc(padded);
    sum = calloc(out_stride, sizeof *sum);
    if (pixels == NULL || row == NULL || sum == NULL)
        png_longjmp(png, 1);
    for (png_uint_32 y = 0; y < h; y++) {
        png_read_row(png, row + lead, NULL);
        for (size_t at = 0; at < lead; at += bands)
            memcpy(row + at, row + lead, bands);
        for (size_t at = lead + rowbytes; at < padded; at += bands)
            memcpy(row + at, row + lead + rowbytes - bands, bands);
        /* The first and last rows stand in for the rows the first and
         * last boxes lack. */
        unsigned times = (y == 0 ? 1 + gy : 1) + (y + 1 == h ? out_h * ky - gy - h : 0);
        for (unsigned i = 0; i < times; i++)
            accumulate(sum, row, out_w, kx, bands);
        unsigned at = y + gy;
        if (at % ky == ky - 1 || y + 1 == h) {
            emit(pixels + (size_t)(at / ky) * out_stride, sum, out_w, bands, kx * ky, alpha);
            memset(sum, 0, out_stride * sizeof *sum);
        }
    }
    png_read_end(png, NULL);
    if (strict && rd.warnings > 0)
        png_longjmp(png, 1);

    VipsImage *im = vips_image_new_from_memory(pixels, out_stride * out_h, (int)out_w, (int)out_h,
                                               (int)bands, VIPS_FORMAT_UCHAR);
    if (im == NULL)
        png_longjmp(png, 1);
    g_signal_connect(im, "postclose", G_CALLBACK(free_pixels), pixels);
    im->Type = bands <= 2 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
    png_charp name;
    png_bytep profile;
    png_uint_32 profile_len;
    int compression;
    if (png_get_iCCP(png, info, &name, &compression, &profile, &profile_len))
        vips_image_set_blob_copy(im, VIPS_META_ICC_NAME, profile, profile_len);
    ib_fastpath_trace(path, "png", kx, ky);
    *xshrink = kx;
    *yshrink = ky;

    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    free(sum);
    fclose(fp);
    return im;
}
