/*
 * The JPEG probe through libjpeg-turbo (ib_fastjpeg_probe) against
 * libvips' loader: for every JPEG of ../shared/corpus, valid or broken,
 * and for generated ones with each JFIF density unit and EXIF orientation
 * and resolution, ib_image_probe() must say the same with the fast path
 * on and off (fast_paths in the context), strict and lenient: the same
 * verdict and error kind, size, orientation, density, pages, depth. The generated
 * files of the common shapes must take the fast probe, and the bytes it
 * keeps must decode as a fresh read does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode.h"
#include "fastjpeg.h"
#include "image.h"
#include "ops.h"

static char dir[] = "/tmp/ib-probe-XXXXXX";

/* ---- building JPEG headers ---- */

typedef struct {
    unsigned char b[1 << 16];
    size_t n;
} bytes_t;

static void put(bytes_t *o, const void *p, size_t n)
{
    assert_true(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put16(bytes_t *o, unsigned v, int big)
{
    unsigned char b[2] = {big ? v >> 8 : v & 255, big ? v & 255 : v >> 8};
    put(o, b, 2);
}

static void put32(bytes_t *o, uint32_t v, int big)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (big ? 24 - 8 * i : 8 * i));
    put(o, b, 4);
}

/* One IFD0 entry: SHORT/LONG value, or a RATIONAL num/den. */
typedef struct {
    unsigned tag, type;
    uint32_t value, den;
} entry_t;

/* "Exif\0\0" and a TIFF block with IFD0 holding the entries. */
static void exif_block(bytes_t *o, int big, const entry_t *e, unsigned n)
{
    put(o, "Exif\0\0", 6);
    size_t tiff = o->n;
    put(o, big ? "MM\0*" : "II*\0", 4);
    put32(o, 8, big);
    put16(o, n, big);
    uint32_t extra = 8 + 2 + 12 * n + 4; /* rationals go after the IFD */
    for (unsigned i = 0; i < n; i++) {
        put16(o, e[i].tag, big);
        put16(o, e[i].type, big);
        put32(o, 1, big);
        if (e[i].type == 5) {
            put32(o, extra, big);
            extra += 8;
        } else if (e[i].type == 3) {
            put16(o, e[i].value, big);
            put16(o, 0, big);
        } else {
            put32(o, e[i].value, big);
        }
    }
    put32(o, 0, big);
    for (unsigned i = 0; i < n; i++)
        if (e[i].type == 5) {
            put32(o, e[i].value, big);
            put32(o, e[i].den, big);
        }
    (void)tiff;
}

static void segment(bytes_t *o, unsigned marker, const bytes_t *body)
{
    unsigned char m[2] = {0xff, (unsigned char)marker};
    put(o, m, 2);
    put16(o, (unsigned)body->n + 2, 1);
    put(o, body->b, body->n);
}

/* A picture busy enough that its JPEG is as big as wanted. */
static void base_jpeg(const char *path, unsigned w, unsigned h)
{
    ib_test_make_jpeg(path, w, h, IB_TEST_FILL_BUSY, 0);
}

/*
 * path: the JPEG at base with its APP0/APP1 segments replaced by a JFIF
 * segment (unit < 0: none), an APP1 segment holding first (first->n == 0:
 * none) and an EXIF one (exif->n == 0: none), and junk bytes (a decoder
 * warning) before the first table when junk is set.
 */
static void variant(const char *path, const char *base, int unit, unsigned xd, unsigned yd,
                    const bytes_t *first, const bytes_t *exif, int junk)
{
    FILE *f = fopen(base, "rb");
    assert_non_null(f);
    static unsigned char in[1 << 22];
    size_t n = fread(in, 1, sizeof in, f);
    fclose(f);
    assert_true(n > 4 && in[0] == 0xff && in[1] == 0xd8);
    size_t at = 2;
    while (at + 4 <= n && in[at] == 0xff && (in[at + 1] == 0xe0 || in[at + 1] == 0xe1))
        at += 2 + ((size_t)in[at + 2] << 8 | in[at + 3]);

    FILE *o = fopen(path, "wb");
    assert_non_null(o);
    fwrite(in, 1, 2, o);
    static bytes_t seg, body;
    if (unit >= 0) {
        body.n = 0;
        put(&body, "JFIF\0\1\1", 7);
        unsigned char u = (unsigned char)unit;
        put(&body, &u, 1);
        put16(&body, xd, 1);
        put16(&body, yd, 1);
        put(&body, "\0\0", 2);
        seg.n = 0;
        segment(&seg, 0xe0, &body);
        fwrite(seg.b, 1, seg.n, o);
    }
    const bytes_t *app1[] = {first, exif};
    for (int i = 0; i < 2; i++)
        if (app1[i] != NULL && app1[i]->n > 0) {
            seg.n = 0;
            segment(&seg, 0xe1, app1[i]);
            fwrite(seg.b, 1, seg.n, o);
        }
    if (junk)
        fwrite("\x12\x34\x56", 1, 3, o);
    fwrite(in + at, 1, n - at, o);
    fclose(o);
}

/* ---- comparing the two probes ---- */

/* A worker's context with the fast paths on, and one with them off. */
static ib_image_ctx_t *fast_ctx, *slow_ctx;

static int probe(const char *path, int fast, int strict, ib_header_t *h, ib_error_t *err)
{
    static const ib_chain_t none;
    ib_render_t r = {.chain = &none, .autorotate = 1, .fail_on_warning = strict};
    memset(err, 0, sizeof *err);
    ib_probe_t *p = ib_image_probe(fast ? fast_ctx : slow_ctx, path, &r, err);
    if (p == NULL)
        return -1;
    *h = *ib_probe_header(p);
    ib_image_probe_free(p);
    return 0;
}

/* Fails unless both probes agree on path; returns how many differences. */
static int compare(const char *path)
{
    int bad = 0;
    for (int strict = 0; strict <= 1; strict++) {
        ib_header_t a, b;
        ib_error_t ea, eb;
        int ra = probe(path, 1, strict, &a, &ea);
        int rb = probe(path, 0, strict, &b, &eb);
        if (ra != rb || (ra != 0 && ea.kind != eb.kind)) {
            print_error("%s (strict %d): fast probe %d (%s), libvips %d (%s)\n", path, strict, ra,
                        ea.message, rb, eb.message);
            bad++;
            continue;
        }
        if (ra != 0)
            continue;
        if (a.width != b.width || a.height != b.height || a.orientation != b.orientation ||
            a.has_alpha != b.has_alpha || a.pages != b.pages || a.bits != b.bits ||
            strcmp(a.loader, b.loader) != 0 || a.xres != b.xres || a.yres != b.yres) {
            print_error("%s (strict %d): fast %ux%u o%d a%d p%d b%d %s %.6f/%.6f; "
                        "libvips %ux%u o%d a%d p%d b%d %s %.6f/%.6f\n",
                        path, strict, a.width, a.height, a.orientation, a.has_alpha, a.pages,
                        a.bits, a.loader, a.xres, a.yres, b.width, b.height, b.orientation,
                        b.has_alpha, b.pages, b.bits, b.loader, b.xres, b.yres);
            bad++;
        }
    }
    return bad;
}

/* Whether libjpeg-turbo's probe takes path itself. */
static int taken(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ib_fastjpeg_header_t h;
    ib_fastjpeg_bytes_t *bytes;
    int rc = ib_fastjpeg_probe(fileno(f), &h, &bytes);
    fclose(f);
    ib_fastjpeg_bytes_free(bytes);
    return rc == 0;
}

/* Whether path is taken by the fast probe as expected and both probes
 * agree on it; the number of differences. */
static int check_case(const char *path, int fast)
{
    int bad = 0;
    if (taken(path) != fast) {
        print_error("%s: the fast probe %s it\n", path, fast ? "declined" : "took");
        bad++;
    }
    return bad + compare(path);
}

static void generated_headers_match_libvips(void **state)
{
    (void)state;
    char base[PATH_MAX], path[PATH_MAX];
    snprintf(base, sizeof base, "%s/base.jpg", dir);
    base_jpeg(base, 240, 160);
    /* IFD0 entries: orientation, and a whole resolution (x, y per unit). */
    // clang-format off
#define ORIENT(o) {0x112, 3, (o), 0}
#define RES(x, y, unit) {0x11a, 5, (x), 1}, {0x11b, 5, (y), 1}, {0x128, 3, (unit), 0}
    // clang-format on
    static const struct {
        const char *name;
        int unit; /* JFIF's, or -1 for no JFIF segment */
        unsigned xd, yd;
        int junk;
        int fast; /* the fast probe must take it */
        int big;  /* EXIF in big-endian order */
        unsigned n;
        entry_t e[4];
    } cases[] = {
        {"jfif-aspect-1", 0, 1, 1, 0, 1, 0, 0, {{0}}},
        {"jfif-aspect-2x3", 0, 2, 3, 0, 1, 0, 0, {{0}}},
        {"jfif-aspect-72x72", 0, 72, 72, 0, 1, 0, 0, {{0}}},
        {"jfif-aspect-7x7", 0, 7, 7, 0, 1, 0, 0, {{0}}},
        {"jfif-aspect-23x23", 0, 23, 23, 0, 1, 0, 0, {{0}}},
        {"jfif-300dpi", 1, 300, 300, 0, 1, 0, 0, {{0}}},
        {"jfif-118dpcm", 2, 118, 59, 0, 1, 0, 0, {{0}}},
        {"jfif-unit-3", 3, 300, 300, 0, 0, 0, 0, {{0}}},
        {"no-jfif", -1, 0, 0, 0, 1, 0, 0, {{0}}},
        {"exif-o6-ii", 0, 1, 1, 0, 1, 0, 4, {ORIENT(6), RES(180, 180, 2)}},
        {"exif-o3-mm", 1, 96, 96, 0, 1, 1, 4, {ORIENT(3), RES(300, 600, 2)}},
        {"exif-o8-mm", -1, 0, 0, 0, 1, 1, 4, {ORIENT(8), RES(72, 72, 2)}},
        {"exif-cm", -1, 0, 0, 0, 1, 0, 3, {RES(72, 36, 3)}},
        {"exif-no-unit", 0, 1, 1, 0, 1, 0, 3, {RES(5, 7, 1)}},
        {"exif-res-without-unit", 1, 300, 300, 0, 0, 1, 2, {RES(96, 96, 2)}},
        {"exif-o6-without-res", 1, 300, 300, 0, 0, 1, 1, {ORIENT(6)}},
        {"exif-o9", 0, 1, 1, 0, 0, 0, 4, {ORIENT(9), RES(72, 72, 2)}},
        {"exif-o-long", 0, 1, 1, 0, 0, 0, 4, {{0x112, 4, 5, 0}, RES(72, 72, 2)}},
        {"exif-unit-4", 0, 1, 1, 0, 0, 0, 3, {RES(72, 72, 4)}},
        {"exif-srational",
         0,
         1,
         1,
         0,
         0,
         0,
         3,
         {{0x11a, 10, 72, 1}, {0x11b, 10, 72, 1}, {0x128, 3, 2, 0}}},
        {"exif-zero-den",
         0,
         1,
         1,
         0,
         0,
         0,
         3,
         {{0x11a, 5, 72, 0}, {0x11b, 5, 72, 1}, {0x128, 3, 2, 0}}},
        {"exif-twice-o", 0, 1, 1, 0, 0, 0, 4, {ORIENT(6), ORIENT(3), {0x11a, 5, 72, 1}}},
        {"junk-before-tables", 0, 1, 1, 1, 0, 0, 0, {{0}}},
    };
#undef ORIENT
#undef RES
    int bad = 0;
    static bytes_t exif, none;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        exif.n = 0;
        if (cases[i].n > 0)
            exif_block(&exif, cases[i].big, cases[i].e, cases[i].n);
        snprintf(path, sizeof path, "%s/%s.jpg", dir, cases[i].name);
        variant(path, base, cases[i].unit, cases[i].xd, cases[i].yd, &none, &exif, cases[i].junk);
        bad += check_case(path, cases[i].fast);
    }

    /* Two APP1 segments that start "Exif": libvips reads the first, even
     * one that is not "Exif\0\0" and a TIFF header, or is cut short. */
    static const entry_t o6[] = {
        {0x112, 3, 6, 0}, {0x11a, 5, 72, 1}, {0x11b, 5, 72, 1}, {0x128, 3, 2, 0}};
    static const entry_t o3[] = {
        {0x112, 3, 3, 0}, {0x11a, 5, 96, 1}, {0x11b, 5, 96, 1}, {0x128, 3, 2, 0}};
    static bytes_t first;
    exif.n = 0;
    exif_block(&exif, 0, o6, 4);
    first.n = 0;
    exif_block(&first, 1, o3, 4);
    snprintf(path, sizeof path, "%s/exif-twice.jpg", dir);
    variant(path, base, 0, 1, 1, &first, &exif, 0);
    bad += check_case(path, 1);
    first.n = 0;
    put(&first, "ExifXX", 6);
    snprintf(path, sizeof path, "%s/exif-bad-first.jpg", dir);
    variant(path, base, 0, 1, 1, &first, &exif, 0);
    bad += check_case(path, 0);
    first.n = 0;
    put(&first, "Exif\0", 5);
    snprintf(path, sizeof path, "%s/exif-short-first.jpg", dir);
    variant(path, base, 0, 1, 1, &first, &exif, 0);
    bad += check_case(path, 0);
    /* An IFD that says it has more entries than the block holds. */
    exif.n = 0;
    exif_block(&exif, 0, o6, 4);
    exif.b[6 + 8] = 200;
    snprintf(path, sizeof path, "%s/exif-count-past-end.jpg", dir);
    variant(path, base, 0, 1, 1, &none, &exif, 0);
    bad += check_case(path, 0);
    assert_int_equal(bad, 0);
}

/* Every JPEG in the corpus, broken ones included. */
static void corpus_jpegs_match_libvips(void **state)
{
    (void)state;
    const char *shared = getenv("IB_SHARED");
    char manifest[PATH_MAX], line[8192];
    snprintf(manifest, sizeof manifest, "%s/corpus/MANIFEST.tsv", shared ? shared : "../shared");
    FILE *m = fopen(manifest, "r");
    if (m == NULL) {
        ib_test_skip_loudly("probe", "corpus part: %s not found", manifest);
    }
    int files = 0, fast = 0, bad = 0;
    while (fgets(line, sizeof line, m) != NULL) {
        char *fields[8] = {0};
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        for (int i = 0; tok != NULL && i < 8; i++, tok = strtok_r(NULL, "\t", &save))
            fields[i] = tok;
        if (fields[3] == NULL || strncmp(fields[3], "JPEG", 4) != 0)
            continue;
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/corpus/%s", shared ? shared : "../shared", fields[0]);
        files++;
        fast += taken(path);
        bad += compare(path);
    }
    fclose(m);
    fprintf(stderr, "probe: %d corpus JPEGs, %d read by the fast probe\n", files, fast);
    assert_true(files > 0);
    assert_true(fast > files / 2);
    assert_int_equal(bad, 0);
}

/* The fast probe's bytes of path, whose width must be width. */
static ib_fastjpeg_bytes_t *probe_bytes(const char *path, unsigned width)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ib_fastjpeg_header_t h;
    ib_fastjpeg_bytes_t *bytes;
    assert_int_equal(ib_fastjpeg_probe(fileno(f), &h, &bytes), 0);
    fclose(f);
    assert_int_equal(h.width, width);
    assert_non_null(bytes);
    return bytes;
}

/* The bytes a probe keeps (all of a small file, the first of a big one)
 * decode as a fresh read does, and a file changed since is read afresh. */
static void kept_bytes_decode_as_a_fresh_read(void **state)
{
    (void)state;
    static const unsigned sides[][2] = {{200, 150}, {1400, 1000}};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/kept-%zu.jpg", dir, i);
        base_jpeg(path, sides[i][0], sides[i][1]);
        VipsImage *fresh = ib_fastjpeg_load(path, NULL, 64, 48, 1, NULL, NULL);
        assert_non_null(fresh);

        ib_fastjpeg_bytes_t *bytes = probe_bytes(path, sides[i][0]);
        VipsImage *kept = ib_fastjpeg_load(path, &bytes, 64, 48, 1, NULL, NULL);
        assert_null(bytes);
        assert_non_null(kept);

        size_t la, lb;
        void *a = vips_image_write_to_memory(fresh, &la);
        void *b = vips_image_write_to_memory(kept, &lb);
        assert_true(la == lb && memcmp(a, b, la) == 0);
        g_free(a);
        g_free(b);
        g_object_unref(fresh);
        g_object_unref(kept);
    }

    /* A header longer than the probe's first read: APP2 segments that
     * are no ICC profile push the tables past it. */
    char base[PATH_MAX], tall[PATH_MAX];
    snprintf(base, sizeof base, "%s/kept-0.jpg", dir);
    snprintf(tall, sizeof tall, "%s/tall-header.jpg", dir);
    FILE *in = fopen(base, "rb"), *out = fopen(tall, "wb");
    assert_true(in != NULL && out != NULL);
    static unsigned char body[1 << 20];
    size_t n = fread(body, 1, sizeof body, in);
    fwrite(body, 1, 2, out);
    static bytes_t pad, seg;
    pad.n = 0;
    for (int i = 0; i < 60000; i++)
        put(&pad, "x", 1);
    for (int i = 0; i < 3; i++) {
        seg.n = 0;
        segment(&seg, 0xe2, &pad);
        fwrite(seg.b, 1, seg.n, out);
    }
    fwrite(body + 2, 1, n - 2, out);
    fclose(in);
    fclose(out);
    assert_int_equal(taken(tall), 1);
    assert_int_equal(compare(tall), 0);

    /* A big file probed, then replaced by a small picture before the
     * decode: read afresh, not the first bytes of one and the rest of
     * the other. A small file probed whole is the snapshot probed. */
    char big[PATH_MAX], small[PATH_MAX], copy[PATH_MAX * 2 + 16];
    snprintf(big, sizeof big, "%s/kept-1.jpg", dir);
    snprintf(small, sizeof small, "%s/kept-0.jpg", dir);
    struct stat st;
    assert_int_equal(stat(big, &st), 0);
    assert_true(st.st_size > 128 << 10);
    ib_fastjpeg_bytes_t *bytes = probe_bytes(big, 1400);
    snprintf(copy, sizeof copy, "cp '%s' '%s.keep'", small, small);
    assert_int_equal(system(copy), 0);
    assert_int_equal(rename(small, big), 0);
    VipsImage *im = ib_fastjpeg_load(big, &bytes, 32, 24, 1, NULL, NULL);
    assert_non_null(im);
    assert_int_equal(im->Xsize, 200 / 2);
    g_object_unref(im);

    char other[PATH_MAX];
    snprintf(copy, sizeof copy, "%s.keep", small);
    snprintf(other, sizeof other, "%s/other.jpg", dir);
    base_jpeg(other, 120, 90);
    bytes = probe_bytes(copy, 200);
    assert_int_equal(rename(other, copy), 0);
    im = ib_fastjpeg_load(copy, &bytes, 32, 24, 1, NULL, NULL);
    assert_non_null(im);
    assert_int_equal(im->Xsize, 200 / 2);
    g_object_unref(im);
}

/* Pixels of a w x h JPEG decoded whole through spare, compared with a
 * decode that keeps nothing; returns where the decode put them. */
static const void *decode_through(const char *path, unsigned w, unsigned h,
                                  ib_fastpath_spare_t *spare)
{
    VipsImage *fresh = ib_fastjpeg_load(path, NULL, w, h, 1, NULL, NULL);
    VipsImage *reused = ib_fastjpeg_load(path, NULL, w, h, 1, spare, NULL);
    assert_true(fresh != NULL && reused != NULL);
    assert_int_equal(reused->Xsize, w);
    assert_int_equal(ib_fastpath_spare_held(spare), 0);
    const void *at = reused->data;
    size_t la, lb;
    void *a = vips_image_write_to_memory(fresh, &la);
    void *b = vips_image_write_to_memory(reused, &lb);
    assert_true(la == lb && memcmp(a, b, la) == 0);
    g_free(a);
    g_free(b);
    g_object_unref(fresh);
    g_object_unref(reused);
    return at;
}

/* A closed image's decode buffer is kept for the next decode that fits in
 * it, a larger one replaces it, and under a budget a buffer over a
 * quarter of it is not kept. The pixels are the same either way. */
static void decode_buffer_is_kept_for_the_next_image(void **state)
{
    (void)state;
    char small[PATH_MAX], large[PATH_MAX];
    snprintf(small, sizeof small, "%s/spare-small.jpg", dir);
    snprintf(large, sizeof large, "%s/spare-large.jpg", dir);
    base_jpeg(small, 300, 200);
    base_jpeg(large, 600, 400);

    ib_fastpath_spare_t *spare = ib_fastpath_spare_new(0);
    assert_non_null(spare);
    const void *first = decode_through(large, 600, 400, spare);
    size_t held = ib_fastpath_spare_held(spare);
    assert_true(held >= 600 * 400 * 3);
    assert_ptr_equal(decode_through(small, 300, 200, spare), first);
    assert_int_equal(ib_fastpath_spare_held(spare), held);
    assert_ptr_equal(decode_through(large, 600, 400, spare), first);
    ib_fastpath_spare_drop(spare);
    assert_int_equal(ib_fastpath_spare_held(spare), 0);
    decode_through(small, 300, 200, spare);
    held = ib_fastpath_spare_held(spare);
    assert_true(held >= 300 * 200 * 3 && held < 600 * 400 * 3);
    decode_through(large, 600, 400, spare);
    assert_true(ib_fastpath_spare_held(spare) >= 600 * 400 * 3);
    ib_fastpath_spare_free(spare);

    /* 4 x 300 x 200 x 3 bytes: the small image's buffer is kept, the
     * large one's is not. */
    spare = ib_fastpath_spare_new(4 * 300 * 200 * 3);
    decode_through(small, 300, 200, spare);
    assert_int_equal(ib_fastpath_spare_held(spare), 300 * 200 * 3);
    decode_through(large, 600, 400, spare);
    assert_int_equal(ib_fastpath_spare_held(spare), 0);
    ib_fastpath_spare_free(spare);
}

static int setup(void **state)
{
    (void)state;
    ib_image_config_t fast = {.fast_paths = 1}, slow = {.fast_paths = 0};
    if (mkdtemp(dir) == NULL)
        return -1;
    fast_ctx = ib_image_init("test_probe", &fast);
    slow_ctx = ib_image_init("test_probe", &slow);
    return fast_ctx != NULL && slow_ctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX];
    ib_image_ctx_free(fast_ctx);
    ib_image_ctx_free(slow_ctx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

IB_TEST_MAIN(setup, teardown,
             {
                 cmocka_unit_test(generated_headers_match_libvips),
                 cmocka_unit_test(corpus_jpegs_match_libvips),
                 cmocka_unit_test(kept_bytes_decode_as_a_fresh_read),
                 cmocka_unit_test(decode_buffer_is_kept_for_the_next_image),
             })
