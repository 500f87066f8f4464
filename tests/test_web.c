/*
 * Outputs for web sites: several formats from one decode (-F repeated),
 * variants with their own format and quality, variants that never
 * enlarge, outputs written once when they would come out the same, and
 * names told apart by size. Each case checks the files on disk with the
 * tests' own decoders (or the format's signature, for WebP) and the
 * --json events against them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"

typedef ib_test_cli_t cli_t;
typedef ib_test_run_t run_t;
typedef ib_test_events_t events_t;

/* A w x h photo-like JPEG (a gradient; with noise, hard to compress)
 * in a fresh directory. */
static void make_photo(cli_t *t, const char *name, unsigned w, unsigned h, int noise, char *dir,
                       char *file)
{
    ib_test_cli_dir(t, name, dir);
    ib_test_path_fmt(file, "%s/in/photo.jpg", dir);
    ib_test_image_t img;
    unsigned seed = 7;
    assert_int_equal(ib_test_image_alloc(&img, w, h, 3), 0);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            unsigned char *p = ib_test_pixel(&img, x, y);
            seed = seed * 1103515245u + 12345u;
            unsigned n = noise ? (seed >> 16) % 64 : 0;
            p[0] = (unsigned char)(x * 200 / w + n), p[1] = (unsigned char)(y * 240 / h);
            p[2] = (unsigned char)(90 + n);
        }
    ib_test_save(file, &img, 92, 0);
    ib_test_image_free(&img);
}

/* A 100x80 gradient. */
static void make_input(cli_t *t, const char *name, char *dir, char *file)
{
    make_photo(t, name, 100, 80, 0, dir, file);
}

/* Every run here: --json -j 1 -o DIR/out ... DIR/in. */
#define run_web ib_test_run_dir

/* The decoded size of a PNG or JPEG output. */
static void expect_size(const char *dir, const char *name, unsigned w, unsigned h)
{
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/out/%s", dir, name);
    ib_test_expect_size(path, w, h);
}

static int out_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/out/%s", dir, name);
    return ib_test_exists(path);
}

static size_t out_size(const char *dir, const char *name)
{
    size_t len;
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/out/%s", dir, name);
    test_free(ib_test_slurp(path, &len));
    return len;
}

/* The event's outputs are exactly these names, in some order. */
static void expect_outputs(const ib_test_event_t *ev, const char *names)
{
    ib_test_strs_t got = {0}, want = {0};
    for (unsigned i = 0; i < ev->n_outputs; i++) {
        const char *slash = strrchr(ev->outputs[i].path, '/');
        ib_test_strs_add(&got, slash != NULL ? slash + 1 : ev->outputs[i].path);
    }
    ib_test_strs_split(names, &want);
    ib_test_expect_same_set(&got, &want, "the event's outputs");
    ib_test_strs_free(&got);
    ib_test_strs_free(&want);
}

/* The run's one input is ok with exactly these outputs ("name:WxH ...",
 * each decoded to that size) and none of the absent names on disk. */
static void expect_written(const events_t *e, const char *dir, const char *want, const char *absent)
{
    const ib_test_event_t *ev = ib_test_event_for(e, "photo.jpg");
    ib_test_expect_event(ev, "ok");
    ib_test_strs_t items = {0}, gone = {0};
    char names[1024] = "";
    ib_test_strs_split(want, &items);
    for (size_t i = 0; i < items.n; i++) {
        char name[128];
        unsigned w, h;
        if (sscanf(items.v[i], "%127[^:]:%ux%u", name, &w, &h) != 3)
            fail_msg("bad expectation '%s'", items.v[i]);
        expect_size(dir, name, w, h);
        strncat(names, i ? " " : "", sizeof names - strlen(names) - 1);
        strncat(names, name, sizeof names - strlen(names) - 1);
    }
    expect_outputs(ev, names);
    ib_test_strs_split(absent, &gone);
    for (size_t i = 0; i < gone.n; i++)
        if (out_exists(dir, gone.v[i]))
            fail_msg("%s was written", gone.v[i]);
    ib_test_strs_free(&items);
    ib_test_strs_free(&gone);
}

/* A run of these options (NULL-terminated) succeeds, and expect_written()
 * holds. */
static void expect_run_writes(cli_t *t, const char *dir, const char *want, const char *absent,
                              const char *const *args)
{
    run_t r;
    events_t e;
    ib_test_run_dirv(t, dir, &r, &e, 0, args);
    expect_written(&e, dir, want, absent);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

static void several_formats_from_one_decode(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], path[PATH_MAX];
    make_input(t, "formats", dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "-s", "50x", "-F", "png", "-F", "webp", "-F", "jpg", NULL);
    const ib_test_event_t *ev = ib_test_event_for(&e, "photo.jpg");
    ib_test_expect_event(ev, "ok");
    expect_outputs(ev, "photo.png photo.webp photo.jpg");
    expect_size(dir, "photo.png", 50, 40);
    expect_size(dir, "photo.jpg", 50, 40);
    /* WebP: its RIFF signature, and the size in the event. */
    size_t len;
    ib_test_path_fmt(path, "%s/out/photo.webp", dir);
    char *webp = ib_test_slurp(path, &len);
    assert_true(len > 12 && memcmp(webp, "RIFF", 4) == 0 && memcmp(webp + 8, "WEBP", 4) == 0);
    test_free(webp);
    for (unsigned i = 0; i < ev->n_outputs; i++)
        assert_true(ev->outputs[i].width == 50 && ev->outputs[i].height == 40);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

static void variants_have_their_own_format_and_quality(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_input(t, "variant-formats", dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "--variant", "sm:20x:jpg:30", "--variant", "md:40x:png", "-F",
            "webp", NULL);
    expect_written(&e, dir, "photo-sm.jpg:20x16 photo-md.png:40x32", "");
    /* Quality 30 is in the event and in the bytes: smaller than at 95. */
    assert_non_null(strstr(r.out_text, "\"quality\":30"));
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    size_t low_len = out_size(dir, "photo-sm.jpg");
    run_web(t, dir, &r, &e, 0, "--variant", "sm:20x:jpg:95", "--variant", "md:40x:png", NULL);
    size_t high_len = out_size(dir, "photo-sm.jpg");
    if (!(low_len < high_len))
        fail_msg("quality 30 gave %zu bytes, quality 95 %zu", low_len, high_len);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

static void shrink_only_variants_never_enlarge(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_input(t, "enlarge", dir, file);
    /* Shrink-only 200x> would enlarge the 100x80 image: not written.
     * 150x, without ">", is followed as ImageMagick follows it. */
    expect_run_writes(t, dir, "photo-a.png:50x40 photo-c.png:150x120", "photo-b.png",
                      (const char *[]){"-F", "png", "--variant", "a:50x>", "--variant", "b:200x>",
                                       "--variant", "c:150x", NULL});
}

/* When every shrink-only variant would enlarge, the largest is written
 * at the image's own size; a second of the same size and format is not. */
static void all_enlarging_writes_the_largest_once(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_input(t, "all-enlarge", dir, file);
    expect_run_writes(
        t, dir, "photo-b.png:100x80", "photo-a.png",
        (const char *[]){"-F", "png", "--variant", "a:200x>", "--variant", "b:300x>", NULL});
    /* Two variants that come out the same: written once. */
    expect_run_writes(
        t, dir, "photo-x.png:100x80", "photo-y.png",
        (const char *[]){"-F", "png", "--variant", "x:100x", "--variant", "y:100x80", NULL});
}

/* {w} tells variants apart without {variant}; a name two outputs would
 * share fails that input, and nothing of it is written. */
static void names_by_width(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_input(t, "by-width", dir, file);
    expect_run_writes(t, dir, "photo-30w.jpg:30x24 photo-60w.jpg:60x48", "",
                      (const char *[]){"-F", "jpg", "--name", "{dir}/{stem}-{w}w.{ext}",
                                       "--variant", "a:30x", "--variant", "b:60x", NULL});
    run_t r;
    events_t e;

    run_web(t, dir, &r, &e, 1, "-F", "jpg", "--name", "{dir}/{stem}-{w}.{ext}", "--variant",
            "a:50x20!", "--variant", "b:50x30!", NULL);
    const ib_test_event_t *ev = ib_test_event_for(&e, "photo.jpg");
    ib_test_expect_event(ev, "failed");
    assert_string_equal(ev->error_kind, "collision");
    assert_int_equal(ev->n_outputs, 0);
    assert_false(out_exists(dir, "photo-50.jpg"));
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

/* The number after "key": in the run's output, or -1. */
static long json_number(const run_t *r, const char *key)
{
    char want[64];
    snprintf(want, sizeof want, "\"%s\":", key);
    const char *p = strstr(r->out_text, want);
    return p != NULL ? strtol(p + strlen(want), NULL, 10) : -1;
}

/* The highest quality that fits is used: one more would not fit. */
static void byte_budget_is_held_and_used(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], q[32];
    make_photo(t, "budget", 400, 300, 1, dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "-F", "jpg", "--max-bytes", "20k", NULL);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "ok");
    long quality = json_number(&r, "quality");
    size_t got = out_size(dir, "photo.jpg");
    if (got > 20480 || quality < 1 || quality >= 100)
        fail_msg("%zu bytes at quality %ld for a 20k budget", got, quality);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    snprintf(q, sizeof q, "%ld", quality + 1);
    run_web(t, dir, &r, &e, 0, "-F", "jpg", "--quality", q, NULL);
    if (out_size(dir, "photo.jpg") <= 20480)
        fail_msg("quality %s fits 20k too: %ld was not the highest", q, quality);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

/* Too small a budget fails the file, writing nothing; a format with
 * nothing to trade is a usage error. */
static void impossible_budget_fails(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_photo(t, "no-budget", 400, 300, 1, dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 1, "-F", "jpg", "-F", "webp", "--max-bytes", "1k", NULL);
    const ib_test_event_t *ev = ib_test_event_for(&e, "photo.jpg");
    ib_test_expect_event(ev, "failed");
    assert_string_equal(ev->error_kind, "budget");
    assert_non_null(strstr(ev->error_message, "photo.jpg"));
    assert_false(out_exists(dir, "photo.jpg") || out_exists(dir, "photo.webp"));
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    ib_test_cli_run(t, &r, NULL, "-F", "png", "--max-bytes", "10k", "-o", dir, file, NULL);
    ib_test_expect_exit(&r, 2, "-F png --max-bytes");
    assert_non_null(strstr(r.err_text, "--max-bytes: png"));
    ib_test_run_free(&r);
}

/* A PNG's bit depth and colour type, from its IHDR. */
static void png_header(const char *dir, const char *name, int *depth, int *type)
{
    char path[PATH_MAX];
    size_t len;
    ib_test_path_fmt(path, "%s/out/%s", dir, name);
    unsigned char *png = (unsigned char *)ib_test_slurp(path, &len);
    assert_true(len > 26 && memcmp(png + 12, "IHDR", 4) == 0);
    *depth = png[24];
    *type = png[25];
    test_free(png);
}

static void palette_pngs(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], err[256], path[PATH_MAX];
    make_photo(t, "palette", 120, 90, 1, dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "-F", "png", "--palette", "--colors", "16", "--dither", "0", NULL);
    int depth, type;
    png_header(dir, "photo.png", &depth, &type);
    assert_int_equal(type, 3); /* indexed */
    assert_int_equal(depth, 4);
    assert_int_equal(json_number(&r, "colors"), 16);
    /* At most 16 distinct colours, by the tests' own decoder. */
    ib_test_image_t img;
    ib_test_path_fmt(path, "%s/out/photo.png", dir);
    if (ib_test_decode(path, &img, err, sizeof err) < 0)
        fail_msg("%s", err);
    unsigned colours[17], n = 0;
    for (unsigned i = 0; i < img.width * img.height; i++) {
        const unsigned char *p = img.pixels + i * img.channels;
        unsigned c = (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2], k = 0;
        while (k < n && colours[k] != c)
            k++;
        if (k == n && n++ == 16)
            fail_msg("more than 16 colours in a 16-colour palette PNG");
        colours[k] = c;
    }
    ib_test_image_free(&img);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    /* The budget of a palette PNG is met with fewer colours. */
    size_t full = out_size(dir, "photo.png");
    char budget[32];
    snprintf(budget, sizeof budget, "%zu", full - 1);
    run_web(t, dir, &r, &e, 0, "-F", "png", "--palette", "--max-bytes", budget, NULL);
    png_header(dir, "photo.png", &depth, &type);
    assert_true(type == 3 && depth < 4 && out_size(dir, "photo.png") < full);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

/* The sampling factors of the first component of a JPEG's frame. */
static int jpeg_luma_sampling(const char *dir, const char *name)
{
    char path[PATH_MAX];
    size_t len;
    ib_test_path_fmt(path, "%s/out/%s", dir, name);
    unsigned char *j = (unsigned char *)ib_test_slurp(path, &len);
    int factors = -1;
    for (size_t i = 2; i + 12 < len && j[i] == 0xff; i += 2 + (size_t)(j[i + 2] << 8 | j[i + 3]))
        if (j[i + 1] == 0xc0 || j[i + 1] == 0xc1 || j[i + 1] == 0xc2) {
            factors = j[i + 11];
            break;
        }
    test_free(j);
    return factors;
}

static void encoder_controls(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    make_photo(t, "controls", 200, 150, 1, dir, file);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "-F", "jpg", "--subsample", "off", NULL);
    assert_int_equal(jpeg_luma_sampling(dir, "photo.jpg"), 0x11);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    run_web(t, dir, &r, &e, 0, "-F", "jpg", "--subsample", "on", "--quality", "95", NULL);
    assert_int_equal(jpeg_luma_sampling(dir, "photo.jpg"), 0x22);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    /* More effort, no larger a WebP. */
    size_t fast, slow;
    run_web(t, dir, &r, &e, 0, "-F", "webp", "--effort", "0", NULL);
    fast = out_size(dir, "photo.webp");
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    run_web(t, dir, &r, &e, 0, "-F", "webp", "--effort", "6", NULL);
    slow = out_size(dir, "photo.webp");
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    if (!(slow < fast))
        fail_msg("WebP at effort 6 is %zu bytes, at effort 0 %zu", slow, fast);
}

static struct timespec mtime_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        fail_msg("stat(\"%s\") failed", path);
    return st.st_mtim;
}

/* Outputs carry the input's time; a re-run skips, a touched input is
 * redone (and carries its new time). */
static void preserve_times_and_reruns(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], out[PATH_MAX];
    make_input(t, "times", dir, file);
    struct timespec old = {.tv_sec = 1000000000, .tv_nsec = 123456789};
    assert_int_equal(utimensat(AT_FDCWD, file, (struct timespec[2]){old, old}, 0), 0);
    ib_test_path_fmt(out, "%s/out/photo.png", dir);
    run_t r;
    events_t e;
    run_web(t, dir, &r, &e, 0, "-F", "png", "--preserve-times", NULL);
    struct timespec got = mtime_of(out);
    assert_true(got.tv_sec == old.tv_sec && got.tv_nsec == old.tv_nsec);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    run_web(t, dir, &r, &e, 0, "-F", "png", "--preserve-times", NULL);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "skipped");
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    /* Touched, even back to an older time: redone. */
    struct timespec older = {.tv_sec = 900000000, .tv_nsec = 0};
    assert_int_equal(utimensat(AT_FDCWD, file, (struct timespec[2]){older, older}, 0), 0);
    run_web(t, dir, &r, &e, 0, "-F", "png", "--preserve-times", NULL);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "ok");
    assert_true(mtime_of(out).tv_sec == older.tv_sec);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

/* The {hash} of a name: 12 lowercase hex digits after the last '-'. */
static const char *hash_in(const char *path)
{
    const char *dash = strrchr(path, '-'), *dot = strrchr(path, '.');
    if (dash == NULL || dot == NULL || dot - dash - 1 != 12 ||
        strspn(dash + 1, "0123456789abcdef") < 12)
        fail_msg("%s has no 12-digit {hash}", path);
    return dash + 1;
}

/* The hash the name must carry: 64-bit FNV-1a of the bytes, its top 48
 * bits in hex. */
static void expect_hash_of_bytes(const char *path)
{
    size_t len;
    unsigned char *b = (unsigned char *)ib_test_slurp(path, &len);
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3u;
    test_free(b);
    char want[16];
    snprintf(want, sizeof want, "%012llx", (unsigned long long)(h >> 16));
    if (strncmp(hash_in(path), want, 12) != 0)
        fail_msg("%s: the bytes hash to %s", path, want);
}

/* The paths of the one input's outputs, sorted. */
static void output_paths(const events_t *e, ib_test_strs_t *out)
{
    const ib_test_event_t *ev = ib_test_event_for(e, "photo.jpg");
    for (unsigned i = 0; i < ev->n_outputs; i++)
        ib_test_strs_add(out, ev->outputs[i].path);
    ib_test_strs_sort(out);
}

/* {hash} names each output by its bytes: the same on a second run from
 * scratch, up to date on a re-run, and another name for other bytes. */
static void hashed_names_are_stable(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], out[PATH_MAX], kept[PATH_MAX];
    make_input(t, "hash", dir, file);
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_path_fmt(kept, "%s/first", dir);
    run_t r;
    events_t e;
    ib_test_strs_t first = {0}, again = {0}, other = {0};
    run_web(t, dir, &r, &e, 0, "-F", "webp", "-F", "jpg", "--name", "{dir}/{stem}-{hash}.{ext}",
            "--variant", "a:30x", "--variant", "b:60x", NULL);
    output_paths(&e, &first);
    assert_int_equal(first.n, 4);
    for (size_t i = 0; i < first.n; i++)
        expect_hash_of_bytes(first.v[i]);
    ib_test_events_free(&e);
    ib_test_run_free(&r);

    run_web(t, dir, &r, &e, 0, "-F", "webp", "-F", "jpg", "--name", "{dir}/{stem}-{hash}.{ext}",
            "--variant", "a:30x", "--variant", "b:60x", NULL);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "skipped");
    ib_test_events_free(&e);
    ib_test_run_free(&r);

    assert_int_equal(rename(out, kept), 0);
    run_web(t, dir, &r, &e, 0, "-F", "webp", "-F", "jpg", "--name", "{dir}/{stem}-{hash}.{ext}",
            "--variant", "a:30x", "--variant", "b:60x", NULL);
    output_paths(&e, &again);
    ib_test_expect_same_set(&again, &first, "the names of a second run from scratch");
    ib_test_events_free(&e);
    ib_test_run_free(&r);

    run_web(t, dir, &r, &e, 0, "-F", "jpg", "--quality", "40", "--name",
            "{dir}/{stem}-{hash}.{ext}", "--variant", "a:30x", NULL);
    output_paths(&e, &other);
    for (size_t i = 0; i < first.n; i++)
        if (strcmp(hash_in(first.v[i]), hash_in(other.v[0])) == 0)
            fail_msg("quality 40 gave the name of %s", first.v[i]);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    ib_test_strs_free(&first);
    ib_test_strs_free(&again);
    ib_test_strs_free(&other);
}

static size_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat(\"%s\") failed", path);
    return (size_t)st.st_size;
}

/* Whether two files hold the same bytes. */
static int same_bytes(const char *a, const char *b)
{
    size_t la, lb;
    char *x = ib_test_slurp(a, &la), *y = ib_test_slurp(b, &lb);
    int same = la == lb && memcmp(x, y, la) == 0;
    test_free(x);
    test_free(y);
    return same;
}

/* A run of photo.jpg (a small, low-quality JPEG, so that quality 98
 * makes it larger) with these options: whether the output is the input's
 * bytes, checked against the event's kept_input. */
static int kept_input(cli_t *t, const char *dir, const char *const *args)
{
    char in[PATH_MAX], out[PATH_MAX];
    ib_test_path_fmt(in, "%s/in/photo.jpg", dir);
    ib_test_path_fmt(out, "%s/out/photo.jpg", dir);
    run_t r;
    events_t e;
    ib_test_run_dirv(t, dir, &r, &e, 0, args);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "ok");
    int kept = same_bytes(in, out), said = strstr(r.out_text, "\"kept_input\":true") != NULL;
    if (kept != said)
        fail_msg("the output is %sthe input's bytes, but the event says %s", kept ? "" : "not ",
                 r.out_text);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    return kept;
}

/* A JPEG at quality 50: encoded again at 98 it is larger. orientation:
 * as for ib_test_write_jpeg (1 adds EXIF that says upright). */
static void small_jpeg(const char *path, int orientation)
{
    ib_test_image_t img;
    assert_int_equal(ib_test_image_alloc(&img, 120, 90, 3), 0);
    ib_test_fill(&img, IB_TEST_FILL_BUSY, 3);
    ib_test_save(path, &img, 50, orientation);
    ib_test_image_free(&img);
}

/* --keep-smaller writes the input's bytes only for the same picture in
 * the same format and size, with no metadata the policy would drop. */
static void keep_smaller_keeps_only_the_same_picture(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX];
    ib_test_cli_dir(t, "keep", dir);
    ib_test_path_fmt(file, "%s/in/photo.jpg", dir);
    small_jpeg(file, 0);
    assert_true(kept_input(t, dir, (const char *[]){"--keep-smaller", "--quality", "98", NULL}));
    /* Smaller when encoded again: that is written. */
    assert_false(kept_input(t, dir, (const char *[]){"--keep-smaller", "--quality", "20", NULL}));
    /* Without the option, another size, other pixels, another format. */
    assert_false(kept_input(t, dir, (const char *[]){"--quality", "98", NULL}));
    assert_false(kept_input(
        t, dir, (const char *[]){"--keep-smaller", "--quality", "98", "-s", "119x", NULL}));
    assert_false(kept_input(
        t, dir, (const char *[]){"--keep-smaller", "--quality", "98", "-f", "grayscale", NULL}));
    /* EXIF, which the default policy strips, but --keep-metadata keeps. */
    small_jpeg(file, 1);
    assert_false(kept_input(t, dir, (const char *[]){"--keep-smaller", "--quality", "98", NULL}));
    assert_true(kept_input(
        t, dir, (const char *[]){"--keep-smaller", "--quality", "98", "--keep-metadata", NULL}));
}

/* --in-place --keep-smaller never grows a file, even when the options ask
 * for what only a larger file would give (then it says so), and shrinks
 * the ones that can shrink. */
static void in_place_keep_smaller_never_grows(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], file[PATH_MAX], copy[PATH_MAX];
    ib_test_cli_dir(t, "keep-in-place", dir);
    ib_test_path_fmt(file, "%s/photo.jpg", dir);
    ib_test_path_fmt(copy, "%s/original.jpeg.bak", dir);
    small_jpeg(file, 1);
    small_jpeg(copy, 1);
    run_t r;
    ib_test_cli_run(t, &r, NULL, "--json", "--in-place", "--keep-smaller", "--quality", "98", "-f",
                    "grayscale", file, NULL);
    ib_test_expect_exit(&r, 0, "--in-place --keep-smaller");
    if (!same_bytes(file, copy) || strstr(r.out_text, "\"kept_input\":true") == NULL ||
        strstr(r.out_text, "never grows a file in place") == NULL)
        fail_msg("a file grew, or the event did not say it was kept: %s", r.out_text);
    ib_test_run_free(&r);
    size_t before = file_size(file);
    ib_test_cli_run(t, &r, NULL, "--json", "--in-place", "--keep-smaller", "--quality", "30", file,
                    NULL);
    ib_test_expect_exit(&r, 0, "--in-place --keep-smaller --quality 30");
    if (file_size(file) >= before)
        fail_msg("quality 30 did not shrink the file: %s", r.out_text);
    ib_test_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(several_formats_from_one_decode),
        cmocka_unit_test(variants_have_their_own_format_and_quality),
        cmocka_unit_test(shrink_only_variants_never_enlarge),
        cmocka_unit_test(all_enlarging_writes_the_largest_once),
        cmocka_unit_test(names_by_width),
        cmocka_unit_test(byte_budget_is_held_and_used),
        cmocka_unit_test(impossible_budget_fails),
        cmocka_unit_test(palette_pngs),
        cmocka_unit_test(encoder_controls),
        cmocka_unit_test(preserve_times_and_reruns),
        cmocka_unit_test(hashed_names_are_stable),
        cmocka_unit_test(keep_smaller_keeps_only_the_same_picture),
        cmocka_unit_test(in_place_keep_smaller_never_grows),
    };
    return ib_test_run_suite(tests, ib_test_cli_group_setup, ib_test_cli_group_teardown);
}
