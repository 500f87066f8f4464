/*
 * Which files a run takes, and when: the built imgbatch ($IMGBATCH) reads
 * NUL-separated lists on stdin as find -print0 writes them, picks files by
 * --include and --exclude globs, and, reading paths from a pipe that stays
 * open, reports each result while the pipe is idle. The inputs a run took
 * are read back from its --json events.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* ---- lists on stdin ---- */

static const char *const list_rels[] = {"new\nline.png", "with space.png", "sub/deep.png",
                                        "sub/second\nline\n.png", "not listed.png"};

/* The first four inputs, NUL-terminated as find -print0 writes them, but
 * the last one without its NUL; the length of the list. */
static size_t nul_list(const char *in, char *list, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < 4; i++) {
        char p[PATH_MAX];
        ib_test_path_join(p, in, list_rels[i]);
        size_t n = strlen(p) + 1;
        assert_true(len + n <= cap);
        memcpy(list + len, p, n);
        len += n;
    }
    return len - 1;
}

static void nul_separated_stdin_list(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    ib_test_cli_in_out(t, "list", dir, in, out);
    ib_test_make_pngs(in, list_rels, 5);
    char list[4 * PATH_MAX];
    size_t len = nul_list(in, list, sizeof list);

    static const char *const how[][3] = {{"--files-from", "-", "-0"}, {"-0", "-", NULL}};
    for (size_t k = 0; k < 2; k++) {
        ib_test_path_fmt(out, "%s/out%zu", dir, k);
        ib_test_spawn_t o = {.in_data = list, .in_len = len};
        const char *args[] = {"--json",  "--base",  in,        "-o", out,
                              how[k][0], how[k][1], how[k][2], NULL};
        ib_test_run_t r;
        ib_test_cli_runv(t, &r, &o, args);
        ib_test_expect_exit(&r, 0, "a NUL-separated list on stdin");
        ib_test_strs_t got = {0}, want = {0}, files = {0};
        assert_int_equal(ib_test_run_inputs(&r, in, &got).ok, 4);
        for (size_t i = 0; i < 4; i++)
            ib_test_strs_add(&want, list_rels[i]);
        ib_test_expect_same_set(&got, &want, "inputs read from a NUL-separated list");
        ib_test_tree_files(out, &files);
        ib_test_expect_same_set(&files, &want, "outputs of a NUL-separated list (--base)");
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
        ib_test_strs_free(&files);
        ib_test_run_free(&r);
    }
}

/* ---- --include / --exclude ---- */

static const char *const glob_tree[] = {
    "a1.png",           "a2.png",     "a10.png",           "b1.png",
    "c1.png",           "sub/a3.png", "sub/deep/b2.png",   "skip/y.png",
    "skip/inner/z.png", "deep/w.png", "deep/er/est/v.png",
};
#define N_GLOB (sizeof glob_tree / sizeof glob_tree[0])

typedef struct {
    const char *args[5];
    const char *want; /* space-separated; "*" for the whole tree */
} glob_case_t;

static const glob_case_t glob_cases[] = {
    {{NULL}, "*"},
    {{"--include", "*.png"}, "*"},
    {{"--include", "a?.png"}, "a1.png a2.png sub/a3.png"},
    {{"--include", "[ab]1.png"}, "a1.png b1.png"},
    {{"--include", "[!a]1.png"}, "b1.png c1.png"},
    {{"--include", "[a-b]?.png"}, "a1.png a2.png b1.png sub/a3.png sub/deep/b2.png"},
    {{"--include", "a[0-9][0-9].png"}, "a10.png"},
    {{"--include", "sub/*"}, "sub/a3.png"},
    {{"--include", "deep/**/*.png"}, "deep/w.png deep/er/est/v.png"},
    {{"--include", "**/deep/*.png"}, "deep/w.png sub/deep/b2.png"},
    {{"--include", "**/*.png"}, "*"},
    {{"--include", "a*", "--include", "b*"},
     "a1.png a2.png a10.png b1.png sub/a3.png sub/deep/b2.png"},
    /* A directory that matches is pruned: y.png itself does not match. */
    {{"--exclude", "skip"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "skip/inner"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png skip/y.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "**/inner"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png skip/y.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "deep"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png skip/y.png skip/inner/z.png"},
    /* --exclude wins over --include. */
    {{"--include", "*.png", "--exclude", "skip"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--include", "*1.png", "--exclude", "a*"}, "b1.png c1.png"},
};

/* The inputs a dry run with the globs of g takes from in, into got. */
static void glob_inputs(ib_test_cli_t *t, const glob_case_t *g, const char *in, ib_test_strs_t *got)
{
    const char *args[12] = {"--dry-run", "--json", "-j", "1"};
    size_t n = 4;
    for (size_t i = 0; i < 5 && g->args[i] != NULL; i++)
        args[n++] = g->args[i];
    args[n++] = in;
    args[n] = NULL;
    ib_test_run_t r;
    ib_test_cli_runv(t, &r, NULL, args);
    ib_test_expect_exit(&r, 0, "a glob run");
    ib_test_run_inputs(&r, in, got);
    ib_test_run_free(&r);
}

static void include_exclude_globs(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], notes[PATH_MAX];
    ib_test_cli_in_out(t, "globs", dir, in, out);
    ib_test_make_pngs(in, glob_tree, N_GLOB);
    ib_test_path_join(notes, in, "notes.txt");
    ib_test_write_file(notes, "not an image\n", 13);

    for (size_t c = 0; c < sizeof glob_cases / sizeof glob_cases[0]; c++) {
        const glob_case_t *g = &glob_cases[c];
        ib_test_strs_t got = {0}, want = {0};
        glob_inputs(t, g, in, &got);
        if (strcmp(g->want, "*") == 0)
            for (size_t i = 0; i < N_GLOB; i++)
                ib_test_strs_add(&want, glob_tree[i]);
        else
            ib_test_strs_split(g->want, &want);
        char what[256];
        snprintf(what, sizeof what, "%s %s %s %s", g->args[0] ? g->args[0] : "(no globs)",
                 g->args[1] ? g->args[1] : "", g->args[2] ? g->args[2] : "",
                 g->args[3] ? g->args[3] : "");
        ib_test_expect_same_set(&got, &want, what);
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
    }
}

/* ---- paths on a pipe ---- */

static void write_line(int fd, const char *path)
{
    char line[PATH_MAX + 1];
    int n = snprintf(line, sizeof line, "%s\n", path);
    if (write(fd, line, (size_t)n) != n)
        fail_msg("write() to the pipe failed: %s", strerror(errno));
}

/* A FIFO at path, open for writing without waiting for a reader (read
 * and write). */
static int open_fifo(const char *path)
{
    if (mkfifo(path, 0600) < 0)
        fail_msg("mkfifo(\"%s\") failed: %s", path, strerror(errno));
    int w = open(path, O_RDWR | O_CLOEXEC);
    if (w < 0)
        fail_msg("open(\"%s\") failed: %s", path, strerror(errno));
    return w;
}

/* Paths on a pipe that stays open (inotifywait -m | imgbatch -): each
 * result comes while stdin is idle, not when the next path arrives. */
static void stdin_results_flow_while_it_is_idle(void **state)
{
    ib_test_cli_t *t = *state;
    static const char *const rels[] = {"a.png", "b.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], fifo[PATH_MAX], path[PATH_MAX];
    char outlog[PATH_MAX], errlog[PATH_MAX], err[PATH_MAX + 64];
    ib_test_cli_in_out(t, "stdin-idle", dir, in, out);
    ib_test_path_join(fifo, dir, "paths");
    ib_test_path_join(outlog, dir, "stdout");
    ib_test_path_join(errlog, dir, "stderr");
    ib_test_make_pngs(in, rels, 2);
    int w = open_fifo(fifo);
    const char *argv[] = {t->bin, "-", "--json", "-j", "1", "-o", out, NULL};
    ib_test_spawn_t how = {.in = fifo,
                           .out = outlog,
                           .err = errlog,
                           .env_unset = ib_test_job_variables,
                           .own_group = 1};
    pid_t pid = ib_test_spawn(t->bin, (char *const *)argv, &how, err, sizeof err);
    if (pid < 0)
        fail_msg("%s", err);
    ib_test_path_join(path, in, "a.png");
    write_line(w, path);
    int flowed = ib_test_wait_for_text(outlog, "a.png\",\"status\":\"ok\"", 20);
    ib_test_path_join(path, in, "b.png");
    write_line(w, path);
    close(w);
    int status = ib_test_wait(pid, 60, "imgbatch");
    if (!flowed)
        fail_msg("a.png's result did not come while stdin was idle (20 s)");
    assert_int_equal(status, 0);
    assert_true(ib_test_file_has(outlog, "b.png\",\"status\":\"ok\""));
    assert_true(ib_test_file_has(outlog, "\"event\":\"summary\",\"ok\":2,"));
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(nul_separated_stdin_list),
                 cmocka_unit_test(include_exclude_globs),
                 cmocka_unit_test(stdin_results_flow_while_it_is_idle),
             })
