/*
 * The --json events as scripts read them: the built imgbatch ($IMGBATCH)
 * runs on small PNGs written here, and every line it prints must be strict
 * JSON, one event per input whatever the file names are, with a summary
 * that adds up; --dry-run lists what it would write, as text and as
 * events, and writes nothing.
 *
 * NOTES
 * - The events are read with the one reader of the tests (decode.c, by
 *   way of ib_test_events_load()): strict RFC 8259, refusing invalid
 *   UTF-8, lone surrogates, NUL bytes and repeated keys.
 *   json_reader_is_strict shows that it can fail.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* ---- the JSON reader itself ---- */

/* Whether the reader takes len bytes of value as the value of a member:
 * each case goes through the object reader that reads imgbatch's lines. */
static int reads_as_member(const char *value, size_t len)
{
    char line[256], err[200];
    size_t n = (size_t)snprintf(line, sizeof line, "{\"v\":");
    assert_true(n + len + 1 < sizeof line);
    memcpy(line + n, value, len);
    line[n + len] = '}';
    ib_test_event_t ev;
    if (ib_test_event_parse(line, n + len + 1, &ev, err, sizeof err) < 0)
        return 0;
    ib_test_event_free(&ev);
    return 1;
}

static const char *const good_json[] = {
    "{}",
    "[]",
    " {\"a\" : [1, -0.5e+3, 0, 1E9, true, false, null, \"\"]} ",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
};

static const char *const bad_json[] = {
    "",
    "{\"a\":1} x",
    "{\"a\":1}{}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{'a':1}",
    "{\"a\" 1}",
    "{a:1}",
    "\"\x01\"",
    "\"a\nb\"",
    "\"\\u12\"",
    "\"\\x41\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\xff\"",
    "\"\xc3\"",
    "\"\xc0\xaf\"",
    "\"\xed\xa0\x80\"",
    "\"\xf4\x90\x80\x80\"",
    "01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "\"abc",
    "tru",
    "nul",
    "True",
    "{\"a\":1,\"a\":2}",
    "[",
    "{\"a\":[}",
    "[{\"path\":\"a\",\"path\":\"b\"}]",
};

/* Whole lines: text after the object, a field the reader keeps given
 * twice. */
static const char *const bad_lines[] = {
    "{\"a\":1} x",
    "{\"a\":1}{}",
    "{\"input\":\"a\",\"input\":\"b\"}",
    "{\"outputs\":[],\"outputs\":[]}",
    "{\"error\":{\"kind\":\"a\",\"kind\":\"b\"}}",
};

static void json_reader_is_strict(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_json / sizeof good_json[0]; i++)
        if (!reads_as_member(good_json[i], strlen(good_json[i])))
            fail_msg("valid JSON refused: %s", good_json[i]);
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
        if (reads_as_member(bad_json[i], strlen(bad_json[i])))
            fail_msg("invalid JSON accepted: %s", bad_json[i]);
    /* A NUL byte inside a value is not JSON either. */
    assert_false(reads_as_member("{}\0", 3));
    char err[200];
    ib_test_event_t ev;
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++)
        if (ib_test_event_parse(bad_lines[i], strlen(bad_lines[i]), &ev, err, sizeof err) == 0)
            fail_msg("invalid line accepted: %s", bad_lines[i]);
    assert_int_equal(ib_test_event_parse("{}\0", 3, &ev, err, sizeof err), -1);

    static const char escaped[] = "{\"input\":\"a\\u00e9\\ud83d\\ude00\"}";
    assert_int_equal(ib_test_event_parse(escaped, strlen(escaped), &ev, err, sizeof err), 0);
    assert_string_equal(ev.input, "a\xc3\xa9\xf0\x9f\x98\x80");
    ib_test_event_free(&ev);
}

/* ---- --json with awkward file names ---- */

typedef struct {
    const char *raw; /* the name on disk */
    int valid_utf8;  /* then the JSON input must give it back exactly */
} odd_name_t;

/* Each starts with a tag of its own, so events can be matched to names
 * even where invalid bytes were replaced. */
static const odd_name_t odd_names[] = {
    {"n01 plain.png", 1},
    {"n02 with  spaces .png", 1},
    {"n03 \"quoted\" 'single'.png", 1},
    {"n04 back\\slash\\.png", 1},
    {"n05 new\nline.png", 1},
    {"n06 tab\tcr\rff\f.png", 1},
    {"n07 ctl\x01\x1f\x7f.png", 1},
    {"n08 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.png", 1},
    {"n09 bad\xff\xfe.png", 0},
    {"n10 cut\xc3.png", 0},
    {"n11 surrogate\xed\xa0\x80.png", 0},
    {"n12 overlong\xc0\xaf.png", 0},
    {"n13 latin1 \xe9t\xe9.png", 0},
    {"sub dir/n14 {braces} [brackets] <angle>.png", 1},
    {"sub dir/n15 json \\u0041 \\n.png", 1},
};
#define N_ODD (sizeof odd_names / sizeof odd_names[0])

/* The event whose input holds tag number i + 1 ("n01 "). */
static const ib_test_event_t *event_for_tag(const ib_test_events_t *e, size_t i)
{
    char tag[8];
    snprintf(tag, sizeof tag, "n%02zu ", i + 1);
    const ib_test_event_t *hit = NULL;
    for (size_t k = 0; k < e->n; k++) {
        if (strstr(e->files[k].input, tag) == NULL)
            continue;
        if (hit != NULL)
            fail_msg("two file events for the name tagged \"%s\"", tag);
        hit = &e->files[k];
    }
    if (hit == NULL)
        fail_msg("no file event for the name tagged \"%s\"", tag);
    return hit;
}

/* The event of odd_names[i]: its input and its one 8x6 output. */
static void expect_odd_name(const ib_test_events_t *e, size_t i, const char *in, const char *out)
{
    const ib_test_event_t *ev = event_for_tag(e, i);
    char want[PATH_MAX];
    ib_test_path_join(want, in, odd_names[i].raw);
    if (odd_names[i].valid_utf8)
        assert_string_equal(ev->input, want);
    else if (strstr(ev->input, "\xef\xbf\xbd") == NULL)
        fail_msg("invalid UTF-8 in \"%s\" is not shown as U+FFFD: \"%s\"", odd_names[i].raw,
                 ev->input);
    assert_int_equal(ev->n_outputs, 1);
    assert_true(ev->outputs[0].width == 8 && ev->outputs[0].height == 6);
    ib_test_path_join(want, out, odd_names[i].raw);
    if (odd_names[i].valid_utf8)
        assert_string_equal(ev->outputs[0].path, want);
    /* On disk the name is mirrored byte for byte. */
    if (!ib_test_exists(want))
        fail_msg("output \"%s\" is missing", want);
}

static void json_is_valid_whatever_the_names(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    ib_test_cli_in_out(t, "names", dir, in, out);
    const char *rels[N_ODD];
    for (size_t i = 0; i < N_ODD; i++)
        rels[i] = odd_names[i].raw;
    ib_test_make_pngs(in, rels, N_ODD);
    /* One input that fails, so every status count is tried. */
    ib_test_path_join(path, in, "n16 broken \"x\".png");
    ib_test_write_file(path, "\x89PNG\r\n\x1a\n not really", 20);

    for (int pass = 0; pass < 2; pass++) {
        ib_test_run_t r;
        ib_test_events_t e;
        ib_test_cli_run(t, &r, NULL, "--json", "-j", "2", "-o", out, in, NULL);
        ib_test_expect_exit(&r, 1, "a batch with one broken file");
        ib_test_events_load(&r, &e);
        /* One event per input: no name split a line. */
        ib_test_tally_t n = ib_test_events_tally(&e);
        assert_int_equal(n.files, N_ODD + 1);
        assert_int_equal(n.failed, 1);
        /* The second run finds everything up to date. */
        assert_int_equal(pass == 0 ? n.ok : n.skipped, N_ODD);
        for (size_t i = 0; i < N_ODD; i++)
            expect_odd_name(&e, i, in, out);
        const ib_test_event_t *broken = event_for_tag(&e, N_ODD);
        assert_string_equal(broken->status, "failed");
        assert_non_null(broken->error_kind);
        assert_non_null(broken->error_message);
        assert_non_null(strstr(broken->error_message, "n16 broken"));
        ib_test_events_free(&e);
        ib_test_run_free(&r);
    }
}

/* ---- --dry-run ---- */

static const char *const dry_rels[] = {"a.png", "sub/b.png", "sub/deeper/c.png"};

/* The text of a dry run: what it would write, one line per output naming
 * it and its size, and not that anything was done. */
static void expect_dry_text(const ib_test_run_t *r, const char *out)
{
    if (strstr(r->err_text, "would write 3 files") == NULL ||
        strstr(r->err_text, " done") != NULL) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("--dry-run's summary should say \"would write 3 files\", not \"done\"");
    }
    size_t lines = 0;
    for (const char *p = r->out_text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 3);
    for (size_t i = 0; i < 3; i++) {
        char want_out[PATH_MAX];
        ib_test_path_join(want_out, out, dry_rels[i]);
        const char *at = strstr(r->out_text, want_out);
        const char *eol = at != NULL ? strchr(at, '\n') : NULL;
        const char *size = at != NULL ? strstr(at, "4x3") : NULL;
        if (at == NULL || size == NULL || size > eol) {
            ib_test_run_show(r, "imgbatch");
            fail_msg("--dry-run does not show %s at 4x3", want_out);
        }
    }
}

/* The events of a dry run with two WebP variants, 2 and 6 wide. */
static void expect_dry_events(const ib_test_run_t *r)
{
    ib_test_events_t e;
    ib_test_events_load(r, &e);
    assert_int_equal(ib_test_events_tally(&e).ok, 3);
    for (size_t i = 0; i < e.n; i++) {
        const ib_test_event_t *ev = &e.files[i];
        assert_int_equal(ev->n_outputs, 2);
        assert_true(ev->outputs[0].width == 2 && ev->outputs[1].width == 6);
        assert_string_equal(ev->outputs[0].format, "webp");
    }
    ib_test_events_free(&e);
}

static void dry_run_writes_nothing(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], cwd[PATH_MAX];
    ib_test_cli_in_out(t, "dry", dir, in, out);
    ib_test_path_join(cwd, dir, "cwd");
    ib_test_make_pngs(in, dry_rels, 3);
    ib_test_mkdir(cwd);
    ib_test_strs_t before = {0}, after = {0};
    ib_test_tree_stamps(dir, &before);

    ib_test_spawn_t here = {.cwd = cwd};
    ib_test_run_t r;
    ib_test_cli_run(t, &r, &here, "--dry-run", "-s", "4x", "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "--dry-run");
    expect_dry_text(&r, out);
    ib_test_run_free(&r);

    /* The same as JSON, and with no -o at all. */
    ib_test_cli_run(t, &r, &here, "--dry-run", "--json", "-F", "webp", "--variant", "sm:2x",
                    "--variant", "lg:6x", in, NULL);
    ib_test_expect_exit(&r, 0, "--dry-run --json without -o");
    expect_dry_events(&r);
    ib_test_run_free(&r);

    ib_test_tree_stamps(dir, &after);
    ib_test_expect_same_set(&after, &before, "the disk after --dry-run");
    assert_false(ib_test_exists(out));
    ib_test_strs_free(&before);
    ib_test_strs_free(&after);
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(json_reader_is_strict),
                 cmocka_unit_test(json_is_valid_whatever_the_names),
                 cmocka_unit_test(dry_run_writes_nothing),
             })
