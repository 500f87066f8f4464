/*
 * Output naming: templates, splitting, and the checks on --name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

#include "naming.h"

static void render(const char *root, const char *tmpl, const char *rel, const char *ext,
                   const char *want)
{
    char out[4096];
    ib_name_vars_t v = {.rel = rel, .ext = ext, .width = 640, .height = 480, .variant = "sm"};
    assert_int_equal(ib_name_render(root, tmpl, &v, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void default_template_mirrors_the_tree(void **state)
{
    (void)state;
    render("out", IB_DEFAULT_TEMPLATE, "a/b/c.jpg", "jpg", "out/a/b/c.jpg");
    render("out", IB_DEFAULT_TEMPLATE, "c.jpg", "webp", "out/c.webp");
    render("out/", IB_DEFAULT_TEMPLATE, "x/c.PNG", "PNG", "out/x/c.PNG");
    render("/", IB_DEFAULT_TEMPLATE, "c.jpg", "jpg", "/c.jpg");
}

static void fields_are_filled(void **state)
{
    (void)state;
    render("o", "{stem}_{w}x{h}.{ext}", "d/photo.jpeg", "jpg", "o/photo_640x480.jpg");
    render("o", "{dir}/{stem}-{variant}.{ext}", "d/e/p.png", "png", "o/d/e/p-sm.png");
    render("o", "{ext}/{dir}/{stem}.{ext}", "p.png", "webp", "o/webp/p.webp");
    /* {hash} is known once the output is encoded; before, it stays. */
    char out[64];
    ib_name_vars_t v = {.rel = "p.png", .ext = "png", .hash = "0123456789ab"};
    assert_int_equal(ib_name_render("o", "{stem}-{hash}.{ext}", &v, out, sizeof out), 0);
    assert_string_equal(out, "o/p-0123456789ab.png");
    v.hash = NULL;
    assert_int_equal(ib_name_render("o", "{stem}-{hash}.{ext}", &v, out, sizeof out), 0);
    assert_string_equal(out, "o/p-{hash}.png");
    assert_true(ib_name_has_hash("{stem}-{hash}.{ext}"));
    assert_false(ib_name_has_hash(IB_DEFAULT_TEMPLATE));
}

static void odd_names_split_sensibly(void **state)
{
    (void)state;
    char dir[64], stem[64], ext[16];
    ib_name_split("a/b/archive.tar.gz", dir, sizeof dir, stem, sizeof stem, ext, sizeof ext);
    assert_string_equal(dir, "a/b");
    assert_string_equal(stem, "archive.tar");
    assert_string_equal(ext, "gz");
    ib_name_split(".hidden", dir, sizeof dir, stem, sizeof stem, ext, sizeof ext);
    assert_string_equal(dir, "");
    assert_string_equal(stem, ".hidden");
    assert_string_equal(ext, "");
    ib_name_split("noext", dir, sizeof dir, stem, sizeof stem, ext, sizeof ext);
    assert_string_equal(stem, "noext");
    assert_string_equal(ext, "");
    /* Spaces, '#' and non-ASCII are just bytes. */
    render("o", IB_DEFAULT_TEMPLATE, "sharp/XCMYK 2017 #1 (é).jpg", "jpg",
           "o/sharp/XCMYK 2017 #1 (é).jpg");
}

static void bad_templates_are_refused(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ib_name_check("{stem}.{ext}", err, sizeof err), 0);
    assert_int_equal(ib_name_check("{stem}.{nope}", err, sizeof err), -1);
    assert_non_null(strstr(err, "{nope}"));
    assert_int_equal(ib_name_check("{stem.{ext}", err, sizeof err), -1);
    assert_int_equal(ib_name_check("{ext}", err, sizeof err), -1);
    assert_non_null(strstr(err, "{stem}"));
    assert_int_equal(ib_name_check("../{stem}.{ext}", err, sizeof err), -1);
    assert_int_equal(ib_name_check("/abs/{stem}", err, sizeof err), -1);
}

static void too_long_is_an_error(void **state)
{
    (void)state;
    char out[16];
    ib_name_vars_t v = {.rel = "a-rather-long-name.jpg", .ext = "jpg"};
    assert_int_equal(ib_name_render("out", IB_DEFAULT_TEMPLATE, &v, out, sizeof out), -1);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(default_template_mirrors_the_tree),
                 cmocka_unit_test(fields_are_filled),
                 cmocka_unit_test(odd_names_split_sensibly),
                 cmocka_unit_test(bad_templates_are_refused),
                 cmocka_unit_test(too_long_is_an_error),
             })
