/*
 * The option lists agree: --help names every long option of app/cli.c, the
 * man page (app/imgbatch.1) renders without a warning, and the bash
 * completion (app/imgbatch.bash) offers the values each option takes.
 * These read the sources under IB_SOURCE_ROOT and skip loudly without it,
 * or without groff or bash.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define MAX_ARGS 64

typedef ib_test_spawn_t run_opts_t;
typedef ib_test_run_t run_t;
typedef ib_test_cli_t cli_t;
typedef ib_test_strs_t strs_t;

#define run_ib ib_test_cli_run
#define run_free ib_test_run_free

#define work_dir ib_test_cli_dir

/* The long options of app/cli.c, read from its long_opts table. */
static void long_options(const cli_t *t, strs_t *out)
{
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/app/cli.c", t->source_root);
    char *src = ib_test_slurp(path, NULL);
    const char *p = strstr(src, "long_opts[] = {");
    const char *end = p != NULL ? strstr(p, "};") : NULL;
    if (end == NULL)
        fail_msg("no long_opts table in %s", path);
    while ((p = strstr(p, "{\"")) != NULL && p < end) {
        p += 2;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(p, "\""), p);
        ib_test_strs_add(out, name);
    }
    test_free(src);
    if (out->n < 10)
        fail_msg("only %zu long options found in %s", out->n, path);
}

/* Whether text holds dashes + name as a whole option word. */
static int has_option(const char *text, const char *dashes, const char *name)
{
    size_t dn = strlen(dashes), nn = strlen(name);
    for (const char *p = text; (p = strstr(p, dashes)) != NULL; p++) {
        if (strncmp(p + dn, name, nn) != 0)
            continue;
        const char *after = p + dn + nn;
        /* A longer option ("--dry" in "--dry-run", or "\-\-dry\-run" in roff)
         * does not count. */
        if ((*after >= 'a' && *after <= 'z') || (*after >= '0' && *after <= '9') || *after == '-' ||
            (after[0] == '\\' && after[1] == '-'))
            continue;
        return 1;
    }
    return 0;
}

static void need_source_root(const cli_t *t)
{
    if (t->source_root == NULL)
        ib_test_skip_loudly(NULL, "IB_SOURCE_ROOT is not set: cannot read app/cli.c");
}

/* Whether --help's option list (the lines before "Examples:") has a line
 * for --name: "  -x, --name ..." or "      --name ...". An example that
 * merely uses the option does not count. */
static int help_lists_option(const char *help, const char *name)
{
    const char *end = strstr(help, "\nExamples:");
    size_t nn = strlen(name);
    for (const char *line = help; line != NULL && (end == NULL || line < end);) {
        const char *p = line + strspn(line, " ");
        if (p > line && p[0] == '-' && p[1] != '-' && p[2] == ',' && p[3] == ' ')
            p += 4;
        if (p > line && strncmp(p, "--", 2) == 0 && strncmp(p + 2, name, nn) == 0 &&
            strchr(" =\n", p[2 + nn]) != NULL)
            return 1;
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return 0;
}

static void help_names_every_long_option(void **state)
{
    cli_t *t = *state;
    need_source_root(t);
    strs_t opts = {0};
    long_options(t, &opts);
    run_t r;
    run_ib(t, &r, NULL, "--help", NULL);
    ib_test_expect_exit(&r, 0, "--help");
    assert_int_equal(r.err_len, 0);
    int missing = 0;
    for (size_t i = 0; i < opts.n; i++)
        if (!help_lists_option(r.out_text, opts.v[i])) {
            print_error("--help does not list --%s among its options\n", opts.v[i]);
            missing++;
        }
    run_free(&r);
    /* The man page, in roff: \-\-name with \- for each '-'. */
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/app/imgbatch.1", t->source_root);
    char *man = ib_test_slurp(path, NULL);
    for (size_t i = 0; i < opts.n; i++) {
        char roff[128] = "";
        for (const char *c = opts.v[i]; *c != '\0'; c++)
            strncat(roff, *c == '-' ? "\\-" : (char[]){*c, '\0'}, sizeof roff - strlen(roff) - 1);
        if (!has_option(man, "\\-\\-", roff)) {
            print_error("app/imgbatch.1 does not document --%s\n", opts.v[i]);
            missing++;
        }
    }
    test_free(man);
    ib_test_strs_free(&opts);
    if (missing > 0)
        fail_msg("%d long option(s) undocumented (see above)", missing);
}

static void man_page_renders_cleanly(void **state)
{
    cli_t *t = *state;
    char groff[PATH_MAX], page[PATH_MAX];
    need_source_root(t);
    if (ib_test_find_program("groff", groff) < 0)
        ib_test_skip_loudly(
            NULL, "groff is not installed (apt-get install groff-base): man page not rendered");
    ib_test_path_fmt(page, "%s/app/imgbatch.1", t->source_root);
    const char *argv[] = {"groff", "-man", "-Tutf8", "-ww", "-z", page, NULL};
    run_t r;
    ib_test_cli_run_prog(t, &r, NULL, groff, argv);
    ib_test_expect_exit(&r, 0, "groff");
    if (r.err_len != 0) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("groff warns about app/imgbatch.1");
    }
    run_free(&r);
}

/* What the completion offers for words (the last one being completed). */
static void complete_words(cli_t *t, const char *cwd, const char *const *words, strs_t *out)
{
    char bash[PATH_MAX], file[PATH_MAX];
    if (ib_test_find_program("bash", bash) < 0)
        ib_test_skip_loudly(NULL, "bash is not installed: completion not tried");
    ib_test_path_fmt(file, "%s/app/imgbatch.bash", t->source_root);
    const char *argv[MAX_ARGS] = {
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        "source \"$1\" && shift && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) && "
        "_imgbatch && for w in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$w\"; done",
        "bash",
        file};
    size_t n = 7;
    for (size_t i = 0; words[i] != NULL && n + 1 < MAX_ARGS; i++)
        argv[n++] = words[i];
    argv[n] = NULL;
    run_opts_t o = {.cwd = cwd};
    run_t r;
    ib_test_cli_run_prog(t, &r, &o, bash, argv);
    ib_test_expect_exit(&r, 0, "the completion function");
    if (r.err_len != 0) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("the completion function wrote to stderr");
    }
    for (char *line = r.out_text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        ib_test_strs_add(out, line);
    }
    run_free(&r);
}

static void expect_completion(cli_t *t, const char *cwd, const char *const *words, const char *want)
{
    strs_t got = {0}, w = {0};
    complete_words(t, cwd, words, &got);
    ib_test_strs_split(want, &w);
    char what[256] = "completing";
    for (size_t i = 0; words[i] != NULL; i++) {
        strncat(what, " [", sizeof what - strlen(what) - 1);
        strncat(what, words[i], sizeof what - strlen(what) - 1);
        strncat(what, "]", sizeof what - strlen(what) - 1);
    }
    ib_test_expect_same_set(&got, &w, what);
    ib_test_strs_free(&got);
    ib_test_strs_free(&w);
}

static void bash_completion_offers_values(void **state)
{
    cli_t *t = *state;
    need_source_root(t);
    char dir[PATH_MAX], sub[PATH_MAX], file[PATH_MAX];
    work_dir(t, "completion", dir);
    ib_test_path_fmt(sub, "%s/adir", dir);
    ib_test_path_fmt(file, "%s/afile.png", dir);
    if (mkdir(sub, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed", sub);
    ib_test_write_file(file, "x", 1);

    expect_completion(t, dir, (const char *const[]){"imgbatch", "--if-exists", "", NULL},
                      "update overwrite skip fail");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "--progress", "", NULL},
                      "auto always never");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "-F", "", NULL},
                      "same jpg jpeg png webp tif tiff gif avif heic heif jxl jp2");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "--format", "=", "w", NULL},
                      "webp");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "--dry", NULL}, "--dry-run");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "-o", "", NULL}, "adir");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "-s", "", NULL}, "");
    expect_completion(t, dir, (const char *const[]){"imgbatch", "-q", "", NULL}, "adir afile.png");

    /* Every long option of app/cli.c is offered. */
    strs_t opts = {0}, got = {0};
    long_options(t, &opts);
    complete_words(t, dir, (const char *const[]){"imgbatch", "--", NULL}, &got);
    for (size_t i = 0; i < opts.n; i++) {
        char want[80];
        snprintf(want, sizeof want, "--%s", opts.v[i]);
        if (ib_test_strs_count(&got, want) != 1)
            fail_msg("completing '--' does not offer %s", want);
    }
    ib_test_strs_free(&opts);
    ib_test_strs_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_names_every_long_option),
        cmocka_unit_test(man_page_renders_cleanly),
        cmocka_unit_test(bash_completion_offers_values),
    };
    return ib_test_run_suite(tests, ib_test_cli_group_setup, ib_test_cli_group_teardown);
}
