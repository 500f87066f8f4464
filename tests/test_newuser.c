/*
 * What a new user meets first: the built imgbatch ($IMGBATCH) run on a
 * text file, on an empty folder, on a folder with a few non-images in it,
 * and with its outputs put beside its inputs. Each must say plainly what
 * happened: the right kind of failure, no rate for nothing, the ignored
 * files counted (and named with -v), and no output taken for an input by
 * a later run.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* Fails, showing the run, unless it is true. */
static void expect_run(const ib_test_run_t *r, int ok, const char *what)
{
    if (!ok) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("%s", what);
    }
}

/* The error kind of a run's one file event, or NULL. */
static const char *only_error_kind(const ib_test_events_t *e)
{
    return e->n == 1 ? e->files[0].error_kind : NULL;
}

/* A text file named on the command line is not a damaged image: no decoder
 * could read it, so it is "unsupported", not "decode". A .png of garbage
 * is still "decode". */
static void non_image_named_is_unsupported(void **state)
{
    ib_test_cli_t *t = *state;
    static const struct {
        const char *name, *kind;
    } cases[] = {{"notes.txt", "unsupported"}, {"broken.png", "decode"}};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], file[PATH_MAX], what[PATH_MAX + 64];
    ib_test_cli_in_out(t, "named-non-image", dir, in, out);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ib_test_path_join(file, dir, cases[i].name);
        ib_test_write_file(file, "not an image at all\n", 20);
        ib_test_run_t r;
        ib_test_events_t e;
        ib_test_cli_run(t, &r, NULL, "--json", "-o", out, file, NULL);
        ib_test_expect_exit(&r, 1, cases[i].name);
        ib_test_events_load(&r, &e);
        const char *kind = only_error_kind(&e);
        snprintf(what, sizeof what, "%s failed as %s, wanted %s", cases[i].name,
                 kind ? kind : "(nothing)", cases[i].kind);
        expect_run(&r, kind != NULL && strcmp(kind, cases[i].kind) == 0, what);
        if (strstr(r.err_text, cases[i].name) == NULL)
            fail_msg("the message does not name %s", cases[i].name);
        ib_test_events_free(&e);
        ib_test_run_free(&r);
    }
}

/* With nothing processed, the summary line has no images/s rate: a rate
 * of nothing means nothing. */
static void no_rate_without_images(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    ib_test_cli_in_out(t, "no-rate", dir, in, out);
    ib_test_mkdir(in);
    ib_test_run_t r;
    ib_test_cli_run(t, &r, NULL, "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a folder with no images");
    expect_run(&r, strstr(r.err_text, "0 done") != NULL && strstr(r.err_text, "images/s") == NULL,
               "the summary of no images should say 0 done and give no rate");
    ib_test_run_free(&r);
}

static const char *const ignored_others[] = {"notes.txt", "sub/data.bin", ".hidden.txt"};

/* The run with -v: 2 done and 2 ignored in the JSON summary and the
 * summary line, each ignored file named, the hidden one not. */
static void expect_ignored_named(const ib_test_run_t *r, const char *in)
{
    ib_test_events_t e;
    ib_test_events_load(r, &e);
    ib_test_tally_t n = ib_test_events_tally(&e);
    expect_run(r, n.ok == 2 && e.summary.ignored == 2 && strstr(r->err_text, ", 2 ignored") != NULL,
               "wanted 2 done and 2 ignored in the JSON summary and the summary line");
    ib_test_events_free(&e);
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX], what[PATH_MAX + 64];
        ib_test_path_join(path, in, ignored_others[i]);
        snprintf(what, sizeof what, "-v should name each ignored file, and no hidden one: %s",
                 path);
        expect_run(r, (strstr(r->err_text, path) != NULL) == (i < 2), what);
    }
}

/* A non-image inside a folder is counted as ignored (summary line and
 * JSON summary), and -v names it; a hidden one is not looked at. */
static void non_images_in_folders_are_counted(void **state)
{
    ib_test_cli_t *t = *state;
    static const char *const rels[] = {"a.png", "sub/b.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    ib_test_cli_in_out(t, "ignored", dir, in, out);
    ib_test_make_pngs(in, rels, 2);
    for (size_t i = 0; i < 3; i++) {
        ib_test_path_join(path, in, ignored_others[i]);
        ib_test_write_file(path, "plain text\n", 11);
    }
    ib_test_run_t r;
    ib_test_cli_run(t, &r, NULL, "-v", "--json", "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a folder with non-images");
    expect_ignored_named(&r, in);
    ib_test_run_free(&r);
    /* Without -v the count alone. */
    ib_test_cli_run(t, &r, NULL, "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a re-run");
    ib_test_path_join(path, in, "notes.txt");
    expect_run(&r, strstr(r.err_text, path) == NULL && strstr(r.err_text, ", 2 ignored") != NULL,
               "without -v, only the count of ignored files");
    ib_test_run_free(&r);
}

/* Fails unless the files under root are the n rels. */
static void expect_files(const char *root, const char *const *rels, size_t n, const char *what)
{
    ib_test_strs_t files = {0}, want = {0};
    ib_test_tree_files(root, &files);
    for (size_t i = 0; i < n; i++)
        ib_test_strs_add(&want, rels[i]);
    ib_test_expect_same_set(&files, &want, what);
    ib_test_strs_free(&files);
    ib_test_strs_free(&want);
}

/* -o the input folder with a --name that makes new names: the thumbnails
 * go beside their originals, and later runs never take them for inputs
 * (nor count them as ignored), whether up to date or redone. */
static void outputs_beside_their_originals(void **state)
{
    ib_test_cli_t *t = *state;
    static const char *const rels[] = {"a.png", "sub/b.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], notes[PATH_MAX], what[64];
    ib_test_cli_in_out(t, "beside", dir, in, out);
    ib_test_make_pngs(in, rels, 2);
    ib_test_path_join(notes, in, "notes.txt");
    ib_test_write_file(notes, "plain text\n", 11);
    static const char *const modes[] = {"update", "update", "overwrite"};
    for (size_t pass = 0; pass < 3; pass++) {
        ib_test_run_t r;
        ib_test_cli_run(t, &r, NULL, "--json", "-s", "4x", "--name", "{dir}/{stem}-small.{ext}",
                        "--if-exists", modes[pass], "-o", in, in, NULL);
        ib_test_expect_exit(&r, 0, "outputs beside the inputs");
        ib_test_strs_t got = {0}, want = {0};
        ib_test_run_inputs(&r, in, &got);
        ib_test_strs_add(&want, "a.png");
        ib_test_strs_add(&want, "sub/b.png");
        ib_test_expect_same_set(&got, &want, "the inputs of a run beside its outputs");
        snprintf(what, sizeof what, "pass %zu: only notes.txt is ignored, not the outputs",
                 pass + 1);
        expect_run(&r, strstr(r.out_text, "\"ignored\":1,") != NULL, what);
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
        ib_test_run_free(&r);
    }
    static const char *const all[] = {"a.png", "a-small.png", "sub/b.png", "sub/b-small.png",
                                      "notes.txt"};
    expect_files(in, all, sizeof all / sizeof all[0], "the input folder after three runs");
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(non_image_named_is_unsupported),
                 cmocka_unit_test(no_rate_without_images),
                 cmocka_unit_test(non_images_in_folders_are_counted),
                 cmocka_unit_test(outputs_beside_their_originals),
             })
