/*
 * Command-line integration tests: imgbatch as scripts and shells call it.
 * Runs the built binary ($IMGBATCH) on small PNGs written here and checks
 * that every usage error exits 2 with one line naming the bad value and
 * writes nothing, that a re-run with an option that changes the output
 * redoes it, that the progress line is drawn on a terminal only, and that
 * --version says what it should. The option lists of --help, the man page
 * and the completion are test_docs.c's; the --json events are
 * test_events.c's.
 *
 * NOTES
 * - Children get this process's environment without the job-array
 *   variables (SLURM_*, JOB_COMPLETION_INDEX), so the suite behaves the
 *   same inside a Slurm job; the usage cases add their own. Each child is
 *   started by ib_test_cli_run() (tests/harness.c) in a process group of
 *   its own, which a timeout kills whole.
 * - The progress check needs script(1) for a terminal and skips loudly
 *   without it.
 * - The progress line is being reworked: only '\r' redraws on a terminal,
 *   and none off it, are asserted.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* ---- usage errors ---- */

typedef struct {
    /* "IN" is replaced by a real input directory; "-o OUT" is added unless
     * the case has a -o of its own. */
    const char *args[6];
    const char *needs[3]; /* what the message must name */
    const char *env[4];
} usage_case_t;

static const usage_case_t usage_cases[] = {
    {{"--no-such-option", "IN"}, {"--no-such-option"}},
    {{"-Z", "IN"}, {"-Z"}},
    {{"-s", "banana", "IN"}, {"banana"}},
    {{"-f", "nosuchop", "IN"}, {"nosuchop"}},
    {{"-f", "blur=banana", "IN"}, {"banana", "blur"}},
    {{"-j", "0", "IN"}, {"-j", "'0'"}},
    {{"IN", "no-such-input.png"}, {"no-such-input.png"}},
    {{"--shard", "0/3", "IN"}, {"0/3"}},
    {{"--shard", "4/3", "IN"}, {"4/3"}},
    {{"--shard", "auto", "IN"}, {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"}},
    {{"--shard", "auto", "IN"}, {"auto/N"}, {"JOB_COMPLETION_INDEX=1"}},
    {{"--shard", "auto/3", "IN"}, {"JOB_COMPLETION_INDEX", "3"}, {"JOB_COMPLETION_INDEX=3"}},
    {{"--shard", "auto", "IN"},
     {"9"},
     {"SLURM_ARRAY_TASK_ID=9", "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=4"}},
    {{"--quality", "0", "IN"}, {"--quality", "'0'"}},
    {{"--if-exists", "nope", "IN"}, {"nope"}},
    {{"-F", "bmp", "IN"}, {"bmp"}},
    {{"--progress", "sometimes", "IN"}, {"sometimes"}},
    {{"--name", "{nope}", "IN"}, {"{nope}"}},
    {{"--variant", "bad", "IN"}, {"bad"}},
    {{"--timeout", "0", "IN"}, {"--timeout"}},
    {{"--files-from", "no-such-list"}, {"no-such-list"}},
    {{"--json=yes", "IN"}, {"--json"}},
    {{"-o", "-", "IN"}, {"-o -", "directory"}},
    {{"-o", "IN", "IN"}, {"--in-place", "--name"}},
    {{"-o", "IN", "-F", "webp", "IN"}, {"--in-place"}},
    {{"--name", "{stem}.jpg", "-F", "png", "IN"}, {"{stem}.jpg", "png"}},
    {{"--name", "{dir}/{stem}.TIF", "-F", "jpeg", "IN"}, {".TIF", "jpeg"}},
    {{NULL}, {"INPUT"}},
};

/* Appends the words to shown, each after a space. */
static void show_words(char *shown, size_t cap, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n && words[i] != NULL; i++) {
        strncat(shown, " ", cap - strlen(shown) - 1);
        strncat(shown, words[i], cap - strlen(shown) - 1);
    }
}

/* The arguments of a usage case into args (12 at most); shown gets the
 * command line as the case gives it. */
static void usage_args(const usage_case_t *u, const char *in, const char *out, const char **args,
                       char *shown, size_t cap)
{
    size_t n = 0;
    int own_output = 0;
    for (size_t i = 0; i < 6 && u->args[i] != NULL; i++) {
        args[n++] = strcmp(u->args[i], "IN") == 0 ? in : u->args[i];
        own_output |= strcmp(u->args[i], "-o") == 0;
    }
    if (!own_output) {
        args[n++] = "-o";
        args[n++] = out;
    }
    args[n] = NULL;
    snprintf(shown, cap, "imgbatch");
    show_words(shown, cap, u->args, 6);
}

/* What is wrong with the run of a usage case, or NULL: it must exit 2
 * with nothing on stdout and one line on stderr naming what it needs. */
static const char *usage_failure(const usage_case_t *u, const ib_test_run_t *r)
{
    const char *nl = strchr(r->err_text, '\n');
    if (r->status != 2)
        return "exit status is not 2";
    if (r->out_len != 0)
        return "something on stdout";
    if (nl == NULL || nl[1] != '\0')
        return "stderr is not exactly one line";
    for (size_t i = 0; i < 3 && u->needs[i] != NULL; i++)
        if (strstr(r->err_text, u->needs[i]) == NULL)
            return "the message does not name the offending value";
    return NULL;
}

static void usage_errors_exit_2_and_write_nothing(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], cwd[PATH_MAX];
    ib_test_cli_in_out(t, "usage", dir, in, out);
    ib_test_path_join(cwd, dir, "cwd");
    static const char *const rels[] = {"a.png", "sub/b.png"};
    ib_test_make_pngs(in, rels, 2);
    ib_test_mkdir(cwd);
    ib_test_strs_t before = {0}, after = {0};
    ib_test_tree_stamps(dir, &before);

    int failures = 0;
    for (size_t c = 0; c < sizeof usage_cases / sizeof usage_cases[0]; c++) {
        const usage_case_t *u = &usage_cases[c];
        const char *args[12];
        char shown[512];
        usage_args(u, in, out, args, shown, sizeof shown);
        ib_test_spawn_t o = {.cwd = cwd, .env_add = u->env};
        ib_test_run_t r;
        ib_test_cli_runv(t, &r, &o, args);
        const char *why = usage_failure(u, &r);
        if (why != NULL) {
            print_error("FAILED: %s (env %s): %s; wanted it to name '%s'\n", shown,
                        u->env[0] ? u->env[0] : "-", why, u->needs[0]);
            ib_test_run_show(&r, "imgbatch");
            failures++;
        }
        ib_test_run_free(&r);
    }
    ib_test_tree_stamps(dir, &after);
    ib_test_expect_same_set(&after, &before, "the disk after usage errors");
    ib_test_strs_free(&before);
    ib_test_strs_free(&after);
    if (failures > 0)
        fail_msg("%d usage error case(s) misbehaved (see above)", failures);
}

/* ---- re-running with other options ---- */

/* Runs imgbatch on in with the extra options (NULL-terminated, at most 4)
 * and returns how many inputs it did and how many it found up to date. */
static ib_test_tally_t rerun(ib_test_cli_t *t, const char *in, const char *out,
                             const char *const *extra)
{
    const char *args[12] = {"--json", "-j", "1", "-o", out};
    size_t n = 5;
    for (size_t i = 0; extra[i] != NULL && i < 4; i++)
        args[n++] = extra[i];
    args[n++] = in;
    args[n] = NULL;
    ib_test_run_t r;
    ib_test_events_t e;
    ib_test_cli_runv(t, &r, NULL, args);
    ib_test_expect_exit(&r, 0, "a re-run");
    ib_test_events_load(&r, &e);
    ib_test_tally_t tally = ib_test_events_tally(&e);
    ib_test_events_free(&e);
    ib_test_run_free(&r);
    return tally;
}

/* Each step differs from the one before it in one option. */
static const char *const recipe_steps[][4] = {
    {NULL},
    {"--interlace", NULL},
    {"--compression", "0", NULL},
    {"--strip", NULL},
    {"--keep-metadata", NULL},
    {"-F", "webp", NULL},
    {"-F", "webp", "--lossless", NULL},
};

/* DESIGN.md: an output is up to date only if it was made with the same
 * recipe, "a fingerprint of everything that shapes the output". */
static void options_that_shape_the_output_redo_it(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    ib_test_cli_in_out(t, "recipe", dir, in, out);
    static const char *const rels[] = {"a.png"};
    ib_test_make_pngs(in, rels, 1);

    int failures = 0;
    char shown[128] = "", before[128] = "";
    for (size_t i = 0; i < sizeof recipe_steps / sizeof recipe_steps[0]; i++) {
        ib_test_tally_t first = rerun(t, in, out, recipe_steps[i]);
        ib_test_tally_t again = rerun(t, in, out, recipe_steps[i]);
        memcpy(before, shown, sizeof before);
        shown[0] = '\0';
        show_words(shown, sizeof shown, recipe_steps[i], 4);
        /* The same command twice: the second finds the work done. */
        if (again.skipped != 1) {
            print_error("FAILED: imgbatch%s run twice: the second run redid the image\n", shown);
            failures++;
        }
        if (i > 0 && first.ok != 1) {
            print_error("FAILED: imgbatch%s after imgbatch%s: the image was skipped as up to "
                        "date\n",
                        shown, before);
            failures++;
        }
    }
    if (failures > 0)
        fail_msg("%d re-run(s) misjudged what is up to date (see above)", failures);
}

/* ---- progress ---- */

/* A carriage return that is not part of a CRLF: a redraw. */
static int has_redraw(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
            return 1;
    return 0;
}

/* Appends s to a shell command line, single-quoted. */
static void sh_quote(char *cmd, size_t cap, const char *s)
{
    size_t n = strlen(cmd);
    if (n + 3 >= cap)
        fail_msg("command too long");
    cmd[n++] = ' ';
    cmd[n++] = '\'';
    for (; *s != '\0'; s++) {
        if (n + 6 >= cap)
            fail_msg("command too long");
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    cmd[n++] = '\'';
    cmd[n] = '\0';
}

/* Fails, showing the run, if whether it redrew is not want. */
static void expect_redraw(const ib_test_run_t *r, int redrew, int want, const char *what)
{
    if (redrew != want) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("%s: %s", what, want ? "no '\\r' redraw" : "a '\\r' redraw");
    }
}

/* `--progress when` under script(1), a terminal: a redraw or none. */
static void progress_on_a_terminal(ib_test_cli_t *t, const char *script, const char *when,
                                   const char *in, const char *out)
{
    char cmd[4 * PATH_MAX] = "exec";
    sh_quote(cmd, sizeof cmd, t->bin);
    const char *args[] = {"--progress",  when,        "-j", "1", "-f", "blur=3",
                          "--if-exists", "overwrite", "-o", out, in,   NULL};
    for (size_t i = 0; args[i] != NULL; i++)
        sh_quote(cmd, sizeof cmd, args[i]);
    strncat(cmd, " >/dev/null", sizeof cmd - strlen(cmd) - 1);
    const char *argv[] = {"script", "-qec", cmd, "/dev/null", NULL};
    ib_test_run_t r;
    ib_test_cli_run_prog(t, &r, NULL, script, argv);
    ib_test_expect_exit(&r, 0, "imgbatch under script(1)");
    int redraws = strcmp(when, "auto") == 0;
    expect_redraw(&r, has_redraw(r.out_text, r.out_len), redraws,
                  redraws ? "--progress auto on a terminal" : "--progress never on a terminal");
    ib_test_run_free(&r);
}

static void progress_redraws_on_a_terminal_only(void **state)
{
    ib_test_cli_t *t = *state;
    char script[PATH_MAX], dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    if (ib_test_find_program("script", script) < 0)
        ib_test_skip_loudly(NULL,
                            "script(1) from util-linux is not installed: no terminal to test the "
                            "progress line on");
    ib_test_cli_in_out(t, "progress", dir, in, out);
    /* About a second of work, so that a progress line that waits a little
     * before it shows itself still gets drawn. */
    for (unsigned i = 0; i < 16; i++) {
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/p%02u.png", in, i);
        ib_test_make_png(path, 600, 600, IB_TEST_FILL_BUSY, i);
    }
    progress_on_a_terminal(t, script, "auto", in, out);
    progress_on_a_terminal(t, script, "never", in, out);

    /* Redirected: auto draws nothing, always draws anyway. */
    for (size_t w = 0; w < 2; w++) {
        ib_test_run_t r;
        ib_test_cli_run(t, &r, NULL, "--progress", w == 0 ? "auto" : "always", "-j", "1", "-f",
                        "blur=3", "--if-exists", "overwrite", "-o", out, in, NULL);
        ib_test_expect_exit(&r, 0, "imgbatch with stderr in a file");
        expect_redraw(&r, memchr(r.err_text, '\r', r.err_len) != NULL, w == 1,
                      w == 0 ? "--progress auto with stderr in a file"
                             : "--progress always with stderr in a file");
        ib_test_run_free(&r);
    }
}

/* ---- --version ---- */

static int is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether text holds word as a whole word followed by " N.N". */
static int word_has_version(const char *text, const char *word)
{
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        const char *v = p + strlen(word);
        if (p != text && p[-1] != ' ' && p[-1] != '\n')
            continue;
        if (*v++ != ' ' || !is_digit_char(*v))
            continue;
        while (is_digit_char(*v))
            v++;
        if (v[0] == '.' && is_digit_char(v[1]))
            return 1;
    }
    return 0;
}

/* "imgbatch X\n" for the project's version in meson.build into want. */
static void project_version(const char *source_root, char *want, size_t cap)
{
    char path[PATH_MAX];
    ib_test_path_join(path, source_root, "meson.build");
    char *build = ib_test_slurp(path, NULL);
    /* project(..., version : 'X', ...), not meson_version. */
    const char *v = build;
    while ((v = strstr(v, "version : '")) != NULL && v > build && v[-1] == '_')
        v++;
    want[0] = '\0';
    if (v != NULL)
        snprintf(want, cap, "imgbatch %.*s\n", (int)strcspn(v + 11, "'"), v + 11);
    test_free(build);
}

static void version_names_the_libraries(void **state)
{
    ib_test_cli_t *t = *state;
    ib_test_run_t r;
    ib_test_cli_run(t, &r, NULL, "--version", NULL);
    ib_test_expect_exit(&r, 0, "--version");
    assert_int_equal(r.err_len, 0);
    static const char *const words[] = {"imgbatch", "libvips", "libjpeg-turbo", "libpng",
                                        "libdeflate"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!word_has_version(r.out_text, words[i])) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--version does not give a version of %s", words[i]);
        }
    /* imgbatch's own is the project's version. */
    if (t->source_root != NULL) {
        char want[64];
        project_version(t->source_root, want, sizeof want);
        if (want[0] == '\0' || strncmp(r.out_text, want, strlen(want)) != 0)
            fail_msg("--version starts \"%.40s\", wanted \"%s\"", r.out_text, want);
    }
    ib_test_run_free(&r);
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(usage_errors_exit_2_and_write_nothing),
                 cmocka_unit_test(options_that_shape_the_output_redo_it),
                 cmocka_unit_test(progress_redraws_on_a_terminal_only),
                 cmocka_unit_test(version_names_the_libraries),
             })
