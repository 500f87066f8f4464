/*
 * libpng's decode and the plain box shrink, for fuzz_fastpng. See pngref.h.
 *
 * NOTES
 * - libpng is set up as libvips' PNG loader sets it up (libvips 8.14,
 *   vipspng.c): png_set_expand() for palettes, low depths and tRNS, and no
 *   check of sRGB profiles. Warnings do not fail the decode; errors do.
 * - The shrink is deliberately naive, so that it shares no shortcut with
 *   the code it checks: 64-bit sums, one output pixel at a time.
 */
#include "pngref.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p;
    size_t n, at;
} source_t;

static void read_bytes(png_structp png, png_bytep out, size_t n)
{
    source_t *src = png_get_io_ptr(png);
    if (n > src->n - src->at)
        png_error(png, "read past the end");
    memcpy(out, src->p + src->at, n);
    src->at += n;
}

static void on_error(png_structp png, png_const_charp message)
{
    if (getenv("IB_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "libpng: error: %s\n", message);
    png_longjmp(png, 1);
}

/* Silent, unless IB_FUZZ_VERBOSE is set, to say why a mismatch arose. */
static void on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    if (getenv("IB_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "libpng: warning: %s\n", message);
}

/* After png_read_info: the expansions, the size, the profile. */
static void set_up(png_structp png, png_infop info, ib_pngref_t *ref)
{
    png_set_expand(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    ref->w = png_get_image_width(png, info);
    ref->h = png_get_image_height(png, info);
    ref->bands = png_get_channels(png, info);
    png_charp name;
    int method;
    png_bytep profile;
    png_uint_32 profile_len;
    ref->has_icc = png_get_iCCP(png, info, &name, &method, &profile, &profile_len) != 0;
}

void ib_pngref_decode(const unsigned char *png_bytes, size_t len, ib_pngref_t *ref)
{
    memset(ref, 0, sizeof *ref);
    source_t src = {png_bytes, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (info == NULL)
        abort();
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        ref->pixels = NULL;
        return;
    }
#ifdef PNG_SKIP_sRGB_CHECK_PROFILE
    png_set_option(png, PNG_SKIP_sRGB_CHECK_PROFILE, PNG_OPTION_ON);
#endif
    png_set_read_fn(png, &src, read_bytes);
    png_read_info(png, info);
    set_up(png, info, ref);
    size_t stride = png_get_rowbytes(png, info);
    pixels = malloc(stride * ref->h);
    rows = malloc(sizeof *rows * ref->h);
    if (pixels == NULL || rows == NULL)
        png_error(png, "out of memory");
    for (unsigned y = 0; y < ref->h; y++)
        rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    /* 16-bit files keep 16-bit rows: the fast path must decline them. */
    ref->pixels = stride == (size_t)ref->w * ref->bands ? pixels : NULL;
    if (ref->pixels == NULL)
        free(pixels);
}

void ib_pngref_free(ib_pngref_t *ref)
{
    free(ref->pixels);
    ref->pixels = NULL;
}

static unsigned clamp(long v, unsigned n)
{
    return v < 0 ? 0 : v >= (long)n ? n - 1 : (unsigned)v;
}

/* One output pixel: the box's average, weighted by alpha when there is one. */
static void box(const ib_pngref_t *ref, unsigned ox, unsigned oy, unsigned kx, unsigned ky,
                unsigned gx, unsigned gy, unsigned char *out)
{
    unsigned bands = ref->bands;
    int alpha = bands == 2 || bands == 4;
    uint64_t sum[4] = {0};
    for (unsigned j = 0; j < ky; j++)
        for (unsigned i = 0; i < kx; i++) {
            unsigned x = clamp((long)ox * kx + i - gx, ref->w);
            unsigned y = clamp((long)oy * ky + j - gy, ref->h);
            const unsigned char *px = ref->pixels + ((size_t)y * ref->w + x) * bands;
            unsigned a = alpha ? px[bands - 1] : 1;
            for (unsigned b = 0; b < bands; b++)
                sum[b] += alpha && b == bands - 1 ? a : (uint64_t)px[b] * a;
        }
    uint64_t n = (uint64_t)kx * ky, a = alpha ? sum[bands - 1] : n;
    for (unsigned b = 0; b < bands; b++) {
        if (alpha && b == bands - 1)
            out[b] = (unsigned char)((a + n / 2) / n);
        else
            out[b] = a > 0 ? (unsigned char)((sum[b] + a / 2) / a) : 0;
    }
}

unsigned char *ib_pngref_shrink(const ib_pngref_t *ref, unsigned kx, unsigned ky)
{
    unsigned out_w = (ref->w + kx - 1) / kx, out_h = (ref->h + ky - 1) / ky;
    unsigned gx = (out_w * kx - ref->w) / 2, gy = (out_h * ky - ref->h) / 2;
    unsigned char *out = malloc((size_t)out_w * out_h * ref->bands);
    if (out == NULL)
        return NULL;
    for (unsigned oy = 0; oy < out_h; oy++)
        for (unsigned ox = 0; ox < out_w; ox++)
            box(ref, ox, oy, kx, ky, gx, gy, out + ((size_t)oy * out_w + ox) * ref->bands);
    return out;
}
