/*
 * Filters, resize modes, formats and metadata on real pixels: the built
 * imgbatch ($IMGBATCH) runs each op on inputs made here, and what it wrote
 * is decoded with libpng/libjpeg (tests/decode.c) and compared with the
 * input transformed in plain C below, not with anything libvips computed.
 *
 * NOTES
 * - Geometric ops (flip, flop, rotations by right angles, crops, pad),
 *   negate and threshold must be exact. Ops whose exact numbers belong to
 *   the implementation (blur, sharpen, sepia, ...) are checked by direction
 *   and size of the change a user would see.
 * - Crop placement with a gravity is ImageMagick's, as measured with
 *   `convert -size 64x48 xc: -gravity G -crop 21x15+0+0 -format %X%Y info:`
 *   (ImageMagick 6.9.11-60): it centres with W/2 - w/2 in whole pixels.
 * - The corpus tests use ../shared/corpus (IB_SHARED); without it they say
 *   so on stderr and skip. Reference colours for the corpus were measured
 *   once with ImageMagick and are written down next to each check.
 * - WebP outputs are decoded with dwebp when it is installed, else with
 *   ImageMagick's convert (libwebp as well, not libvips); with neither, the
 *   check says so and skips.
 * - Every run gets its own output directory and capture files under one
 *   mkdtemp() root, removed at the end (IB_KEEP_TMP keeps it).
 */
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "decode.h"
#include "harness.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The few bits of arithmetic needed, without libm (tests link only what
 * decode_dep brings). */
static double dabs(double v)
{
    return v < 0 ? -v : v;
}

/* Square root by Newton's method; 0 for v <= 0. */
static double root2(double v)
{
    if (v <= 0)
        return 0;
    double r = v > 1 ? v : 1;
    for (int i = 0; i < 100; i++)
        r = (r + v / r) / 2;
    return r;
}

/* x^(1/2.2) for x in [0, 1]: 1/2.2 is 5/11, so y solves y^11 = x^5,
 * found by bisection. */
static double gamma_2_2(double x)
{
    double x5 = x * x * x * x * x, lo = 0, hi = 1;
    for (int i = 0; i < 60; i++) {
        double y = (lo + hi) / 2, y11 = 1;
        for (int k = 0; k < 11; k++)
            y11 *= y;
        if (y11 < x5)
            lo = y;
        else
            hi = y;
    }
    return (lo + hi) / 2;
}

/* A triangle wave of period 1 between -1 and 1. */
static double wave(double t)
{
    double f = t - (double)(long)t;
    if (f < 0)
        f += 1;
    return f < 0.5 ? 4 * f - 1 : 3 - 4 * f;
}

/* The main test picture: every pixel's red and green say where it is, so
 * any mirror, turn or shifted window shows; blue is busy. */
#define PAT_W 64
#define PAT_H 48

typedef struct {
    ib_test_cli_t cli; /* first: the harness's fixtures take it for all */
    char corpus[PATH_MAX];
    int corpus_missing;
    char pattern[PATH_MAX]; /* pattern.png, PAT_W x PAT_H RGB */
    ib_test_image_t pat;
} px_t;

/* An op and the colour it paints with (a pad, a rotation's background). */
typedef struct {
    const char *op;
    unsigned char rgb[3];
} op_colour_t;

/* ---- small helpers ---- */

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void write_png(const char *path, const ib_test_image_t *img)
{
    char err[512];
    if (ib_test_write_png(path, img, err, sizeof err) < 0)
        fail_msg("%s", err);
}

static void decode(const char *path, ib_test_image_t *img)
{
    char err[512];
    if (ib_test_decode(path, img, err, sizeof err) < 0)
        fail_msg("%s", err);
}

/* ---- running programs ---- */

typedef struct {
    ib_test_run_t run;
    char dir[PATH_MAX]; /* a fresh output directory for imgbatch */
} run_t;

/* Runs imgbatch with args (NULL-terminated); "{OUT}" stands for the run's
 * own output directory. Fails the test unless it exits want. */
static void run_list(px_t *t, run_t *r, int want, const char *const *args)
{
    ib_test_args_t a;
    ib_test_cli_files(&t->cli, &r->run);
    ib_test_path_fmt(r->dir, "%s/out%u", t->cli.root, t->cli.n_runs);
    ib_test_args_start(&a, t->cli.bin);
    for (; *args != NULL; args++)
        ib_test_args_add(&a, strcmp(*args, "{OUT}") == 0 ? r->dir : *args, NULL);
    ib_test_run(&r->run, a.v, NULL, 60);
    ib_test_expect_exit(&r->run, want, "imgbatch");
}

#define MAX_ARGS 32

static void run_args(px_t *t, run_t *r, int want, ...)
{
    const char *args[MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, want);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n < MAX_ARGS);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    run_list(t, r, want, args);
}

#define run(t, r, want, ...) run_args((t), (r), (want), __VA_ARGS__, (const char *)NULL)

/* Runs `imgbatch IN -o OUT -f OP -F png -q` and decodes OUT/STEM.png. */
static void run_op(px_t *t, const char *in, const char *op, ib_test_image_t *img)
{
    run_t r;
    char out[PATH_MAX];
    run(t, &r, 0, in, "-o", "{OUT}", "-f", op, "-F", "png", "-q", "-j", "1");
    const char *slash = strrchr(in, '/'), *base = slash != NULL ? slash + 1 : in;
    const char *dot = strrchr(base, '.');
    ib_test_path_fmt(out, "%s/%.*s.png", r.dir,
                     (int)(dot != NULL ? dot - base : (long)strlen(base)), base);
    char err[512];
    if (ib_test_decode_png(out, img, err, sizeof err) < 0) {
        ib_test_run_show(&r.run, NULL);
        fail_msg("-f %s: %s", op, err);
    }
}

/* The JSON line of the (first) file event of a run into line, parsed
 * into ev; every stdout line must be a JSON object. */
#define LINE_MAX_LEN 8192

static void file_event(const run_t *r, char *line, ib_test_event_t *ev)
{
    unsigned char *text = (unsigned char *)ib_test_try_slurp(r->run.out, NULL);
    assert_non_null(text);
    char bad[LINE_MAX_LEN] = "", err[512] = "";
    line[0] = '\0';
    char *save = NULL;
    for (char *l = strtok_r((char *)text, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        ib_test_event_t tmp;
        if (ib_test_event_parse(l, strlen(l), &tmp, err, sizeof err) < 0) {
            if (bad[0] == '\0')
                snprintf(bad, sizeof bad, "%s", l);
            continue;
        }
        if (line[0] == '\0' && tmp.event != NULL && strcmp(tmp.event, "file") == 0)
            snprintf(line, LINE_MAX_LEN, "%s", l);
        ib_test_event_free(&tmp);
    }
    test_free(text);
    if (bad[0] != '\0')
        fail_msg("stdout line is not a JSON object: %s\n  %s", err, bad);
    if (line[0] == '\0') {
        ib_test_run_show(&r->run, NULL);
        fail_msg("no file event on stdout");
    }
    if (ib_test_event_parse(line, strlen(line), ev, err, sizeof err) < 0)
        fail_msg("%s: %s", err, line);
}

/* ---- reading what is in a file, byte by byte ---- */

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* What an EXIF block holds that the tests look at. */
typedef struct {
    int present;
    int orientation; /* IFD0 tag 0x0112, -1 if absent */
    int camera;      /* IFD0 Make (0x010f) or Model (0x0110) */
    int thumbnail;   /* an embedded JPEG (the EXIF thumbnail) */
} exif_t;

/* Reads a TIFF-structured EXIF block, which may start with "Exif\0\0". */
static void exif_read(const unsigned char *p, size_t n, exif_t *e)
{
    memset(e, 0, sizeof *e);
    e->present = 1;
    e->orientation = -1;
    for (size_t i = 0; i + 3 <= n; i++)
        if (p[i] == 0xff && p[i + 1] == 0xd8 && p[i + 2] == 0xff)
            e->thumbnail = 1;
    if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0)
        p += 6, n -= 6;
    if (n < 8)
        return;
    int le = p[0] == 'I' && p[1] == 'I';
    if (!le && !(p[0] == 'M' && p[1] == 'M'))
        return;
#define U16(q) (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 : be16(q))
#define U32(q)                                                                                     \
    (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 | (unsigned)(q)[2] << 16 |                      \
              (unsigned)(q)[3] << 24                                                               \
        : be32(q))
    size_t ifd = U32(p + 4);
    if (U16(p + 2) != 42 || ifd + 2 > n)
        return;
    unsigned count = U16(p + ifd);
    for (unsigned i = 0; i < count; i++) {
        size_t at = ifd + 2 + (size_t)i * 12;
        if (at + 12 > n)
            return;
        unsigned tag = U16(p + at);
        if (tag == 0x0112)
            e->orientation = (int)U16(p + at + 8);
        else if (tag == 0x010f || tag == 0x0110)
            e->camera = 1;
    }
#undef U16
#undef U32
}

typedef struct {
    int ok;
    unsigned width, height;
    int depth, color_type, interlace;
    int has_iccp, exif_chunks;
    exif_t exif; /* the first eXIf */
} png_info_t;

/* The bytes of a file that must start with the signature sig and hold at
 * least min bytes; what names the format in the failure. */
static unsigned char *read_signed(const char *path, const char *sig, size_t min, size_t *n,
                                  const char *what)
{
    unsigned char *d = (unsigned char *)ib_test_slurp(path, n);
    if (*n < min || memcmp(d, sig, strlen(sig)) != 0) {
        test_free(d);
        fail_msg("%s is not a %s", path, what);
    }
    return d;
}

static void png_info(const char *path, png_info_t *info)
{
    size_t n;
    unsigned char *d = read_signed(path, "\x89PNG\r\n\x1a\n", 33, &n, "PNG");
    memset(info, 0, sizeof *info);
    for (size_t i = 8; i + 12 <= n;) {
        size_t len = be32(d + i);
        const unsigned char *type = d + i + 4, *data = d + i + 8;
        if (i + 12 + len > n)
            break;
        if (memcmp(type, "IHDR", 4) == 0 && len == 13) {
            info->width = be32(data);
            info->height = be32(data + 4);
            info->depth = data[8];
            info->color_type = data[9];
            info->interlace = data[12];
            info->ok = 1;
        } else if (memcmp(type, "iCCP", 4) == 0) {
            info->has_iccp = 1;
        } else if (memcmp(type, "eXIf", 4) == 0) {
            if (info->exif_chunks++ == 0)
                exif_read(data, len, &info->exif);
        }
        i += 12 + len;
    }
    test_free(d);
    if (!info->ok)
        fail_msg("%s has no IHDR", path);
}

typedef struct {
    int sof;        /* the frame marker: 0xc0 baseline, 0xc2 progressive, ... */
    int precision;  /* bits per sample */
    int components; /* 3 for YCbCr, 4 for CMYK */
    unsigned width, height;
    int has_icc;
    exif_t exif;
    char icc_desc[64]; /* the profile's 'desc' text, "" if none found */
} jpeg_info_t;

/* The ICC profile's description, good enough to tell sRGB from others. */
static void icc_description(const unsigned char *p, size_t n, char *out, size_t outlen)
{
    out[0] = '\0';
    if (n < 132)
        return;
    unsigned tags = be32(p + 128);
    for (unsigned i = 0; i < tags && 132 + (size_t)(i + 1) * 12 <= n; i++) {
        const unsigned char *t = p + 132 + (size_t)i * 12;
        size_t off = be32(t + 4), len = be32(t + 8);
        if (memcmp(t, "desc", 4) != 0 || off + len > n || len < 12)
            continue;
        const unsigned char *d = p + off;
        if (memcmp(d, "desc", 4) == 0) { /* v2: ASCII count then text */
            size_t count = be32(d + 8);
            if (count > len - 12)
                count = len - 12;
            snprintf(out, outlen, "%.*s", (int)count, (const char *)d + 12);
        } else if (memcmp(d, "mluc", 4) == 0 && len >= 28) { /* v4: UTF-16BE */
            size_t slen = be32(d + 20), soff = be32(d + 24), o = 0;
            for (size_t k = 0; k + 1 < slen && soff + k + 1 < len && o + 1 < outlen; k += 2)
                out[o++] = d[soff + k] == 0 && d[soff + k + 1] < 0x80 ? (char)d[soff + k + 1] : '?';
            out[o] = '\0';
        }
        return;
    }
}

static void jpeg_info(const char *path, jpeg_info_t *info)
{
    size_t n;
    unsigned char *d = read_signed(path, "\xff\xd8", 4, &n, "JPEG");
    memset(info, 0, sizeof *info);
    size_t i = 2;
    while (i + 4 <= n) {
        if (d[i] != 0xff) {
            test_free(d);
            fail_msg("%s: no marker at byte %zu", path, i);
        }
        int m = d[i + 1];
        if (m == 0xff) {
            i++;
            continue;
        }
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
            i += 2;
            continue;
        }
        size_t len = be16(d + i + 2);
        const unsigned char *seg = d + i + 4;
        if (len < 2 || i + 2 + len > n)
            break;
        size_t slen = len - 2;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc && slen >= 6) {
            info->sof = m;
            info->precision = seg[0];
            info->height = be16(seg + 1);
            info->width = be16(seg + 3);
            info->components = seg[5];
        } else if (m == 0xe1 && slen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
            exif_read(seg, slen, &info->exif);
        } else if (m == 0xe2 && slen >= 14 && memcmp(seg, "ICC_PROFILE\0", 12) == 0) {
            /* Only the first chunk is read: the header and tag table are
             * at the start of the profile. */
            if (!info->has_icc)
                icc_description(seg + 14, slen - 14, info->icc_desc, sizeof info->icc_desc);
            info->has_icc = 1;
        } else if (m == 0xda) {
            break;
        }
        i += 2 + len;
    }
    test_free(d);
    if (info->sof == 0)
        fail_msg("%s has no frame header (SOFn) before its scan", path);
}

typedef struct {
    unsigned width, height; /* the logical screen */
    unsigned frames;
    unsigned max_w, max_h; /* the largest frame */
} gif_info_t;

/* Walks a GIF's blocks; -1 on anything malformed. */
static int gif_walk(const unsigned char *d, size_t n, gif_info_t *info)
{
    memset(info, 0, sizeof *info);
    if (n < 13 || (memcmp(d, "GIF87a", 6) != 0 && memcmp(d, "GIF89a", 6) != 0))
        return -1;
    info->width = d[6] | d[7] << 8;
    info->height = d[8] | d[9] << 8;
    size_t i = 13;
    if (d[10] & 0x80)
        i += 3u << ((d[10] & 7) + 1);
    while (i < n) {
        int b = d[i++];
        if (b == 0x3b)
            return 0;
        if (b == 0x21) {
            i++; /* the label */
        } else if (b == 0x2c) {
            if (i + 9 > n)
                return -1;
            unsigned w = d[i + 4] | d[i + 5] << 8, h = d[i + 6] | d[i + 7] << 8;
            int packed = d[i + 8];
            i += 9;
            if (packed & 0x80)
                i += 3u << ((packed & 7) + 1);
            i++; /* LZW minimum code size */
            info->frames++;
            if (w > info->max_w)
                info->max_w = w;
            if (h > info->max_h)
                info->max_h = h;
        } else {
            return -1;
        }
        /* data sub-blocks, up to the empty one */
        while (i < n && d[i] != 0)
            i += (size_t)d[i] + 1;
        i++;
    }
    return -1;
}

/* ---- the pictures ---- */

static void make_pattern(ib_test_image_t *img)
{
    if (ib_test_image_alloc(img, PAT_W, PAT_H, 3) < 0)
        fail_msg("out of memory");
    for (unsigned y = 0; y < PAT_H; y++)
        for (unsigned x = 0; x < PAT_W; x++) {
            unsigned char *p = ib_test_pixel(img, x, y);
            p[0] = (unsigned char)(x * 4);
            p[1] = (unsigned char)(y * 5);
            p[2] = (unsigned char)((x * 37 + y * 101) & 0xff);
        }
}

/* A photo-like picture for the encoders: smooth areas and detail. */
static void make_photo(ib_test_image_t *img, unsigned w, unsigned h)
{
    assert_int_equal(ib_test_image_alloc(img, w, h, 3), 0);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            unsigned char *p = ib_test_pixel(img, x, y);
            double fx = (double)x / w, fy = (double)y / h;
            p[0] = (unsigned char)(128 + 100 * wave(fx * 1.4 + fy * 0.5));
            p[1] = (unsigned char)(128 + 100 * wave(fy * 1.1 - fx * 0.3 + 0.25));
            p[2] = (unsigned char)((x * 13 + y * 7) % 97 + 80);
        }
}

/* A picture whose grey level (R = G = B) is f(x, y). */
static void make_grey(ib_test_image_t *img, unsigned w, unsigned h,
                      unsigned char (*f)(unsigned x, unsigned y))
{
    if (ib_test_image_alloc(img, w, h, 3) < 0)
        fail_msg("out of memory");
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            memset(ib_test_pixel(img, x, y), f(x, y), 3);
}

/* The expected image of a geometric op: out(x, y) = in(map(x, y)). */
typedef void (*map_fn)(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy);

static void expect_mapped(const ib_test_image_t *in, const ib_test_image_t *out, unsigned want_w,
                          unsigned want_h, map_fn map, const char *what)
{
    if (out->width != want_w || out->height != want_h)
        fail_msg("%s: %ux%u, expected %ux%u", what, out->width, out->height, want_w, want_h);
    assert_int_equal(out->channels, in->channels);
    unsigned bad = 0;
    for (unsigned y = 0; y < out->height; y++)
        for (unsigned x = 0; x < out->width; x++) {
            unsigned sx, sy;
            map(x, y, in->width, in->height, &sx, &sy);
            const unsigned char *p = ib_test_pixel(out, x, y), *q = ib_test_pixel(in, sx, sy);
            if (memcmp(p, q, in->channels) != 0 && bad++ == 0)
                print_message("%s: pixel (%u,%u) is (%u,%u,%u), expected input (%u,%u) = "
                              "(%u,%u,%u)\n",
                              what, x, y, p[0], p[1], p[2], sx, sy, q[0], q[1], q[2]);
        }
    if (bad > 0)
        fail_msg("%s: %u of %u pixels differ from the input transformed", what, bad,
                 out->width * out->height);
}

static void map_flip(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)w;
    *sx = x, *sy = h - 1 - y;
}

static void map_flop(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)h;
    *sx = w - 1 - x, *sy = y;
}

/* Clockwise: the output's top row is the input's left column, bottom up. */
static void map_rot90(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)w;
    *sx = y, *sy = h - 1 - x;
}

static void map_rot180(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    *sx = w - 1 - x, *sy = h - 1 - y;
}

static void map_rot270(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)h;
    *sx = w - 1 - y, *sy = x;
}

/* Crop windows reach the map through these (set just before the call). */
static unsigned crop_x0, crop_y0;

static void map_crop(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)w;
    (void)h;
    *sx = x + crop_x0, *sy = y + crop_y0;
}

static void map_same(unsigned x, unsigned y, unsigned w, unsigned h, unsigned *sx, unsigned *sy)
{
    (void)w;
    (void)h;
    *sx = x, *sy = y;
}

/* The image in the file at path (what names it) is w x h, each pixel the
 * pattern's where map puts it. */
static void expect_pattern_file(const px_t *t, const char *path, unsigned w, unsigned h, map_fn map,
                                const char *what)
{
    ib_test_image_t img;
    decode(path, &img);
    expect_mapped(&t->pat, &img, w, h, map, what);
    ib_test_image_free(&img);
}

/* The same for the output of `-f op` on the pattern. */
static void expect_op(px_t *t, const char *op, unsigned w, unsigned h, map_fn map)
{
    ib_test_image_t out;
    run_op(t, t->pattern, op, &out);
    expect_mapped(&t->pat, &out, w, h, map, op);
    ib_test_image_free(&out);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    px_t *t = ib_test_cli_new(sizeof *t);
    *state = t;
    if (t == NULL)
        return -1;
    if (ib_test_find_corpus(t->corpus) < 0) {
        fprintf(stderr, "pixels: corpus %s not found: the corpus tests will be SKIPPED\n",
                t->corpus);
        t->corpus_missing = 1;
    }
    char err[512];
    if (ib_test_try_path_fmt(t->pattern, "%s/pattern.png", t->cli.root) < 0) {
        fprintf(stderr, "pixels: %s: path too long\n", t->cli.root);
        return -1;
    }
    make_pattern(&t->pat);
    if (ib_test_write_png(t->pattern, &t->pat, err, sizeof err) < 0) {
        fprintf(stderr, "pixels: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    px_t *t = *state;
    if (t != NULL)
        ib_test_image_free(&t->pat);
    return ib_test_cli_group_teardown(state);
}

/* A path under the test's root. */
static void in_root(const px_t *t, char *out, const char *name)
{
    ib_test_path_fmt(out, "%s/%s", t->cli.root, name);
}

/* ---- exact ops ---- */

static void flip_and_flop(void **state)
{
    px_t *t = *state;
    expect_op(t, "flip", PAT_W, PAT_H, map_flip);
    expect_op(t, "flop", PAT_W, PAT_H, map_flop);
}

/* -f given twice appends: flip then flop is a half turn. */
static void repeated_filter_options_append(void **state)
{
    px_t *t = *state;
    run_t r;
    char out[PATH_MAX];
    ib_test_image_t img;
    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-f", "flip", "-f", "flop", "-F", "png", "-q", "-j",
        "1");
    ib_test_path_fmt(out, "%s/pattern.png", r.dir);
    expect_pattern_file(t, out, PAT_W, PAT_H, map_rot180, "-f flip -f flop");
    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-f", "crop=40x30+0+0", "-f", "rotate=90", "-F", "png",
        "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.png", r.dir);
    decode(out, &img);
    if (img.width != 30 || img.height != 40)
        fail_msg("-f crop=40x30+0+0 -f rotate=90: %ux%u, expected 30x40", img.width, img.height);
    ib_test_image_free(&img);
}

/* Clockwise, as ImageMagick's -rotate; negative and over-a-turn angles
 * land on the same right angle. */
static void rotate_right_angles(void **state)
{
    px_t *t = *state;
    static const struct {
        const char *op;
        map_fn map;
        int swaps;
    } cases[] = {
        {"rotate=90", map_rot90, 1},   {"rotate=180", map_rot180, 0}, {"rotate=270", map_rot270, 1},
        {"rotate=-90", map_rot270, 1}, {"rotate=450", map_rot90, 1},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++)
        expect_op(t, cases[i].op, cases[i].swaps ? PAT_H : PAT_W, cases[i].swaps ? PAT_W : PAT_H,
                  cases[i].map);
}

static void crop_with_offsets(void **state)
{
    px_t *t = *state;
    static const struct {
        const char *op;
        unsigned x, y, w, h;
    } cases[] = {
        {"crop=20x10+5+7", 5, 7, 20, 10},
        {"crop=20x10-5-3", 0, 0, 15, 7},     /* cut at the top left */
        {"crop=30x30+50+40", 50, 40, 14, 8}, /* cut at the bottom right */
        {"crop=1x1+63+47", 63, 47, 1, 1},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        crop_x0 = cases[i].x, crop_y0 = cases[i].y;
        expect_op(t, cases[i].op, cases[i].w, cases[i].h, map_crop);
    }
}

/* A window that misses the image fails that file, with a message. */
static void crop_outside_fails(void **state)
{
    px_t *t = *state;
    run_t r;
    ib_test_event_t ev;
    run(t, &r, 1, t->pattern, "-o", "{OUT}", "-f", "crop=10x10+100+100", "-F", "png", "--json",
        "-q", "-j", "1");
    char line[LINE_MAX_LEN];
    file_event(&r, line, &ev);
    assert_string_equal(ev.status, "failed");
    assert_non_null(ev.error_message);
    if (strstr(ev.error_message, t->pattern) == NULL || strstr(ev.error_message, "crop") == NULL)
        fail_msg("the message does not name the file and the crop: %s", ev.error_message);
    ib_test_event_free(&ev);
}

/* Every compass gravity, where ImageMagick puts the window (NOTES). */
static void crop_with_gravities(void **state)
{
    px_t *t = *state;
    static const struct {
        const char *gravity;
        unsigned x, y;
    } cases[] = {
        {"northwest", 0, 0},  {"north", 22, 0},   {"northeast", 43, 0},
        {"west", 0, 17},      {"center", 22, 17}, {"east", 43, 17},
        {"southwest", 0, 33}, {"south", 22, 33},  {"southeast", 43, 33},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char op[64];
        snprintf(op, sizeof op, "crop=21x15:%s", cases[i].gravity);
        crop_x0 = cases[i].x, crop_y0 = cases[i].y;
        expect_op(t, op, 21, 15, map_crop);
    }
}

/* Smart crops choose the place from the pixels; the size is the user's. */
static void crop_attention_and_entropy(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    run_op(t, t->pattern, "crop=21x15:attention", &out);
    assert_int_equal(out.width, 21);
    assert_int_equal(out.height, 15);
    ib_test_image_free(&out);
    run_op(t, t->pattern, "crop=30x100:entropy", &out);
    assert_int_equal(out.width, 30);
    assert_int_equal(out.height, PAT_H);
    ib_test_image_free(&out);
}

static void negate_exact(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    run_op(t, t->pattern, "negate", &out);
    assert_int_equal(out.width, PAT_W);
    assert_int_equal(out.height, PAT_H);
    unsigned bad = 0;
    for (unsigned y = 0; y < PAT_H; y++)
        for (unsigned x = 0; x < PAT_W; x++)
            for (unsigned c = 0; c < 3; c++) {
                unsigned v = ib_test_pixel(&out, x, y)[c], in = ib_test_pixel(&t->pat, x, y)[c];
                if (v != 255 - in && bad++ == 0)
                    print_message("negate: (%u,%u)[%u] is %u, expected 255 - %u\n", x, y, c, v, in);
            }
    ib_test_image_free(&out);
    assert_int_equal(bad, 0);
}

static unsigned char grey_ramp(unsigned x, unsigned y)
{
    return (unsigned char)((x * 4 + y) & 0xff);
}

/* Black below the level, white from it up; a level within one of a
 * pixel's grey may go either way (the grey is computed, then rounded). */
static void threshold_exact(void **state)
{
    px_t *t = *state;
    static const struct {
        const char *op;
        double level;
    } cases[] = {
        {"threshold=100", 100},
        {"threshold=50%", 127.5},
        {"threshold=0", 0},
    };
    ib_test_image_t in;
    char path[PATH_MAX];
    make_grey(&in, PAT_W, PAT_H, grey_ramp);
    in_root(t, path, "ramp.png");
    write_png(path, &in);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_test_image_t out;
        unsigned bad = 0, black = 0, white = 0;
        run_op(t, path, cases[i].op, &out);
        assert_int_equal(out.width, PAT_W);
        assert_int_equal(out.height, PAT_H);
        for (unsigned y = 0; y < PAT_H; y++)
            for (unsigned x = 0; x < PAT_W; x++) {
                const unsigned char *p = ib_test_pixel(&out, x, y);
                double v = ib_test_pixel(&in, x, y)[0];
                int want = v >= cases[i].level ? 255 : 0;
                black += p[0] == 0;
                white += p[0] == 255;
                if (dabs(v - cases[i].level) <= 1)
                    continue;
                if ((p[0] != want || p[1] != want || p[2] != want) && bad++ == 0)
                    print_message("%s: (%u,%u) grey %g gave (%u,%u,%u), expected %d\n", cases[i].op,
                                  x, y, v, p[0], p[1], p[2], want);
            }
        ib_test_image_free(&out);
        if (bad > 0)
            fail_msg("%s: %u pixels on the wrong side", cases[i].op, bad);
        assert_int_equal(black + white, PAT_W * PAT_H);
    }
    ib_test_image_free(&in);
}

/* The image centred on the canvas, the rest in the colour. Margins here
 * are odd (7 and 5 px): 3 before and 4 after across, 2 and 3 down, the
 * same as `convert -gravity center -background C -extent 71x53`. */
static void pad_exact(void **state)
{
    px_t *t = *state;
    static const op_colour_t cases[] = {
        {"pad=71x53:#123456", {0x12, 0x34, 0x56}},
        {"pad=71x53", {255, 255, 255}},
        {"pad=71x53:red", {255, 0, 0}},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_test_image_t out;
        unsigned bad = 0;
        run_op(t, t->pattern, cases[i].op, &out);
        if (out.width != 71 || out.height != 53)
            fail_msg("%s: %ux%u, expected 71x53", cases[i].op, out.width, out.height);
        assert_int_equal(out.channels, 3);
        for (unsigned y = 0; y < out.height; y++)
            for (unsigned x = 0; x < out.width; x++) {
                const unsigned char *p = ib_test_pixel(&out, x, y), *want = cases[i].rgb;
                if (x >= 3 && x < 3 + PAT_W && y >= 2 && y < 2 + PAT_H)
                    want = ib_test_pixel(&t->pat, x - 3, y - 2);
                if (memcmp(p, want, 3) != 0 && bad++ == 0)
                    print_message("%s: (%u,%u) is (%u,%u,%u), expected (%u,%u,%u)\n", cases[i].op,
                                  x, y, p[0], p[1], p[2], want[0], want[1], want[2]);
            }
        ib_test_image_free(&out);
        if (bad > 0)
            fail_msg("%s: %u pixels off", cases[i].op, bad);
    }
    /* A canvas smaller than the image leaves it as it is. */
    expect_op(t, "pad=10x10:red", PAT_W, PAT_H, map_same);
}

/* An RGBA picture: alpha 0 on the left third, 128 in the middle, 255 on
 * the right; flatten puts it on the colour and drops the alpha. */
static void flatten_on_colour(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, out;
    char path[PATH_MAX];
    assert_int_equal(ib_test_image_alloc(&in, 48, 16, 4), 0);
    for (unsigned y = 0; y < 16; y++)
        for (unsigned x = 0; x < 48; x++) {
            unsigned char *p = ib_test_pixel(&in, x, y);
            p[0] = (unsigned char)(200 - x), p[1] = (unsigned char)(y * 10), p[2] = 60;
            p[3] = x < 16 ? 0 : x < 32 ? 128 : 255;
        }
    in_root(t, path, "alpha.png");
    write_png(path, &in);
    run_op(t, path, "flatten=#00ff00", &out);
    assert_int_equal(out.width, 48);
    assert_int_equal(out.height, 16);
    if (out.channels != 3)
        fail_msg("flatten left %u channels, expected 3 (no alpha)", out.channels);
    unsigned bad = 0;
    for (unsigned y = 0; y < 16; y++)
        for (unsigned x = 0; x < 48; x++) {
            const unsigned char *p = ib_test_pixel(&out, x, y), *s = ib_test_pixel(&in, x, y);
            static const unsigned char green[3] = {0, 255, 0};
            double a = s[3] / 255.0;
            for (unsigned c = 0; c < 3; c++) {
                double want = s[c] * a + green[c] * (1 - a);
                if (dabs(p[c] - want) > 1 && bad++ == 0)
                    print_message("flatten: (%u,%u)[%u] alpha %u is %u, expected %.1f\n", x, y, c,
                                  s[3], p[c], want);
            }
        }
    ib_test_image_free(&out);
    ib_test_image_free(&in);
    if (bad > 0)
        fail_msg("flatten=#00ff00: %u samples off", bad);
}

/* The one file in a directory (its name into out); fails on none or more. */
static void only_file(const char *dir, char *out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("opendir(\"%s\") failed: %s", dir, strerror(errno));
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && n++ == 0)
            ib_test_path_fmt(out, "%s/%s", dir, e->d_name);
    closedir(d);
    if (n != 1)
        fail_msg("%s holds %u files, expected 1", dir, n);
}

/* The single output of a one-file run, as the JSON tells it. */
typedef struct {
    char path[PATH_MAX];
    long long width, height;
} output_t;

/* Reads the run's file event into out, after checking it is "ok" with
 * one output; the event is freed before anything can fail. */
static void only_output(const run_t *r, output_t *out)
{
    ib_test_event_t ev;
    char line[LINE_MAX_LEN];
    file_event(r, line, &ev);
    int ok = ev.status != NULL && strcmp(ev.status, "ok") == 0 && ev.n_outputs == 1 &&
             ev.outputs[0].path != NULL;
    if (ok) {
        snprintf(out->path, sizeof out->path, "%s", ev.outputs[0].path);
        out->width = ev.outputs[0].width;
        out->height = ev.outputs[0].height;
    }
    ib_test_event_free(&ev);
    if (!ok)
        fail_msg("expected an ok event with one output: %s", line);
}

/* --name {stem}_{w}x{h}.{ext}: the file on disk, the path in the JSON and
 * the size in both agree with the pixels. */
static void expect_sized_name(const run_t *r, const output_t *o, const char *stem, const char *what)
{
    char written[PATH_MAX], named[PATH_MAX];
    ib_test_image_t img;
    only_file(r->dir, written);
    decode(written, &img);
    ib_test_path_fmt(named, "%s/%s_%ux%u.png", r->dir, stem, img.width, img.height);
    unsigned w = img.width, h = img.height;
    ib_test_image_free(&img);
    if (strcmp(written, named) != 0 || strcmp(o->path, named) != 0 || o->width != w ||
        o->height != h)
        fail_msg("%s: the pixels are %ux%u, the file is %s, the JSON says %s at %lldx%lld", what, w,
                 h, written, o->path, o->width, o->height);
}

/* An arbitrary angle: the box that holds the turned image (its size the
 * same in the file, the JSON and the {w}x{h} of the name), the corners in
 * the background colour, and the picture turned clockwise. */
static void rotate_arbitrary_angle(void **state)
{
    px_t *t = *state;
    static const op_colour_t cases[] = {
        {"rotate=30", {255, 255, 255}},
        {"rotate=30:#ff0000", {255, 0, 0}},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        run_t r;
        output_t o;
        run(t, &r, 0, t->pattern, "-o", "{OUT}", "-f", cases[i].op, "-F", "png", "--json", "-q",
            "--name", "{stem}_{w}x{h}.{ext}", "-j", "1");
        only_output(&r, &o);
        expect_sized_name(&r, &o, "pattern", cases[i].op);
        ib_test_image_t out;
        decode(o.path, &out);
        /* 64x48 turned 30 degrees: 64 cos + 48 sin by 64 sin + 48 cos,
         * 79.4 x 73.6. */
        if (abs((int)out.width - 79) > 1 || abs((int)out.height - 74) > 1)
            fail_msg("%s: %ux%u, expected about 79x74", cases[i].op, out.width, out.height);
        const unsigned corners[4][2] = {
            {0, 0}, {out.width - 1, 0}, {0, out.height - 1}, {out.width - 1, out.height - 1}};
        for (size_t k = 0; k < 4; k++) {
            const unsigned char *p = ib_test_pixel(&out, corners[k][0], corners[k][1]);
            for (unsigned c = 0; c < 3; c++)
                if (abs(p[c] - cases[i].rgb[c]) > 1)
                    fail_msg("%s: corner (%u,%u) is (%u,%u,%u), expected the background "
                             "(%u,%u,%u)",
                             cases[i].op, corners[k][0], corners[k][1], p[0], p[1], p[2],
                             cases[i].rgb[0], cases[i].rgb[1], cases[i].rgb[2]);
        }
        /* The centre stays the centre; a point 20 px right of it moves down
         * (clockwise), to 20 cos 30 right and 20 sin 30 below. */
        double cx = out.width / 2.0, cy = out.height / 2.0;
        const unsigned char *mid = ib_test_pixel(&out, (unsigned)cx, (unsigned)cy);
        const unsigned char *right =
            ib_test_pixel(&out, (unsigned)(cx + 17.32), (unsigned)(cy + 10));
        const unsigned char *want_mid = ib_test_pixel(&t->pat, 32, 24);
        const unsigned char *want_right = ib_test_pixel(&t->pat, 52, 24);
        for (unsigned c = 0; c < 2; c++)
            if (abs(mid[c] - want_mid[c]) > 12 || abs(right[c] - want_right[c]) > 12)
                fail_msg("%s: centre (%u,%u,.) and the point right of it (%u,%u,.) are not the "
                         "input's (%u,%u,.) and (%u,%u,.) turned clockwise",
                         cases[i].op, mid[0], mid[1], right[0], right[1], want_mid[0], want_mid[1],
                         want_right[0], want_right[1]);
        ib_test_image_free(&out);
    }
}

/* With --no-autorotate the pixels stay as stored, unless the chain asks
 * for the autorotate op: then they are turned, and the size promised to
 * {w}x{h} (and --dry-run) must be the turned one. */
static void autorotate_op_without_autorotate(void **state)
{
    px_t *t = *state;
    ib_test_image_t img;
    char in[PATH_MAX], err[512];
    make_photo(&img, 96, 64);
    in_root(t, in, "side.jpg");
    if (ib_test_write_jpeg(in, &img, 92, 6, err, sizeof err) < 0)
        fail_msg("%s", err);
    ib_test_image_free(&img);
    static const struct {
        const char *what;
        int no_autorotate, op;
        unsigned w, h;
    } cases[] = {
        {"default", 0, 0, 64, 96},
        {"--no-autorotate", 1, 0, 96, 64},
        {"--no-autorotate -f autorotate", 1, 1, 64, 96},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        run_t r;
        output_t o;
        const char *args[16] = {
            in, "-o", "{OUT}", "-F", "png", "--json", "-q", "--name", "{stem}_{w}x{h}.{ext}"};
        int n = 9;
        if (cases[i].no_autorotate)
            args[n++] = "--no-autorotate";
        if (cases[i].op) {
            args[n++] = "-f";
            args[n++] = "autorotate";
        }
        args[n] = NULL;
        run_list(t, &r, 0, args);
        only_output(&r, &o);
        char written[PATH_MAX];
        only_file(r.dir, written);
        decode(written, &img);
        unsigned w = img.width, h = img.height;
        ib_test_image_free(&img);
        if (w != cases[i].w || h != cases[i].h)
            fail_msg("%s: %ux%u, expected %ux%u", cases[i].what, w, h, cases[i].w, cases[i].h);
        expect_sized_name(&r, &o, "side", cases[i].what);
    }
}

/* ---- ops judged by what they do ---- */

typedef struct {
    double mean[3];
    double luma_mean, luma_sd;
    double gradient; /* root mean square difference between neighbours */
} stats_t;

static double luma(const unsigned char *p)
{
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

static void measure(const ib_test_image_t *img, stats_t *s)
{
    memset(s, 0, sizeof *s);
    double n = (double)img->width * img->height, sum2 = 0, grad = 0;
    unsigned pairs = 0;
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            for (unsigned c = 0; c < 3; c++)
                s->mean[c] += p[c] / n;
            double l = luma(p);
            s->luma_mean += l / n;
            sum2 += l * l / n;
            if (x + 1 < img->width) {
                double d = l - luma(ib_test_pixel(img, x + 1, y));
                grad += d * d;
                pairs++;
            }
            if (y + 1 < img->height) {
                double d = l - luma(ib_test_pixel(img, x, y + 1));
                grad += d * d;
                pairs++;
            }
        }
    s->luma_sd = root2(sum2 - s->luma_mean * s->luma_mean);
    s->gradient = pairs ? root2(grad / pairs) : 0;
}

/* 8 px squares of two mid greys, tinted: edges to blur or sharpen, and
 * no sample near 0 or 255 where a change would be clipped. */
static void make_checker(ib_test_image_t *img)
{
    assert_int_equal(ib_test_image_alloc(img, 64, 64, 3), 0);
    for (unsigned y = 0; y < 64; y++)
        for (unsigned x = 0; x < 64; x++) {
            unsigned char *p = ib_test_pixel(img, x, y);
            int on = ((x / 8) + (y / 8)) & 1;
            p[0] = on ? 170 : 90;
            p[1] = on ? 160 : 85;
            p[2] = on ? 150 : 80;
        }
}

static void blur_and_sharpen(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, out;
    char path[PATH_MAX];
    stats_t s_in, s_blur, s_sharp;
    make_checker(&in);
    in_root(t, path, "checker.png");
    write_png(path, &in);
    measure(&in, &s_in);
    ib_test_image_free(&in);

    run_op(t, path, "blur=2", &out);
    assert_int_equal(out.width, 64);
    measure(&out, &s_blur);
    ib_test_image_free(&out);
    run_op(t, path, "sharpen", &out);
    assert_int_equal(out.width, 64);
    measure(&out, &s_sharp);
    ib_test_image_free(&out);

    print_message("gradient: input %.2f, blur=2 %.2f, sharpen %.2f\n", s_in.gradient,
                  s_blur.gradient, s_sharp.gradient);
    if (s_blur.gradient > s_in.gradient * 0.6)
        fail_msg("blur=2 kept the RMS gradient at %.2f of %.2f (expected well under 60%%)",
                 s_blur.gradient, s_in.gradient);
    if (s_sharp.gradient < s_in.gradient * 1.1)
        fail_msg("sharpen gave an RMS gradient of %.2f from %.2f (expected at least 10%% more)",
                 s_sharp.gradient, s_in.gradient);
    /* Neither moves the average colour. */
    for (unsigned c = 0; c < 3; c++)
        if (dabs(s_blur.mean[c] - s_in.mean[c]) > 5 || dabs(s_sharp.mean[c] - s_in.mean[c]) > 5)
            fail_msg("channel %u mean %.1f became %.1f (blur) / %.1f (sharpen)", c, s_in.mean[c],
                     s_blur.mean[c], s_sharp.mean[c]);
}

static void sepia_tones(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    stats_t s;
    run_op(t, t->pattern, "sepia", &out);
    measure(&out, &s);
    ib_test_image_free(&out);
    if (!(s.mean[0] > s.mean[1] + 5 && s.mean[1] > s.mean[2] + 5))
        fail_msg("sepia: mean R %.1f, G %.1f, B %.1f; expected R > G > B", s.mean[0], s.mean[1],
                 s.mean[2]);
}

static void modulate_saturation_and_brightness(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    stats_t s_in, s;
    measure(&t->pat, &s_in);

    run_op(t, t->pattern, "modulate=100:0", &out);
    unsigned bad = 0;
    for (unsigned y = 0; y < out.height; y++)
        for (unsigned x = 0; x < out.width; x++) {
            const unsigned char *p = ib_test_pixel(&out, x, y);
            if ((abs(p[0] - p[1]) > 1 || abs(p[1] - p[2]) > 1) && bad++ == 0)
                print_message("modulate=100:0: (%u,%u) is (%u,%u,%u), not grey\n", x, y, p[0], p[1],
                              p[2]);
        }
    measure(&out, &s);
    ib_test_image_free(&out);
    if (bad > 0)
        fail_msg("modulate=100:0: %u pixels keep some colour", bad);
    if (dabs(s.luma_mean - s_in.luma_mean) > 15)
        fail_msg("modulate=100:0 moved the mean luma from %.1f to %.1f", s_in.luma_mean,
                 s.luma_mean);

    run_op(t, t->pattern, "modulate=50", &out);
    measure(&out, &s);
    ib_test_image_free(&out);
    if (s.luma_mean > s_in.luma_mean * 0.8)
        fail_msg("modulate=50: mean luma %.1f from %.1f, expected much darker", s.luma_mean,
                 s_in.luma_mean);
}

static unsigned char grey_mid(unsigned x, unsigned y)
{
    return (unsigned char)(80 + (x + y * 64) * 96 / (64 * 48 - 1));
}

/* On greys from 80 to 176, where nothing clips. */
static void brightness_contrast_gamma(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, out;
    char path[PATH_MAX];
    stats_t s_in, s;
    make_grey(&in, 64, 48, grey_mid);
    in_root(t, path, "mid.png");
    write_png(path, &in);
    measure(&in, &s_in);

    run_op(t, path, "brightness=1.5", &out);
    measure(&out, &s);
    ib_test_image_free(&out);
    double ratio = s.luma_mean / s_in.luma_mean;
    if (ratio < 1.4 || ratio > 1.6)
        fail_msg("brightness=1.5: mean %.1f -> %.1f, x%.2f", s_in.luma_mean, s.luma_mean, ratio);

    run_op(t, path, "contrast=2", &out);
    measure(&out, &s);
    ib_test_image_free(&out);
    ratio = s.luma_sd / s_in.luma_sd;
    if (ratio < 1.8 || ratio > 2.2 || dabs(s.luma_mean - s_in.luma_mean) > 4)
        fail_msg("contrast=2: spread %.1f -> %.1f (x%.2f), mean %.1f -> %.1f", s_in.luma_sd,
                 s.luma_sd, ratio, s_in.luma_mean, s.luma_mean);
    run_op(t, path, "contrast=0.5", &out);
    measure(&out, &s);
    ib_test_image_free(&out);
    ratio = s.luma_sd / s_in.luma_sd;
    if (ratio < 0.4 || ratio > 0.6)
        fail_msg("contrast=0.5: spread %.1f -> %.1f (x%.2f)", s_in.luma_sd, s.luma_sd, ratio);

    /* gamma=2.2 lifts the mid-tones as ImageMagick's -gamma 2.2 does:
     * v -> 255 (v / 255)^(1 / 2.2); 128 becomes 186. */
    run_op(t, path, "gamma=2.2", &out);
    unsigned bad = 0;
    for (unsigned y = 0; y < 48; y++)
        for (unsigned x = 0; x < 64; x++) {
            double v = ib_test_pixel(&in, x, y)[0];
            double want = 255 * gamma_2_2(v / 255);
            const unsigned char *p = ib_test_pixel(&out, x, y);
            if (dabs(p[0] - want) > 2 && bad++ == 0)
                print_message("gamma=2.2: grey %g became %u, expected %.1f\n", v, p[0], want);
        }
    ib_test_image_free(&out);
    ib_test_image_free(&in);
    if (bad > 0)
        fail_msg("gamma=2.2: %u pixels off 255 (v/255)^(1/2.2)", bad);
}

static unsigned char grey_dull(unsigned x, unsigned y)
{
    (void)y;
    return (unsigned char)(100 + x * 40 / 63);
}

/* Greys from 100 to 140 come out spread over nearly 0..255, in order. */
static void normalize_stretches(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, out;
    char path[PATH_MAX];
    make_grey(&in, 64, 48, grey_dull);
    in_root(t, path, "dull.png");
    write_png(path, &in);
    run_op(t, path, "normalize", &out);
    unsigned lo = 255, hi = 0;
    for (unsigned y = 0; y < 48; y++)
        for (unsigned x = 0; x < 64; x++) {
            unsigned v = ib_test_pixel(&out, x, y)[0];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            if (x > 0 && v < ib_test_pixel(&out, x - 1, y)[0])
                fail_msg("normalize: (%u,%u) is %u, darker than its left neighbour %u", x, y, v,
                         ib_test_pixel(&out, x - 1, y)[0]);
        }
    ib_test_image_free(&out);
    ib_test_image_free(&in);
    if (lo > 8 || hi < 247)
        fail_msg("normalize: greys 100..140 became %u..%u, expected about 0..255", lo, hi);
}

/* Four blocks: red, green, blue, mid grey. Grey out, brightness in the
 * order of the eye (green > red > blue), mid grey kept. */
static void grayscale_levels(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, out;
    char path[PATH_MAX];
    static const unsigned char colours[4][3] = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {128, 128, 128}};
    assert_int_equal(ib_test_image_alloc(&in, 64, 16, 3), 0);
    for (unsigned y = 0; y < 16; y++)
        for (unsigned x = 0; x < 64; x++)
            memcpy(ib_test_pixel(&in, x, y), colours[x / 16], 3);
    in_root(t, path, "blocks.png");
    write_png(path, &in);
    ib_test_image_free(&in);
    run_op(t, path, "grayscale", &out);
    for (unsigned y = 0; y < 16; y++)
        for (unsigned x = 0; x < 64; x++) {
            const unsigned char *p = ib_test_pixel(&out, x, y);
            if (p[0] != p[1] || p[1] != p[2])
                fail_msg("grayscale: (%u,%u) is (%u,%u,%u)", x, y, p[0], p[1], p[2]);
        }
    unsigned r = ib_test_pixel(&out, 8, 8)[0], g = ib_test_pixel(&out, 24, 8)[0];
    unsigned b = ib_test_pixel(&out, 40, 8)[0], grey = ib_test_pixel(&out, 56, 8)[0];
    ib_test_image_free(&out);
    if (!(g > r && r > b) || abs((int)grey - 128) > 2)
        fail_msg("grayscale: red %u, green %u, blue %u, grey 128 -> %u", r, g, b, grey);
}

/* ---- formats and options ---- */

static void webp_quality_changes_size(void **state)
{
    px_t *t = *state;
    ib_test_image_t img;
    char path[PATH_MAX], out30[PATH_MAX], out90[PATH_MAX];
    make_photo(&img, 128, 96);
    in_root(t, path, "photo.png");
    write_png(path, &img);
    ib_test_image_free(&img);
    run_t r;
    run(t, &r, 0, path, "-o", "{OUT}", "-F", "webp", "--quality", "30", "-q", "-j", "1");
    ib_test_path_fmt(out30, "%s/photo.webp", r.dir);
    run(t, &r, 0, path, "-o", "{OUT}", "-F", "webp", "--quality", "90", "-q", "-j", "1");
    ib_test_path_fmt(out90, "%s/photo.webp", r.dir);
    long long s30 = file_size(out30), s90 = file_size(out90);
    unsigned char *head = (unsigned char *)ib_test_try_slurp(out30, NULL);
    assert_non_null(head);
    int riff = memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WEBP", 4) == 0;
    test_free(head);
    if (!riff)
        fail_msg("%s is not a WebP file", out30);
    if (s30 <= 0 || s90 <= 0 || s30 >= s90)
        fail_msg("--quality 30 gave %lld bytes, --quality 90 %lld: expected fewer at 30", s30, s90);
}

/* Decodes a WebP to a PNG with libwebp's dwebp, or ImageMagick; 0, or -1
 * with why in why (then the caller skips). */
static int webp_to_png(px_t *t, const char *webp, const char *png, char *why, size_t whylen)
{
    run_t r;
    char target[PATH_MAX];
    char *dwebp[] = {"dwebp", (char *)webp, "-o", (char *)png, NULL};
    ib_test_path_fmt(target, "PNG24:%s", png);
    char *convert[] = {"convert", (char *)webp, target, NULL};
    char prog[PATH_MAX];
    char **argv = ib_test_find_program("dwebp", prog) == 0     ? dwebp
                  : ib_test_find_program("convert", prog) == 0 ? convert
                                                               : NULL;
    if (argv == NULL) {
        snprintf(why, whylen, "neither dwebp nor convert is installed");
        return -1;
    }
    argv[0] = prog;
    ib_test_cli_files(&t->cli, &r.run);
    ib_test_run(&r.run, argv, NULL, 60);
    if (r.run.status != 0) {
        ib_test_run_show(&r.run, NULL);
        snprintf(why, whylen, "%s could not decode %s (exit %d)", argv[0], webp, r.run.status);
        return -1;
    }
    return 0;
}

static void webp_lossless_round_trip(void **state)
{
    px_t *t = *state;
    run_t r;
    char out[PATH_MAX], png[PATH_MAX], why[PATH_MAX + 128];
    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "webp", "--lossless", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.webp", r.dir);
    in_root(t, png, "lossless-back.png");
    if (webp_to_png(t, out, png, why, sizeof why) < 0) {
        ib_test_skip_loudly("pixels", "the lossless WebP check: %s", why);
    }
    expect_pattern_file(t, png, PAT_W, PAT_H, map_same, "--lossless -F webp, decoded back");
}

static void interlace_png_and_jpeg(void **state)
{
    px_t *t = *state;
    run_t r;
    char out[PATH_MAX];
    png_info_t pi;
    jpeg_info_t ji;
    ib_test_image_t img;

    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "png", "--interlace", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.png", r.dir);
    png_info(out, &pi);
    if (pi.interlace != 1)
        fail_msg("--interlace -F png: IHDR interlace method %d, expected 1 (Adam7)", pi.interlace);
    expect_pattern_file(t, out, PAT_W, PAT_H, map_same, "interlaced PNG");

    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "png", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.png", r.dir);
    png_info(out, &pi);
    assert_int_equal(pi.interlace, 0);

    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "jpg", "--interlace", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.jpg", r.dir);
    jpeg_info(out, &ji);
    if (ji.sof != 0xc2)
        fail_msg("--interlace -F jpg: frame marker 0x%02x, expected 0xc2 (progressive)", ji.sof);
    decode(out, &img);
    assert_int_equal(img.width, PAT_W);
    ib_test_image_free(&img);

    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "jpg", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern.jpg", r.dir);
    jpeg_info(out, &ji);
    if (ji.sof != 0xc0 && ji.sof != 0xc1)
        fail_msg("-F jpg: frame marker 0x%02x, expected baseline 0xc0", ji.sof);
}

static void variants_from_one_run(void **state)
{
    px_t *t = *state;
    ib_test_image_t img;
    char path[PATH_MAX];
    make_photo(&img, 800, 600);
    in_root(t, path, "big.png");
    write_png(path, &img);
    ib_test_image_free(&img);
    run_t r;
    run(t, &r, 0, path, "-o", "{OUT}", "--variant", "sm:100x", "--variant", "lg:400x", "-F", "png",
        "--json", "-q", "-j", "1");
    ib_test_event_t ev;
    char line[LINE_MAX_LEN];
    file_event(&r, line, &ev);
    assert_string_equal(ev.status, "ok");
    assert_int_equal(ev.n_outputs, 2);
    static const struct {
        const char *name;
        unsigned w, h;
    } want[] = {{"big-sm.png", 100, 75}, {"big-lg.png", 400, 300}};
    for (size_t i = 0; i < N_ELEMS(want); i++) {
        char out[PATH_MAX];
        ib_test_path_fmt(out, "%s/%s", r.dir, want[i].name);
        decode(out, &img);
        if (img.width != want[i].w || img.height != want[i].h)
            fail_msg("%s: %ux%u, expected %ux%u", out, img.width, img.height, want[i].w, want[i].h);
        ib_test_image_free(&img);
        int listed = 0;
        for (unsigned k = 0; k < ev.n_outputs; k++)
            listed |= strcmp(ev.outputs[k].path, out) == 0 && ev.outputs[k].width == want[i].w &&
                      ev.outputs[k].height == want[i].h;
        if (!listed)
            fail_msg("the file event does not list %s at %ux%u: %s", out, want[i].w, want[i].h,
                     line);
    }
    ib_test_event_free(&ev);
}

static void name_template_with_size(void **state)
{
    px_t *t = *state;
    run_t r;
    char out[PATH_MAX];
    ib_test_image_t img;
    run(t, &r, 0, t->pattern, "-o", "{OUT}", "-F", "png", "-s", "32x", "--name",
        "{stem}_{w}x{h}.{ext}", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/pattern_32x24.png", r.dir);
    decode(out, &img);
    assert_int_equal(img.width, 32);
    assert_int_equal(img.height, 24);
    ib_test_image_free(&img);
}

/* A 96x64 photo as a JPEG at path (at quality, with EXIF orientation),
 * with a segment, its head then its body, spliced in after SOI. */
static void write_spliced_jpeg(const char *path, int quality, int orientation,
                               const unsigned char *head, size_t head_len,
                               const unsigned char *body, size_t body_len)
{
    ib_test_image_t img;
    char err[512];
    make_photo(&img, 96, 64);
    if (ib_test_write_jpeg(path, &img, quality, orientation, err, sizeof err) < 0)
        fail_msg("%s", err);
    ib_test_image_free(&img);
    size_t n;
    unsigned char *jpg = (unsigned char *)ib_test_try_slurp(path, &n);
    assert_non_null(jpg);
    FILE *f = fopen(path, "wbe");
    assert_non_null(f);
    fwrite(jpg, 1, 2, f);
    fwrite(head, 1, head_len, f);
    fwrite(body, 1, body_len, f);
    fwrite(jpg + 2, 1, n - 2, f);
    assert_int_equal(fclose(f), 0);
    test_free(jpg);
}

/* A JPEG stored on its side (EXIF orientation 6), with an ICC profile
 * from the corpus spliced in after SOI. */
static void make_tagged_jpeg(const char *path, const char *icc_path)
{
    size_t icc_n;
    unsigned char *icc = (unsigned char *)ib_test_try_slurp(icc_path, &icc_n);
    if (icc == NULL)
        fail_msg("cannot read %s", icc_path);
    assert_true(icc_n + 16 < 65535);
    unsigned seg = (unsigned)icc_n + 2 + 14;
    unsigned char head[18] = {0xff, 0xe2, (unsigned char)(seg >> 8), (unsigned char)seg};
    memcpy(head + 4, "ICC_PROFILE\0\1\1", 14);
    write_spliced_jpeg(path, 92, 6, head, sizeof head, icc, icc_n);
    test_free(icc);
}

static void corpus_path(const px_t *t, char *out, const char *rel)
{
    ib_test_path_fmt(out, "%s/%s", t->corpus, rel);
}

static px_t *need_corpus(void **state)
{
    px_t *t = *state;
    if (t->corpus_missing)
        ib_test_skip_loudly("pixels", "no corpus at %s", t->corpus);
    return t;
}

/* The input's EXIF is gone by default: libvips' JPEG writer may still
 * put a minimal block of its own (resolution, size, orientation 1), but
 * nothing of the input's: no camera, no thumbnail of the original, and
 * never the old orientation on turned pixels. */
static void expect_no_input_exif(const char *what, const exif_t *e)
{
    if (e->present && (e->camera || e->thumbnail || (e->orientation != -1 && e->orientation != 1)))
        fail_msg("%s: the input's EXIF survived (camera tags %s, thumbnail %s, orientation %d)",
                 what, e->camera ? "yes" : "no", e->thumbnail ? "yes" : "no", e->orientation);
}

/* Default: ICC kept, the input's EXIF dropped. --strip: neither.
 * --keep-metadata: EXIF kept, with orientation 1 since the pixels were
 * turned upright. Inputs: a JPEG made here on its side (orientation 6)
 * with an ICC profile spliced in, and a camera's JPEG with Make, Model and
 * an EXIF thumbnail (exif-samples/jpg/Canon_40D.jpg). */
static void metadata_policies(void **state)
{
    px_t *t = need_corpus(state);
    char in[PATH_MAX], icc[PATH_MAX], canon[PATH_MAX], out[PATH_MAX];
    in_root(t, in, "tagged.jpg");
    ib_test_path_fmt(icc, "%s/libvips-testsuite/sRGB.icm", t->corpus);
    corpus_path(t, canon, "exif-samples/jpg/Canon_40D.jpg");
    make_tagged_jpeg(in, icc);
    jpeg_info_t ji;
    png_info_t pi;
    run_t r;

    jpeg_info(in, &ji);
    assert_true(ji.exif.present && ji.has_icc && ji.exif.orientation == 6);
    jpeg_info(canon, &ji);
    assert_true(ji.exif.camera && ji.exif.thumbnail);

    run(t, &r, 0, in, canon, "-o", "{OUT}", "-F", "jpg", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.jpg", r.dir);
    jpeg_info(out, &ji);
    expect_no_input_exif("default -F jpg", &ji.exif);
    if (!ji.has_icc)
        fail_msg("default -F jpg: the ICC profile was dropped");
    if (ji.width != 64 || ji.height != 96)
        fail_msg("default -F jpg: %ux%u, expected 64x96 (turned upright)", ji.width, ji.height);
    ib_test_path_fmt(out, "%s/Canon_40D.jpg", r.dir);
    jpeg_info(out, &ji);
    expect_no_input_exif("default -F jpg of Canon_40D.jpg", &ji.exif);

    run(t, &r, 0, in, canon, "-o", "{OUT}", "-F", "png", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.png", r.dir);
    png_info(out, &pi);
    if (pi.exif_chunks > 0 || !pi.has_iccp)
        fail_msg("default -F png: %d eXIf, iCCP %s; expected no eXIf, an iCCP", pi.exif_chunks,
                 pi.has_iccp ? "present" : "absent");
    ib_test_path_fmt(out, "%s/Canon_40D.png", r.dir);
    png_info(out, &pi);
    if (pi.exif_chunks > 0)
        fail_msg("default -F png of Canon_40D.jpg: %d eXIf chunk(s)", pi.exif_chunks);

    run(t, &r, 0, in, "-o", "{OUT}", "-F", "jpg", "--strip", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.jpg", r.dir);
    jpeg_info(out, &ji);
    if (ji.exif.present || ji.has_icc)
        fail_msg("--strip -F jpg: EXIF %s, ICC %s; expected neither",
                 ji.exif.present ? "present" : "-", ji.has_icc ? "present" : "-");
    run(t, &r, 0, in, "-o", "{OUT}", "-F", "png", "--strip", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.png", r.dir);
    png_info(out, &pi);
    if (pi.exif_chunks > 0 || pi.has_iccp)
        fail_msg("--strip -F png: %d eXIf, iCCP %s; expected neither", pi.exif_chunks,
                 pi.has_iccp ? "present" : "absent");

    run(t, &r, 0, in, canon, "-o", "{OUT}", "-F", "jpg", "--keep-metadata", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.jpg", r.dir);
    jpeg_info(out, &ji);
    if (!ji.exif.present || ji.exif.orientation != 1)
        fail_msg("--keep-metadata -F jpg: EXIF %s, orientation %d; expected EXIF with 1",
                 ji.exif.present ? "kept" : "dropped", ji.exif.orientation);
    if (ji.width != 64 || ji.height != 96)
        fail_msg("--keep-metadata -F jpg: %ux%u, expected 64x96", ji.width, ji.height);
    ib_test_path_fmt(out, "%s/Canon_40D.jpg", r.dir);
    jpeg_info(out, &ji);
    if (!ji.exif.camera)
        fail_msg("--keep-metadata -F jpg of Canon_40D.jpg: Make and Model dropped");

    /* PNG allows one eXIf chunk; strict readers refuse a second. */
    run(t, &r, 0, in, "-o", "{OUT}", "-F", "png", "--keep-metadata", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/tagged.png", r.dir);
    png_info(out, &pi);
    if (pi.exif_chunks != 1 || pi.exif.orientation != 1)
        fail_msg("--keep-metadata -F png: %d eXIf chunk(s), orientation %d; expected one, "
                 "with 1",
                 pi.exif_chunks, pi.exif.orientation);
    ib_test_image_t img;
    decode(out, &img);
    assert_int_equal(img.width, 64);
    ib_test_image_free(&img);
}

/* ---- the corpus ---- */

static double mean_abs_diff(const ib_test_image_t *a, const ib_test_image_t *b)
{
    double sum = 0;
    for (unsigned y = 0; y < a->height; y++)
        for (unsigned x = 0; x < a->width; x++)
            for (unsigned c = 0; c < 3; c++)
                sum += abs(ib_test_pixel(a, x, y)[c] - ib_test_pixel(b, x, y)[c]);
    return sum / ((double)a->width * a->height * 3);
}

/* Every EXIF orientation comes out as orientation 1 does. The pictures
 * differ a little even upright (each shows its own number, and was
 * compressed on its own): about 5 levels on average here, where a wrong
 * mirror or turn is 50 to 70. */
static void corpus_orientations_upright(void **state)
{
    px_t *t = need_corpus(state);
    static const char *const kinds[] = {"Landscape", "Portrait"};
    char *argv[MAX_ARGS + 2];
    char files[16][PATH_MAX];
    int n = 0;
    argv[n++] = (char *)t->cli.bin;
    for (int k = 0; k < 2; k++)
        for (int o = 1; o <= 8; o++) {
            char rel[64];
            snprintf(rel, sizeof rel, "sharp/%s_%d.jpg", kinds[k], o);
            corpus_path(t, files[k * 8 + o - 1], rel);
            argv[n++] = files[k * 8 + o - 1];
        }
    run_t r;
    char dir[PATH_MAX];
    ib_test_path_fmt(dir, "%s/out%u", t->cli.root, t->cli.n_runs + 1);
    char *rest[] = {"-o", dir, "-F", "png", "-q", NULL};
    for (int i = 0; rest[i] != NULL; i++)
        argv[n++] = rest[i];
    argv[n] = NULL;
    ib_test_cli_files(&t->cli, &r.run);
    ib_test_path_fmt(r.dir, "%s", dir);
    ib_test_run(&r.run, argv, NULL, 60);
    if (r.run.status != 0) {
        ib_test_run_show(&r.run, NULL);
        fail_msg("imgbatch on the orientation files exited %d", r.run.status);
    }
    unsigned bad = 0;
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        ib_test_image_t ref;
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/%s_1.png", r.dir, kinds[k]);
        decode(path, &ref);
        unsigned want_w = k == 0 ? 600 : 450, want_h = k == 0 ? 450 : 600;
        if (ref.width != want_w || ref.height != want_h)
            fail_msg("%s: %ux%u, expected %ux%u", path, ref.width, ref.height, want_w, want_h);
        for (int o = 2; o <= 8; o++) {
            ib_test_image_t img;
            ib_test_path_fmt(path, "%s/%s_%d.png", r.dir, kinds[k], o);
            decode(path, &img);
            if (img.width != ref.width || img.height != ref.height) {
                fprintf(stderr, "pixels: %s_%d: %ux%u, orientation 1 gives %ux%u\n", kinds[k], o,
                        img.width, img.height, ref.width, ref.height);
                bad++;
            } else {
                double d = mean_abs_diff(&img, &ref);
                worst = d > worst ? d : worst;
                if (d > 20) {
                    fprintf(stderr,
                            "pixels: %s_%d: differs from %s_1 by %.1f levels on average: "
                            "not upright\n",
                            kinds[k], o, kinds[k], d);
                    bad++;
                }
            }
            ib_test_image_free(&img);
        }
        ib_test_image_free(&ref);
    }
    print_message("orientations 2-8 differ from 1 by %.2f levels at most\n", worst);
    assert_int_equal(bad, 0);
}

typedef struct {
    double r, g, b;
} rgb_t;

static rgb_t mean_rgb(const ib_test_image_t *img, unsigned x0, unsigned y0, unsigned w, unsigned h)
{
    rgb_t m = {0, 0, 0};
    double n = (double)w * h;
    for (unsigned y = y0; y < y0 + h; y++)
        for (unsigned x = x0; x < x0 + w; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            m.r += p[0] / n, m.g += p[1] / n, m.b += p[2] / n;
        }
    return m;
}

static int rgb_near(rgb_t a, rgb_t b, double tol)
{
    return dabs(a.r - b.r) <= tol && dabs(a.g - b.g) <= tol && dabs(a.b - b.b) <= tol;
}

/* 1, said on stderr, when the mean m of quadrant q (of what) is further
 * than tol from ref; else 0. */
static unsigned quadrant_off(const char *what, int q, rgb_t m, rgb_t ref, double tol)
{
    if (rgb_near(m, ref, tol))
        return 0;
    fprintf(stderr, "pixels: %s, quadrant %d: mean (%.1f,%.1f,%.1f), reference (%.1f,%.1f,%.1f)\n",
            what, q, m.r, m.g, m.b, ref.r, ref.g, ref.b);
    return 1;
}
/* The run's STEM.jpg (its path into path), which must have 3 components
 * of 8 bits, as sRGB does, decoded into img. */
static void decode_rgb_jpeg(const run_t *r, const char *stem, char *path, ib_test_image_t *img)
{
    jpeg_info_t ji;
    ib_test_path_fmt(path, "%s/%s.jpg", r->dir, stem);
    jpeg_info(path, &ji);
    if (ji.components != 3 || ji.precision != 8)
        fail_msg("%s: %d components of %d bits, expected 3 of 8 (sRGB)", path, ji.components,
                 ji.precision);
    decode(path, img);
}
/* CMYK JPEGs come out as 3-component sRGB JPEGs. The reference is the
 * image through its own profile to sRGB, by ImageMagick (lcms):
 *   convert Channel_digital_image_CMYK_color.jpg -intent relative \
 *     -profile libvips-testsuite/sRGB.icm ref.png
 * mean colour of each 250x166 quadrant, top left first. A naive CMYK to
 * RGB (-colorspace sRGB) is 15-20 levels off in red. The file without a
 * profile goes through a generic CMYK profile instead: near, not equal. */
static void corpus_cmyk_to_srgb(void **state)
{
    px_t *t = need_corpus(state);
    static const rgb_t ref[4] = {
        {120.5, 121.2, 116.8}, {115.2, 117.2, 114.8}, {123.0, 136.2, 109.4}, {151.6, 154.0, 147.6}};
    static const char *const names[2] = {"Channel_digital_image_CMYK_color",
                                         "Channel_digital_image_CMYK_color_no_profile"};
    char in[2][PATH_MAX], out[PATH_MAX];
    ib_test_image_t img[2];
    run_t r;
    for (int i = 0; i < 2; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sharp/%s.jpg", names[i]);
        corpus_path(t, in[i], rel);
    }
    run(t, &r, 0, in[0], in[1], "-o", "{OUT}", "-F", "jpg", "-q", "-j", "1");
    for (int i = 0; i < 2; i++) {
        decode_rgb_jpeg(&r, names[i], out, &img[i]);
        if (img[i].width != 500 || img[i].height != 333)
            fail_msg("%s: %ux%u, expected 500x333", out, img[i].width, img[i].height);
    }
    unsigned bad = 0;
    for (int q = 0; q < 4; q++) {
        unsigned x0 = (q % 2) * 250, y0 = (q / 2) * 166;
        rgb_t m = mean_rgb(&img[0], x0, y0, 250, 166), n = mean_rgb(&img[1], x0, y0, 250, 166);
        bad += quadrant_off("CMYK", q, m, ref[q], 4);
        bad += quadrant_off("CMYK without profile", q, n, ref[q], 14);
    }
    double d = mean_abs_diff(&img[0], &img[1]);
    if (d > 14) {
        fprintf(stderr, "pixels: the two CMYK files differ by %.1f levels on average\n", d);
        bad++;
    }
    ib_test_image_free(&img[0]);
    ib_test_image_free(&img[1]);
    assert_int_equal(bad, 0);
}

/* The mean colour of the run's STEM.jpg, which may carry no profile but
 * sRGB. */
static rgb_t srgb_jpeg_mean(const run_t *r, const char *stem)
{
    char out[PATH_MAX];
    ib_test_image_t img;
    jpeg_info_t ji;
    ib_test_path_fmt(out, "%s/%s.jpg", r->dir, stem);
    jpeg_info(out, &ji);
    if (ji.has_icc && strstr(ji.icc_desc, "sRGB") == NULL)
        fail_msg("%s.png -> jpg is tagged with '%s', not an sRGB profile", stem, ji.icc_desc);
    decode(out, &img);
    rgb_t m = mean_rgb(&img, 0, 0, img.width, img.height);
    ib_test_image_free(&img);
    return m;
}

/* Wide-gamut PNGs to JPEG: pixels converted to sRGB. References from
 *   convert FILE -alpha off -intent relative -profile sRGB.icm txt:-
 * prophoto.png's one pixel (131,141,192) becomes (117,160,209); p3.png's
 * reds (241..254,0,0) in Display P3 are all (255,0,0) in sRGB. */
static void corpus_wide_gamut_to_srgb(void **state)
{
    px_t *t = need_corpus(state);
    char p3[PATH_MAX], pro[PATH_MAX];
    corpus_path(t, p3, "sharp/p3.png");
    corpus_path(t, pro, "sharp/prophoto.png");
    run_t r;
    run(t, &r, 0, p3, pro, "-o", "{OUT}", "-F", "jpg", "-q", "-j", "1");

    rgb_t m = srgb_jpeg_mean(&r, "prophoto");
    if (!rgb_near(m, (rgb_t){117, 160, 209}, 4))
        fail_msg("prophoto.png -> jpg: (%.0f,%.0f,%.0f), expected sRGB (117,160,209); "
                 "unconverted would be (131,141,192)",
                 m.r, m.g, m.b);
    m = srgb_jpeg_mean(&r, "p3");
    if (m.r < 251 || m.g > 4 || m.b > 4)
        fail_msg("p3.png -> jpg: mean (%.1f,%.1f,%.1f), expected sRGB (255,0,0); unconverted "
                 "would be about (248,0,0)",
                 m.r, m.g, m.b);
}

/* 16-bit PNGs stay 16-bit as PNG, with the pixels of the 8-bit original
 * (the 16-bit flag was made from it with convert -depth 16); JPEG is 8-bit. */
static void corpus_16bit(void **state)
{
    px_t *t = need_corpus(state);
    static const char *const stems[2] = {"Flag_of_the_Netherlands-16bit", "monkey16"};
    char in[2][PATH_MAX], out[PATH_MAX], orig[PATH_MAX];
    corpus_path(t, in[0], "sharp/Flag_of_the_Netherlands-16bit.png");
    corpus_path(t, in[1], "libjpeg-turbo/monkey16.png");
    corpus_path(t, orig, "sharp/Flag_of_the_Netherlands.png");
    run_t r;
    png_info_t pi;
    ib_test_image_t img, ref;

    run(t, &r, 0, in[0], in[1], "-o", "{OUT}", "-F", "png", "-q", "-j", "1");
    for (int i = 0; i < 2; i++) {
        ib_test_path_fmt(out, "%s/%s.png", r.dir, stems[i]);
        png_info(out, &pi);
        if (pi.depth != 16)
            fail_msg("%s: bit depth %d, expected 16 (as the input)", out, pi.depth);
    }
    ib_test_path_fmt(out, "%s/%s.png", r.dir, stems[0]);
    decode(out, &img);
    decode(orig, &ref);
    assert_int_equal(img.width, ref.width);
    assert_int_equal(img.height, ref.height);
    double d = mean_abs_diff(&img, &ref);
    ib_test_image_free(&img);
    if (d > 1)
        fail_msg("the 16-bit flag as PNG differs from the 8-bit original by %.2f levels", d);

    run(t, &r, 0, in[0], in[1], "-o", "{OUT}", "-F", "jpg", "-q", "-j", "1");
    for (int i = 0; i < 2; i++) {
        decode_rgb_jpeg(&r, stems[i], out, &img);
        if (i == 0) {
            d = mean_abs_diff(&img, &ref);
            if (d > 3)
                fail_msg("the 16-bit flag as JPEG differs from the 8-bit original by %.2f "
                         "levels",
                         d);
        }
        ib_test_image_free(&img);
    }
    ib_test_image_free(&ref);
}

/* An animation stays one as GIF, all 10 frames; as PNG only the first
 * frame can go, and the JSON says so. */
static void corpus_animated_gif(void **state)
{
    px_t *t = need_corpus(state);
    char in[PATH_MAX], out[PATH_MAX];
    corpus_path(t, in, "sharp/animated-loop-3.gif");
    run_t r;
    ib_test_event_t ev;

    run(t, &r, 0, in, "-o", "{OUT}", "-F", "gif", "-s", "100x100", "--json", "-q", "-j", "1");
    char line[LINE_MAX_LEN];
    file_event(&r, line, &ev);
    assert_string_equal(ev.status, "ok");
    ib_test_path_fmt(out, "%s/animated-loop-3.gif", r.dir);
    size_t n;
    unsigned char *gif = (unsigned char *)ib_test_try_slurp(out, &n);
    assert_non_null(gif);
    gif_info_t gi;
    int rc = gif_walk(gif, n, &gi);
    test_free(gif);
    if (rc < 0)
        fail_msg("%s is not a well-formed GIF", out);
    /* 370x285 into 100x100 is 100x77 (ImageMagick's -resize). */
    if (gi.frames != 10 || gi.width != 100 || gi.height != 77 || gi.max_w > 100 || gi.max_h > 77)
        fail_msg("%s: %u frames on a %ux%u screen (largest %ux%u), expected 10 on 100x77", out,
                 gi.frames, gi.width, gi.height, gi.max_w, gi.max_h);
    assert_int_equal(ev.outputs[0].width, 100);
    assert_int_equal(ev.outputs[0].height, 77);
    ib_test_event_free(&ev);

    run(t, &r, 0, in, "-o", "{OUT}", "-F", "png", "--json", "-q", "-j", "1");
    file_event(&r, line, &ev);
    assert_string_equal(ev.status, "ok");
    const char *w = strstr(line, "\"warnings\":[\"");
    if (w == NULL || strstr(w, "frames") == NULL)
        fail_msg("-F png of a 10-frame GIF: no warning about the frames in %s", line);
    ib_test_path_fmt(out, "%s/animated-loop-3.png", r.dir);
    ib_test_image_t img;
    decode(out, &img);
    if (img.width != 370 || img.height != 285)
        fail_msg("%s: %ux%u, expected the first frame, 370x285", out, img.width, img.height);
    ib_test_image_free(&img);
    ib_test_event_free(&ev);
}

/* ---- the edits: border, pad's gravity, trim, overlay, text ---- */

/* How many pixels of img differ from the colour rgb outside the box
 * [x0, x1) x [y0, y1), and inside it from in placed at (x0, y0). */
static unsigned framed_misses(const ib_test_image_t *img, const ib_test_image_t *in, unsigned x0,
                              unsigned y0, const unsigned char rgb[3], const char *what)
{
    unsigned bad = 0;
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y), *want = rgb;
            if (x >= x0 && x < x0 + in->width && y >= y0 && y < y0 + in->height)
                want = ib_test_pixel(in, x - x0, y - y0);
            if (memcmp(p, want, 3) != 0 && bad++ == 0)
                print_message("%s: (%u,%u) is (%u,%u,%u), expected (%u,%u,%u)\n", what, x, y, p[0],
                              p[1], p[2], want[0], want[1], want[2]);
        }
    return bad;
}

/* border=N adds N pixels of the colour (black by default) on each side;
 * pad with a gravity puts the image at that edge or corner. */
static void border_and_pad_gravity(void **state)
{
    px_t *t = *state;
    static const struct {
        const char *op;
        unsigned w, h, x0, y0;
        unsigned char rgb[3];
    } cases[] = {
        {"border=3:#123456", PAT_W + 6, PAT_H + 6, 3, 3, {0x12, 0x34, 0x56}},
        {"border=1", PAT_W + 2, PAT_H + 2, 1, 1, {0, 0, 0}},
        {"pad=80x60:red:northwest", 80, 60, 0, 0, {255, 0, 0}},
        {"pad=80x60:red:southeast", 80, 60, 16, 12, {255, 0, 0}},
        {"pad=80x60::east", 80, 60, 16, 6, {255, 255, 255}},
        {"pad=80x60:blue:south", 80, 60, 8, 12, {0, 0, 255}},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_test_image_t out;
        run_op(t, t->pattern, cases[i].op, &out);
        if (out.width != cases[i].w || out.height != cases[i].h)
            fail_msg("%s: %ux%u, expected %ux%u", cases[i].op, out.width, out.height, cases[i].w,
                     cases[i].h);
        unsigned bad =
            framed_misses(&out, &t->pat, cases[i].x0, cases[i].y0, cases[i].rgb, cases[i].op);
        ib_test_image_free(&out);
        if (bad > 0)
            fail_msg("%s: %u pixels off", cases[i].op, bad);
    }
}

/* A 40x30 box of the pattern drawn at (30,20) on 120x90 of near-white
 * (within the default threshold of 10): trim gives back the box exactly.
 * An image that is all border comes back whole, with a warning. */
static void trim_to_drawn_box(void **state)
{
    px_t *t = *state;
    ib_test_image_t in, box, out;
    char path[PATH_MAX];
    assert_int_equal(ib_test_image_alloc(&in, 120, 90, 3), 0);
    assert_int_equal(ib_test_image_alloc(&box, 40, 30, 3), 0);
    for (unsigned y = 0; y < 90; y++)
        for (unsigned x = 0; x < 120; x++)
            memset(ib_test_pixel(&in, x, y), (x + y) % 3 == 0 ? 250 : 255, 3);
    for (unsigned y = 0; y < 30; y++)
        for (unsigned x = 0; x < 40; x++) {
            unsigned char *p = ib_test_pixel(&box, x, y);
            /* Dark everywhere, so no edge of the box reads as border. */
            memcpy(p, ib_test_pixel(&t->pat, x, y), 3);
            p[0] /= 2, p[1] /= 2, p[2] /= 2;
            memcpy(ib_test_pixel(&in, 30 + x, 20 + y), p, 3);
        }
    in_root(t, path, "framed.png");
    write_png(path, &in);
    run_op(t, path, "trim", &out);
    crop_x0 = crop_y0 = 0;
    expect_mapped(&box, &out, 40, 30, map_crop, "trim");
    ib_test_image_free(&out);
    /* A threshold of 0 keeps the near-white speckle as content. */
    run_op(t, path, "trim=0", &out);
    if (out.width <= 40 || out.height <= 30)
        fail_msg("trim=0: %ux%u, expected larger than the box", out.width, out.height);
    ib_test_image_free(&out);

    unsigned char white[4] = {255, 255, 255, 255};
    ib_test_image_fill(&in, white);
    in_root(t, path, "blank.png");
    write_png(path, &in);
    run_t r;
    output_t o;
    run(t, &r, 0, path, "-o", "{OUT}", "-f", "trim", "-F", "png", "--json", "-j", "1");
    only_output(&r, &o);
    if (o.width != 120 || o.height != 90 || !ib_test_file_has(r.run.out, "is border"))
        fail_msg("trim of a blank image: %lldx%lld, warning %s", o.width, o.height,
                 ib_test_file_has(r.run.out, "is border") ? "given" : "missing");
    ib_test_image_free(&in);
    ib_test_image_free(&box);
}

static unsigned near(int a, int b, int tol)
{
    return a - b <= tol && b - a <= tol;
}

/* A grey 200x100 image and a 20x10 overlay, opaque red on its left half
 * and clear on its right: at northeast with a margin of 5 and opacity
 * 0.5 the red half is mixed half and half, the clear half and the rest
 * are untouched. At 50% width it is 100x50 in the corner its gravity
 * says. */
static void overlay_position_opacity_scale(void **state)
{
    px_t *t = *state;
    ib_test_image_t base, ov, out;
    char bpath[PATH_MAX], opath[PATH_MAX], op[PATH_MAX + 64];
    unsigned char grey[4] = {128, 128, 128, 255};
    assert_int_equal(ib_test_image_alloc(&base, 200, 100, 3), 0);
    ib_test_image_fill(&base, grey);
    assert_int_equal(ib_test_image_alloc(&ov, 20, 10, 4), 0);
    for (unsigned y = 0; y < 10; y++)
        for (unsigned x = 0; x < 20; x++) {
            unsigned char *p = ib_test_pixel(&ov, x, y);
            p[0] = 255, p[1] = p[2] = 0, p[3] = x < 10 ? 255 : 0;
        }
    in_root(t, bpath, "wm-base.png");
    in_root(t, opath, "wm-mark.png");
    write_png(bpath, &base);
    write_png(opath, &ov);

    snprintf(op, sizeof op, "overlay=%s:northeast:5:0.5", opath);
    run_op(t, bpath, op, &out);
    assert_int_equal(out.width, 200);
    unsigned bad = 0;
    for (unsigned y = 0; y < out.height; y++)
        for (unsigned x = 0; x < out.width; x++) {
            const unsigned char *p = ib_test_pixel(&out, x, y);
            int red = x >= 175 && x < 185 && y >= 5 && y < 15;
            int ok = red ? near(p[0], 192, 2) && near(p[1], 64, 2) && near(p[2], 64, 2)
                         : p[0] == 128 && p[1] == 128 && p[2] == 128;
            if (!ok && bad++ == 0)
                print_message("%s: (%u,%u) is (%u,%u,%u)\n", op, x, y, p[0], p[1], p[2]);
        }
    ib_test_image_free(&out);
    if (bad > 0)
        fail_msg("%s: %u pixels off", op, bad);

    snprintf(op, sizeof op, "overlay=%s:southwest:0:1:50%%", opath);
    run_op(t, bpath, op, &out);
    /* Away from the resampled edges: red where the left half landed. */
    rgb_t in_red = mean_rgb(&out, 5, 55, 40, 40), in_clear = mean_rgb(&out, 55, 55, 40, 40),
          above = mean_rgb(&out, 5, 5, 40, 40), right = mean_rgb(&out, 110, 55, 80, 40);
    ib_test_image_free(&out);
    if (!rgb_near(in_red, (rgb_t){255, 0, 0}, 2) ||
        !rgb_near(in_clear, (rgb_t){128, 128, 128}, 2) ||
        !rgb_near(above, (rgb_t){128, 128, 128}, 0.5) ||
        !rgb_near(right, (rgb_t){128, 128, 128}, 0.5))
        fail_msg("%s: red half (%.0f,%.0f,%.0f), clear half (%.0f,%.0f,%.0f), above "
                 "(%.0f,%.0f,%.0f), right (%.0f,%.0f,%.0f)",
                 op, in_red.r, in_red.g, in_red.b, in_clear.r, in_clear.g, in_clear.b, above.r,
                 above.g, above.b, right.r, right.g, right.b);

    /* A missing overlay stops the run before any work: exit 2, named. */
    run_t r;
    snprintf(op, sizeof op, "overlay=%s/absent.png", t->cli.root);
    run(t, &r, 2, bpath, "-o", "{OUT}", "-f", op, "-q");
    if (!ib_test_file_has(r.run.err, "absent.png") || ib_test_exists(r.dir))
        fail_msg("missing overlay: the message does not name it, or %s was made", r.dir);
    ib_test_image_free(&base);
    ib_test_image_free(&ov);
}

/* The box around the pixels brighter than 100 (text in white on black);
 * 0 when there are none. */
static unsigned bright_box(const ib_test_image_t *img, unsigned *x0, unsigned *y0, unsigned *x1,
                           unsigned *y1)
{
    unsigned n = 0;
    *x0 = *y0 = UINT32_MAX;
    *x1 = *y1 = 0;
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++)
            if (ib_test_pixel(img, x, y)[0] > 100) {
                n++;
                *x0 = x < *x0 ? x : *x0, *y0 = y < *y0 ? y : *y0;
                *x1 = x + 1 > *x1 ? x + 1 : *x1, *y1 = y + 1 > *y1 ? y + 1 : *y1;
            }
    return n;
}

/* A black w x h PNG named name in the root; its path in path. */
static void write_black_png(const px_t *t, char *path, const char *name, unsigned w, unsigned h)
{
    ib_test_image_t black;
    unsigned char k[4] = {0, 0, 0, 255};
    assert_int_equal(ib_test_image_alloc(&black, w, h, 3), 0);
    ib_test_image_fill(&black, k);
    in_root(t, path, name);
    write_png(path, &black);
    ib_test_image_free(&black);
}

/* Text lands only in the region of its gravity, and a long text is made
 * smaller to stay inside the image. */
static void text_in_its_region(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    char path[PATH_MAX];
    write_black_png(t, path, "night.png", 300, 120);
    static const struct {
        const char *op;
        unsigned rx0, ry0, rx1, ry1; /* the region the text must keep to */
    } cases[] = {
        {"text=Hi:northwest:20:white", 0, 0, 150, 60},
        {"text=Hi:southeast:20:white", 150, 60, 300, 120},
        {"text=Hi:north:20:white", 100, 0, 200, 60},
        {"text={stem}:south:20:white", 75, 60, 225, 120},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        unsigned x0, y0, x1, y1;
        run_op(t, path, cases[i].op, &out);
        unsigned n = bright_box(&out, &x0, &y0, &x1, &y1);
        ib_test_image_free(&out);
        if (n < 20 || x0 < cases[i].rx0 || y0 < cases[i].ry0 || x1 > cases[i].rx1 ||
            y1 > cases[i].ry1)
            fail_msg("%s: %u lit pixels in [%u,%u)x[%u,%u), expected some, all in "
                     "[%u,%u)x[%u,%u)",
                     cases[i].op, n, x0, x1, y0, y1, cases[i].rx0, cases[i].rx1, cases[i].ry0,
                     cases[i].ry1);
    }
    /* 60 characters at 40 px would be far wider than 300 px. */
    const char *op = "text="
                     "The quick brown fox jumps over the lazy dog again and again"
                     ":west:40:white";
    unsigned x0, y0, x1, y1;
    run_op(t, path, op, &out);
    unsigned n = bright_box(&out, &x0, &y0, &x1, &y1);
    unsigned w = out.width;
    ib_test_image_free(&out);
    if (w != 300 || n < 50 || x1 - x0 < 200 || x1 > 300)
        fail_msg("long text: image %u wide, %u lit pixels across [%u,%u); expected it to span "
                 "most of the 300 px and stay inside",
                 w, n, x0, x1);
}

/* Options from an argument file, quotes and comments included: the
 * quoted text op with spaces and the path with a space arrive whole, and
 * a missing file is a usage error. */
static void argument_files(void **state)
{
    px_t *t = *state;
    ib_test_image_t out;
    char in[PATH_MAX], args[PATH_MAX], inner[PATH_MAX], text[2 * PATH_MAX + 256], at[PATH_MAX + 1],
        written[PATH_MAX];
    write_black_png(t, in, "my photo.png", 200, 100);
    in_root(t, inner, "inner.args");
    ib_test_write_file(inner, "-F png # the format\n", 20);
    in_root(t, args, "run.args");
    snprintf(text, sizeof text,
             "# a recipe\n-f 'text=Hello world:north:20:white'\t# quoted, with a space\n"
             "@%s\n\"%s\" -q -j 1\n",
             inner, in);
    ib_test_write_file(args, text, strlen(text));
    snprintf(at, sizeof at, "@%s", args);
    run_t r;
    run(t, &r, 0, at, "-o", "{OUT}");
    ib_test_path_fmt(written, "%s/my photo.png", r.dir);
    decode(written, &out);
    unsigned x0, y0, x1, y1, n = bright_box(&out, &x0, &y0, &x1, &y1);
    ib_test_image_free(&out);
    if (n < 20 || y1 > 50 || x0 < 30 || x1 > 170)
        fail_msg("@FILE text op: %u lit pixels in [%u,%u)x[%u,%u), expected text at the top "
                 "centre",
                 n, x0, x1, y0, y1);
    run(t, &r, 2, "@absent.args", "-o", "{OUT}");
    if (!ib_test_file_has(r.run.err, "absent.args"))
        fail_msg("a missing argument file is not named in the message");
}

/* ---- EXIF written and read here: capture dates and GPS ---- */

/* A little-endian EXIF block: IFD0 with Make, Model, DateTime (if
 * datetime) and pointers to an Exif IFD holding DateTimeOriginal (if
 * original) and to a GPS IFD (if gps) with a latitude. Its length. */
static size_t build_exif(unsigned char *b, const char *datetime, const char *original, int gps)
{
    size_t n = 0, ifd0 = 8;
    memset(b, 0, 512);
    memcpy(b, "II*\0\x08\0\0\0", 8);
    unsigned char *e = b + ifd0 + 2;
    unsigned count = 0;
    size_t data = 200; /* out-of-line values from here */
#define PUT16(p, v) ((p)[0] = (unsigned char)(v), (p)[1] = (unsigned char)((v) >> 8))
#define PUT32(p, v) (PUT16(p, (v)&0xffff), PUT16((p) + 2, (v) >> 16))
#define ENTRY(tag, type, cnt, val)                                                                 \
    (PUT16(e, tag), PUT16(e + 2, type), PUT32(e + 4, cnt), PUT32(e + 8, val), e += 12, count++)
#define ASCII(tag, s)                                                                              \
    (memcpy(b + data, s, strlen(s) + 1), ENTRY(tag, 2, (unsigned)strlen(s) + 1, (unsigned)data),   \
     data += strlen(s) + 1)
    ASCII(0x010f, "Acme");
    ASCII(0x0110, "Pinhole 9");
    if (datetime != NULL)
        ASCII(0x0132, datetime);
    size_t exif_at = 100, gps_at = 140;
    ENTRY(0x8769, 4, 1, (unsigned)exif_at);
    if (gps)
        ENTRY(0x8825, 4, 1, (unsigned)gps_at);
    PUT16(b + ifd0, count);
    /* the Exif IFD: one entry, or none */
    unsigned char *x = b + exif_at;
    PUT16(x, original != NULL ? 1 : 0);
    if (original != NULL) {
        memcpy(b + data, original, strlen(original) + 1);
        PUT16(x + 2, 0x9003), PUT16(x + 4, 2), PUT32(x + 6, 20), PUT32(x + 10, (unsigned)data);
        data += 20;
    }
    if (gps) {
        /* GPSLatitudeRef "N", GPSLatitude 51/1 28/1 4017/100 */
        unsigned char *g = b + gps_at;
        PUT16(g, 2);
        PUT16(g + 2, 1), PUT16(g + 4, 2), PUT32(g + 6, 2), memcpy(g + 10, "N\0\0\0", 4);
        PUT16(g + 14, 2), PUT16(g + 16, 5), PUT32(g + 18, 3), PUT32(g + 22, (unsigned)data);
        static const unsigned lat[6] = {51, 1, 28, 1, 4017, 100};
        for (int i = 0; i < 6; i++)
            PUT32(b + data + 4 * i, lat[i]);
        data += 24;
    }
    n = data;
#undef ASCII
#undef ENTRY
#undef PUT32
#undef PUT16
    return n;
}

/* A 96x64 JPEG at path with the EXIF block spliced in after SOI. */
static void write_exif_jpeg(const char *path, const unsigned char *exif, size_t len)
{
    unsigned seg = (unsigned)len + 8;
    unsigned char head[10] = {
        0xff, 0xe1, (unsigned char)(seg >> 8), (unsigned char)seg, 'E', 'x', 'i', 'f', 0, 0};
    write_spliced_jpeg(path, 90, 0, head, sizeof head, exif, len);
}

/* What the tests read back from a JPEG's EXIF, by walking it here. */
typedef struct {
    char make[64], model[64], original[32];
    int gps_pointer;
    int latitude_bytes; /* the latitude's rationals still in the file */
} exif_back_t;

static void exif_ascii(const unsigned char *t, size_t n, size_t e, int le, char *out, size_t cap)
{
#define G16(q) (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 : be16(q))
#define G32(q)                                                                                     \
    (le ? (unsigned)(q)[0] | (unsigned)(q)[1] << 8 | (unsigned)(q)[2] << 16 |                      \
              (unsigned)(q)[3] << 24                                                               \
        : be32(q))
    size_t cnt = G32(t + e + 4), at = cnt <= 4 ? e + 8 : G32(t + e + 8);
    if (at + cnt <= n)
        snprintf(out, cap, "%.*s", (int)cnt, (const char *)t + at);
}

static void read_exif_back(const char *path, exif_back_t *x)
{
    size_t n;
    unsigned char *d = (unsigned char *)ib_test_try_slurp(path, &n);
    assert_non_null(d);
    memset(x, 0, sizeof *x);
    static const unsigned char lat[12] = {51, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0};
    static const unsigned char lat_be[12] = {0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0, 28};
    for (size_t i = 0; i + 12 <= n; i++)
        x->latitude_bytes |= memcmp(d + i, lat, 12) == 0 || memcmp(d + i, lat_be, 12) == 0;
    for (size_t i = 2; i + 4 <= n && d[i] == 0xff;) {
        size_t len = be16(d + i + 2);
        if (d[i + 1] == 0xe1 && len > 16 && i + 2 + len <= n &&
            memcmp(d + i + 4, "Exif\0\0", 6) == 0) {
            const unsigned char *t = d + i + 10;
            size_t tn = len - 8;
            int le = t[0] == 'I';
            size_t ifd = G32(t + 4);
            for (unsigned k = 0; ifd + 2 <= tn && k < G16(t + ifd) && ifd + 14 + 12 * k <= tn;
                 k++) {
                size_t e = ifd + 2 + 12 * k;
                unsigned tag = G16(t + e);
                if (tag == 0x010f)
                    exif_ascii(t, tn, e, le, x->make, sizeof x->make);
                else if (tag == 0x0110)
                    exif_ascii(t, tn, e, le, x->model, sizeof x->model);
                else if (tag == 0x8825)
                    x->gps_pointer = 1;
                else if (tag == 0x8769) {
                    size_t sub = G32(t + e + 8);
                    for (unsigned j = 0;
                         sub + 2 <= tn && j < G16(t + sub) && sub + 14 + 12 * j <= tn; j++)
                        if (G16(t + sub + 2 + 12 * j) == 0x9003)
                            exif_ascii(t, tn, sub + 2 + 12 * j, le, x->original,
                                       sizeof x->original);
                }
            }
            break;
        }
        if (d[i + 1] == 0xda)
            break;
        i += 2 + len;
    }
#undef G16
#undef G32
    test_free(d);
}

/* --strip-gps with --keep-metadata: the GPS IFD and its values are gone,
 * Make, Model and DateTimeOriginal stay; without --strip-gps the GPS
 * stays (so the check can fail). */
static void strip_gps_keeps_the_rest(void **state)
{
    px_t *t = *state;
    unsigned char exif[512];
    char in[PATH_MAX], out[PATH_MAX];
    size_t len = build_exif(exif, "2019:07:14 10:20:30", "2019:07:14 10:20:30", 1);
    in_root(t, in, "geo.jpg");
    write_exif_jpeg(in, exif, len);
    exif_back_t x;
    read_exif_back(in, &x);
    assert_true(x.gps_pointer && x.latitude_bytes && strcmp(x.make, "Acme") == 0);

    run_t r;
    run(t, &r, 0, in, "-o", "{OUT}", "-F", "jpg", "--keep-metadata", "-q", "-j", "1");
    ib_test_path_fmt(out, "%s/geo.jpg", r.dir);
    read_exif_back(out, &x);
    if (!x.gps_pointer)
        fail_msg("--keep-metadata alone: the GPS IFD was dropped");
    run(t, &r, 0, in, "-o", "{OUT}", "-F", "jpg", "--keep-metadata", "--strip-gps", "-q", "-j",
        "1");
    ib_test_path_fmt(out, "%s/geo.jpg", r.dir);
    read_exif_back(out, &x);
    if (x.gps_pointer || x.latitude_bytes || strcmp(x.make, "Acme") != 0 ||
        strcmp(x.model, "Pinhole 9") != 0 || strcmp(x.original, "2019:07:14 10:20:30") != 0)
        fail_msg("--strip-gps: GPS pointer %d, latitude bytes %d, Make '%s', Model '%s', "
                 "DateTimeOriginal '%s'",
                 x.gps_pointer, x.latitude_bytes, x.make, x.model, x.original);
}

/* {date:FORMAT} names from DateTimeOriginal, else DateTime, else the
 * file's time; --dry-run names the same paths. */
static void date_paths(void **state)
{
    px_t *t = *state;
    unsigned char exif[512];
    char orig[PATH_MAX], plain[PATH_MAX], bare[PATH_MAX], want[PATH_MAX], stamp[32];
    in_root(t, orig, "dated/orig.jpg");
    in_root(t, plain, "dated/plain.jpg");
    in_root(t, bare, "dated/bare.png");
    ib_test_mkdirs_for(orig);
    write_exif_jpeg(orig, exif, build_exif(exif, "2001:01:01 00:00:00", "2019:07:14 23:59:59", 0));
    write_exif_jpeg(plain, exif, build_exif(exif, "2018:02:03 04:05:06", NULL, 0));
    write_png(bare, &t->pat);
    /* 2015-06-15 12:00 UTC: the same month in every zone. */
    struct timespec when[2] = {{1434369600, 0}, {1434369600, 0}};
    assert_int_equal(utimensat(AT_FDCWD, bare, when, 0), 0);
    time_t tt = 1434369600;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(stamp, sizeof stamp, "%Y/%m-%d", &tm);
    char dir[PATH_MAX];
    in_root(t, dir, "dated");
    for (int dry = 0; dry < 2; dry++) {
        run_t r;
        ib_test_events_t ev;
        run(t, &r, 0, dir, "-o", "{OUT}", "--name", "{date:%Y/%m-%d}/{stem}.{ext}", "--json", "-j",
            "1", dry ? "--dry-run" : "-q");
        ib_test_events_load(&r.run, &ev);
        static const char *const names[][2] = {{"orig.jpg", "2019/07-14/orig.jpg"},
                                               {"plain.jpg", "2018/02-03/plain.jpg"}};
        for (int i = 0; i < 3; i++) {
            const ib_test_event_t *e = ib_test_event_for(&ev, i < 2 ? names[i][0] : "bare.png");
            if (i < 2)
                ib_test_path_fmt(want, "%s/%s", r.dir, names[i][1]);
            else
                ib_test_path_fmt(want, "%s/%s/bare.png", r.dir, stamp);
            if (e->n_outputs != 1 || strcmp(e->outputs[0].path, want) != 0 ||
                ib_test_exists(want) == dry)
                fail_msg("%s%s: named %s, expected %s (%s)", dry ? "--dry-run: " : "", e->input,
                         e->n_outputs ? e->outputs[0].path : "-", want,
                         ib_test_exists(want) ? "written" : "not written");
        }
        ib_test_events_free(&ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flip_and_flop),
        cmocka_unit_test(repeated_filter_options_append),
        cmocka_unit_test(rotate_right_angles),
        cmocka_unit_test(crop_with_offsets),
        cmocka_unit_test(crop_outside_fails),
        cmocka_unit_test(crop_with_gravities),
        cmocka_unit_test(crop_attention_and_entropy),
        cmocka_unit_test(negate_exact),
        cmocka_unit_test(threshold_exact),
        cmocka_unit_test(pad_exact),
        cmocka_unit_test(flatten_on_colour),
        cmocka_unit_test(rotate_arbitrary_angle),
        cmocka_unit_test(autorotate_op_without_autorotate),
        cmocka_unit_test(blur_and_sharpen),
        cmocka_unit_test(sepia_tones),
        cmocka_unit_test(modulate_saturation_and_brightness),
        cmocka_unit_test(brightness_contrast_gamma),
        cmocka_unit_test(normalize_stretches),
        cmocka_unit_test(grayscale_levels),
        cmocka_unit_test(webp_quality_changes_size),
        cmocka_unit_test(webp_lossless_round_trip),
        cmocka_unit_test(interlace_png_and_jpeg),
        cmocka_unit_test(variants_from_one_run),
        cmocka_unit_test(name_template_with_size),
        cmocka_unit_test(metadata_policies),
        cmocka_unit_test(corpus_orientations_upright),
        cmocka_unit_test(corpus_cmyk_to_srgb),
        cmocka_unit_test(corpus_wide_gamut_to_srgb),
        cmocka_unit_test(corpus_16bit),
        cmocka_unit_test(corpus_animated_gif),
        cmocka_unit_test(border_and_pad_gravity),
        cmocka_unit_test(trim_to_drawn_box),
        cmocka_unit_test(overlay_position_opacity_scale),
        cmocka_unit_test(text_in_its_region),
        cmocka_unit_test(argument_files),
        cmocka_unit_test(strip_gps_keeps_the_rest),
        cmocka_unit_test(date_paths),
    };
    return ib_test_run_suite(tests, group_setup, group_teardown);
}
