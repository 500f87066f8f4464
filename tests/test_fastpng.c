/*
 * The PNG fast path's decoder (filters/fastpng.c) against an independent
 * reckoning of what it must give. PNGs of every colour type and depth it
 * takes, with and without transparency, through each row filter, are
 * written with libpng from known samples; the expected box-shrunk image is
 * computed here from those samples directly (per output pixel, over its
 * box with the edges copied outward), and must match exactly. Files it
 * must decline (interlaced, 16-bit, damaged, truncated, a palette index
 * past the palette) must give NULL. The inflate buffer is held to the
 * --max-memory budget, also under the address-space limit a worker has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <png.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fastpng.h"

/* One context for the tests, as a worker has one (group fixture). */
static ib_fastpng_ctx_t *ctx;

typedef struct {
    unsigned colour, depth;
    int trns;      /* a tRNS chunk: palette alphas or a colour key */
    int text;      /* 1: a tEXt chunk "Comment" = "made here"; 2: the same as zTXt */
    int filter;    /* PNG_FILTER_* for every row, or PNG_ALL_FILTERS */
    int interlace; /* PNG_INTERLACE_* */
    unsigned n_palette;
} kind_t;

typedef struct {
    unsigned w, h, channels;
    unsigned *samples; /* w * h * channels values below 2^depth */
    png_color palette[256];
    png_byte palette_alpha[256];
    png_color_16 key;
} source_t;

static unsigned channels_of(unsigned colour)
{
    return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;
}

/* Samples with smooth areas, edges and noise, and the colour key in use. */
static void make_source(source_t *s, const kind_t *k, unsigned w, unsigned h)
{
    unsigned max = (1u << k->depth) - 1;
    s->w = w;
    s->h = h;
    s->channels = channels_of(k->colour);
    s->samples = malloc(sizeof *s->samples * w * h * s->channels);
    assert_non_null(s->samples);
    unsigned seed = 12345;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            for (unsigned c = 0; c < s->channels; c++) {
                seed = seed * 1103515245u + 12345u;
                unsigned v =
                    ((x * (c + 1) + y * 3) / 7 + ((x / 13 + y / 11) % 2) * 90 + (seed >> 16) % 9) %
                    (max + 1);
                s->samples[((size_t)y * w + x) * s->channels + c] = v;
            }
    unsigned n = k->n_palette;
    for (unsigned i = 0; i < n; i++) {
        s->palette[i].red = (png_byte)(i * 37);
        s->palette[i].green = (png_byte)(255 - i * 11);
        s->palette[i].blue = (png_byte)(i * 5 + 60);
        s->palette_alpha[i] = (png_byte)(i % 3 == 0 ? 0 : i * 29);
    }
    /* The key is a value that occurs: the first pixel's. */
    s->key.gray = (png_uint_16)s->samples[0];
    s->key.red = (png_uint_16)s->samples[0];
    s->key.green = (png_uint_16)(s->channels > 1 ? s->samples[1] : 0);
    s->key.blue = (png_uint_16)(s->channels > 2 ? s->samples[2] : 0);
}

static void write_png(const char *path, const kind_t *k, const source_t *s)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, s->w, s->h, (int)k->depth, (int)k->colour, k->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, 0, k->filter);
    /* The decline test wants indices past the palette written as they are. */
    png_set_check_for_invalid_index(png, 0);
    if (k->colour == PNG_COLOR_TYPE_PALETTE)
        png_set_PLTE(png, info, s->palette, (int)k->n_palette);
    if (k->trns && k->colour == PNG_COLOR_TYPE_PALETTE)
        png_set_tRNS(png, info, s->palette_alpha, (int)k->n_palette, NULL);
    else if (k->trns)
        png_set_tRNS(png, info, NULL, 0, &s->key);
    if (k->text) {
        png_text t = {k->text == 1 ? PNG_TEXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_zTXt,
                      "Comment",
                      "made here",
                      9,
                      0,
                      NULL,
                      NULL};
        png_set_text(png, info, &t, 1);
    }
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    unsigned bits = s->channels * k->depth;
    size_t rowbytes = ((size_t)s->w * bits + 7) / 8;
    png_bytep row = malloc(rowbytes);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (unsigned y = 0; y < s->h; y++) {
            memset(row, 0, rowbytes);
            for (unsigned i = 0; i < s->w * s->channels; i++) {
                unsigned v = s->samples[(size_t)y * s->w * s->channels + i];
                if (k->depth == 16) {
                    row[2 * i] = (png_byte)(v >> 8);
                    row[2 * i + 1] = (png_byte)v;
                } else {
                    size_t bit = (size_t)i * k->depth;
                    row[bit / 8] |= (png_byte)(v << (8 - k->depth - bit % 8));
                }
            }
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

/* One pixel as the decoder must hand it on (8-bit, expansions done);
 * returns the band count. */
static unsigned expected_pixel(const kind_t *k, const source_t *s, unsigned x, unsigned y,
                               unsigned out[4])
{
    const unsigned *v = &s->samples[((size_t)y * s->w + x) * s->channels];
    unsigned max = (1u << k->depth) - 1;
    switch (k->colour) {
    case PNG_COLOR_TYPE_GRAY:
        out[0] = v[0] * 255 / max;
        out[1] = v[0] == s->key.gray ? 0 : 255;
        return k->trns ? 2 : 1;
    case PNG_COLOR_TYPE_PALETTE:
        out[0] = s->palette[v[0]].red;
        out[1] = s->palette[v[0]].green;
        out[2] = s->palette[v[0]].blue;
        out[3] = s->palette_alpha[v[0]];
        return k->trns ? 4 : 3;
    case PNG_COLOR_TYPE_RGB:
        memcpy(out, v, 3 * sizeof *out);
        out[3] = v[0] == s->key.red && v[1] == s->key.green && v[2] == s->key.blue ? 0 : 255;
        return k->trns ? 4 : 3;
    default:
        memcpy(out, v, s->channels * sizeof *out);
        return s->channels;
    }
}

static unsigned clamp(long v, unsigned n)
{
    return v < 0 ? 0 : v >= (long)n ? n - 1 : (unsigned)v;
}

/* Decodes path and compares with the box shrink of s by kx x ky. */
static void check_decode(const char *path, const kind_t *k, const source_t *s, unsigned kx,
                         unsigned ky)
{
    unsigned gotx = 0, goty = 0;
    /* min sizes that make the decoder pick exactly kx x ky */
    VipsImage *im = ib_fastpng_load(ctx, path, s->w / (2 * kx), s->h / (2 * ky), &gotx, &goty);
    if (im == NULL)
        fail_msg("colour %u depth %u trns %d filter %d: declined", k->colour, k->depth, k->trns,
                 k->filter);
    assert_int_equal(gotx, kx);
    assert_int_equal(goty, ky);
    unsigned out_w = (s->w + kx - 1) / kx, out_h = (s->h + ky - 1) / ky;
    unsigned gx = (out_w * kx - s->w) / 2, gy = (out_h * ky - s->h) / 2, px[4];
    unsigned bands = expected_pixel(k, s, 0, 0, px);
    assert_int_equal(im->Xsize, out_w);
    assert_int_equal(im->Ysize, out_h);
    assert_int_equal(im->Bands, bands);
    size_t len = 0;
    unsigned char *got = vips_image_write_to_memory(im, &len);
    assert_non_null(got);
    int alpha = bands == 2 || bands == 4;
    for (unsigned oy = 0; oy < out_h; oy++)
        for (unsigned ox = 0; ox < out_w; ox++) {
            uint64_t sum[4] = {0};
            for (unsigned j = 0; j < ky; j++)
                for (unsigned i = 0; i < kx; i++) {
                    unsigned x = clamp((long)(ox * kx + i) - gx, s->w);
                    unsigned y = clamp((long)(oy * ky + j) - gy, s->h);
                    expected_pixel(k, s, x, y, px);
                    unsigned a = alpha ? px[bands - 1] : 1;
                    for (unsigned b = 0; b < bands; b++)
                        sum[b] += alpha && b == bands - 1 ? a : px[b] * a;
                }
            uint64_t n = (uint64_t)kx * ky, a = alpha ? sum[bands - 1] : n;
            for (unsigned b = 0; b < bands; b++) {
                unsigned want;
                if (alpha && b == bands - 1)
                    want = (unsigned)((a + n / 2) / n);
                else
                    want = a > 0 ? (unsigned)((sum[b] + a / 2) / a) : 0;
                unsigned have = got[((size_t)oy * out_w + ox) * bands + b];
                if (have != want)
                    fail_msg("colour %u depth %u trns %d filter %d: (%u,%u) band %u is %u, "
                             "not %u",
                             k->colour, k->depth, k->trns, k->filter, ox, oy, b, have, want);
            }
        }
    g_free(got);
    g_object_unref(im);
}

static void temp_path(char *path, size_t len)
{
    snprintf(path, len, "/tmp/ib-fastpng-%d.png", (int)getpid());
}

static void every_kind_matches_the_box_average(void **state)
{
    (void)state;
    static const kind_t kinds[] = {
        {0, 1, 0, 0, PNG_ALL_FILTERS, 0, 0},   {0, 2, 1, 0, PNG_ALL_FILTERS, 0, 0},
        {0, 4, 0, 0, PNG_ALL_FILTERS, 0, 0},   {0, 8, 0, 0, PNG_ALL_FILTERS, 0, 0},
        {0, 8, 1, 0, PNG_ALL_FILTERS, 0, 0},   {2, 8, 0, 0, PNG_FILTER_NONE, 0, 0},
        {2, 8, 0, 0, PNG_FILTER_SUB, 0, 0},    {2, 8, 0, 0, PNG_FILTER_UP, 0, 0},
        {2, 8, 0, 0, PNG_FILTER_AVG, 0, 0},    {2, 8, 0, 0, PNG_FILTER_PAETH, 0, 0},
        {2, 8, 1, 0, PNG_ALL_FILTERS, 0, 0},   {3, 1, 0, 0, PNG_ALL_FILTERS, 0, 2},
        {3, 2, 1, 0, PNG_ALL_FILTERS, 0, 4},   {3, 4, 0, 0, PNG_ALL_FILTERS, 0, 16},
        {3, 8, 1, 0, PNG_ALL_FILTERS, 0, 256}, {4, 8, 0, 0, PNG_FILTER_PAETH, 0, 0},
        {6, 8, 0, 0, PNG_FILTER_AVG, 0, 0},    {6, 8, 0, 0, PNG_FILTER_PAETH, 0, 0},
        {6, 8, 0, 0, PNG_ALL_FILTERS, 0, 0},
    };
    /* Sizes that leave partial boxes, filled on both sides. */
    static const unsigned sizes[][4] = {{202, 151, 4, 3}, {96, 64, 2, 2}, {37, 41, 3, 5}};
    char path[64];
    temp_path(path, sizeof path);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            source_t s;
            make_source(&s, &kinds[i], sizes[j][0], sizes[j][1]);
            write_png(path, &kinds[i], &s);
            check_decode(path, &kinds[i], &s, sizes[j][2], sizes[j][3]);
            free(s.samples);
        }
    unlink(path);
}

/* Writes a kind, lets edit spoil the file, and expects a decline. */
static void expect_decline(const kind_t *k, void (*edit)(const char *path), const char *what)
{
    char path[64];
    temp_path(path, sizeof path);
    source_t s;
    make_source(&s, k, 120, 90);
    write_png(path, k, &s);
    if (edit != NULL)
        edit(path);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(ctx, path, 20, 20, &kx, &ky);
    if (im != NULL)
        fail_msg("%s was decoded, not declined", what);
    free(s.samples);
    unlink(path);
}

static void flip_a_data_byte(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -200, SEEK_END);
    int c = fgetc(f);
    fseek(f, -200, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
}

static void cut_the_end(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, n - 100), 0);
}

static void what_it_does_not_take_is_declined(void **state)
{
    (void)state;
    kind_t rgb = {2, 8, 0, 0, PNG_ALL_FILTERS, 0, 0};
    kind_t interlaced = {2, 8, 0, 0, PNG_ALL_FILTERS, PNG_INTERLACE_ADAM7, 0};
    kind_t deep = {2, 16, 0, 0, PNG_ALL_FILTERS, 0, 0};
    /* Indices run to 255, the palette has 10 entries. */
    kind_t short_palette = {3, 8, 0, 0, PNG_ALL_FILTERS, 0, 10};
    expect_decline(&interlaced, NULL, "an interlaced PNG");
    expect_decline(&deep, NULL, "a 16-bit PNG");
    expect_decline(&rgb, flip_a_data_byte, "a PNG with a bad CRC");
    expect_decline(&rgb, cut_the_end, "a truncated PNG");
    expect_decline(&short_palette, NULL, "a palette index past the palette");
}

/* ---- Chunk surgery: files libpng would not write ---- */

typedef struct {
    unsigned char *bytes;
    size_t len;
} file_t;

static file_t slurp(const char *path)
{
    file_t f = {NULL, 0};
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    f.len = (size_t)ftell(in);
    rewind(in);
    f.bytes = malloc(f.len);
    assert_non_null(f.bytes);
    assert_int_equal(fread(f.bytes, 1, f.len, in), f.len);
    fclose(in);
    return f;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* Offset of the first chunk of this type after the signature. */
static size_t find_chunk(const file_t *f, const char *type)
{
    size_t at = 8;
    while (at + 12 <= f->len) {
        uint32_t len = (uint32_t)f->bytes[at] << 24 | (uint32_t)f->bytes[at + 1] << 16 |
                       (uint32_t)f->bytes[at + 2] << 8 | f->bytes[at + 3];
        if (memcmp(f->bytes + at + 4, type, 4) == 0)
            return at;
        at += 12 + len;
    }
    fail_msg("no %s chunk", type);
    return 0;
}

/* Writes f with a chunk (type, data) inserted at offset at. */
static void write_with_chunk(const char *path, const file_t *f, size_t at, const char *type,
                             const void *data, uint32_t len)
{
    unsigned char *chunk = malloc(12 + (size_t)len);
    assert_non_null(chunk);
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                           (unsigned char)(len >> 8), (unsigned char)len};
    memcpy(chunk, be, 4);
    memcpy(chunk + 4, type, 4);
    if (len > 0)
        memcpy(chunk + 8, data, len);
    uint32_t crc = crc32_of(chunk + 4, 4 + (size_t)len);
    unsigned char cb[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
    memcpy(chunk + 8 + len, cb, 4);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    fwrite(f->bytes, 1, at, out);
    fwrite(chunk, 1, 12 + (size_t)len, out);
    fwrite(f->bytes + at, 1, f->len - at, out);
    fclose(out);
    free(chunk);
}

/* Writes a 120x90 image of a kind with a chunk (type, data) inserted
 * before the first chunk named where, and decodes it for a 20x20 box. */
static VipsImage *load_with_chunk(const kind_t *k, const char *where, const char *type,
                                  const void *data, uint32_t len)
{
    char path[64];
    temp_path(path, sizeof path);
    source_t s;
    make_source(&s, k, 120, 90);
    write_png(path, k, &s);
    file_t f = slurp(path);
    write_with_chunk(path, &f, find_chunk(&f, where), type, data, len);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(ctx, path, 20, 20, &kx, &ky);
    free(f.bytes);
    free(s.samples);
    unlink(path);
    return im;
}

static void expect_decline_with(const kind_t *k, const char *where, const char *type,
                                const void *data, uint32_t len, const char *what)
{
    VipsImage *im = load_with_chunk(k, where, type, data, len);
    if (im != NULL)
        fail_msg("%s was decoded, not declined", what);
}

static void chunks_out_of_place_are_declined(void **state)
{
    (void)state;
    kind_t palette = {3, 8, 1, 0, PNG_ALL_FILTERS, 0, 256};
    kind_t grey = {0, 8, 0, 0, PNG_ALL_FILTERS, 0, 0};
    kind_t rgb = {2, 8, 0, 0, PNG_ALL_FILTERS, 0, 0};
    unsigned char plte[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, alpha[2] = {0, 9};
    unsigned char key_too_big[2] = {1, 0}, text[] = "Comment\0late";
    expect_decline_with(&palette, "IEND", "tRNS", alpha, 2, "a tRNS after the pixels");
    expect_decline_with(&palette, "IDAT", "PLTE", plte, 9, "a second PLTE");
    expect_decline_with(&palette, "IDAT", "tRNS", alpha, 2, "a second tRNS");
    expect_decline_with(&grey, "IDAT", "tRNS", key_too_big, 2, "a grey key past 8 bits");
    expect_decline_with(&grey, "IDAT", "PLTE", plte, 9, "a PLTE in a grey image");
    expect_decline_with(&rgb, "IDAT", "tRNS", alpha, 0, "an empty tRNS");
    expect_decline_with(&rgb, "IEND", "zzZZ", plte, 3, "an unknown chunk after the pixels");
    expect_decline_with(&rgb, "IEND", "IDAT", plte, 3, "an IDAT after text after the pixels");
    /* An empty IDAT, then text, then the pixels: the IDATs are not one
     * run, which libpng refuses. */
    char path[64];
    temp_path(path, sizeof path);
    source_t s;
    make_source(&s, &rgb, 120, 90);
    write_png(path, &rgb, &s);
    file_t f = slurp(path);
    write_with_chunk(path, &f, find_chunk(&f, "IDAT"), "tEXt", text, sizeof text - 1);
    free(f.bytes);
    f = slurp(path);
    write_with_chunk(path, &f, find_chunk(&f, "tEXt"), "IDAT", NULL, 0);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(ctx, path, 20, 20, &kx, &ky);
    if (im != NULL)
        fail_msg("IDATs split by text were decoded, not declined");
    free(f.bytes);
    free(s.samples);
    unlink(path);
    /* Text after the pixels is ignored, as libvips does: still decoded. */
    im = load_with_chunk(&rgb, "IEND", "tEXt", text, sizeof text - 1);
    assert_non_null(im);
    assert_int_equal(vips_image_get_typeof(im, "png-comment-0-Comment"), 0);
    g_object_unref(im);
}

/*
 * A made-up profile: header size, "acsp", a monitor class, a colour
 * space, a connection space, no tags, then tail bytes of noise. libpng
 * drops an iCCP chunk under 92 bytes, so a short tail compresses to a
 * chunk it drops.
 */
static void expect_profile(const kind_t *k, const char *space, const char *pcs, unsigned tail,
                           int kept)
{
    unsigned char icc[132 + 256] = {0}, chunk[600] = "test";
    size_t len = 132 + tail;
    icc[2] = (unsigned char)(len >> 8);
    icc[3] = (unsigned char)len;
    memcpy(icc + 12, "mntr", 4);
    memcpy(icc + 16, space, 4);
    memcpy(icc + 20, pcs, 4);
    memcpy(icc + 36, "acsp", 4);
    for (unsigned i = 0, seed = 7; i < tail; i++, seed = seed * 1103515245u + 12345u)
        icc[132 + i] = (unsigned char)(seed >> 16);
    uLongf zlen = sizeof chunk - 6;
    assert_int_equal(compress(chunk + 6, &zlen, icc, len), Z_OK);
    VipsImage *im = load_with_chunk(k, "IDAT", "iCCP", chunk, (uint32_t)(6 + zlen));
    if (kept) {
        assert_non_null(im);
        const void *blob;
        size_t got;
        assert_int_equal(vips_image_get_blob(im, VIPS_META_ICC_NAME, &blob, &got), 0);
        assert_int_equal(got, len);
        g_object_unref(im);
    } else if (im != NULL) {
        fail_msg("a %s/%s profile of %zu bytes on colour type %u was not declined", space, pcs, len,
                 k->colour);
    }
}

static void profiles_are_checked(void **state)
{
    (void)state;
    kind_t rgb = {2, 8, 0, 0, PNG_ALL_FILTERS, 0, 0};
    kind_t grey = {0, 8, 0, 0, PNG_ALL_FILTERS, 0, 0};
    expect_profile(&rgb, "RGB ", "XYZ ", 128, 1);
    expect_profile(&grey, "GRAY", "Lab ", 128, 1);
    expect_profile(&grey, "RGB ", "XYZ ", 128, 0);
    expect_profile(&rgb, "CMYK", "XYZ ", 128, 0);
    expect_profile(&rgb, "RGB ", "\0\0\0\0", 128, 0);
    /* tests/fuzz/regress/fastpng-iccp-too-short: libpng drops the chunk */
    expect_profile(&rgb, "RGB ", "XYZ ", 0, 0);
}

static void metadata_is_carried_as_libvips_does(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    kind_t commented = {3, 4, 0, 1, PNG_ALL_FILTERS, 0, 16};
    source_t s;
    make_source(&s, &commented, 120, 90);
    write_png(path, &commented, &s);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(ctx, path, 20, 20, &kx, &ky);
    assert_non_null(im);
    const char *text = NULL;
    assert_int_equal(vips_image_get_string(im, "png-comment-0-Comment", &text), 0);
    assert_string_equal(text, "made here");
    int depth = 0;
    assert_int_equal(vips_image_get_int(im, "palette-bit-depth", &depth), 0);
    assert_int_equal(depth, 4);
    g_object_unref(im);
    /* Compressed text is left to libvips. */
    kind_t compressed = {2, 8, 0, 2, PNG_ALL_FILTERS, 0, 0};
    free(s.samples);
    make_source(&s, &compressed, 120, 90);
    write_png(path, &compressed, &s);
    im = ib_fastpng_load(ctx, path, 20, 20, &kx, &ky);
    if (im != NULL)
        fail_msg("a zTXt chunk was not left to libvips");
    free(s.samples);
    unlink(path);
}

/* The largest box the decoder takes (257 x 257), all white and opaque:
 * the sums come near 2^32, and white must stay white. */
static void the_biggest_boxes_do_not_wrap(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    kind_t rgba = {6, 8, 0, 0, PNG_FILTER_NONE, 0, 0};
    source_t s = {5140, 5140, 4, NULL, {{0}}, {0}, {0}};
    s.samples = malloc(sizeof *s.samples * 5140 * 5140 * 4);
    assert_non_null(s.samples);
    for (size_t i = 0; i < (size_t)5140 * 5140 * 4; i++)
        s.samples[i] = 255;
    write_png(path, &rgba, &s);
    free(s.samples);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(ctx, path, 10, 10, &kx, &ky);
    unlink(path);
    assert_non_null(im);
    assert_int_equal(kx, 257);
    size_t len;
    unsigned char *px = vips_image_write_to_memory(im, &len);
    for (size_t i = 0; i < len; i++)
        if (px[i] != 255)
            fail_msg("byte %zu of the white image is %u", i, px[i]);
    g_free(px);
    g_object_unref(im);
}

/* A grey 8-bit PNG of w x h, its rows 1 + w bytes inflated. */
static void write_grey(const char *path, unsigned w, unsigned h)
{
    kind_t grey = {0, 8, 0, 0, PNG_FILTER_UP, 0, 0};
    source_t s;
    make_source(&s, &grey, w, h);
    write_png(path, &grey, &s);
    free(s.samples);
}

/* Decodes path with a fresh context of budget; whether it decoded, and
 * the bytes the context then held. */
static int decode_with_budget(const char *path, uint64_t budget, size_t *held)
{
    ib_fastpng_ctx_t *c = ib_fastpng_ctx_new(budget);
    assert_non_null(c);
    unsigned kx, ky;
    VipsImage *im = ib_fastpng_load(c, path, 20, 20, &kx, &ky);
    *held = ib_fastpng_ctx_held(c);
    ib_fastpng_ctx_free(c);
    if (im != NULL)
        g_object_unref(im);
    return im != NULL;
}

/*
 * 2000 x 2000 grey inflates to 4,002,000 bytes. The file and those bytes
 * may take half the budget: exactly that decodes, a byte less declines.
 * The buffer is kept while it is at most a quarter of the budget.
 */
static void the_budget_bounds_the_inflate_buffer(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    write_grey(path, 2000, 2000);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    uint64_t raw = 2001 * 2000, both = raw + (uint64_t)st.st_size;
    assert_true((uint64_t)st.st_size < raw);
    size_t held;
    assert_true(decode_with_budget(path, 0, &held));
    assert_int_equal(held, raw);
    assert_true(decode_with_budget(path, 4 * both, &held));
    assert_int_equal(held, raw);
    assert_true(decode_with_budget(path, 2 * both, &held));
    assert_int_equal(held, 0);
    assert_false(decode_with_budget(path, 2 * both - 2, &held));
    assert_int_equal(held, 0);
    unlink(path);
}

/* In the child: as ib_job_init() does, the address space now plus budget. */
static int limit_address_space(uint64_t budget)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f == NULL || fscanf(f, "%lu", &pages) != 1)
        return -1;
    fclose(f);
    rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + budget;
    struct rlimit rl = {.rlim_cur = limit, .rlim_max = limit};
    return setrlimit(RLIMIT_AS, &rl);
}

/*
 * A worker with --max-memory 64M: a PNG inflating to 14 MB decodes on the
 * fast path and its buffer is kept, and the next image still has three
 * quarters of the budget (less what malloc and libvips keep) to allocate.
 */
static void a_kept_buffer_leaves_the_next_image_its_room(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer's shadow memory breaks any address-space limit */
    ib_test_skip_loudly("fastpng", "no address-space limit under AddressSanitizer");
#endif
    char path[64];
    temp_path(path, sizeof path);
    write_grey(path, 3740, 3740);
    uint64_t budget = 64u << 20;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ib_fastpng_ctx_t *c = ib_fastpng_ctx_new(budget);
        if (c == NULL || limit_address_space(budget) != 0)
            _exit(2);
        unsigned kx, ky;
        VipsImage *im = ib_fastpng_load(c, path, 20, 20, &kx, &ky);
        if (im == NULL || ib_fastpng_ctx_held(c) == 0)
            _exit(3);
        g_object_unref(im);
        size_t next = (size_t)(budget * 3 / 4) - (8u << 20);
        unsigned char *room = malloc(next);
        if (room == NULL)
            _exit(4);
        memset(room, 1, next);
        free(room);
        ib_fastpng_ctx_free(c);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    unlink(path);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int setup(void **state)
{
    (void)state;
    ctx = ib_fastpng_ctx_new(0);
    return ctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ib_fastpng_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (VIPS_INIT(argv[0]))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_matches_the_box_average),
        cmocka_unit_test(what_it_does_not_take_is_declined),
        cmocka_unit_test(chunks_out_of_place_are_declined),
        cmocka_unit_test(profiles_are_checked),
        cmocka_unit_test(metadata_is_carried_as_libvips_does),
        cmocka_unit_test(the_biggest_boxes_do_not_wrap),
        cmocka_unit_test(the_budget_bounds_the_inflate_buffer),
        cmocka_unit_test(a_kept_buffer_leaves_the_next_image_its_room),
    };
    return ib_test_run_suite(tests, setup, teardown);
}
