/*
 * --manifest and --placeholders, checked against the disk: every output
 * the manifest lists is there with its bytes and decoded size, every file
 * written is listed, entries are keyed by the file events' input paths,
 * the source size is the upright one, no temporary file is left, a re-run
 * whose inputs are all up to date still lists them, shards' manifests
 * merge with jq, and the placeholders of a solid image are that colour
 * (in the manifest and in the --json event alike).
 *
 * The manifest is one JSON document, not NDJSON: read with the tree form
 * of the events' strict reader (tests/decode.c).
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
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#ifdef IB_TEST_HAVE_WEBP
#include <webp/decode.h>
#endif

typedef ib_test_cli_t cli_t;
typedef ib_test_run_t run_t;
typedef ib_test_events_t events_t;

/* ---- reading the manifest ---- */

typedef ib_test_json_t jv_t;

enum {
    J_NULL = IB_TEST_JSON_NULL,
    J_NUM = IB_TEST_JSON_NUMBER,
    J_STR = IB_TEST_JSON_STRING,
    J_ARR = IB_TEST_JSON_ARRAY,
    J_OBJ = IB_TEST_JSON_OBJECT
};

/* Parses a whole document; fails the test if it is not one JSON value. */
static void jv_parse(const char *text, jv_t *v, const char *what)
{
    char err[256];
    if (ib_test_json_parse(text, strlen(text), v, err, sizeof err) < 0)
        fail_msg("%s is not one JSON document (%s):\n%s", what, err, text);
}

/* A member that must be there, of that type. */
static const jv_t *jv_need(const jv_t *o, const char *key, int type)
{
    const jv_t *v = ib_test_json_get(o, key);
    if (v == NULL || v->type != type)
        fail_msg("the entry has no %s of type %d", key, type);
    return v;
}

static void read_manifest(const char *path, jv_t *m)
{
    char *text = ib_test_slurp(path, NULL);
    jv_parse(text, m, path);
    test_free(text);
    assert_int_equal(m->type, J_OBJ);
}

/* ---- inputs and runs ---- */

static void write_image(const char *path, unsigned w, unsigned h, const unsigned char rgb[3],
                        int orientation)
{
    ib_test_image_t img;
    assert_int_equal(ib_test_image_alloc(&img, w, h, 3), 0);
    if (rgb != NULL)
        ib_test_image_fill(&img, (const unsigned char[4]){rgb[0], rgb[1], rgb[2], 255});
    else
        ib_test_fill(&img, IB_TEST_FILL_GRADIENT, 0);
    ib_test_save(path, &img, 92, orientation);
    ib_test_image_free(&img);
}

/* Three inputs under DIR/in: a JPEG stored 100x60 with EXIF orientation
 * 6 (upright 60x100), a PNG in a subdirectory and a file that is no
 * image at all. */
static void make_inputs(cli_t *t, const char *name, char *dir)
{
    char path[PATH_MAX];
    ib_test_cli_dir(t, name, dir);
    ib_test_path_fmt(path, "%s/in/turned.jpg", dir);
    write_image(path, 100, 60, NULL, 6);
    ib_test_path_fmt(path, "%s/in/sub/flat.png", dir);
    write_image(path, 80, 40, NULL, 0);
    ib_test_path_fmt(path, "%s/in/broken.jpg", dir);
    ib_test_write_file(path, "\xff\xd8\xff\xe0 not a jpeg", 15);
}

/* Every run here: --json -j 1 -o DIR/out ... DIR/in. */
#define run_in ib_test_run_dir

/* The manifest's keys are exactly the file events' inputs. */
static void expect_keys_are_inputs(const jv_t *m, const events_t *e)
{
    ib_test_strs_t keys = {0}, inputs = {0};
    for (size_t i = 0; i < m->n; i++)
        ib_test_strs_add(&keys, m->keys[i]);
    for (size_t i = 0; i < e->n; i++)
        ib_test_strs_add(&inputs, e->files[i].input);
    ib_test_expect_same_set(&keys, &inputs, "the manifest's keys and the events' inputs");
    ib_test_strs_free(&keys);
    ib_test_strs_free(&inputs);
}

/* Each output of an entry is on disk with its bytes and decoded size;
 * their paths are added to listed. */
static void expect_outputs_on_disk(const jv_t *entry, ib_test_strs_t *listed)
{
    const jv_t *outs = jv_need(entry, "outputs", J_ARR);
    for (size_t i = 0; i < outs->n; i++) {
        const jv_t *o = &outs->items[i];
        const char *path = jv_need(o, "path", J_STR)->string;
        struct stat st;
        if (stat(path, &st) != 0)
            fail_msg("the manifest lists %s, which is not on disk", path);
        if ((double)st.st_size != jv_need(o, "bytes", J_NUM)->number)
            fail_msg("%s has %lld bytes, the manifest says %.0f", path, (long long)st.st_size,
                     jv_need(o, "bytes", J_NUM)->number);
        const char *format = jv_need(o, "format", J_STR)->string;
        if (strcmp(format, "png") == 0 || strcmp(format, "jpeg") == 0) {
            ib_test_image_t img;
            char err[256];
            if (ib_test_decode(path, &img, err, sizeof err) < 0)
                fail_msg("%s", err);
            if (img.width != jv_need(o, "width", J_NUM)->number ||
                img.height != jv_need(o, "height", J_NUM)->number)
                fail_msg("%s decodes to %ux%u, the manifest says %.0fx%.0f", path, img.width,
                         img.height, jv_need(o, "width", J_NUM)->number,
                         jv_need(o, "height", J_NUM)->number);
            ib_test_image_free(&img);
        }
        ib_test_strs_add(listed, path);
    }
}

/* Every file under DIR/out but the manifest is one the manifest lists,
 * and no temporary file is left. */
static void expect_every_file_listed(const char *dir, ib_test_strs_t *listed)
{
    char out[PATH_MAX], path[PATH_MAX];
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_listing_t l;
    ib_test_list_tree(out, &l);
    if (l.temps > 0)
        fail_msg("a temporary file was left: %s", l.first_temp);
    ib_test_strs_t on_disk = {0};
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.paths[i], "manifest.json") == 0)
            continue;
        ib_test_path_fmt(path, "%s/%s", out, l.paths[i]);
        ib_test_strs_add(&on_disk, path);
    }
    ib_test_expect_same_set(&on_disk, listed, "the files on disk and the manifest's outputs");
    ib_test_strs_free(&on_disk);
    ib_test_listing_free(&l);
}

/* The entry of the input whose path ends in suffix. */
static const jv_t *entry_for(const jv_t *m, const char *suffix)
{
    size_t sl = strlen(suffix);
    for (size_t i = 0; i < m->n; i++) {
        size_t kl = strlen(m->keys[i]);
        if (kl >= sl && strcmp(m->keys[i] + kl - sl, suffix) == 0)
            return &m->items[i];
    }
    fail_msg("the manifest has no entry for %s", suffix);
    return NULL;
}

/* Frees what a case read: the run, its events and the manifest. */
static void done_with(run_t *r, events_t *e, jv_t *m)
{
    ib_test_json_free(m);
    ib_test_events_free(e);
    ib_test_run_free(r);
}

static void manifest_matches_the_disk(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], manifest[PATH_MAX];
    make_inputs(t, "disk", dir);
    ib_test_path_fmt(manifest, "%s/out/manifest.json", dir);
    run_t r;
    events_t e;
    run_in(t, dir, &r, &e, 1, "-F", "png", "-F", "jpg", "--variant", "sm:30x", "--variant",
           "lg:50x", "--manifest", manifest, NULL);
    jv_t m;
    read_manifest(manifest, &m);
    expect_keys_are_inputs(&m, &e);
    ib_test_strs_t listed = {0};
    for (size_t i = 0; i < m.n; i++)
        expect_outputs_on_disk(&m.items[i], &listed);
    expect_every_file_listed(dir, &listed);

    /* The source size is the upright one; each output names its variant. */
    const jv_t *turned = entry_for(&m, "/turned.jpg");
    assert_string_equal(jv_need(turned, "status", J_STR)->string, "ok");
    assert_true(jv_need(turned, "width", J_NUM)->number == 60);
    assert_true(jv_need(turned, "height", J_NUM)->number == 100);
    const jv_t *outs = jv_need(turned, "outputs", J_ARR);
    assert_int_equal(outs->n, 4);
    for (size_t i = 0; i < outs->n; i++) {
        const char *v = jv_need(&outs->items[i], "variant", J_STR)->string;
        assert_true(strcmp(v, "sm") == 0 || strcmp(v, "lg") == 0);
        assert_true(jv_need(&outs->items[i], "height", J_NUM)->number ==
                    (strcmp(v, "sm") == 0 ? 50 : 83));
    }
    const jv_t *flat = entry_for(&m, "/sub/flat.png");
    assert_true(jv_need(flat, "width", J_NUM)->number == 80);
    assert_true(jv_need(flat, "height", J_NUM)->number == 40);
    /* A failed input is listed with its error and nothing on disk. */
    const jv_t *broken = entry_for(&m, "/broken.jpg");
    assert_string_equal(jv_need(broken, "status", J_STR)->string, "failed");
    assert_string_equal(jv_need(jv_need(broken, "error", J_OBJ), "kind", J_STR)->string, "decode");
    assert_int_equal(jv_need(broken, "outputs", J_ARR)->n, 0);
    assert_null(ib_test_json_get(flat, "color"));

    ib_test_strs_free(&listed);
    done_with(&r, &e, &m);
}

/* Without variants, each output's variant is null. */
static void no_variants_give_null(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], manifest[PATH_MAX];
    make_inputs(t, "null-variant", dir);
    ib_test_path_fmt(manifest, "%s/manifest.json", dir);
    run_t r;
    events_t e;
    run_in(t, dir, &r, &e, 1, "-s", "20x", "--manifest", manifest, NULL);
    jv_t m;
    read_manifest(manifest, &m);
    const jv_t *outs = jv_need(entry_for(&m, "/turned.jpg"), "outputs", J_ARR);
    assert_int_equal(outs->n, 1);
    assert_int_equal(jv_need(&outs->items[0], "variant", J_NULL)->type, J_NULL);
    assert_true(jv_need(&outs->items[0], "width", J_NUM)->number == 20);
    done_with(&r, &e, &m);
}

/* A re-run whose outputs are all up to date lists every input as
 * skipped, with its outputs, its size and (decoded again) its
 * placeholders. */
static void rerun_lists_skipped_inputs(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], manifest[PATH_MAX], path[PATH_MAX];
    make_inputs(t, "rerun", dir);
    ib_test_path_fmt(path, "%s/in/broken.jpg", dir);
    assert_int_equal(unlink(path), 0);
    ib_test_path_fmt(manifest, "%s/out/manifest.json", dir);
    run_t r;
    jv_t first, again;
    run_in(t, dir, &r, NULL, 0, "-F", "webp", "--variant", "a:30x", "--manifest", manifest,
           "--placeholders", NULL);
    ib_test_run_free(&r);
    read_manifest(manifest, &first);
    events_t e;
    run_in(t, dir, &r, &e, 0, "-F", "webp", "--variant", "a:30x", "--manifest", manifest,
           "--placeholders", NULL);
    read_manifest(manifest, &again);
    assert_int_equal(again.n, 2);
    expect_keys_are_inputs(&again, &e);
    ib_test_strs_t listed = {0};
    for (size_t i = 0; i < again.n; i++) {
        const jv_t *was = entry_for(&first, again.keys[i]), *now = &again.items[i];
        assert_string_equal(jv_need(now, "status", J_STR)->string, "skipped");
        assert_true(jv_need(now, "width", J_NUM)->number == jv_need(was, "width", J_NUM)->number);
        assert_int_equal(jv_need(now, "outputs", J_ARR)->n, 1);
        assert_string_equal(jv_need(now, "blurhash", J_STR)->string,
                            jv_need(was, "blurhash", J_STR)->string);
        assert_string_equal(jv_need(now, "color", J_STR)->string,
                            jv_need(was, "color", J_STR)->string);
        expect_outputs_on_disk(now, &listed);
    }
    expect_every_file_listed(dir, &listed);
    ib_test_strs_free(&listed);
    ib_test_json_free(&first);
    ib_test_json_free(&again);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
}

/* The LQIP is a tiny copy of the colour rgb, at most 32 px a side. */
static void expect_lqip(const char *uri, const unsigned char rgb[3])
{
    static const char webp[] = "data:image/webp;base64,", jpeg[] = "data:image/jpeg;base64,";
    assert_true(strlen(uri) < 1536);
    int is_webp = strncmp(uri, webp, sizeof webp - 1) == 0;
    if (!is_webp && strncmp(uri, jpeg, sizeof jpeg - 1) != 0)
        fail_msg("the LQIP is not a WebP or JPEG data: URI: %.60s", uri);
#ifdef IB_TEST_HAVE_WEBP
    if (!is_webp)
        return; /* a JPEG LQIP only where libvips has no WebP: not here */
    size_t n = 0;
    unsigned char bytes[1536];
    const char *b64 = uri + sizeof webp - 1;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0, bits = 0;
    for (const char *p = b64; *p != '\0' && *p != '='; p++) {
        const char *d = strchr(alphabet, *p);
        assert_non_null(d);
        acc = acc << 6 | (unsigned)(d - alphabet);
        if ((bits += 6) >= 8) {
            bits -= 8;
            bytes[n++] = (unsigned char)(acc >> bits);
        }
    }
    int w, h;
    uint8_t *px = WebPDecodeRGB(bytes, n, &w, &h);
    assert_non_null(px);
    assert_true(w > 0 && h > 0 && w <= 32 && h <= 32);
    for (int i = 0; i < w * h * 3; i++)
        if (abs((int)px[i] - (int)rgb[i % 3]) > 6)
            fail_msg("the LQIP's pixel %d has %d in band %d, want %d", i / 3, px[i], i % 3,
                     rgb[i % 3]);
    WebPFree(px);
#else
    (void)rgb;
    fprintf(stderr,
            "manifest: SKIPPED: decoding the LQIP (the tests were built without libwebp)\n");
#endif
}

/* color, blurhash and lqip of a solid image of the colour rgb. */
static void expect_placeholders(const jv_t *o, const unsigned char rgb[3])
{
    char want[8];
    snprintf(want, sizeof want, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    assert_string_equal(jv_need(o, "color", J_STR)->string, want);
    const char *hash = jv_need(o, "blurhash", J_STR)->string;
    assert_int_equal(strlen(hash), 28);
    /* 4x3 components: (4 - 1) + (3 - 1) * 9 = 21; then the DC, sRGB. */
    assert_int_equal((int)ib_test_base83(hash, 1), 21);
    int dc = (int)ib_test_base83(hash + 2, 4);
    for (int c = 0; c < 3; c++)
        if (abs(((dc >> (16 - 8 * c)) & 0xff) - rgb[c]) > 1)
            fail_msg("the BlurHash's DC is #%06x, want %s", dc, want);
    expect_lqip(jv_need(o, "lqip", J_STR)->string, rgb);
}

/* The --json file event of the input ending in suffix, parsed. */
static void event_json(const run_t *r, const char *suffix, jv_t *ev)
{
    for (const char *line = r->out_text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        char *copy = strndup(line, (size_t)(nl - line));
        jv_parse(copy, ev, "a --json line");
        free(copy);
        const jv_t *in = ib_test_json_get(ev, "input");
        size_t sl = strlen(suffix);
        if (in != NULL && strlen(in->string) >= sl &&
            strcmp(in->string + strlen(in->string) - sl, suffix) == 0)
            return;
        ib_test_json_free(ev);
    }
    fail_msg("no --json event for %s", suffix);
}

static void placeholders_of_a_solid_image(void **state)
{
    cli_t *t = *state;
    static const unsigned char red[3] = {200, 30, 60};
    char dir[PATH_MAX], path[PATH_MAX], manifest[PATH_MAX];
    ib_test_cli_dir(t, "solid", dir);
    ib_test_path_fmt(path, "%s/in/red.png", dir);
    write_image(path, 90, 60, red, 0);
    ib_test_path_fmt(manifest, "%s/manifest.json", dir);
    run_t r;
    run_in(t, dir, &r, NULL, 0, "-F", "jpg", "--variant", "s:20x", "--variant", "m:40x",
           "--manifest", manifest, "--placeholders", NULL);
    jv_t m, ev;
    read_manifest(manifest, &m);
    const jv_t *entry = entry_for(&m, "/red.png");
    expect_placeholders(entry, red);
    /* The same three in the file event. */
    event_json(&r, "/red.png", &ev);
    expect_placeholders(&ev, red);
    static const char *const fields[] = {"color", "blurhash", "lqip"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(jv_need(&ev, fields[i], J_STR)->string,
                            jv_need(entry, fields[i], J_STR)->string);
    ib_test_json_free(&ev);
    ib_test_json_free(&m);
    ib_test_run_free(&r);
}

/* ---- shards and usage ---- */

static void shard_manifests_merge(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], tmpl[PATH_MAX], path[PATH_MAX], jq[PATH_MAX];
    ib_test_cli_dir(t, "shards", dir);
    for (int i = 0; i < 8; i++) {
        ib_test_path_fmt(path, "%s/in/p%d.png", dir, i);
        write_image(path, 16 + i, 12, NULL, 0);
    }
    ib_test_path_fmt(tmpl, "%s/m-{shard}.json", dir);
    size_t total = 0;
    ib_test_strs_t keys = {0};
    for (int k = 1; k <= 2; k++) {
        char shard[8];
        snprintf(shard, sizeof shard, "%d/2", k);
        run_t r;
        run_in(t, dir, &r, NULL, 0, "--shard", shard, "--manifest", tmpl, NULL);
        ib_test_run_free(&r);
        jv_t m;
        ib_test_path_fmt(path, "%s/m-%d.json", dir, k);
        read_manifest(path, &m);
        for (size_t i = 0; i < m.n; i++)
            ib_test_strs_add(&keys, m.keys[i]);
        total += m.n;
        ib_test_json_free(&m);
    }
    /* Each input in exactly one shard's manifest. */
    assert_int_equal(total, 8);
    ib_test_strs_sort(&keys);
    for (size_t i = 1; i < keys.n; i++)
        assert_string_not_equal(keys.v[i - 1], keys.v[i]);
    ib_test_strs_free(&keys);

    if (ib_test_find_program("jq", jq) < 0)
        ib_test_skip_loudly("manifest", "jq is not installed: the merge with jq -s add is "
                                        "not checked");
    char m1[PATH_MAX], m2[PATH_MAX];
    ib_test_path_fmt(m1, "%s/m-1.json", dir);
    ib_test_path_fmt(m2, "%s/m-2.json", dir);
    const char *argv[] = {"jq", "-s", "add", m1, m2, NULL};
    run_t r;
    ib_test_cli_run_prog(t, &r, NULL, jq, argv);
    ib_test_expect_exit(&r, 0, "jq");
    jv_t merged;
    jv_parse(r.out_text, &merged, "jq's merge");
    assert_int_equal(merged.type, J_OBJ);
    assert_int_equal(merged.n, 8);
    ib_test_json_free(&merged);
    ib_test_run_free(&r);
}

static void usage_errors(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], manifest[PATH_MAX], out[PATH_MAX];
    make_inputs(t, "usage", dir);
    run_t r;
    char in[PATH_MAX];
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    /* Placeholders with nowhere to go: neither --manifest nor --json. */
    ib_test_cli_run(t, &r, NULL, "-o", out, "--placeholders", in, NULL);
    ib_test_expect_exit(&r, 2, "imgbatch --placeholders");
    assert_non_null(strstr(r.err_text, "--placeholders"));
    ib_test_run_free(&r);
    /* A manifest that cannot be written stops the run before it starts. */
    ib_test_path_fmt(manifest, "%s/no/such/dir/m.json", dir);
    run_in(t, dir, &r, NULL, 2, "--manifest", manifest, NULL);
    assert_non_null(strstr(r.err_text, "--manifest"));
    ib_test_path_fmt(out, "%s/out/turned.jpg", dir);
    assert_false(ib_test_exists(out));
    ib_test_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(manifest_matches_the_disk),
        cmocka_unit_test(no_variants_give_null),
        cmocka_unit_test(rerun_lists_skipped_inputs),
        cmocka_unit_test(placeholders_of_a_solid_image),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(shard_manifests_merge),
    };
    return ib_test_run_suite(tests, ib_test_cli_group_setup, ib_test_cli_group_teardown);
}
