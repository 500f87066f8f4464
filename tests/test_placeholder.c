/*
 * The web placeholders (filters/placeholder.c): the dominant colour, the
 * BlurHash against the output of Wolt's reference encoder, and the LQIP
 * decoded back with libvips, on solid, two-colour, noisy, huge, tiny,
 * transparent, 16-bit and grey images, and on a file decoded sequentially.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "placeholder.h"

/* ---- reading a BlurHash back, as a decoder does ---- */

/* The colour of the DC term, in sRGB bytes. */
static void dc_colour(const char *hash, unsigned rgb[3])
{
    unsigned v = ib_test_base83(hash + 2, 4);
    rgb[0] = v >> 16;
    rgb[1] = v >> 8 & 255;
    rgb[2] = v & 255;
}

/* AC term k (1-based, in the hash's order) as the decoder scales it. */
static void ac_term(const char *hash, unsigned k, double ac[3])
{
    double max = (ib_test_base83(hash + 1, 1) + 1) / 166.0;
    unsigned v = ib_test_base83(hash + 4 + 2 * k, 2);
    unsigned q[3] = {v / 361, v / 19 % 19, v % 19};
    for (int c = 0; c < 3; c++) {
        double t = (q[c] - 9.0) / 9.0;
        ac[c] = copysign(t * t, t) * max;
    }
}

/* ---- images ---- */

/* A w x h image of 8-bit pixels (bands per pixel) from f, in memory. */
static VipsImage *image_from(unsigned w, unsigned h, unsigned bands,
                             void (*f)(unsigned x, unsigned y, unsigned char *px))
{
    unsigned char *buf = g_malloc((size_t)w * h * bands);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            f(x, y, buf + ((size_t)y * w + x) * bands);
    VipsImage *im = vips_image_new_from_memory_copy(buf, (size_t)w * h * bands, (int)w, (int)h,
                                                    (int)bands, VIPS_FORMAT_UCHAR);
    g_free(buf);
    assert_non_null(im);
    im->Type = bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return im;
}

static VipsImage *solid(unsigned w, unsigned h, double r, double g, double b)
{
    VipsImage *black, *lit, *out;
    double a[3] = {1, 1, 1}, c[3] = {r, g, b};
    assert_int_equal(vips_black(&black, (int)w, (int)h, "bands", 3, NULL), 0);
    assert_int_equal(vips_linear(black, &lit, a, c, 3, NULL), 0);
    assert_int_equal(vips_cast(lit, &out, VIPS_FORMAT_UCHAR, NULL), 0);
    g_object_unref(black);
    g_object_unref(lit);
    out->Type = VIPS_INTERPRETATION_sRGB;
    return out;
}

static void make(VipsImage *im, ib_placeholder_t *p)
{
    if (ib_placeholder_make(im, p) != 0)
        fail_msg("ib_placeholder_make: %s", vips_error_buffer());
}

/* make(), then im is unreffed: the common case of an image made only
 * for its placeholders. */
static void make_from(VipsImage *im, ib_placeholder_t *p)
{
    make(im, p);
    g_object_unref(im);
}

/* The LQIP decoded, after checking its URI; the caller unrefs it. */
static VipsImage *lqip_image(const ib_placeholder_t *p)
{
    static const char prefix[] = "data:image/webp;base64,";
    assert_true(strlen(p->lqip) < IB_PLACEHOLDER_LQIP_MAX);
    assert_memory_equal(p->lqip, prefix, sizeof prefix - 1);
    gsize n;
    guchar *bytes = g_base64_decode(p->lqip + sizeof prefix - 1, &n);
    assert_non_null(bytes);
    VipsImage *loaded = vips_image_new_from_buffer(bytes, n, "", NULL);
    if (loaded == NULL)
        fail_msg("LQIP does not decode: %s", vips_error_buffer());
    VipsImage *im = vips_image_copy_memory(loaded);
    g_object_unref(loaded);
    g_free(bytes);
    assert_non_null(im);
    assert_true(im->Xsize <= IB_PLACEHOLDER_LQIP_SIDE && im->Ysize <= IB_PLACEHOLDER_LQIP_SIDE);
    return im;
}

/* Whether every pixel of im is within tol of rgb on every band. */
static int all_near(VipsImage *im, const unsigned rgb[3], int tol)
{
    assert_int_equal(im->BandFmt, VIPS_FORMAT_UCHAR);
    assert_true(im->Bands >= 3);
    for (int y = 0; y < im->Ysize; y++)
        for (int x = 0; x < im->Xsize; x++) {
            const unsigned char *px = VIPS_IMAGE_ADDR(im, x, y);
            for (int c = 0; c < 3; c++)
                if (abs((int)px[c] - (int)rgb[c]) > tol) {
                    print_error("pixel %d,%d band %d is %u, want %u\n", x, y, c, px[c], rgb[c]);
                    return 0;
                }
        }
    return 1;
}

/* ---- BlurHash: Wolt's reference encoder's answers ---- */

typedef void pixel_fn(unsigned x, unsigned y, unsigned char *px);

static void px_black(unsigned x, unsigned y, unsigned char *px)
{
    (void)x, (void)y;
    px[0] = px[1] = px[2] = 0;
}

static void px_white(unsigned x, unsigned y, unsigned char *px)
{
    (void)x, (void)y;
    px[0] = px[1] = px[2] = 255;
}

static void px_3366cc(unsigned x, unsigned y, unsigned char *px)
{
    (void)x, (void)y;
    px[0] = 0x33, px[1] = 0x66, px[2] = 0xcc;
}

/* Left half black, right half white (8 pixels wide). */
static void px_halves(unsigned x, unsigned y, unsigned char *px)
{
    (void)y;
    px[0] = px[1] = px[2] = x < 4 ? 0 : 255;
}

static void px_gradient(unsigned x, unsigned y, unsigned char *px)
{
    px[0] = (unsigned char)((x * 40 + y * 10) % 256);
    px[1] = (unsigned char)((x * y * 7 + 30) % 256);
    px[2] = (unsigned char)((255 + 512 - x * 20 - y * 30) % 256);
}

/* The hash of a w x h picture from f, its rows pad bytes longer than the
 * pixels so the stride is honoured. */
static int hash_of(pixel_fn *f, unsigned w, unsigned h, unsigned pad, unsigned cx, unsigned cy,
                   char *out, size_t cap)
{
    unsigned char buf[16 * (16 * 3 + 8)];
    size_t stride = w * 3 + pad;
    assert_true(h * stride <= sizeof buf);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            f(x, y, buf + y * stride + 3 * x);
    return ib_placeholder_blurhash(buf, w, h, stride, cx, cy, out, cap);
}

/*
 * The answers of Wolt's TypeScript encoder (npm blurhash 2.0.5) for the same
 * pixels. That encoder scales the AC terms by their largest signed value,
 * the C and Swift ones by their largest magnitude, as this one does; the
 * two agree except for "halves", whose largest term is negative: its
 * answer is the TypeScript encoder's with the magnitude.
 */
static void blurhash_matches_the_reference(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        pixel_fn *f;
        unsigned w, h, cx, cy;
        const char *want;
    } cases[] = {
        {"black", px_black, 8, 8, 4, 3, "L00000fQfQfQfQfQfQfQfQfQfQfQ"},
        {"white", px_white, 8, 8, 4, 3, "LfTSUA~qfQ~q~qt7fQt7fQfQfQfQ"},
        {"#3366cc", px_3366cc, 8, 8, 4, 3, "LO5?~Ep3fQp3p3j^fQj^fQfQfQfQ"},
        {"halves", px_halves, 8, 4, 4, 3, "L~Lqe900D%?b-;IURjxufQfQfQfQ"},
        {"gradient 4x3", px_gradient, 7, 5, 4, 3, "LuG%HZA4E--D#LKRsqjLr#OZw|WY"},
        {"gradient 3x4", px_gradient, 7, 5, 3, 4, "TuG%HZA4E-#LKRsqr#OZw|$-R;WY"},
        {"gradient 1x1", px_gradient, 7, 5, 1, 1, "00G%HZ"},
        {"gradient 9x9", px_gradient, 7, 5, 9, 9,
         "|uG%HZA4E--DI_t9euXUeu#LKRsqjLS$wPOYwPOYr#OZw|WYW=sDOEwgOE$-R;WYsqWYogWFkCWFV~bcoMWYkCjJ"
         "bbnmbb%4WHS5sqWFbbnmS#nmV~bcoMWYkCjJbbnmbb$-R;WYsqWYogWFkCWFr#OZw|WYW=sDOEwgOE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (unsigned pad = 0; pad <= 5; pad += 5) {
            char hash[200];
            int n = hash_of(cases[i].f, cases[i].w, cases[i].h, pad, cases[i].cx, cases[i].cy, hash,
                            sizeof hash);
            if (n != (int)strlen(cases[i].want) || strcmp(hash, cases[i].want) != 0)
                fail_msg("%s (stride +%u): got %s (%d), want %s", cases[i].name, pad, hash, n,
                         cases[i].want);
        }
}

/* Length 4 + 2 cx cy, the size flag first; bad sizes and short buffers
 * refused. */
static void blurhash_has_the_reference_layout(void **state)
{
    (void)state;
    char hash[200];
    for (unsigned cx = 1; cx <= 9; cx++)
        for (unsigned cy = 1; cy <= 9; cy++) {
            int n = hash_of(px_gradient, 7, 5, 0, cx, cy, hash, sizeof hash);
            assert_int_equal(n, 4 + 2 * cx * cy);
            assert_int_equal(strlen(hash), n);
            assert_int_equal(ib_test_base83(hash, 1), (cx - 1) + (cy - 1) * 9);
        }
    assert_int_equal(hash_of(px_gradient, 7, 5, 0, 4, 3, hash, 28), -1);
    assert_int_equal(hash_of(px_gradient, 7, 5, 0, 4, 3, hash, 29), 28);
    assert_int_equal(hash_of(px_gradient, 7, 5, 0, 0, 3, hash, sizeof hash), -1);
    assert_int_equal(hash_of(px_gradient, 7, 5, 0, 4, 10, hash, sizeof hash), -1);
    assert_int_equal(hash_of(px_gradient, 0, 5, 0, 4, 3, hash, sizeof hash), -1);
}

/* Dark on the left, light on the right: the first horizontal term is
 * strongly negative (the basis is positive on the left), the DC mid-grey.
 * The first vertical term is not zero: the reference's basis, sampled at
 * the pixels' top edges, gives a flat column 2 / height of its mean. */
static void blurhash_of_two_halves_leans_right(void **state)
{
    (void)state;
    char hash[64];
    assert_int_equal(hash_of(px_halves, 8, 8, 0, 4, 3, hash, sizeof hash), 28);
    double h1[3], v1[3];
    ac_term(hash, 1, h1); /* (1, 0) */
    ac_term(hash, 4, v1); /* (0, 1) */
    unsigned dc[3];
    dc_colour(hash, dc);
    for (int c = 0; c < 3; c++) {
        assert_true(h1[c] < -0.3);
        assert_true(fabs(v1[c]) < fabs(h1[c]) / 3);
        /* The mean of 0 and 1 in linear light is 188 in sRGB. */
        assert_int_equal(dc[c], 188);
    }
}

/* ---- placeholders of images ---- */

/* Whether AC term (i, j) of a flat image must be exactly zero: an even
 * non-zero index has whole periods of its cosine over the pixels. */
static int flat_term_is_zero(unsigned i, unsigned j)
{
    return (i > 0 && i % 2 == 0) || (j > 0 && j % 2 == 0);
}

/* What every placeholder of a flat image of that colour must show. */
static void expect_flat(const ib_placeholder_t *p, const unsigned rgb[3])
{
    char want[8];
    snprintf(want, sizeof want, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    assert_string_equal(p->color, want);

    assert_int_equal(strlen(p->blurhash), 28);
    unsigned dc[3], flag = ib_test_base83(p->blurhash, 1), cx = flag % 9 + 1, cy = flag / 9 + 1;
    dc_colour(p->blurhash, dc);
    for (int c = 0; c < 3; c++)
        assert_int_equal(dc[c], rgb[c]);
    for (unsigned k = 1; k < cx * cy; k++) {
        double ac[3];
        ac_term(p->blurhash, k, ac);
        unsigned code = ib_test_base83(p->blurhash + 4 + 2 * k, 2);
        if (flat_term_is_zero(k % cx, k / cx))
            assert_int_equal(code, 9 * 361 + 9 * 19 + 9); /* "fQ" */
        for (int c = 0; c < 3; c++)
            if (fabs(ac[c]) > 0.05)
                fail_msg("%s: AC term %u is %g, not about 0", p->blurhash, k, ac[c]);
    }

    VipsImage *lqip = lqip_image(p);
    assert_true(all_near(lqip, rgb, 6));
    g_object_unref(lqip);
}

static void a_solid_image_gives_its_colour(void **state)
{
    (void)state;
    static const unsigned rgb[3] = {0x33, 0x66, 0xcc};
    ib_placeholder_t p;
    VipsImage *im = solid(200, 100, 0x33, 0x66, 0xcc);
    make_from(im, &p);
    expect_flat(&p, rgb);
    assert_int_equal(p.blurhash[0], 'L'); /* 4x3 */
    VipsImage *lqip = lqip_image(&p);
    assert_int_equal(lqip->Xsize, 32);
    assert_int_equal(lqip->Ysize, 16);
    g_object_unref(lqip);

    /* Portrait: 3x4 components. */
    im = solid(100, 200, 0x33, 0x66, 0xcc);
    make_from(im, &p);
    expect_flat(&p, rgb);
    assert_int_equal(p.blurhash[0], 'T');
}

/* Red with 30% of its pixels blue, scattered: the colour is the red, where
 * an average (the BlurHash's DC, from a resized copy, is one) is purple. */
static void px_speckled(unsigned x, unsigned y, unsigned char *px)
{
    uint32_t h = x * 2654435761u ^ (y + 0x9e3779b9u) * 2246822519u;
    h ^= h >> 15;
    h *= 2654435761u;
    h ^= h >> 13;
    int blue = h % 100 < 30;
    px[0] = blue ? 30 : 220;
    px[1] = 30;
    px[2] = blue ? 220 : 30;
}

static void the_colour_is_the_dominant_one_not_the_mean(void **state)
{
    (void)state;
    VipsImage *im = image_from(600, 400, 3, px_speckled);
    unsigned char c[3];
    ib_placeholder_dominant(VIPS_IMAGE_ADDR(im, 0, 0), 600, 400, 600 * 3, c);
    assert_int_equal(c[0], 220);
    assert_int_equal(c[1], 30);
    assert_int_equal(c[2], 30);

    ib_placeholder_t p;
    make_from(im, &p);
    assert_string_equal(p.color, "#dc1e1e");
    unsigned dc[3];
    dc_colour(p.blurhash, dc);
    assert_true(dc[0] < 200 && dc[2] > 60);
}

/* Blocks of noise big enough to survive the shrink: the worst case for the
 * LQIP's size that a large image can give. */
static void a_huge_noisy_image_still_fits(void **state)
{
    (void)state;
    VipsImage *n[3], *joined, *zoomed, *im;
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            vips_gaussnoise(&n[i], 60, 40, "mean", 128.0, "sigma", 80.0, "seed", i + 1, NULL), 0);
    assert_int_equal(vips_bandjoin(n, &joined, 3, NULL), 0);
    assert_int_equal(vips_zoom(joined, &zoomed, 100, 100, NULL), 0);
    assert_int_equal(vips_cast(zoomed, &im, VIPS_FORMAT_UCHAR, NULL), 0);
    im->Type = VIPS_INTERPRETATION_sRGB;
    assert_int_equal(im->Xsize, 6000);
    assert_int_equal(im->Ysize, 4000);
    ib_placeholder_t p;
    make(im, &p);
    for (int i = 0; i < 3; i++)
        g_object_unref(n[i]);
    g_object_unref(joined);
    g_object_unref(zoomed);
    g_object_unref(im);
    assert_int_equal(strlen(p.blurhash), 28);
    VipsImage *lqip = lqip_image(&p);
    assert_true(lqip->Xsize >= 8);
    g_object_unref(lqip);
}

/* Pixel noise already at the LQIP's size: nothing for the shrink to
 * smooth, so the quality has to come down. */
static void px_noise(unsigned x, unsigned y, unsigned char *px)
{
    for (unsigned c = 0; c < 3; c++) {
        uint32_t h = (x * 73856093u) ^ (y * 19349663u) ^ (c * 83492791u);
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        h ^= h >> 15;
        px[c] = (unsigned char)h;
    }
}

static void pixel_noise_still_fits(void **state)
{
    (void)state;
    VipsImage *im = image_from(32, 32, 3, px_noise);
    ib_placeholder_t p;
    make_from(im, &p);
    VipsImage *lqip = lqip_image(&p);
    g_object_unref(lqip);
}

static void a_single_pixel_works(void **state)
{
    (void)state;
    static const unsigned rgb[3] = {0x33, 0x66, 0xcc};
    VipsImage *im = solid(1, 1, 0x33, 0x66, 0xcc);
    ib_placeholder_t p;
    make_from(im, &p);
    expect_flat(&p, rgb);
    VipsImage *lqip = lqip_image(&p);
    assert_int_equal(lqip->Xsize, 1);
    assert_int_equal(lqip->Ysize, 1);
    g_object_unref(lqip);
}

static void px_red_then_clear(unsigned x, unsigned y, unsigned char *px)
{
    (void)y;
    px[0] = 255, px[1] = px[2] = 0;
    px[3] = x < 40 ? 255 : 0;
}

static void px_clear(unsigned x, unsigned y, unsigned char *px)
{
    (void)x, (void)y;
    px[0] = 10, px[1] = 200, px[2] = 30, px[3] = 0;
}

/* Transparent pixels count as white, whatever colour they hold. */
static void alpha_is_flattened_on_white(void **state)
{
    (void)state;
    static const unsigned white[3] = {255, 255, 255};
    ib_placeholder_t p;
    VipsImage *im = image_from(64, 64, 4, px_clear);
    make_from(im, &p);
    expect_flat(&p, white);

    im = image_from(64, 64, 4, px_red_then_clear);
    make_from(im, &p);
    assert_string_equal(p.color, "#ff0000");
    VipsImage *lqip = lqip_image(&p);
    const unsigned char *right = VIPS_IMAGE_ADDR(lqip, lqip->Xsize - 1, lqip->Ysize / 2);
    assert_true(right[0] > 240 && right[1] > 240 && right[2] > 240);
    g_object_unref(lqip);
}

/* 16-bit colour and grey, 8-bit grey and grey with alpha. */
static void other_formats_are_converted(void **state)
{
    (void)state;
    VipsImage *im, *wide, *grey16;
    ib_placeholder_t p;

    double a[3] = {1, 1, 1}, c[3] = {0x3333, 0x6666, 0xcccc};
    VipsImage *black, *lit;
    assert_int_equal(vips_black(&black, 90, 60, "bands", 3, NULL), 0);
    assert_int_equal(vips_linear(black, &lit, a, c, 3, NULL), 0);
    assert_int_equal(vips_cast(lit, &wide, VIPS_FORMAT_USHORT, NULL), 0);
    wide->Type = VIPS_INTERPRETATION_RGB16;
    make(wide, &p);
    assert_string_equal(p.color, "#3366cc");

    assert_int_equal(vips_extract_band(wide, &grey16, 1, NULL), 0);
    grey16->Type = VIPS_INTERPRETATION_GREY16;
    make(grey16, &p);
    assert_string_equal(p.color, "#666666");
    g_object_unref(black), g_object_unref(lit), g_object_unref(wide), g_object_unref(grey16);

    static const unsigned grey[3] = {0x80, 0x80, 0x80};
    VipsImage *rgb = solid(50, 70, 0x80, 0x80, 0x80);
    assert_int_equal(vips_extract_band(rgb, &im, 0, NULL), 0);
    im->Type = VIPS_INTERPRETATION_B_W;
    make(im, &p);
    expect_flat(&p, grey);
    VipsImage *ga;
    assert_int_equal(vips_bandjoin_const1(im, &ga, 255, NULL), 0);
    make(ga, &p);
    expect_flat(&p, grey);
    g_object_unref(rgb), g_object_unref(im), g_object_unref(ga);
}

static void long_thin_images_work(void **state)
{
    (void)state;
    static const unsigned rgb[3] = {0x33, 0x66, 0xcc};
    static const unsigned sides[][2] = {{3000, 1}, {1, 3000}, {100, 2}};
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        VipsImage *im = solid(sides[i][0], sides[i][1], 0x33, 0x66, 0xcc);
        ib_placeholder_t p;
        make(im, &p);
        g_object_unref(im);
        assert_string_equal(p.color, "#3366cc");
        unsigned dc[3];
        dc_colour(p.blurhash, dc);
        assert_int_equal(dc[0], rgb[0]);
        VipsImage *lqip = lqip_image(&p);
        assert_true(all_near(lqip, rgb, 6));
        g_object_unref(lqip);
    }
}

/* A file decoded on demand, top to bottom, can be read only once: the
 * placeholders of it must be those of the same pixels in memory. */
static void a_sequential_decode_is_read_once(void **state)
{
    (void)state;
    VipsImage *im = image_from(1000, 700, 3, px_speckled);
    void *png;
    size_t len;
    assert_int_equal(vips_pngsave_buffer(im, &png, &len, "compression", 1, NULL), 0);
    ib_placeholder_t want, got;
    make(im, &want);
    g_object_unref(im);

    VipsImage *seq = vips_image_new_from_buffer(png, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                                "fail_on", VIPS_FAIL_ON_WARNING, NULL);
    assert_non_null(seq);
    make(seq, &got);
    g_object_unref(seq);
    g_free(png);
    assert_string_equal(got.color, want.color);
    assert_string_equal(got.blurhash, want.blurhash);
    assert_string_equal(got.lqip, want.lqip);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (VIPS_INIT(argv[0]))
        return 1;
    vips_concurrency_set(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blurhash_matches_the_reference),
        cmocka_unit_test(blurhash_has_the_reference_layout),
        cmocka_unit_test(blurhash_of_two_halves_leans_right),
        cmocka_unit_test(a_solid_image_gives_its_colour),
        cmocka_unit_test(the_colour_is_the_dominant_one_not_the_mean),
        cmocka_unit_test(a_huge_noisy_image_still_fits),
        cmocka_unit_test(pixel_noise_still_fits),
        cmocka_unit_test(a_single_pixel_works),
        cmocka_unit_test(alpha_is_flattened_on_white),
        cmocka_unit_test(other_formats_are_converted),
        cmocka_unit_test(long_thin_images_work),
        cmocka_unit_test(a_sequential_decode_is_read_once),
    };
    return ib_test_run_suite(tests, NULL, NULL);
}
