/*
 * libFuzzer harness for the PNG fast path (filters/fastpng.c). The input
 * describes a PNG rather than being one: the harness writes it well formed
 * (right CRCs, a valid zlib stream), so that mutations reach the unfilter,
 * the expansions and the box shrink instead of dying at a checksum.
 *
 * NOTES
 * - Input layout: a 12-byte header (see read_spec), then the palette, the
 *   tRNS data, the profile and the rows, each taking the bytes it needs.
 *   Most inputs run out before the rows do: the bytes after the header
 *   are then read again from the start.
 * - The header's last bits may ask for an edit of the file written: two
 *   chunks swapped or the file cut short, every chunk still whole with its
 *   CRC right, so that the chunk parser's refusals are reached too.
 * - Rows come two ways: as pixels, which the harness filters with the
 *   filter type each row names (palette indices folded into the palette),
 *   or, with RAW_ROWS, as the filtered bytes themselves, filter bytes
 *   included, so unknown filters and indices past the palette come too.
 * - Differential: whatever the fast path decodes, libpng decodes as well,
 *   with the expansions libvips' loader asks of it, and libpng's pixels
 *   box-shrunk the plain way (pngref.c) must equal the fast path's to the
 *   byte. The fast path may decline anything (libvips then decodes the
 *   file); it must never decode what libpng refuses, nor keep a profile
 *   libpng drops. A mismatch aborts.
 */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "fastpng.h"
#include "common.h"
#include "fuzz.h"
#include "pngref.h"

enum {
    WITH_TRNS = 1,
    TEXT_BEFORE = 2, /* a tEXt chunk before the pixels, its keyword fuzzed */
    TEXT_AFTER = 4,  /* and one after them */
    ODD_CHUNK = 8,   /* an ancillary chunk nobody knows */
    WITH_ICCP = 16,
    RAW_ROWS = 32,
    RAW_ICCP = 64, /* the profile's header as given, not made plausible */
    DEPTH_16 = 128,
};

/* Small enough for hundreds of runs a second, big enough for boxes of
 * every shape and for rows longer than the SIMD Paeth's registers. */
#define MAX_SIDE 160

/* More chunks than any spec writes. */
#define MAX_CHUNKS 32

/* The edits of a written file (edit_png), picked by the header's top bits. */
enum { EDIT_SWAP = 6, EDIT_CUT = 7 };

/* libdeflate's levels 0 (stored) to 6: above that it compresses no
 * differently for the decoder, only more slowly. */
#define MAX_LEVEL 7

typedef struct {
    const uint8_t *p;
    size_t n, at, start;
} input_t;

typedef struct {
    unsigned w, h, colour, depth, min_w, min_h, flags, pieces, level, edit;
    unsigned n_palette, n_trns;
    unsigned char palette[256 * 3], trns[256];
} spec_t;

/* The file being written, and where each chunk starts in it. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    size_t starts[MAX_CHUNKS];
    unsigned n_chunks;
} buf_t;

static ib_fastpng_ctx_t *ctx;
static struct libdeflate_compressor *compressors[MAX_LEVEL];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    ib_fuzz_start_vips((*argv)[0]);
    ctx = ib_fastpng_ctx_new(0);
    for (int level = 0; level < MAX_LEVEL; level++)
        if ((compressors[level] = libdeflate_alloc_compressor(level)) == NULL)
            abort();
    if (ctx == NULL)
        abort();
    return 0;
}

/* The next input byte; past the end, the bytes after the header again. */
static uint8_t next(input_t *in)
{
    if (in->at < in->n)
        return in->p[in->at++];
    if (in->n == in->start)
        return 0;
    size_t k = in->at++ - in->start;
    return in->p[in->start + k % (in->n - in->start)];
}

static unsigned stored_channels(unsigned colour)
{
    return colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;
}

static size_t rowbytes_of(const spec_t *s)
{
    return ((size_t)s->w * stored_channels(s->colour) * s->depth + 7) / 8;
}

/* The header: what kind of image, how big, how written. */
static void read_spec(input_t *in, spec_t *s)
{
    static const unsigned colours[5] = {0, 2, 3, 4, 6}, low[4] = {1, 2, 4, 8};
    s->colour = colours[next(in) % 5];
    unsigned d = next(in);
    s->w = 1 + ((unsigned)next(in) | (unsigned)next(in) << 8) % MAX_SIDE;
    s->h = 1 + ((unsigned)next(in) | (unsigned)next(in) << 8) % MAX_SIDE;
    unsigned mw = next(in), mh = next(in);
    s->min_w = 1 + mw % (s->w / 4 > 0 ? s->w / 4 : 1);
    s->min_h = 1 + mh % (s->h / 4 > 0 ? s->h / 4 : 1);
    s->flags = next(in);
    unsigned how = next(in);
    s->pieces = 1 + how % 4 * 2;
    s->level = (how >> 2) & 7;
    if (s->level >= MAX_LEVEL)
        s->level = MAX_LEVEL - 1;
    s->edit = how >> 5;
    s->depth = s->colour == 0 || s->colour == 3 ? low[d % 4] : 8;
    if (s->flags & DEPTH_16 && s->colour != 3)
        s->depth = 16;
    unsigned n = next(in);
    s->n_palette = 1 + n % (s->depth < 8 ? 1u << s->depth : 256);
    s->n_trns = 1 + next(in) % (s->n_palette + 1);
    in->start = in->at;
}

static void put(buf_t *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put32(buf_t *b, uint32_t v)
{
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v};
    put(b, be, 4);
}

static void chunk(buf_t *b, const char *type, const void *data, size_t n)
{
    if (b->n_chunks < MAX_CHUNKS)
        b->starts[b->n_chunks++] = b->n;
    put32(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    put(b, data, n);
    put32(b, libdeflate_crc32(0, b->p + at, n + 4));
}

/* A zlib stream of n bytes at the spec's level (0: stored blocks). */
static unsigned char *zlib(const spec_t *s, const unsigned char *data, size_t n, size_t *len)
{
    struct libdeflate_compressor *c = compressors[s->level];
    size_t cap = libdeflate_zlib_compress_bound(c, n);
    unsigned char *z = malloc(cap);
    if (z == NULL)
        abort();
    *len = libdeflate_zlib_compress(c, data, n, z, cap);
    if (*len == 0)
        abort();
    return z;
}

static void put_header(buf_t *b, const spec_t *s)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13] = {(unsigned char)(s->w >> 24),
                              (unsigned char)(s->w >> 16),
                              (unsigned char)(s->w >> 8),
                              (unsigned char)s->w,
                              (unsigned char)(s->h >> 24),
                              (unsigned char)(s->h >> 16),
                              (unsigned char)(s->h >> 8),
                              (unsigned char)s->h,
                              (unsigned char)s->depth,
                              (unsigned char)s->colour,
                              0,
                              0,
                              0};
    put(b, signature, 8);
    chunk(b, "IHDR", ihdr, 13);
}

/*
 * An ICC profile of 132 to 387 bytes from the input; unless RAW_ICCP, its
 * size, signature and colour space are made right, so that what libpng
 * checks beyond them gets fuzzed.
 */
static void put_iccp(buf_t *b, input_t *in, const spec_t *s)
{
    size_t n = 132 + next(in);
    unsigned char icc[132 + 255];
    for (size_t i = 0; i < n; i++)
        icc[i] = next(in);
    if (!(s->flags & RAW_ICCP)) {
        uint32_t be = (uint32_t)n;
        unsigned char size[4] = {(unsigned char)(be >> 24), (unsigned char)(be >> 16),
                                 (unsigned char)(be >> 8), (unsigned char)be};
        memcpy(icc, size, 4);
        memcpy(icc + 36, "acsp", 4);
        memcpy(icc + 16, s->colour == 0 || s->colour == 4 ? "GRAY" : "RGB ", 4);
    }
    size_t zlen;
    unsigned char *z = zlib(s, icc, n, &zlen);
    unsigned char *data = malloc(zlen + 6);
    if (data == NULL)
        abort();
    memcpy(data, "icc\0\0", 5);
    memcpy(data + 5, z, zlen);
    chunk(b, "iCCP", data, zlen + 5);
    free(z);
    free(data);
}

/* A tEXt chunk: a keyword of 0 to 7 input bytes (0 and odd bytes are
 * for the parser to refuse), a NUL, a few bytes of text. */
static void put_text(buf_t *b, input_t *in)
{
    unsigned char data[32];
    unsigned key = next(in) % 8, text = next(in) % 16;
    for (unsigned i = 0; i < key; i++)
        data[i] = next(in);
    data[key] = 0;
    for (unsigned i = 0; i < text; i++)
        data[key + 1 + i] = next(in);
    chunk(b, "tEXt", data, key + 1 + text);
}

/* PLTE, tRNS and the unknown chunk, in the order the flags ask. */
static void put_extras(buf_t *b, input_t *in, spec_t *s)
{
    if (s->flags & WITH_ICCP)
        put_iccp(b, in, s);
    if (s->flags & TEXT_BEFORE)
        put_text(b, in);
    if (s->colour == 3) {
        for (unsigned i = 0; i < 3 * s->n_palette; i++)
            s->palette[i] = next(in);
        chunk(b, "PLTE", s->palette, 3 * s->n_palette);
    }
    if (s->flags & WITH_TRNS) {
        unsigned max = s->depth >= 16 ? 0xffff : (1u << s->depth) - 1;
        unsigned n = s->colour == 3 ? s->n_trns : s->colour == 2 ? 6 : 2;
        /* One entry more than the palette is allowed (libpng must refuse
         * it), but never more than the buffer holds. */
        if (n > sizeof s->trns)
            n = sizeof s->trns;
        for (unsigned i = 0; i < n; i++)
            s->trns[i] = next(in);
        /* A key within the depth's range: libpng masks others (fastpng.c). */
        for (unsigned i = 0; s->colour != 3 && i + 1 < n; i += 2) {
            unsigned v = ((unsigned)s->trns[i] << 8 | s->trns[i + 1]) & max;
            s->trns[i] = (unsigned char)(v >> 8);
            s->trns[i + 1] = (unsigned char)v;
        }
        chunk(b, "tRNS", s->trns, n);
    }
    if (s->flags & ODD_CHUNK) {
        unsigned char data[16];
        unsigned n = next(in) % 16;
        for (unsigned i = 0; i < n; i++)
            data[i] = next(in);
        chunk(b, "prVt", data, n);
    }
}

static int paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Filters row (n bytes) against prior into out, as an encoder does. */
static void filter_row(unsigned filter, const unsigned char *row, const unsigned char *prior,
                       size_t n, size_t bpp, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int a = i >= bpp ? row[i - bpp] : 0, up = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
        int pred = filter == 1   ? a
                   : filter == 2 ? up
                   : filter == 3 ? (a + up) / 2
                                 : paeth(a, up, c);
        out[i] = (unsigned char)(row[i] - (filter == 0 ? 0 : pred));
    }
}

/* One row of samples from the input; palette indices inside the palette. */
static void fill_row(input_t *in, const spec_t *s, unsigned char *row, size_t n)
{
    if (s->colour != 3) {
        for (size_t i = 0; i < n; i++)
            row[i] = next(in);
        return;
    }
    memset(row, 0, n);
    for (size_t x = 0; x < s->w; x++) {
        size_t bit = x * s->depth;
        unsigned v = next(in) % s->n_palette;
        row[bit / 8] |= (unsigned char)(v << (8 - s->depth - bit % 8));
    }
}

/* The rows as stored, each a filter byte and its bytes. */
static unsigned char *make_rows(input_t *in, const spec_t *s, size_t *len)
{
    size_t n = rowbytes_of(s), bpp = (stored_channels(s->colour) * s->depth + 7) / 8;
    *len = (n + 1) * s->h;
    unsigned char *rows = malloc(*len), *cur = malloc(n), *prior = calloc(n, 1);
    if (rows == NULL || cur == NULL || prior == NULL)
        abort();
    for (size_t y = 0; y < s->h; y++) {
        unsigned char *out = rows + y * (n + 1);
        if (s->flags & RAW_ROWS) {
            for (size_t i = 0; i < n + 1; i++)
                out[i] = next(in);
            continue;
        }
        out[0] = next(in) % 5;
        fill_row(in, s, cur, n);
        filter_row(out[0], cur, prior, n, bpp, out + 1);
        memcpy(prior, cur, n);
    }
    free(cur);
    free(prior);
    return rows;
}

/* The IDAT stream cut into the spec's number of chunks. */
static void put_pixels(buf_t *b, input_t *in, const spec_t *s)
{
    size_t len, zlen;
    unsigned char *rows = make_rows(in, s, &len);
    unsigned char *z = zlib(s, rows, len, &zlen);
    size_t at = 0;
    for (unsigned i = 1; i < s->pieces && at < zlen; i++) {
        size_t cut = next(in) % (zlen - at + 1);
        chunk(b, "IDAT", z + at, cut);
        at += cut;
    }
    chunk(b, "IDAT", z + at, zlen - at);
    free(rows);
    free(z);
}

/* Chunk i and chunk j > i of b swapped. */
static void swap_chunks(buf_t *b, unsigned i, unsigned j)
{
    size_t a0 = b->starts[i], a1 = b->starts[i + 1], b0 = b->starts[j];
    size_t b1 = j + 1 < b->n_chunks ? b->starts[j + 1] : b->n;
    unsigned char *p = malloc(b->n);
    if (p == NULL)
        abort();
    size_t at = a0;
    memcpy(p, b->p, a0);
    memcpy(p + at, b->p + b0, b1 - b0);
    at += b1 - b0;
    memcpy(p + at, b->p + a1, b0 - a1);
    at += b0 - a1;
    memcpy(p + at, b->p + a0, a1 - a0);
    memcpy(p + b1, b->p + b1, b->n - b1);
    free(b->p);
    b->p = p;
}

/*
 * Edits for the chunk parser that keep each chunk whole with its CRC
 * right: two chunks swapped (the signature stays), or the file cut short.
 */
static void edit_png(buf_t *b, input_t *in, const spec_t *s)
{
    if (s->edit == EDIT_CUT) {
        b->n = 8 + ((size_t)next(in) << 8 | next(in)) % (b->n - 8);
    } else if (s->edit == EDIT_SWAP && b->n_chunks >= 2) {
        unsigned i = next(in) % b->n_chunks, j = next(in) % b->n_chunks;
        if (i != j)
            swap_chunks(b, i < j ? i : j, i < j ? j : i);
    }
}

static unsigned char *build_png(input_t *in, spec_t *s, size_t *len)
{
    buf_t b = {.p = NULL};
    put_header(&b, s);
    put_extras(&b, in, s);
    put_pixels(&b, in, s);
    if (s->flags & TEXT_AFTER)
        put_text(&b, in);
    chunk(&b, "IEND", NULL, 0);
    edit_png(&b, in, s);
    *len = b.n;
    return b.p;
}

static void mismatch(const spec_t *s, const char *what)
{
    fprintf(stderr,
            "fuzz_fastpng: %s (%ux%u colour %u depth %u flags 0x%x edit %u palette %u trns %u, "
            "min %ux%u)\n",
            what, s->w, s->h, s->colour, s->depth, s->flags, s->edit, s->n_palette, s->n_trns,
            s->min_w, s->min_h);
    abort();
}

/* The fast path's image against libpng's decode of the same file. */
static void compare(const spec_t *s, VipsImage *im, unsigned kx, unsigned ky,
                    const ib_pngref_t *ref)
{
    if (s->depth == 16)
        mismatch(s, "a 16-bit file was decoded");
    if (ref->pixels == NULL)
        mismatch(s, "decoded a file libpng refuses");
    if (vips_image_get_typeof(im, VIPS_META_ICC_NAME) && !ref->has_icc)
        mismatch(s, "kept a profile libpng drops");
    if (im->Bands != (int)ref->bands || kx < 2 || ky < 2)
        mismatch(s, "wrong bands or shrink");
    size_t len = 0;
    unsigned char *got = vips_image_write_to_memory(im, &len);
    unsigned char *want = ib_pngref_shrink(ref, kx, ky);
    unsigned out_w = (ref->w + kx - 1) / kx, out_h = (ref->h + ky - 1) / ky;
    if (got == NULL || want == NULL || im->Xsize != (int)out_w || im->Ysize != (int)out_h)
        mismatch(s, "wrong size");
    if (memcmp(got, want, len) != 0)
        mismatch(s, "pixels differ from libpng's");
    g_free(got);
    free(want);
}

/* With IB_FUZZ_DUMP=FILE, the PNG built is written there, to look at. */
static void dump(const unsigned char *png, size_t len)
{
    const char *path = getenv("IB_FUZZ_DUMP");
    FILE *f = path != NULL ? fopen(path, "wb") : NULL;
    if (f == NULL)
        return;
    fwrite(png, 1, len, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= 12)
        return 0;
    input_t in = {data, size, 0, 0};
    spec_t s;
    memset(&s, 0, sizeof s);
    read_spec(&in, &s);
    size_t len;
    unsigned char *png = build_png(&in, &s, &len);
    ib_pngref_t ref;
    ib_pngref_decode(png, len, &ref);
    dump(png, len);

    unsigned kx = 0, ky = 0;
    VipsImage *im = ib_fastpng_decode(ctx, png, len, s.min_w, s.min_h, &kx, &ky);
    if (getenv("IB_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz_fastpng: %ux%u colour %u depth %u flags 0x%x: %s\n", s.w, s.h,
                s.colour, s.depth, s.flags, im != NULL ? "decoded" : "declined");
    if (im != NULL) {
        compare(&s, im, kx, ky, &ref);
        g_object_unref(im);
    }
    ib_pngref_free(&ref);
    free(png);
    vips_error_clear();
    return 0;
}
