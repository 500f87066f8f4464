/*
 * --report and --contact-sheet, checked as a person would look at them.
 *
 * The report is rendered by a real browser, headless Chromium (Debian's
 * chromium, installed by .ci/run): from --dump-dom every input and every
 * failure's reason is on the page, a file named with HTML in it is text
 * (and its markup never ran), and the filter script ran; from a
 * screenshot, each input's own colour is on screen, so the thumbnails
 * really rendered (a broken-image icon has none of them). Without
 * Chromium those tests skip loudly. The contact sheet is decoded with the
 * tests' own libpng reader: its size is columns x tiles, each tile holds
 * its output's colour in the order of the input paths, a failed input's
 * tile is red, and each label is drawn, as long as its name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contactsheet.h"
#include "harness.h"
#include "sheet.h"

typedef ib_test_cli_t cli_t;
typedef ib_test_run_t run_t;

#define N_COLOURED 10
/* A file whose name is markup: if the page took it as HTML, the image's
 * handler would retitle the page. */
#define HOSTILE "<img src=x onerror=document.title=7>&amp;<script>.png"

/* Input i's own colour, far from every other's and from the page's greys. */
static void colour_of(unsigned i, unsigned char rgb[3])
{
    static const unsigned char c[N_COLOURED][3] = {
        {230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200}, {245, 130, 48},
        {145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {0, 128, 128}, {128, 0, 0}};
    memcpy(rgb, c[i % N_COLOURED], 3);
}

/* A w x h PNG: its left half input i's colour, its right half a gradient,
 * so a thumbnail has many colours and one that names it. */
static void write_input(const char *path, unsigned i, unsigned w, unsigned h)
{
    ib_test_image_t img;
    char err[512];
    assert_int_equal(ib_test_image_alloc(&img, w, h, 3), 0);
    unsigned char own[3];
    colour_of(i, own);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            unsigned char *p = ib_test_pixel(&img, x, y);
            if (x < w / 2)
                memcpy(p, own, 3);
            else {
                p[0] = (unsigned char)(x * 255 / w);
                p[1] = (unsigned char)(y * 255 / h);
                p[2] = (unsigned char)((x + y) * 7);
            }
        }
    ib_test_mkdirs_for(path);
    if (ib_test_write_png(path, &img, err, sizeof err) < 0)
        fail_msg("%s", err);
    ib_test_image_free(&img);
}

/* in/ with N_COLOURED images, a damaged PNG with a hostile name and a
 * truncated JPEG. */
static void make_inputs(const char *in)
{
    char path[PATH_MAX];
    for (unsigned i = 0; i < N_COLOURED; i++) {
        ib_test_path_fmt(path, "%s/sub/img%02u.png", in, i);
        write_input(path, i, 240 + 16 * i, 160);
    }
    ib_test_path_fmt(path, "%s/%s", in, HOSTILE);
    ib_test_write_file(path, "\x89PNG\r\n\x1a\nbroken", 14);
    ib_test_path_fmt(path, "%s/cut.jpg", in);
    ib_test_write_file(path, "\xff\xd8\xff\xe0\x00\x10JFIF", 10);
}

/* s as the browser's DOM serialiser writes text: & < > escaped. */
static void dom_text(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s != '\0' && n + 6 < cap; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (e != NULL) {
            memcpy(out + n, e, strlen(e));
            n += strlen(e);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

/* ---- Chromium ---- */

/* Chromium's path into out, or a loud skip. */
static int find_chromium(char *out)
{
    if (ib_test_find_program("chromium", out) == 0)
        return 0;
    ib_test_skip_loudly("report", "no chromium on PATH (apt-get install chromium)");
    return -1;
}

/* Runs headless Chromium on url with what (--dump-dom, --screenshot=F);
 * its stdout into out_file. Skips loudly if it cannot start at all. */
static void chromium(cli_t *t, const char *browser, const char *what, const char *url,
                     const char *size, run_t *r)
{
    char profile[PATH_MAX], window[64];
    ib_test_path_fmt(profile, "%s/chromium-profile", t->root);
    ib_test_path_fmt(window, "--window-size=%s", size);
    char user_data[PATH_MAX + 32];
    snprintf(user_data, sizeof user_data, "--user-data-dir=%s", profile);
    /* --no-sandbox: the suite may run as root, where the sandbox will not
     * start. The time budget lets lazy images load before the dump. */
    const char *argv[] = {browser,
                          "--headless",
                          "--no-sandbox",
                          "--disable-gpu",
                          "--no-first-run",
                          "--hide-scrollbars",
                          "--force-device-scale-factor=1",
                          "--virtual-time-budget=10000",
                          user_data,
                          window,
                          what,
                          url,
                          NULL};
    ib_test_spawn_t how = {0};
    ib_test_cli_run_prog(t, r, &how, browser, argv);
    if (r->status != 0)
        ib_test_run_show(r, "chromium");
    assert_int_equal(r->status, 0);
}

/* A report of in/ with its outputs beside it, from one run with --json:
 * the events say what the page must show. */
static void report_run(cli_t *t, const char *dir, run_t *r)
{
    char in[PATH_MAX], out[PATH_MAX], page[PATH_MAX];
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/site/out", dir);
    ib_test_path_fmt(page, "%s/site/report.html", dir);
    make_inputs(in);
    ib_test_cli_run(t, r, NULL, in, "-o", out, "-s", "160x120", "--json", "--report", page, NULL);
    ib_test_expect_exit(r, 1, "imgbatch --report");
}

/* Every input and every failure's reason is on the rendered page, names
 * are text, and the filter ran. */
static void test_report_dom(void **state)
{
    cli_t *t = *state;
    char browser[PATH_MAX], dir[PATH_MAX], url[PATH_MAX + 16], esc[4096];
    if (find_chromium(browser) < 0)
        return;
    ib_test_cli_dir(t, "dom", dir);
    run_t r, b;
    report_run(t, dir, &r);
    ib_test_events_t ev;
    ib_test_events_load(&r, &ev);
    ib_test_path_fmt(url, "file://%s/site/report.html", dir);
    chromium(t, browser, "--dump-dom", url, "1200,900", &b);
    unsigned inputs = 0, failures = 0;
    for (size_t i = 0; i < ev.n; i++) {
        const ib_test_event_t *e = &ev.files[i];
        inputs++;
        dom_text(e->input, esc, sizeof esc);
        if (strstr(b.out_text, esc) == NULL)
            fail_msg("input %s is not on the page", e->input);
        if (strcmp(e->status, "failed") != 0)
            continue;
        failures++;
        dom_text(e->error_message, esc, sizeof esc);
        if (strstr(b.out_text, esc) == NULL)
            fail_msg("the reason for %s (%s) is not on the page", e->input, e->error_message);
    }
    assert_int_equal(inputs, N_COLOURED + 2);
    assert_int_equal(failures, 2);
    /* The hostile name is a text node; its handler never ran. */
    dom_text(HOSTILE, esc, sizeof esc);
    assert_non_null(strstr(b.out_text, esc));
    assert_non_null(strstr(b.out_text, "<title>imgbatch report</title>"));
    assert_null(strstr(b.out_text, "<img src=\"x\""));
    assert_non_null(strstr(b.out_text, "id=\"n-failed\">2 failed<"));
    assert_non_null(strstr(b.out_text, "id=\"shown\">12 of 12 shown<"));
    /* Failures first: both rows before any other. */
    const char *first_ok = strstr(b.out_text, "data-s=\"ok\"");
    const char *last_failed = b.out_text;
    for (const char *p; (p = strstr(last_failed + 1, "data-s=\"failed\"")) != NULL;)
        last_failed = p;
    assert_true(first_ok != NULL && last_failed < first_ok);
    ib_test_run_free(&b);

    /* A link to report.html#failed shows only the failures. */
    ib_test_path_fmt(url, "file://%s/site/report.html#failed", dir);
    chromium(t, browser, "--dump-dom", url, "1200,900", &b);
    assert_non_null(strstr(b.out_text, "id=\"shown\">2 of 12 shown<"));
    assert_non_null(strstr(b.out_text, "<tr data-s=\"ok\" hidden=\"\">"));
    ib_test_run_free(&b);
    ib_test_events_free(&ev);
    ib_test_run_free(&r);
}

/* Whether some pixel of the screenshot is near rgb. */
static int on_screen(const ib_test_image_t *img, const unsigned char rgb[3])
{
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            if (abs(p[0] - rgb[0]) <= 4 && abs(p[1] - rgb[1]) <= 4 && abs(p[2] - rgb[2]) <= 4)
                return 1;
        }
    return 0;
}

/* Distinct colours of the screenshot (a 12-bit digest of each). */
static unsigned colours(const ib_test_image_t *img)
{
    static unsigned char seen[4096];
    memset(seen, 0, sizeof seen);
    unsigned n = 0;
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            unsigned k = (unsigned)(p[0] >> 4) << 8 | (unsigned)(p[1] >> 4) << 4 | p[2] >> 4;
            n += !seen[k];
            seen[k] = 1;
        }
    return n;
}

/* The thumbnails render: every input's own colour is on screen. */
static void test_report_screenshot(void **state)
{
    cli_t *t = *state;
    char browser[PATH_MAX], dir[PATH_MAX], url[PATH_MAX + 16], shot[PATH_MAX + 16];
    char err[512];
    if (find_chromium(browser) < 0)
        return;
    ib_test_cli_dir(t, "shot", dir);
    run_t r, b;
    report_run(t, dir, &r);
    ib_test_path_fmt(url, "file://%s/site/report.html", dir);
    ib_test_path_fmt(shot, "--screenshot=%s/shot.png", dir);
    chromium(t, browser, shot, url, "1200,2000", &b);
    ib_test_image_t img;
    if (ib_test_decode(shot + strlen("--screenshot="), &img, err, sizeof err) < 0)
        fail_msg("%s", err);
    for (unsigned i = 0; i < N_COLOURED; i++) {
        unsigned char rgb[3];
        colour_of(i, rgb);
        if (!on_screen(&img, rgb))
            fail_msg("img%02u's colour #%02x%02x%02x is not on screen: its thumbnail did not "
                     "render",
                     i, rgb[0], rgb[1], rgb[2]);
    }
    /* The gradients: far more colours than text and broken icons give. */
    unsigned n = colours(&img);
    if (n < 300)
        fail_msg("only %u distinct colours on screen", n);
    ib_test_image_free(&img);
    ib_test_run_free(&b);
    ib_test_run_free(&r);
}

/* Outputs outside the page's folder: each row has an inline copy. */
static void test_report_inline_copies(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], pages[PATH_MAX], page[PATH_MAX];
    ib_test_cli_in_out(t, "inline", dir, in, out);
    for (unsigned i = 0; i < 4; i++) {
        ib_test_path_fmt(page, "%s/p%u.png", in, i);
        write_input(page, i, 64, 48);
    }
    ib_test_path_fmt(pages, "%s/pages", dir);
    ib_test_mkdir(pages);
    ib_test_path_fmt(page, "%s/r-{shard}.html", pages);
    run_t r;
    ib_test_cli_run(t, &r, NULL, in, "-o", out, "--json", "--shard", "1/1", "--report", page, NULL);
    ib_test_expect_exit(&r, 0, "imgbatch --report");
    /* Asked only for the page: the events carry no placeholders. */
    assert_null(strstr(r.out_text, "lqip"));
    ib_test_path_fmt(page, "%s/r-1.html", pages);
    char *html = ib_test_slurp(page, NULL);
    unsigned copies = 0;
    for (const char *p = html; (p = strstr(p, "src=\"data:image/webp;base64,")) != NULL; p++)
        copies++;
    assert_int_equal(copies, 4);
    assert_null(strstr(html, "href="));
    test_free(html);
    ib_test_listing_t l;
    ib_test_list_tree(pages, &l);
    assert_int_equal(l.n, 1); /* the page alone: no row or temporary file left */
    ib_test_listing_free(&l);
    ib_test_run_free(&r);
}

/* A page that cannot be written stops the run before any work. */
static void test_report_in_missing_folder(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], page[PATH_MAX];
    ib_test_cli_in_out(t, "missing", dir, in, out);
    ib_test_path_fmt(page, "%s/p0.png", in);
    write_input(page, 0, 32, 32);
    ib_test_path_fmt(page, "%s/nowhere/r.html", dir);
    run_t r;
    ib_test_cli_run(t, &r, NULL, in, "-o", out, "--report", page, NULL);
    ib_test_expect_exit(&r, 2, "imgbatch --report nowhere/r.html");
    assert_non_null(strstr(r.err_text, "nowhere/.imgbatch-report."));
    assert_non_null(strstr(r.err_text, "No such file or directory"));
    ib_test_path_fmt(page, "%s/p0.png", out);
    assert_false(ib_test_exists(page));
    ib_test_run_free(&r);
}

/* ---- the contact sheet ---- */

/* The brightest value in a box of the sheet, and the rightmost column
 * (from x0) where it is over 128. */
static unsigned brightest(const ib_test_image_t *img, unsigned x0, unsigned y0, unsigned w,
                          unsigned h, unsigned *right)
{
    unsigned best = 0;
    *right = 0;
    for (unsigned y = y0; y < y0 + h; y++)
        for (unsigned x = x0; x < x0 + w; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            unsigned v = (p[0] + p[1] + p[2]) / 3;
            best = v > best ? v : best;
            if (v > 128 && x - x0 > *right)
                *right = x - x0;
        }
    return best;
}

static void expect_near(const unsigned char *p, const unsigned char want[3], const char *what)
{
    for (int c = 0; c < 3; c++)
        if (abs(p[c] - want[c]) > 6)
            fail_msg("%s is #%02x%02x%02x, not #%02x%02x%02x", what, p[0], p[1], p[2], want[0],
                     want[1], want[2]);
}

static void test_contact_sheet(void **state)
{
    cli_t *t = *state;
    static const char *const names[] = {"a.png", "b.png", "broken.png", "c-a-much-longer-name.png",
                                        "d.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX], err[512];
    ib_test_cli_in_out(t, "sheet", dir, in, out);
    for (unsigned i = 0; i < 5; i++) {
        ib_test_path_fmt(path, "%s/%s", in, names[i]);
        ib_test_mkdirs_for(path);
        if (i == 2)
            ib_test_write_file(path, "\x89PNG\r\n\x1a\nbroken", 14);
        else {
            /* Solid: the tile's middle is the colour, whatever the fit. */
            ib_test_image_t img;
            unsigned char rgba[4] = {0, 0, 0, 255};
            colour_of(i, rgba);
            assert_int_equal(ib_test_image_alloc(&img, 120, 80, 3), 0);
            ib_test_image_fill(&img, rgba);
            assert_int_equal(ib_test_write_png(path, &img, err, sizeof err), 0);
            ib_test_image_free(&img);
        }
    }
    ib_test_path_fmt(path, "%s/sheet.png", dir);
    run_t r;
    ib_test_cli_run(t, &r, NULL, in, "-o", out, "-s", "60", "--contact-sheet", path, "--tile",
                    "100x100", NULL);
    ib_test_expect_exit(&r, 1, "imgbatch --contact-sheet");
    assert_non_null(strstr(r.err_text, "contact sheet: "));
    assert_non_null(strstr(r.err_text, "(5 tiles)"));
    ib_test_image_t sheet;
    if (ib_test_decode(path, &sheet, err, sizeof err) < 0)
        fail_msg("%s", err);
    /* Five tiles, about square: 3 across, 2 down. */
    assert_int_equal(sheet.width, 300);
    assert_int_equal(sheet.height, 200);
    unsigned lh = ib_sheet_label_height(100), label_right[5], right;
    for (unsigned i = 0; i < 6; i++) {
        unsigned x0 = i % 3 * 100, y0 = i / 3 * 100;
        /* The middle of a picture; a corner of a failed tile (its
         * middle says "failed"). */
        const unsigned char *mid = i == 2 ? ib_test_pixel(&sheet, x0 + 5, y0 + 5)
                                          : ib_test_pixel(&sheet, x0 + 50, y0 + (100 - lh) / 2);
        unsigned char want[3], red[3] = {150, 30, 30}, grey[3] = {40, 40, 40};
        char what[64];
        snprintf(what, sizeof what, "tile %u (%s)", i, i < 5 ? names[i] : "none");
        colour_of(i, want);
        expect_near(mid, i == 2 ? red : i == 5 ? grey : want, what);
        unsigned bright = brightest(&sheet, x0, y0 + 100 - lh, 100, lh, &right);
        if (i < 5)
            label_right[i] = right;
        if (i < 5 && bright < 200)
            fail_msg("%s has no label", what);
        if (i == 2 && brightest(&sheet, x0, y0, 100, 100 - lh, &right) < 200)
            fail_msg("the failed tile does not say so");
        if (i == 5 && bright > 60)
            fail_msg("the empty place has a label");
    }
    /* Each label is its own name: the long one reaches further. */
    assert_true(label_right[3] > label_right[0] + 30);
    assert_true(label_right[0] > 10);
    ib_test_image_free(&sheet);
    ib_test_listing_t l;
    ib_test_list_tree(dir, &l);
    for (size_t i = 0; i < l.n; i++)
        if (strstr(l.paths[i], ".list") != NULL || strstr(l.paths[i], ".tmp") != NULL)
            fail_msg("left behind: %s", l.paths[i]);
    ib_test_listing_free(&l);
    ib_test_run_free(&r);
}

/* Past the limits of one sheet, numbered sheets. */
/* A file name that is not UTF-8 (an old Latin-1 archive) or holds a
 * control character gets a label that can be set, and costs no tile. */
static void test_sheet_odd_names(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX], sheet[PATH_MAX];
    ib_test_cli_in_out(t, "odd-names", dir, in, out);
    static const char *const names[] = {"caf\xe9.png", "tab\there.png"};
    for (unsigned i = 0; i < 2; i++) {
        ib_test_path_fmt(path, "%s/%s", in, names[i]);
        write_input(path, i, 40, 30);
    }
    ib_test_path_fmt(sheet, "%s/sheet.png", dir);
    run_t r;
    ib_test_cli_run(t, &r, NULL, in, "-o", out, "--contact-sheet", sheet, "--tile", "60x60",
                    "--columns", "2", NULL);
    ib_test_expect_exit(&r, 0, "imgbatch --contact-sheet over odd names");
    ib_test_expect_size(sheet, 120, 60);
    ib_test_run_free(&r);
}

static void test_sheet_layout(void **state)
{
    (void)state;
    ib_sheet_layout_t lay;
    ib_sheet_layout(5, 0, 200, 200, &lay);
    assert_int_equal(lay.columns, 3);
    assert_int_equal(lay.sheets, 1);
    ib_sheet_layout(IB_SHEET_MAX_TILES + 1, 0, 200, 200, &lay);
    assert_int_equal(lay.sheets, 2);
    assert_int_equal(lay.per_sheet, IB_SHEET_MAX_TILES);
    assert_int_equal(lay.columns, 50);
    ib_sheet_layout(100, 7, 4000, 4000, &lay);
    assert_int_equal(lay.per_sheet, 6); /* 100 megapixels a sheet */
    assert_int_equal(lay.sheets, 17);
    assert_int_equal(lay.columns, 6); /* never wider than a sheet's tiles */
    ib_sheet_layout(10, 20, 200, 200, &lay);
    assert_int_equal(lay.columns, 10);
    char name[PATH_MAX];
    assert_int_equal(ib_sheet_name("o/s.v1/sheet.jpg", 2, 3, name, sizeof name), 0);
    assert_string_equal(name, "o/s.v1/sheet-2.jpg");
    assert_int_equal(ib_sheet_name("sheet.jpg", 1, 1, name, sizeof name), 0);
    assert_string_equal(name, "sheet.jpg");
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(test_report_dom),
                 cmocka_unit_test(test_sheet_odd_names),
                 cmocka_unit_test(test_report_screenshot),
                 cmocka_unit_test(test_report_inline_copies),
                 cmocka_unit_test(test_report_in_missing_folder),
                 cmocka_unit_test(test_contact_sheet),
                 cmocka_unit_test(test_sheet_layout),
             })
