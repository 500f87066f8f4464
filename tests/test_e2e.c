/*
 * End-to-end tests: run the built imgbatch ($IMGBATCH) on trees of images
 * generated here, and check what a user would: exit status, the files on
 * disk (read back with our own libjpeg/libpng decoders), their sizes
 * against ImageMagick's geometry, their colours, and the --json events.
 *
 * NOTES
 * - Inputs are made by tests/decode.c's encoders, so no other tool runs.
 * - The binary is started with posix_spawn() and its stdout and stderr go
 *   to files in the test's temporary directory, which failing tests print.
 * - Expected sizes are hard-coded: they are what
 *   `convert -size WxH xc:gray -resize GEOM -format %wx%h info:` printed
 *   with ImageMagick 6.9.11-60 Q16 on the build machine.
 * - Every run is checked for leftover temporary files ('.NAME.*.tmp')
 *   under its output root: DESIGN.md promises none survive.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "decode.h"
#include "harness.h"

/* ---- the generated input tree ---- */

enum { KIND_JPEG, KIND_PNG, KIND_PNG_RGBA, KIND_PNG_GRAY16, KIND_JPEG_EXIF6 };

typedef struct {
    const char *rel;
    int kind;
    unsigned w, h; /* as displayed, i.e. after the EXIF orientation */
    unsigned char rgba[4];
} input_t;

/* Names with spaces, '#', parentheses and non-ASCII letters on purpose:
 * the output tree must mirror them byte for byte. */
static const input_t inputs[] = {
    {"a.jpg", KIND_JPEG, 640, 480, {200, 40, 40, 255}},
    {"photos/\xc3\xa9t\xc3\xa9 2024 #1 (b).png", KIND_PNG, 300, 200, {30, 120, 220, 255}},
    {"photos/2024/alpha.png", KIND_PNG_RGBA, 100, 50, {10, 200, 30, 128}},
    {"photos/2024/deep/tiny.jpg", KIND_JPEG, 1, 1, {250, 250, 10, 255}},
    {"photos/pano.jpg", KIND_JPEG, 2400, 200, {90, 90, 90, 255}},
    {"scans/gray16.png", KIND_PNG_GRAY16, 64, 32, {128, 128, 128, 255}},
    {"photos/rotated.jpg", KIND_JPEG_EXIF6, 100, 200, {0, 0, 0, 255}},
    {"tall.png", KIND_PNG, 40, 600, {240, 240, 240, 255}},
};
#define N_INPUTS (sizeof inputs / sizeof inputs[0])
#define ROTATED 6 /* index of the EXIF-6 input */

typedef struct {
    const char *geometry;
    const char *sizes; /* of inputs[], in order, as ImageMagick prints them */
} geom_case_t;

/* ImageMagick's answers for the displayed sizes of inputs[]. */
static const geom_case_t geom_cases[] = {
    {"64x64", "64x48 64x43 64x32 64x64 64x5 64x32 32x64 4x64"},
    {"128x128", "128x96 128x85 128x64 128x128 128x11 128x64 64x128 9x128"},
    {"50%", "320x240 150x100 50x25 1x1 1200x100 32x16 50x100 20x300"},
    {"100x100^", "133x100 150x100 200x100 100x100 1200x100 200x100 100x200 100x1500"},
    {"64x64!", "64x64 64x64 64x64 64x64 64x64 64x64 64x64 64x64"},
    {"x30", "40x30 45x30 60x30 30x30 360x30 60x30 15x30 2x30"},
    {"300x300>", "300x225 300x200 100x50 1x1 300x25 64x32 100x200 20x300"},
    {"300x300<", "640x480 300x200 300x150 300x300 2400x200 300x150 150x300 40x600"},
    {"1000@", "36x27 38x25 44x22 31x31 109x9 44x22 22x44 8x122"},
};
#define GEOM_64 0
#define GEOM_128 1

typedef struct {
    unsigned w, h;
} wh_t;

/* ImageMagick's size for inputs[i] under geom_cases[g]. */
static wh_t geom_size(size_t g, size_t i)
{
    wh_t z = {0, 0};
    const char *p = geom_cases[g].sizes;
    for (size_t k = 0; k < i && p != NULL; k++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, "%ux%u", &z.w, &z.h) != 2)
        fail_msg("geom_cases[%zu] gives no size for input %zu", g, i);
    return z;
}

/* The EXIF-6 input is stored 200x100 with a red top half and a blue bottom
 * half; displayed (rotated 90 degrees clockwise) red is on the right. */
static const unsigned char rot_top[3] = {220, 30, 30}, rot_bottom[3] = {30, 30, 220};

/* Files the scan must pass over. */
static const char *const hidden_or_not_images[] = {".hidden.png", ".cache/thumb.jpg", "notes.txt",
                                                   "photos/README.txt"};

typedef struct {
    ib_test_cli_t cli; /* first: the harness's fixtures take it for all */
    char in[PATH_MAX]; /* the tree of inputs[] */
} e2e_t;

/* ---- making inputs ---- */

static int make_input(const char *root, const input_t *in)
{
    char path[PATH_MAX], err[512];
    ib_test_image_t img;
    ib_test_path_fmt(path, "%s/%s", root, in->rel);
    if (ib_test_try_mkdirs_for(path) < 0)
        return -1;
    int rc = -1;
    switch (in->kind) {
    case KIND_JPEG:
    case KIND_PNG:
    case KIND_PNG_RGBA: {
        unsigned ch = in->kind == KIND_PNG_RGBA ? 4 : 3;
        if (ib_test_image_alloc(&img, in->w, in->h, ch) < 0)
            return -1;
        ib_test_image_fill(&img, in->rgba);
        rc = in->kind == KIND_JPEG ? ib_test_write_jpeg(path, &img, 95, 0, err, sizeof err)
                                   : ib_test_write_png(path, &img, err, sizeof err);
        ib_test_image_free(&img);
        break;
    }
    case KIND_PNG_GRAY16: {
        uint16_t *s = malloc(sizeof *s * in->w * in->h);
        if (s == NULL)
            return -1;
        for (size_t i = 0; i < (size_t)in->w * in->h; i++)
            s[i] = (uint16_t)(in->rgba[0] * 257);
        rc = ib_test_write_png_gray16(path, in->w, in->h, s, err, sizeof err);
        free(s);
        break;
    }
    case KIND_JPEG_EXIF6:
        /* Stored landscape: the displayed size swapped. */
        if (ib_test_image_alloc(&img, in->h, in->w, 3) < 0)
            return -1;
        for (unsigned y = 0; y < img.height; y++)
            for (unsigned x = 0; x < img.width; x++)
                memcpy(ib_test_pixel(&img, x, y), y < img.height / 2 ? rot_top : rot_bottom, 3);
        rc = ib_test_write_jpeg(path, &img, 95, 6, err, sizeof err);
        ib_test_image_free(&img);
        break;
    }
    if (rc < 0)
        fprintf(stderr, "make_input: %s\n", err);
    return rc;
}

static int make_solid_png(const char *path, unsigned w, unsigned h, const unsigned char rgb[3])
{
    char err[512];
    ib_test_image_t img;
    unsigned char rgba[4] = {rgb[0], rgb[1], rgb[2], 255};
    if (ib_test_try_mkdirs_for(path) < 0 || ib_test_image_alloc(&img, w, h, 3) < 0)
        return -1;
    ib_test_image_fill(&img, rgba);
    int rc = ib_test_write_png(path, &img, err, sizeof err);
    ib_test_image_free(&img);
    if (rc < 0)
        fprintf(stderr, "make_solid_png: %s\n", err);
    return rc;
}

/* A busy picture, so that a truncated JPEG of it really lacks scan data. */
static int make_busy_jpeg(const char *path, unsigned w, unsigned h)
{
    char err[512];
    ib_test_image_t img;
    if (ib_test_try_mkdirs_for(path) < 0 || ib_test_image_alloc(&img, w, h, 3) < 0)
        return -1;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            unsigned char *p = ib_test_pixel(&img, x, y);
            p[0] = (unsigned char)(x * 7 + y);
            p[1] = (unsigned char)((x ^ y) * 5);
            p[2] = (unsigned char)(y * 3);
        }
    int rc = ib_test_write_jpeg(path, &img, 90, 0, err, sizeof err);
    ib_test_image_free(&img);
    if (rc < 0)
        fprintf(stderr, "make_busy_jpeg: %s\n", err);
    return rc;
}

static int make_tree(const char *root)
{
    for (size_t i = 0; i < N_INPUTS; i++)
        if (make_input(root, &inputs[i]) < 0)
            return -1;
    static const unsigned char grey[3] = {100, 100, 100};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof hidden_or_not_images / sizeof hidden_or_not_images[0]; i++) {
        const char *rel = hidden_or_not_images[i];
        ib_test_path_fmt(path, "%s/%s", root, rel);
        const char *ext = strrchr(rel, '.');
        int rc;
        if (strcmp(ext, ".txt") == 0) {
            static const char text[] = "not an image\n";
            rc = ib_test_try_write_file(path, text, sizeof text - 1);
        } else if (strcmp(ext, ".png") == 0) {
            rc = make_solid_png(path, 20, 20, grey);
        } else {
            rc = make_busy_jpeg(path, 20, 20);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- running imgbatch ---- */

/* Starts imgbatch with stdin from /dev/null and its output in files. */
static pid_t spawn_argv(e2e_t *t, ib_test_run_t *r, char **argv)
{
    ib_test_cli_files(&t->cli, r);
    ib_test_run_start(r, argv, NULL);
    return r->pid;
}

/* Runs imgbatch to the end with the NULL-terminated arguments; fails
 * unless it exits want. */
static void run_args(e2e_t *t, ib_test_run_t *r, int want, ...)
{
    ib_test_args_t a;
    ib_test_args_start(&a, t->cli.bin);
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        ib_test_args_add(&a, s, NULL);
    va_end(ap);
    spawn_argv(t, r, a.v);
    ib_test_run_finish(r, 300);
    ib_test_expect_exit(r, want, "imgbatch");
}

#define run(t, r, want, ...) run_args((t), (r), (want), __VA_ARGS__, (const char *)NULL)

/* ---- checking an output tree ---- */

static void expect_no_temp_files(const char *root)
{
    ib_test_listing_t l;
    ib_test_list_outputs(root, &l);
    ib_test_listing_free(&l);
}

/* The output tree holds exactly the images of inputs[] under their own
 * relative names: nothing hidden, nothing that is not an image. */
static void expect_mirror(const char *out)
{
    ib_test_listing_t l;
    ib_test_list_tree(out, &l);
    const char *want[N_INPUTS];
    for (size_t i = 0; i < N_INPUTS; i++)
        want[i] = inputs[i].rel;
    qsort(want, N_INPUTS, sizeof *want, ib_test_cmp_str);
    int same = l.n == N_INPUTS;
    for (size_t i = 0; same && i < N_INPUTS; i++)
        same = strcmp(l.paths[i], want[i]) == 0;
    if (!same) {
        fprintf(stderr, "output tree %s holds:\n", out);
        for (size_t i = 0; i < l.n; i++)
            fprintf(stderr, "  %s\n", l.paths[i]);
        fprintf(stderr, "expected:\n");
        for (size_t i = 0; i < N_INPUTS; i++)
            fprintf(stderr, "  %s\n", want[i]);
    }
    ib_test_listing_free(&l);
    assert_true(same);
}

/* Largest difference of any sample from the expected colour. */
static int max_deviation(const ib_test_image_t *img, const unsigned char *rgba, unsigned x0,
                         unsigned y0, unsigned x1, unsigned y1)
{
    int worst = 0;
    for (unsigned y = y0; y < y1; y++)
        for (unsigned x = x0; x < x1; x++) {
            const unsigned char *p = ib_test_pixel(img, x, y);
            for (unsigned c = 0; c < img->channels; c++) {
                int d = abs((int)p[c] - (int)rgba[c]);
                if (d > worst)
                    worst = d;
            }
        }
    return worst;
}

/* Decodes out/inputs[i].rel and checks its size and its colours. */
static void expect_output_image(const char *out, size_t i, wh_t want)
{
    const input_t *in = &inputs[i];
    char path[PATH_MAX], err[512];
    ib_test_image_t img;
    ib_test_path_join(path, out, in->rel);
    if (ib_test_decode(path, &img, err, sizeof err) < 0)
        fail_msg("output of %s does not decode: %s", in->rel, err);
    if (img.width != want.w || img.height != want.h) {
        unsigned w = img.width, h = img.height;
        ib_test_image_free(&img);
        fail_msg("%s: %ux%u, ImageMagick gives %ux%u", path, w, h, want.w, want.h);
    }

    if (i == ROTATED) {
        /* Upright: blue on the left, red on the right; the middle column
         * is left out, where the resampling blends the two. */
        unsigned mid = img.width / 2, margin = img.width / 8 + 1;
        int left = max_deviation(&img, rot_bottom, 0, 0, mid - margin, img.height);
        int right = max_deviation(&img, rot_top, mid + margin, 0, img.width, img.height);
        ib_test_image_free(&img);
        if (left > 24 || right > 24)
            fail_msg("%s: not turned upright by its EXIF orientation 6 (left half off blue by "
                     "%d, right half off red by %d)",
                     path, left, right);
        return;
    }

    unsigned want_ch = in->kind == KIND_PNG_RGBA ? 4 : 3;
    if (img.channels != want_ch) {
        unsigned ch = img.channels;
        ib_test_image_free(&img);
        fail_msg("%s: %u channels, expected %u (alpha %s)", path, ch, want_ch,
                 want_ch == 4 ? "lost" : "added");
    }
    /* JPEG quantisation moves a flat colour by a few levels at most. */
    int tolerance = in->kind == KIND_JPEG ? 8 : 3;
    int d = max_deviation(&img, in->rgba, 0, 0, img.width, img.height);
    ib_test_image_free(&img);
    if (d > tolerance)
        fail_msg("%s: a sample is %d levels off the input's solid colour (%u,%u,%u,%u)", path, d,
                 in->rgba[0], in->rgba[1], in->rgba[2], in->rgba[3]);
}

/* Checks a whole run over the inputs[] tree with geom_cases[g]. */
static void expect_tree_done(const char *out, size_t g)
{
    expect_no_temp_files(out);
    expect_mirror(out);
    for (size_t i = 0; i < N_INPUTS; i++)
        expect_output_image(out, i, geom_size(g, i));
}

/* JSON: one event per image, each with the given status, whose output
 * path and size match what is on disk; and a summary that adds up. */
static void expect_tree_events(const ib_test_run_t *r, const char *out, size_t g,
                               const char *status)
{
    ib_test_events_t e;
    ib_test_events_load(r, &e);
    if (e.n != N_INPUTS) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("%zu file events, expected %zu", e.n, N_INPUTS);
    }
    for (size_t i = 0; i < N_INPUTS; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, inputs[i].rel);
        ib_test_expect_event(ev, status);
        assert_int_equal(ev->n_outputs, 1);
        char want[PATH_MAX];
        ib_test_path_join(want, out, inputs[i].rel);
        assert_non_null(ev->outputs[0].path);
        assert_string_equal(ev->outputs[0].path, want);
        assert_int_equal(ev->outputs[0].width, geom_size(g, i).w);
        assert_int_equal(ev->outputs[0].height, geom_size(g, i).h);
        struct stat st;
        assert_int_equal(stat(want, &st), 0);
        assert_int_equal(ev->outputs[0].bytes, st.st_size);
    }
    int ok = strcmp(status, "ok") == 0;
    assert_int_equal(e.summary.ok, ok ? (long long)N_INPUTS : 0);
    assert_int_equal(e.summary.skipped, ok ? 0 : (long long)N_INPUTS);
    assert_int_equal(e.summary.failed, 0);
    ib_test_events_free(&e);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    e2e_t *t = ib_test_cli_new(sizeof *t);
    *state = t;
    if (t == NULL)
        return -1;
    ib_test_path_join(t->in, t->cli.root, "in");
    if (make_tree(t->in) < 0) {
        fprintf(stderr, "e2e: making the input tree under %s failed\n", t->in);
        return -1; /* the teardown removes the root */
    }
    return 0;
}

/* An output root per test, under the group's directory. */
static void out_dir(const e2e_t *t, const char *name, char *out)
{
    ib_test_path_fmt(out, "%s/out-%s", t->cli.root, name);
}

/* The suite's state for one test, and the test's output root. */
static e2e_t *test_out(void **state, const char *name, char *out)
{
    out_dir(*state, name, out);
    return *state;
}

/* ---- tests ---- */

/* The main contract: a tree in, the same tree of thumbnails out. */
static void tree_is_mirrored(void **state)
{
    char out[PATH_MAX];
    ib_test_run_t r;
    e2e_t *t = test_out(state, "mirror", out);
    run(t, &r, 0, "-s", "64x64", "--json", t->in, "-o", out);
    expect_tree_done(out, GEOM_64);
    expect_tree_events(&r, out, GEOM_64, "ok");
}

/* Every geometry form gives ImageMagick's size on every input. */
static void geometries_match_imagemagick(void **state)
{
    e2e_t *t = *state;
    for (size_t g = 0; g < sizeof geom_cases / sizeof geom_cases[0]; g++) {
        char out[PATH_MAX], name[64];
        ib_test_run_t r;
        snprintf(name, sizeof name, "geom%zu", g);
        out_dir(t, name, out);
        run(t, &r, 0, "-s", geom_cases[g].geometry, "-q", t->in, "-o", out);
        expect_tree_done(out, g);
    }
}

/* A second identical run does nothing; the outputs stay as they were. */
static void rerun_skips_everything(void **state)
{
    char out[PATH_MAX], path[PATH_MAX];
    ib_test_run_t r;
    struct stat before[N_INPUTS], after;
    e2e_t *t = test_out(state, "rerun", out);
    run(t, &r, 0, "-s", "64x64", "-q", t->in, "-o", out);
    for (size_t i = 0; i < N_INPUTS; i++) {
        ib_test_path_join(path, out, inputs[i].rel);
        assert_int_equal(stat(path, &before[i]), 0);
    }

    run(t, &r, 0, "-s", "64x64", "--json", t->in, "-o", out);
    expect_tree_events(&r, out, GEOM_64, "skipped");
    for (size_t i = 0; i < N_INPUTS; i++) {
        ib_test_path_join(path, out, inputs[i].rel);
        assert_int_equal(stat(path, &after), 0);
        if (after.st_ino != before[i].st_ino ||
            after.st_mtim.tv_nsec != before[i].st_mtim.tv_nsec ||
            after.st_mtim.tv_sec != before[i].st_mtim.tv_sec)
            fail_msg("%s was rewritten by a run that reported it skipped", path);
    }
    expect_tree_done(out, GEOM_64);
}

/* The recipe is part of "up to date": a new size redoes every image even
 * though the outputs are newer than the inputs. */
static void new_size_redoes_the_work(void **state)
{
    char out[PATH_MAX];
    ib_test_run_t r;
    e2e_t *t = test_out(state, "recipe", out);
    run(t, &r, 0, "-s", "64x64", "-q", t->in, "-o", out);
    run(t, &r, 0, "-s", "128x128", "--json", t->in, "-o", out);
    expect_tree_events(&r, out, GEOM_128, "ok");
    expect_tree_done(out, GEOM_128);
}

/* A damaged file fails alone: it is named in a failed event, the exit
 * status says so, and every other image is still done. */
static void corrupt_file_fails_alone(void **state)
{
    e2e_t *t = *state;
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX], bad[PATH_MAX], cut[PATH_MAX];
    ib_test_run_t r;
    ib_test_path_fmt(in, "%s/in-corrupt", t->cli.root);
    out_dir(t, "corrupt", out);

    static const unsigned char colour[3] = {60, 160, 60};
    static const char *const good[] = {"one.png", "sub/two.png", "sub/deeper/three.jpg"};
    for (size_t i = 0; i < 3; i++) {
        ib_test_path_join(path, in, good[i]);
        if (i < 2)
            assert_int_equal(make_solid_png(path, 80, 60, colour), 0);
        else
            assert_int_equal(make_busy_jpeg(path, 80, 60), 0);
    }
    /* Garbage under an image name. */
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    ib_test_path_join(bad, in, "sub/garbage.jpg");
    assert_int_equal(ib_test_try_write_file(bad, junk, sizeof junk), 0);
    /* A real JPEG cut short: strict decoding must refuse it rather than
     * write an image with a grey band. */
    ib_test_path_join(cut, in, "truncated.jpg");
    assert_int_equal(make_busy_jpeg(cut, 400, 300), 0);
    struct stat st;
    assert_int_equal(stat(cut, &st), 0);
    assert_int_equal(truncate(cut, st.st_size / 2), 0);

    run(t, &r, 1, "-s", "64x64", "--json", in, "-o", out);
    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, 5);
    const char *const broken[] = {bad, cut};
    for (size_t i = 0; i < 2; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, strrchr(broken[i], '/') + 1);
        ib_test_expect_event(ev, "failed");
        assert_string_equal(ev->input, broken[i]);
        assert_non_null(ev->error_kind);
        if (strcmp(ev->error_kind, "decode") != 0 && strcmp(ev->error_kind, "unsupported") != 0)
            fail_msg("%s: error kind %s, expected decode or unsupported", broken[i],
                     ev->error_kind);
        assert_non_null(ev->error_message);
        if (strstr(ev->error_message, broken[i]) == NULL)
            fail_msg("the error message does not name %s: %s", broken[i], ev->error_message);
        assert_int_equal(ev->n_outputs, 0);
    }
    for (size_t i = 0; i < 3; i++) {
        ib_test_expect_event(ib_test_event_for(&e, good[i]), "ok");
        ib_test_path_join(path, out, good[i]);
        ib_test_expect_size(path, 64, 48);
    }
    assert_int_equal(e.summary.ok, 3);
    assert_int_equal(e.summary.failed, 2);
    ib_test_events_free(&e);

    ib_test_listing_t l;
    ib_test_list_tree(out, &l);
    size_t n = l.n;
    ib_test_listing_free(&l);
    assert_int_equal(n, 3); /* nothing written for the broken files */
    expect_no_temp_files(out);
}

/* A file the user names is never passed over in silence, image or not. */
static void named_non_image_is_reported(void **state)
{
    char out[PATH_MAX], txt[PATH_MAX], jpg[PATH_MAX], path[PATH_MAX];
    ib_test_run_t r;
    e2e_t *t = test_out(state, "named", out);
    ib_test_path_join(txt, t->in, "notes.txt");
    ib_test_path_join(jpg, t->in, "a.jpg");
    run(t, &r, 1, "-s", "64x64", "--json", txt, jpg, "-o", out);
    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, 2);
    const ib_test_event_t *ev = ib_test_event_for(&e, "notes.txt");
    ib_test_expect_event(ev, "failed");
    assert_non_null(ev->error_message);
    if (strstr(ev->error_message, txt) == NULL)
        fail_msg("the error message does not name %s: %s", txt, ev->error_message);
    ib_test_expect_event(ib_test_event_for(&e, "a.jpg"), "ok");
    ib_test_events_free(&e);

    /* A file named on its own lands at the output root. */
    ib_test_path_join(path, out, "a.jpg");
    assert_true(ib_test_exists(path));
    ib_test_path_join(path, out, "notes.txt");
    assert_false(ib_test_exists(path));
    ib_test_path_join(path, out, "notes.png");
    assert_false(ib_test_exists(path));
    expect_no_temp_files(out);
}

/* Two inputs that map to one output path: a reported collision, never a
 * silent overwrite or a "skipped". 'dup' has no extension, so its output
 * takes .png, the same name as dup.png's. */
static void same_output_is_a_collision(void **state)
{
    e2e_t *t = *state;
    char in[PATH_MAX], out[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    ib_test_run_t r;
    static const unsigned char red[3] = {250, 0, 0}, green[3] = {0, 250, 0};
    ib_test_path_fmt(in, "%s/in-collide", t->cli.root);
    out_dir(t, "collide", out);
    ib_test_path_join(a, in, "dup.png");
    ib_test_path_join(b, in, "dup");
    assert_int_equal(make_solid_png(a, 32, 32, red), 0);
    assert_int_equal(make_solid_png(b, 32, 32, green), 0);

    run(t, &r, 1, "--json", in, "-o", out);
    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, 2);
    size_t ok = 0, collided = 0;
    for (size_t i = 0; i < e.n; i++) {
        const ib_test_event_t *ev = &e.files[i];
        if (strcmp(ev->status, "ok") == 0)
            ok++;
        else if (strcmp(ev->status, "failed") == 0 && ev->error_kind != NULL &&
                 strcmp(ev->error_kind, "collision") == 0)
            collided++;
        else
            fail_msg("%s: status %s (%s), expected ok for one input and a collision for the "
                     "other",
                     ev->input, ev->status, ev->error_kind ? ev->error_kind : "-");
    }
    assert_int_equal(ok, 1);
    assert_int_equal(collided, 1);
    ib_test_events_free(&e);
    expect_no_temp_files(out);
}

/* Bad usage exits 2 and touches nothing: not even the output root. */
static void usage_errors_write_nothing(void **state)
{
    char out[PATH_MAX], missing[PATH_MAX], file_out[PATH_MAX];
    e2e_t *t = test_out(state, "usage", out);
    ib_test_path_join(missing, t->cli.root, "no-such-input");
    ib_test_path_join(file_out, t->in, "notes.txt");
    const char *in = t->in;
    const char *const cases[][8] = {
        {"--no-such-option", in, "-o", out, NULL},
        {"-s", "64xx64", in, "-o", out, NULL},
        {"-s", "-5", in, "-o", out, NULL},
        {"-j", "0", in, "-o", out, NULL},
        {"--quality", "101", in, "-o", out, NULL},
        {"-F", "bogus", in, "-o", out, NULL},
        {"--if-exists", "sometimes", in, "-o", out, NULL},
        {"--timeout", "-1", in, "-o", out, NULL},
        {"--name", "{nope}", in, "-o", out, NULL},
        {"-s", "64x64", "-o", out, NULL},           /* no INPUT */
        {"-s", "64x64", in, NULL},                  /* no -o */
        {"-s", "64x64", missing, "-o", out, NULL},  /* INPUT does not exist */
        {"-s", "64x64", in, "-o", out, "-s", NULL}, /* -s without a value */
        {in, "-o", file_out, NULL},                 /* output is a file */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *argv[10];
        size_t n = 0;
        argv[n++] = (char *)t->cli.bin;
        for (size_t k = 0; cases[c][k] != NULL; k++)
            argv[n++] = (char *)cases[c][k];
        argv[n] = NULL;
        ib_test_run_t r;
        r.status = ib_test_wait(spawn_argv(t, &r, argv), 60, "imgbatch");
        if (r.status != 2) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("case %zu (%s ...): exit %d, expected 2", c, cases[c][0], r.status);
        }
        if (ib_test_exists(out))
            fail_msg("case %zu (%s ...): the output root %s was created", c, cases[c][0], out);
        char *so = ib_test_try_slurp(r.out, NULL), *se = ib_test_try_slurp(r.err, NULL);
        assert_non_null(so);
        assert_non_null(se);
        if (so[0] != '\0')
            fail_msg("case %zu: a usage error wrote to stdout: %s", c, so);
        /* One line that says what is wrong. */
        if (strncmp(se, "imgbatch: ", 10) != 0)
            fail_msg("case %zu: stderr does not start with 'imgbatch: ': %s", c, se);
        test_free(so);
        test_free(se);
    }
    /* The file given as -o is still what it was. */
    char *text = ib_test_try_slurp(file_out, NULL);
    assert_non_null(text);
    assert_string_equal(text, "not an image\n");
    test_free(text);
}

/* ---- a worker killed mid-run ---- */

#define KILL_IMAGES 200

/* Children of pid and their states, from /proc/N/stat (after the command
 * name, which may itself hold spaces and parentheses, come the state and
 * the ppid). */
static size_t children_of(pid_t parent, pid_t *kids, char *states, size_t cap)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < cap) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "re");
        if (f == NULL)
            continue; /* gone already */
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *paren = strrchr(buf, ')');
        char state;
        long ppid;
        if (paren != NULL && sscanf(paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent &&
            state != 'Z') {
            states[n] = state;
            kids[n++] = (pid_t)pid;
        }
    }
    closedir(d);
    return n;
}

static size_t count_files(const char *root)
{
    ib_test_listing_t l;
    ib_test_list_tree(root, &l);
    size_t n = l.n;
    ib_test_listing_free(&l);
    return n;
}

static void killed_worker_loses_at_most_one_image(void **state)
{
    e2e_t *t = *state;
    char in[PATH_MAX], out[PATH_MAX], first[PATH_MAX], path[PATH_MAX];
    ib_test_path_fmt(in, "%s/in-kill", t->cli.root);
    out_dir(t, "kill", out);

    /* One 2000x2000 PNG, hard-linked under 200 names: the scan sees 200
     * images, each costs a full decode (PNG has no shrink-on-load), and the
     * disk holds only one. */
    ib_test_image_t img;
    char err[512];
    assert_int_equal(ib_test_image_alloc(&img, 2000, 2000, 3), 0);
    for (unsigned y = 0; y < img.height; y++)
        for (unsigned x = 0; x < img.width; x++) {
            unsigned char *p = ib_test_pixel(&img, x, y);
            p[0] = (unsigned char)x;
            p[1] = (unsigned char)y;
            p[2] = (unsigned char)(x + y);
        }
    ib_test_path_join(first, in, "img000.png");
    assert_int_equal(ib_test_try_mkdirs_for(first), 0);
    int rc = ib_test_write_png(first, &img, err, sizeof err);
    ib_test_image_free(&img);
    if (rc < 0)
        fail_msg("%s", err);
    for (int i = 1; i < KILL_IMAGES; i++) {
        ib_test_path_fmt(path, "%s/img%03d.png", in, i);
        assert_int_equal(link(first, path), 0);
    }

    char *argv[] = {(char *)t->cli.bin, "-j",    "2", "-s", "64x64", "--json",
                    "--progress",       "never", in,  "-o", out,     NULL};
    ib_test_run_t r;
    pid_t pid = spawn_argv(t, &r, argv);

    /* Wait for the first output, then kill a worker that is (most
     * likely) in the middle of its next image: one that is running rather
     * than waiting on the queue, if there is one. */
    pid_t victim = 0;
    struct timespec nap = {0, 5 * 1000 * 1000};
    for (int waited = 0; victim == 0 && waited < 60 * 200; waited++) {
        if (waitpid(pid, &rc, WNOHANG) == pid)
            fail_msg("imgbatch finished (exit %d) before a worker could be killed",
                     ib_test_exit_status(rc));
        if (count_files(out) > 0) {
            pid_t kids[16];
            char states[16];
            size_t n = children_of(pid, kids, states, 16);
            for (size_t k = 0; k < n && victim == 0; k++)
                if (states[k] == 'R')
                    victim = kids[k];
            if (victim == 0 && n > 0)
                victim = kids[0];
        }
        if (victim == 0)
            nanosleep(&nap, NULL);
    }
    if (victim == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &rc, 0);
        fail_msg("no output and no worker of imgbatch %d seen within 60 s", (int)pid);
    }
    assert_int_equal(kill(victim, SIGKILL), 0);
    r.status = ib_test_wait(pid, 300, "imgbatch");
    if (r.status != 0 && r.status != 1) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("imgbatch exited %d after worker %d was killed, expected 0 or 1", r.status,
                 (int)victim);
    }

    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    size_t crashes = 0;
    for (int i = 0; i < KILL_IMAGES; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%03d.png", i);
        const ib_test_event_t *ev = ib_test_event_for(&e, name);
        ib_test_path_join(path, out, name);
        if (strcmp(ev->status, "failed") == 0 && ev->error_kind != NULL &&
            strcmp(ev->error_kind, "crash") == 0) {
            crashes++;
            assert_non_null(ev->error_message);
            assert_non_null(strstr(ev->error_message, ev->input));
            continue;
        }
        ib_test_expect_event(ev, "ok");
        if (!ib_test_exists(path))
            fail_msg("%s reported ok but %s is missing", name, path);
    }
    if (e.n != KILL_IMAGES)
        fail_msg("%zu file events for %d images", e.n, KILL_IMAGES);
    if (crashes > 1)
        fail_msg("%zu images lost to one killed worker", crashes);
    assert_int_equal(r.status, crashes > 0 ? 1 : 0);
    ib_test_events_free(&e);
    expect_no_temp_files(out);
    fprintf(stderr, "e2e: killed worker %d; %zu image(s) reported as a crash\n", (int)victim,
            crashes);
}

IB_TEST_MAIN(group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(tree_is_mirrored),
                 cmocka_unit_test(geometries_match_imagemagick),
                 cmocka_unit_test(rerun_skips_everything),
                 cmocka_unit_test(new_size_redoes_the_work),
                 cmocka_unit_test(corrupt_file_fails_alone),
                 cmocka_unit_test(named_non_image_is_reported),
                 cmocka_unit_test(same_output_is_a_collision),
                 cmocka_unit_test(usage_errors_write_nothing),
                 cmocka_unit_test(killed_worker_loses_at_most_one_image),
             })
