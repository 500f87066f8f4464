/*
 * Content sniffing, the sRGB profile check, and module preloading (which
 * must leave the parent single-threaded, or forking workers is unsafe).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "preload.h"
#include "sniff.h"

static void magic_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {"\xff\xd8\xff\xe0", 4, "jpeg"},
        {"\x89PNG\r\n\x1a\n", 8, "png"},
        {"GIF89a", 6, "gif"},
        {"RIFF\0\0\0\0WEBPVP8 ", 16, "webp"},
        {"II*\0", 4, "tiff"},
        {"MM\0*", 4, "tiff"},
        {"\0\0\0\x1c"
         "ftypheic",
         12, "heif"},
        {"\0\0\0\x1c"
         "ftypavif",
         12, "heif"},
        {"%PDF-1.7", 8, "pdf"},
        {"BM\0\0\0\0\0\0\0\0\0\0\0\0", 14, "bmp"},
        {"P6\n", 3, "pnm"},
        {"#?RADIANCE", 10, "rad"},
        {"hello world", 11, NULL},
        {"\x89PN", 3, NULL}, /* too short to tell */
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = ib_sniff_magic((const unsigned char *)cases[i].bytes, cases[i].n);
        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
    }
    unsigned char dicom[200] = {0};
    memcpy(dicom + 128, "DICM", 4);
    assert_string_equal(ib_sniff_magic(dicom, sizeof dicom), "dicom");
}

static void image_names(void **state)
{
    (void)state;
    assert_true(ib_sniff_image_name("a/b/photo.JPG"));
    assert_true(ib_sniff_image_name("x.tiff"));
    assert_true(ib_sniff_image_name("icon.ico"));
    assert_false(ib_sniff_image_name("notes.txt"));
    assert_false(ib_sniff_image_name("archive.tar.gz"));
    /* Gzip-compressed SVG, which libvips' svgload reads. */
    assert_true(ib_sniff_image_name("art/logo.svg.gz"));
    assert_true(ib_sniff_image_name("LOGO.SVG.GZ"));
    assert_false(ib_sniff_image_name("logo.gz"));
    assert_false(ib_sniff_image_name("dir/.svg.gz"));
    assert_false(ib_sniff_image_name(".jpg")); /* a hidden file, not an extension */
    assert_false(ib_sniff_image_name("noext"));
}

/* A minimal ICC profile with one 'desc' tag of the given kind. */
static size_t make_icc(unsigned char *buf, size_t cap, const char *desc, int v4)
{
    memset(buf, 0, cap);
    size_t off = 144, n = strlen(desc), size;
    buf[131] = 1; /* one tag */
    memcpy(buf + 132, "desc", 4);
    buf[136 + 3] = (unsigned char)off;
    if (!v4) {
        memcpy(buf + off, "desc", 4);
        buf[off + 11] = (unsigned char)(n + 1);
        memcpy(buf + off + 12, desc, n);
        size = 12 + n + 1;
    } else {
        memcpy(buf + off, "mluc", 4);
        buf[off + 11] = 1;  /* one record */
        buf[off + 15] = 12; /* record size */
        memcpy(buf + off + 16, "enUS", 4);
        buf[off + 23] = (unsigned char)(2 * n);
        buf[off + 27] = 28;
        for (size_t i = 0; i < n; i++)
            buf[off + 28 + 2 * i + 1] = (unsigned char)desc[i];
        size = 28 + 2 * n;
    }
    buf[140 + 3] = (unsigned char)size;
    return off + size;
}

static void srgb_profiles(void **state)
{
    (void)state;
    unsigned char icc[512];
    const char *srgb[] = {"sRGB IEC61966-2.1", "sRGB2014", "sRGB built-in",
                          "sRGB Gamut with sRGB Transfer"};
    const char *other[] = {"Display P3", "Adobe RGB (1998)", "ProPhoto RGB", "", "RGB"};
    for (int v4 = 0; v4 <= 1; v4++) {
        for (size_t i = 0; i < sizeof srgb / sizeof srgb[0]; i++)
            assert_true(ib_icc_is_srgb(icc, make_icc(icc, sizeof icc, srgb[i], v4)));
        for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
            assert_false(ib_icc_is_srgb(icc, make_icc(icc, sizeof icc, other[i], v4)));
    }
    /* Damaged profiles are simply not sRGB, and never read out of bounds. */
    size_t n = make_icc(icc, sizeof icc, "sRGB", 0);
    for (size_t cut = 0; cut < n; cut++)
        ib_icc_is_srgb(icc, cut);
    icc[143] = 0xff; /* size past the end */
    assert_false(ib_icc_is_srgb(icc, n));
}

static int threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void preloading_starts_no_thread(void **state)
{
    (void)state;
    assert_int_equal(threads(), 1);
    int loaded = ib_preload_modules();
    /* The parent forks workers after this: it must still be alone. */
    assert_int_equal(threads(), 1);
    if (loaded == 0)
        fprintf(stderr, "sniff: note: no libvips modules found to preload\n");
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(magic_numbers),
                 cmocka_unit_test(image_names),
                 cmocka_unit_test(srgb_profiles),
                 cmocka_unit_test(preloading_starts_no_thread),
             })
