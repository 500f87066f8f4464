/*
 * The PNG fast path. See fastpng.h.
 *
 * NOTES
 * - Why: inflating the pixels is most of a PNG's cost, and libdeflate
 *   inflates two to three times faster than the zlib under libpng. It
 *   needs the whole stream at once, so the file is read whole, its IDAT
 *   chunks are moved together in place and the image is inflated in one
 *   call; the rows are
 *   then unfiltered and folded into boxes one by one, and only the
 *   shrunk image is handed to libvips for the final resample (Lanczos).
 *   The price is memory: the inflated image, about its uncompressed size,
 *   is held for the length of the decode, and the buffer is kept in the
 *   worker's context (ib_fastpng_ctx_t) for its next PNG, whose pages the
 *   kernel would otherwise fault in and zero all over again. Images that
 *   would need more than MAX_RAW go to libvips, which streams them in
 *   little memory.
 * - Memory budget (--max-memory, enforced as RLIMIT_AS): the buffer is
 *   allocated after the limit is set, so it counts against it like any
 *   other memory an image takes. The file and the inflated image together
 *   may use half the budget, leaving the other half for the shrunk image,
 *   libvips' resample and the encoder; a bigger image goes to libvips
 *   before anything is allocated. Between images the buffer is kept only
 *   while it is at most a quarter of the budget, so that an idle buffer
 *   never takes more than that from the next image, which may not be a
 *   PNG at all.
 * - Safe: chunk lengths are checked against the file, every chunk's CRC
 *   is checked, libdeflate checks the zlib stream's Adler-32 and never
 *   writes past the buffer it is given, and the stream must inflate to
 *   exactly the size the header promises. Anything unexpected (a bad
 *   CRC, a critical chunk this does not know, a palette index past the
 *   palette, a truncated file) declines, and libvips then decodes the
 *   file and reports what is wrong in its words.
 * - The whole factors leave at least twice the target on each axis, as
 *   libvips' resize does before its Lanczos step (its "gap" of 2). As
 *   there, a partial box at the edge becomes a whole one, filled out with
 *   copies of the edge pixels, and the caller resamples by what is left
 *   of the whole shrink, not by the shrunk image's size.
 * - Alignment: libvips' reduce centres its samples by the fractional
 *   size of the box-shrunk image, which a whole-pixel image cannot carry;
 *   fed ours, it would look up to half a box off. So half the filling
 *   goes before the first row and column, the rest after the last, and
 *   the samples land within half a source pixel of libvips' own.
 * - Alpha: a box average weighted by alpha, as libvips' thumbnail does by
 *   premultiplying, so fully transparent pixels lend no colour to their
 *   neighbours.
 * - The same expansions as libvips' loader: palettes to RGB, grey depths
 *   below 8 bits scaled to 8, a tRNS colour key or palette alpha to an
 *   alpha channel. 16-bit and interlaced files go to libvips.
 */
#include "fastpng.h"

#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "fastpath.h"
#include "fileio.h"

/* How many times the target a box-shrunk axis keeps (see NOTES). */
#define RESAMPLE_MARGIN 2

/* An embedded ICC profile larger than this is not a profile. */
#define MAX_ICC (16u << 20)

/* More text chunks than this go to libvips. */
#define MAX_TEXT 64

/* The largest inflated image this decodes (see NOTES): 64 MP of RGBA. */
#define MAX_RAW ((size_t)256 << 20)

struct ib_fastpng_ctx {
    struct libdeflate_decompressor *inflater;
    unsigned char *raw; /* the inflate buffer, kept between images */
    size_t raw_len;
    uint64_t budget; /* 0: no limit (see NOTES) */
};

ib_fastpng_ctx_t *ib_fastpng_ctx_new(uint64_t budget)
{
    ib_fastpng_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL || (ctx->inflater = libdeflate_alloc_decompressor()) == NULL) {
        free(ctx);
        return NULL;
    }
    ctx->budget = budget;
    return ctx;
}

void ib_fastpng_ctx_free(ib_fastpng_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    libdeflate_free_decompressor(ctx->inflater);
    free(ctx->raw);
    free(ctx);
}

size_t ib_fastpng_ctx_held(const ib_fastpng_ctx_t *ctx)
{
    return ctx->raw_len;
}

/* Whether a file of file_len bytes inflating to raw_len fits the budget. */
static int fits_budget(const ib_fastpng_ctx_t *ctx, size_t file_len, size_t raw_len)
{
    if (raw_len > MAX_RAW)
        return 0;
    return ctx->budget == 0 || (uint64_t)file_len + raw_len <= ctx->budget / 2;
}

static unsigned char *raw_buffer(ib_fastpng_ctx_t *ctx, size_t len)
{
    if (len <= ctx->raw_len)
        return ctx->raw;
    free(ctx->raw);
    ctx->raw = malloc(len);
    ctx->raw_len = ctx->raw != NULL ? len : 0;
    return ctx->raw;
}

/* After an image: a buffer over a quarter of the budget is not kept. */
static void trim_buffer(ib_fastpng_ctx_t *ctx)
{
    if (ctx->budget > 0 && ctx->raw_len > ctx->budget / 4) {
        free(ctx->raw);
        ctx->raw = NULL;
        ctx->raw_len = 0;
    }
}

typedef struct {
    unsigned char *file;
    size_t len;
    uint32_t width, height;
    unsigned depth, colour, interlace;
    unsigned char palette[256][4];
    unsigned n_palette;
    int has_trns;
    uint16_t key[3];     /* the tRNS colour key of a grey or RGB image */
    unsigned char *idat; /* within file: the IDAT data moved together */
    size_t idat_len;
    unsigned char *icc;
    size_t icc_len;
    char *text[MAX_TEXT]; /* tEXt chunks: keyword, NUL, text, NUL */
    unsigned n_text;
} png_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_type(const unsigned char *type, const char *name)
{
    return memcmp(type, name, 4) == 0;
}

/* Inflates a zlib stream that must fill no more than max bytes and end
 * exactly at the end of its input; NULL declines. */
static unsigned char *inflate_all(struct libdeflate_decompressor *inflater, const unsigned char *z,
                                  size_t zlen, size_t max, size_t *got)
{
    for (size_t cap = 64u << 10;; cap *= 4) {
        if (cap > max)
            cap = max;
        unsigned char *buf = malloc(cap);
        size_t used = 0;
        if (buf == NULL)
            return NULL;
        enum libdeflate_result r =
            libdeflate_zlib_decompress_ex(inflater, z, zlen, buf, cap, &used, got);
        if (r == LIBDEFLATE_SUCCESS && used == zlen)
            return buf;
        free(buf);
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE || cap == max)
            return NULL;
    }
}

/*
 * Whether libpng keeps this profile for a grey or colour image: what
 * libpng 1.6 checks before it does (png.c: png_icc_check_length,
 * png_icc_check_header, png_icc_check_tag_table). What it only warns
 * about (an odd intent or profile class, a light other than D50) does
 * not drop a profile.
 */
static int profile_kept(const unsigned char *icc, size_t len, int grey)
{
    if (len < 132 || be32(icc) != len || memcmp(icc + 36, "acsp", 4) != 0)
        return 0;
    uint32_t tags = be32(icc + 128);
    if ((icc[8] > 3 && len % 4 != 0) || tags > 357913930 || len < 132 + 12 * (size_t)tags ||
        be32(icc + 64) >= 0xffff)
        return 0;
    if (memcmp(icc + 16, grey ? "GRAY" : "RGB ", 4) != 0 || memcmp(icc + 12, "abst", 4) == 0 ||
        memcmp(icc + 12, "link", 4) == 0 ||
        (memcmp(icc + 20, "XYZ ", 4) != 0 && memcmp(icc + 20, "Lab ", 4) != 0))
        return 0;
    for (uint32_t i = 0; i < tags; i++) {
        const unsigned char *tag = icc + 132 + 12 * (size_t)i;
        uint32_t start = be32(tag + 4), n = be32(tag + 8);
        if (start > len || n > len - start)
            return 0;
    }
    return 1;
}

/*
 * An iCCP chunk's profile, checked as libpng checks it before libvips
 * sees it (a profile libpng would drop must not reach the output); -1
 * declines. libpng reads 81 bytes for the keyword and drops the chunk
 * ("too short") unless 11 more follow, whatever the keyword's length.
 */
static int read_iccp(png_t *p, struct libdeflate_decompressor *inflater, const unsigned char *data,
                     uint32_t len)
{
    const unsigned char *nul = memchr(data, 0, len < 80 ? len : 80);
    if (len < 81 + 11 || nul == NULL || nul == data || nul[1] != 0)
        return -1;
    const unsigned char *z = nul + 2;
    size_t got = 0;
    p->icc = inflate_all(inflater, z, len - (size_t)(z - data), MAX_ICC, &got);
    p->icc_len = got;
    int grey = p->colour == 0 || p->colour == 4;
    return p->icc != NULL && profile_kept(p->icc, got, grey) ? 0 : -1;
}

/*
 * A tEXt chunk as libvips' loader names it: "png-comment-N-keyword".
 * -1 declines (a malformed keyword).
 */
static int read_text(png_t *p, const unsigned char *data, uint32_t len)
{
    const unsigned char *nul = memchr(data, 0, len < 80 ? len : 80);
    if (nul == NULL || nul == data || p->n_text >= MAX_TEXT)
        return -1;
    size_t key_len = (size_t)(nul - data), text_len = len - key_len - 1;
    char *entry = malloc(key_len + text_len + 2);
    if (entry == NULL)
        return -1;
    memcpy(entry, data, key_len + 1);
    memcpy(entry + key_len + 1, nul + 1, text_len);
    entry[key_len + 1 + text_len] = '\0';
    p->text[p->n_text++] = entry;
    return 0;
}

/* Whether the IHDR describes what this decodes: 8 bits or fewer per
 * sample, not interlaced, a valid colour type and depth. */
static int header_ok(const png_t *p)
{
    unsigned d = p->depth;
    int low = d == 1 || d == 2 || d == 4 || d == 8;
    int ok = p->colour == 0 || p->colour == 3
                 ? low
                 : (p->colour == 2 || p->colour == 4 || p->colour == 6) && d == 8;
    return ok && p->interlace == 0 && p->width > 0 && p->height > 0 && p->width <= INT32_MAX &&
           p->height <= INT32_MAX;
}

/* The chunk of len data bytes at file[at]: it fits in the file, its type
 * is four letters and its CRC holds. */
static int chunk_ok(const png_t *p, size_t at, uint32_t len)
{
    const unsigned char *type = p->file + at + 4;
    if (len > p->len - at - 12)
        return 0;
    for (int i = 0; i < 4; i++)
        if (!((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z')))
            return 0;
    return libdeflate_crc32(0, type, (size_t)len + 4) == be32(type + 4 + len);
}

static int read_ihdr(png_t *p, const unsigned char *data, uint32_t len)
{
    if (len != 13 || data[10] != 0 || data[11] != 0)
        return -1;
    p->width = be32(data);
    p->height = be32(data + 4);
    p->depth = data[8];
    p->colour = data[9];
    p->interlace = data[12];
    return header_ok(p) ? 0 : -1; /* early, before reading the rest */
}

static int read_plte(png_t *p, const unsigned char *data, uint32_t len)
{
    /* Only palette images: libpng cuts a longer palette to the depth's
     * range, and a colour image's is only a hint. */
    if (p->n_palette > 0 || p->has_trns || p->icc != NULL || p->colour != 3 || len % 3 != 0 ||
        len == 0 || len / 3 > (1u << p->depth))
        return -1;
    p->n_palette = len / 3;
    for (unsigned i = 0; i < p->n_palette; i++) {
        memcpy(p->palette[i], data + 3 * i, 3);
        p->palette[i][3] = 255;
    }
    return 0;
}

static int read_trns(png_t *p, const unsigned char *data, uint32_t len)
{
    unsigned max = (1u << p->depth) - 1;
    if (p->has_trns || len == 0)
        return -1;
    if (p->colour == 3) {
        if (p->n_palette == 0 || len > p->n_palette)
            return -1;
        for (unsigned i = 0; i < len; i++)
            p->palette[i][3] = data[i];
    } else if (p->colour == 0 && len == 2) {
        p->key[0] = (uint16_t)(data[0] << 8 | data[1]);
    } else if (p->colour == 2 && len == 6) {
        for (int c = 0; c < 3; c++)
            p->key[c] = (uint16_t)(data[2 * c] << 8 | data[2 * c + 1]);
    } else {
        return -1;
    }
    /* libpng masks a key out of the depth's range and warns. */
    for (int c = 0; c < 3; c++)
        if (p->key[c] > max)
            return -1;
    p->has_trns = 1;
    return 0;
}

/*
 * Walks the chunks: header, palette, transparency, profile, text, and the
 * IDAT stream moved together in place. Declines (-1) whatever libpng
 * would refuse, ignore or read otherwise: the order and number of the
 * chunks are held to the specification.
 */
static int parse(png_t *p, struct libdeflate_decompressor *inflater)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (p->len < 8 || memcmp(p->file, signature, 8) != 0)
        return -1;
    size_t at = 8;
    int seen_ihdr = 0, seen_idat = 0, idat_done = 0;
    while (at + 12 <= p->len) {
        uint32_t len = be32(p->file + at);
        unsigned char *type = p->file + at + 4, *data = type + 4;
        if (!chunk_ok(p, at, len))
            return -1;
        at += 12 + (size_t)len;
        if (!seen_ihdr && !is_type(type, "IHDR"))
            return -1;
        /* Noted before the move below overwrites the chunk's header. */
        int idat = is_type(type, "IDAT"), ancillary = (type[0] & 0x20) != 0;
        /* libpng keeps no ancillary chunk of 8 MB or more. */
        if (ancillary && len > 8000000)
            return -1;
        if (seen_idat && !idat && !is_type(type, "IEND")) {
            /* After the pixels libvips reads nothing; only text and time
             * belong there, anything else is out of place. */
            if (is_type(type, "tEXt") || is_type(type, "zTXt") || is_type(type, "iTXt") ||
                is_type(type, "tIME")) {
                idat_done = 1;
                continue;
            }
            return -1;
        }
        if (is_type(type, "IHDR")) {
            if (seen_ihdr || read_ihdr(p, data, len) < 0)
                return -1;
            seen_ihdr = 1;
        } else if (is_type(type, "PLTE")) {
            if (read_plte(p, data, len) < 0)
                return -1;
        } else if (is_type(type, "tRNS")) {
            if (read_trns(p, data, len) < 0)
                return -1;
        } else if (is_type(type, "iCCP")) {
            if (p->icc != NULL || p->n_palette > 0 || read_iccp(p, inflater, data, len) < 0)
                return -1;
        } else if (is_type(type, "tEXt")) {
            if (read_text(p, data, len) < 0)
                return -1;
        } else if (is_type(type, "zTXt") || is_type(type, "iTXt")) {
            return -1; /* text this does not carry over: libvips does */
        } else if (idat) {
            if (idat_done)
                return -1;
            seen_idat = 1;
            /* Over the chunk headers already read: the stream in one piece. */
            if (p->idat == NULL)
                p->idat = data;
            memmove(p->idat + p->idat_len, data, len);
            p->idat_len += len;
        } else if (is_type(type, "IEND")) {
            return p->idat_len > 0 && (p->colour != 3 || p->n_palette > 0) ? 0 : -1;
        } else if (!ancillary) {
            return -1; /* a critical chunk this does not know */
        }
    }
    return -1; /* no IEND: truncated */
}

/* Channels as stored, and as handed on after the expansions. */
static unsigned stored_channels(unsigned colour)
{
    static const unsigned n[7] = {1, 0, 3, 1, 2, 0, 4};
    return colour < 7 ? n[colour] : 0;
}

/* Bytes of one stored row, without its filter byte. */
static size_t stored_rowbytes(const png_t *p)
{
    return ((size_t)p->width * stored_channels(p->colour) * p->depth + 7) / 8;
}

static unsigned out_bands(const png_t *p)
{
    switch (p->colour) {
    case 0:
        return p->has_trns ? 2 : 1;
    case 2:
    case 3:
        return p->has_trns ? 4 : 3;
    default:
        return stored_channels(p->colour);
    }
}

static int paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

#ifdef __SSE2__
static __m128i abs16(__m128i v)
{
    return _mm_max_epi16(v, _mm_sub_epi16(_mm_setzero_si128(), v));
}

/* Paeth's predictor in each 16-bit lane, ties going to a, then b. */
static inline __attribute__((always_inline)) __m128i paeth16(__m128i a, __m128i b, __m128i c)
{
    __m128i ac = _mm_sub_epi16(a, c), bc = _mm_sub_epi16(b, c);
    __m128i pa = abs16(bc), pb = abs16(ac), pc = abs16(_mm_add_epi16(ac, bc));
    __m128i least = _mm_min_epi16(pa, _mm_min_epi16(pb, pc));
    __m128i use_a = _mm_cmpeq_epi16(pa, least);
    __m128i use_b = _mm_andnot_si128(use_a, _mm_cmpeq_epi16(pb, least));
    return _mm_or_si128(_mm_or_si128(_mm_and_si128(use_a, a), _mm_and_si128(use_b, b)),
                        _mm_andnot_si128(_mm_or_si128(use_a, use_b), c));
}

/* The pixel at base + at as a word. Four bytes are read even for 3-byte
 * pixels (the fourth lane is never stored) when they are inside the n
 * bytes from base: copying three into a word would go through the stack
 * and stall every pixel. */
static inline __attribute__((always_inline)) uint32_t
pixel_word(const unsigned char *base, size_t at, size_t n, const size_t bpp)
{
    uint32_t v = 0;
    /* Two copies of fixed sizes, each a single move. */
    if (at + 4 <= n)
        memcpy(&v, base + at, 4);
    else
        memcpy(&v, base + at, bpp);
    return v;
}

/* A pixel's bytes from the low end of v to p, from registers: a copy of
 * three bytes from a word would go through the stack. */
static inline __attribute__((always_inline)) void store_pixel(unsigned char *p, uint32_t v,
                                                              const size_t bpp)
{
    if (bpp == 4) {
        memcpy(p, &v, 4);
    } else {
        uint16_t low2 = (uint16_t)v;
        memcpy(p, &low2, 2);
        p[2] = (unsigned char)(v >> 16);
    }
}

/*
 * Paeth over pixels of 3 or 4 bytes, a pixel's bytes side by side in
 * 16-bit lanes: the filter chains each byte to the one a pixel to its
 * left, so the bytes of one pixel can go together. Most rows of a photo
 * saved by common tools use this filter.
 */
static inline __attribute__((always_inline)) void
paeth_pixels(unsigned char *row, const unsigned char *prior, size_t n, const size_t bpp)
{
    const __m128i zero = _mm_setzero_si128(), low = _mm_set1_epi16(0xff);
    __m128i a = zero, c = zero;
    for (size_t i = 0; i < n; i += bpp) {
        __m128i b = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)pixel_word(prior, i, n, bpp)), zero);
        __m128i x = _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)pixel_word(row, i, n, bpp)), zero);
        x = _mm_and_si128(_mm_add_epi16(x, paeth16(a, b, c)), low);
        store_pixel(row + i, (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(x, x)), bpp);
        a = x;
        c = b;
    }
}

/*
 * Paeth over two rows at once. The second row's pixel needs only the
 * first row's pixels above it and above-left, so the second row runs a
 * pixel behind, in the upper half of the same registers: the chain from
 * one pixel to the next, which bounds this filter, then yields two pixels
 * instead of one.
 */
static inline __attribute__((always_inline)) void paeth_two_rows(unsigned char *row0,
                                                                 unsigned char *row1,
                                                                 const unsigned char *prior,
                                                                 size_t n, const size_t bpp)
{
    const __m128i zero = _mm_setzero_si128(), low = _mm_set1_epi16(0xff);
    /* Lower half: row0 at i; upper half: row1 at i - bpp. */
    __m128i a = zero, c = zero;
    for (size_t i = 0; i <= n; i += bpp) {
        uint32_t up = i < n ? pixel_word(prior, i, n, bpp) : 0;
        uint32_t cur0 = i < n ? pixel_word(row0, i, n, bpp) : 0;
        uint32_t cur1 = i > 0 ? pixel_word(row1, i - bpp, n, bpp) : 0;
        /* Above row1's pixel is row0's last result, in a's lower half;
         * above-left, the b before. */
        __m128i b = _mm_unpacklo_epi64(_mm_unpacklo_epi8(_mm_cvtsi32_si128((int)up), zero), a);
        __m128i x = _mm_unpacklo_epi8(
            _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)cur0), _mm_cvtsi32_si128((int)cur1)), zero);
        x = _mm_and_si128(_mm_add_epi16(x, paeth16(a, b, c)), low);
        __m128i packed = _mm_packus_epi16(x, x);
        if (i < n)
            store_pixel(row0 + i, (uint32_t)_mm_cvtsi128_si32(packed), bpp);
        /* At i = 0 the upper half works on zeros and gives zeros: the
         * nothing to the left of row1's first pixel. */
        if (i > 0)
            store_pixel(row1 + i - bpp, (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(packed, 4)),
                        bpp);
        a = x;
        c = b;
    }
}
#endif

/*
 * Undoes the filters of two rows in one pass where both use Paeth on
 * 3- or 4-byte pixels, the common case in photos. line and next start
 * with their filter byte. 1 when done, 0 to leave both to unfilter().
 */
static int unfilter_paeth_pair(unsigned char *line, unsigned char *next, const unsigned char *prior,
                               size_t n, size_t bpp)
{
#ifdef __SSE2__
    if (line[0] != 4 || next[0] != 4 || (bpp != 3 && bpp != 4))
        return 0;
    if (bpp == 3)
        paeth_two_rows(line + 1, next + 1, prior, n, 3);
    else
        paeth_two_rows(line + 1, next + 1, prior, n, 4);
    return 1;
#else
    (void)line;
    (void)next;
    (void)prior;
    (void)n;
    (void)bpp;
    return 0;
#endif
}

/* Undoes a row's filter in place; prior is the row above, unfiltered
 * (zeros for the first). -1 on an unknown filter. */
static int unfilter(unsigned filter, unsigned char *row, const unsigned char *prior, size_t n,
                    size_t bpp)
{
    size_t i;
    switch (filter) {
    case 0:
        return 0;
    case 1:
        for (i = bpp; i < n; i++)
            row[i] = (unsigned char)(row[i] + row[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < n; i++)
            row[i] = (unsigned char)(row[i] + prior[i]);
        return 0;
    case 3:
        for (i = 0; i < bpp && i < n; i++)
            row[i] = (unsigned char)(row[i] + (prior[i] >> 1));
        for (; i < n; i++)
            row[i] = (unsigned char)(row[i] + (((unsigned)row[i - bpp] + prior[i]) >> 1));
        return 0;
    case 4:
#ifdef __SSE2__
        /* The pixel size a constant, so the copies are single moves. */
        if (bpp == 3 || bpp == 4) {
            if (bpp == 3)
                paeth_pixels(row, prior, n, 3);
            else
                paeth_pixels(row, prior, n, 4);
            return 0;
        }
#endif
        for (i = 0; i < bpp && i < n; i++)
            row[i] = (unsigned char)(row[i] + prior[i]);
        for (; i < n; i++)
            row[i] = (unsigned char)(row[i] + paeth(row[i - bpp], prior[i], prior[i - bpp]));
        return 0;
    default:
        return -1;
    }
}

/* One unfiltered row as 8-bit bands (see out_bands); -1 on a palette
 * index past the palette. */
static int expand(const png_t *p, const unsigned char *raw, unsigned char *out)
{
    uint32_t w = p->width;
    unsigned depth = p->depth, max = (1u << depth) - 1;
    switch (p->colour) {
    case 0:
    case 3:
        for (uint32_t x = 0; x < w; x++) {
            unsigned s;
            if (depth == 8) {
                s = raw[x];
            } else {
                size_t bit = (size_t)x * depth;
                s = (raw[bit / 8] >> (8 - depth - bit % 8)) & max;
            }
            if (p->colour == 0) {
                *out++ = (unsigned char)(s * 255 / max);
                if (p->has_trns)
                    *out++ = s == p->key[0] ? 0 : 255;
            } else {
                if (s >= p->n_palette)
                    return -1;
                memcpy(out, p->palette[s], p->has_trns ? 4 : 3);
                out += p->has_trns ? 4 : 3;
            }
        }
        return 0;
    case 2:
        if (!p->has_trns) {
            memcpy(out, raw, (size_t)w * 3);
            return 0;
        }
        for (uint32_t x = 0; x < w; x++, raw += 3, out += 4) {
            memcpy(out, raw, 3);
            out[3] = raw[0] == p->key[0] && raw[1] == p->key[1] && raw[2] == p->key[2] ? 0 : 255;
        }
        return 0;
    default:
        memcpy(out, raw, (size_t)w * stored_channels(p->colour));
        return 0;
    }
}

/* The largest whole factor leaving at least the margin times want. */
static unsigned box_factor(unsigned have, unsigned want)
{
    unsigned k = want > 0 ? have / (RESAMPLE_MARGIN * want) : 1;
    return k > 1 ? k : 1;
}

/*
 * Adds one row into the sums of its output row. Inlined for each band
 * count, so the compiler unrolls the band loops.
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
            /* In 64 bits: a sum near the 32-bit limit plus half the
             * divisor would wrap. */
            for (unsigned b = 0; b + 1 < bands; b++)
                out[b] = a > 0 ? (unsigned char)(((uint64_t)sum[b] + a / 2) / a) : 0;
            out[bands - 1] = (unsigned char)(((uint64_t)a + n / 2) / n);
        } else {
            for (unsigned b = 0; b < bands; b++)
                out[b] = (unsigned char)(((uint64_t)sum[b] + n / 2) / n);
        }
    }
}

/*
 * Unfilters, expands and box-shrinks every row of the inflated image
 * into pixels (out_w x out_h x bands). -1 declines.
 */
static int shrink(const png_t *p, unsigned char *raw, unsigned kx, unsigned ky,
                  unsigned char *pixels, unsigned out_w, unsigned out_h)
{
    uint32_t w = p->width, h = p->height;
    unsigned channels = stored_channels(p->colour), bands = out_bands(p);
    int alpha = bands == 2 || bands == 4;
    size_t rowbytes = stored_rowbytes(p);
    size_t bpp = (channels * p->depth + 7) / 8;
    /* Whole boxes, the filling split between the two edges, where
     * libvips' reduce will look for it (see NOTES). */
    unsigned gx = (out_w * kx - w) / 2, gy = (out_h * ky - h) / 2;
    size_t lead = (size_t)gx * bands, padded = (size_t)out_w * kx * bands;
    size_t out_stride = (size_t)out_w * bands, expanded = (size_t)w * bands;
    unsigned char *row = malloc(padded), *zeros = calloc(rowbytes, 1);
    uint32_t *sum = calloc(out_stride, sizeof *sum);
    int rc = row != NULL && sum != NULL && zeros != NULL ? 0 : -1;
    const unsigned char *prior = zeros;
    int done = 0; /* the row at y was unfiltered with the one above */
    for (uint32_t y = 0; rc == 0 && y < h; y++) {
        unsigned char *line = raw + (size_t)y * (rowbytes + 1);
        if (done)
            done = 0;
        else if (y + 1 < h && unfilter_paeth_pair(line, line + rowbytes + 1, prior, rowbytes, bpp))
            done = 1;
        else if (unfilter(line[0], line + 1, prior, rowbytes, bpp) < 0)
            rc = -1;
        if (rc < 0 || expand(p, line + 1, row + lead) < 0) {
            rc = -1;
            break;
        }
        prior = line + 1;
        for (size_t at = 0; at < lead; at += bands)
            memcpy(row + at, row + lead, bands);
        for (size_t at = lead + expanded; at < padded; at += bands)
            memcpy(row + at, row + lead + expanded - bands, bands);
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
    free(row);
    free(zeros);
    free(sum);
    return rc;
}

/* The image shrunk from the parsed file, or NULL to decline. */
static VipsImage *decode(png_t *p, ib_fastpng_ctx_t *ctx, unsigned min_w, unsigned min_h,
                         unsigned *xshrink, unsigned *yshrink)
{
    unsigned kx = box_factor(p->width, min_w), ky = box_factor(p->height, min_h);
    /* Sums of 255 x 255 per sample must fit 32 bits: bigger boxes, for
     * thumbnails of a tiny fraction of a huge image, go to libvips. */
    if (kx < 2 || ky < 2 || (uint64_t)kx * ky > UINT32_MAX / (255 * 255))
        return NULL;

    size_t rowbytes = stored_rowbytes(p);
    if ((rowbytes + 1) > SIZE_MAX / p->height)
        return NULL;
    size_t raw_len = (rowbytes + 1) * p->height, got = 0, used = 0;
    unsigned char *raw = fits_budget(ctx, p->len, raw_len) ? raw_buffer(ctx, raw_len) : NULL;
    if (raw == NULL)
        return NULL;
    if (libdeflate_zlib_decompress_ex(ctx->inflater, p->idat, p->idat_len, raw, raw_len, &used,
                                      &got) != LIBDEFLATE_SUCCESS ||
        got != raw_len || used != p->idat_len)
        return NULL;

    unsigned bands = out_bands(p);
    unsigned out_w = (p->width + kx - 1) / kx, out_h = (p->height + ky - 1) / ky;
    size_t out_len = (size_t)out_w * bands * out_h;
    unsigned char *pixels = malloc(out_len);
    if (pixels == NULL || shrink(p, raw, kx, ky, pixels, out_w, out_h) < 0) {
        free(pixels);
        return NULL;
    }
    VipsImage *im =
        ib_fastpath_image(pixels, out_len, NULL, out_w, out_h, bands, p->icc, p->icc_len);
    if (im == NULL)
        return NULL;
    /* What libvips' loader attaches and the default policy keeps. */
    for (unsigned i = 0; i < p->n_text; i++) {
        char name[128];
        snprintf(name, sizeof name, "png-comment-%u-%s", i, p->text[i]);
        vips_image_set_string(im, name, p->text[i] + strlen(p->text[i]) + 1);
    }
    if (p->colour == 3)
        vips_image_set_int(im, "palette-bit-depth", (int)p->depth);
    *xshrink = kx;
    *yshrink = ky;
    return im;
}

VipsImage *ib_fastpng_decode(ib_fastpng_ctx_t *ctx, unsigned char *file, size_t len, unsigned min_w,
                             unsigned min_h, unsigned *xshrink, unsigned *yshrink)
{
    png_t p;
    memset(&p, 0, sizeof p);
    p.file = file;
    p.len = len;
    VipsImage *im = NULL;
    if (parse(&p, ctx->inflater) == 0)
        im = decode(&p, ctx, min_w, min_h, xshrink, yshrink);
    trim_buffer(ctx);
    free(p.icc);
    for (unsigned i = 0; i < p.n_text; i++)
        free(p.text[i]);
    return im;
}

VipsImage *ib_fastpng_load(ib_fastpng_ctx_t *ctx, const char *path, unsigned min_w, unsigned min_h,
                           unsigned *xshrink, unsigned *yshrink)
{
    /* Read, not mapped: a file cut short while it is read must fail
     * here, not kill the worker with SIGBUS. Half the budget at most:
     * the file counts against it (see NOTES). */
    size_t len = 0, max = IB_FASTPATH_MAX_FILE;
    if (ctx->budget > 0 && ctx->budget / 2 < max)
        max = (size_t)(ctx->budget / 2);
    unsigned char *file = ib_read_file(path, max, &len);
    if (file == NULL)
        return NULL;
    VipsImage *im = ib_fastpng_decode(ctx, file, len, min_w, min_h, xshrink, yshrink);
    free(file);
    return im;
}
