/*
 * Unit tests for app/argfile.c: @FILE arguments expanded as gcc reads
 * them (whitespace, the shell's quotes, '#' comments, nesting, anywhere on
 * the command line), and refused with the file named when it is missing,
 * badly quoted or names itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "argfile.h"
#include "harness.h"

static char root[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    return ib_test_make_root("argfile", "ib-argfile", root);
}

static int teardown(void **state)
{
    (void)state;
    return root[0] != '\0' ? ib_test_rm_tree(root) : 0;
}

/* Writes text to root/name; its path into path. */
static void put(const char *name, const char *text, char *path)
{
    ib_test_path_fmt(path, "%s/%s", root, name);
    ib_test_write_file(path, text, strlen(text));
}

/* Expands the words (argv[0] first) and checks the result is want,
 * NULL-terminated. */
static void expect_expansion(char **words, int n, const char *const *want)
{
    char err[512] = "", **out = NULL;
    int argc = -1;
    if (ib_argfile_expand(n, words, &argc, &out, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    int k = 0;
    for (; want[k] != NULL; k++)
        if (k >= argc || strcmp(out[k], want[k]) != 0)
            fail_msg("word %d is '%s', expected '%s'", k, k < argc ? out[k] : "(none)", want[k]);
    if (argc != k || out[argc] != NULL)
        fail_msg("%d words, expected %d", argc, k);
    ib_argfile_free(out);
}

static void quotes_and_comments(void **state)
{
    (void)state;
    char path[PATH_MAX], at[PATH_MAX + 1];
    put("web.args",
        "# a web copy\n"
        "-s '1600x1600>'\t-F webp   # after the words\n"
        "\t# a comment after a tab\n"
        "-f \"text=Shot by A. N. Other:south\"\n"
        "--name '{date:%Y/%m}/{stem}.{ext}' a\\ b.jpg 'it''s' \"x#y\" z#w '#not'\n",
        path);
    snprintf(at, sizeof at, "@%s", path);
    char *words[] = {"imgbatch", "-q", at, "-o", "out"};
    const char *want[] = {"imgbatch", "-q",
                          "-s",       "1600x1600>",
                          "-F",       "webp",
                          "-f",       "text=Shot by A. N. Other:south",
                          "--name",   "{date:%Y/%m}/{stem}.{ext}",
                          "a b.jpg",  "its",
                          "x#y",      "z#w",
                          "#not",     "-o",
                          "out",      NULL};
    expect_expansion(words, 5, want);
}

static void nested_and_empty(void **state)
{
    (void)state;
    char inner[PATH_MAX], outer[PATH_MAX], empty[PATH_MAX], text[PATH_MAX + 64], at[PATH_MAX + 1],
        at_empty[PATH_MAX + 1];
    put("inner.args", "-j 1\n", inner);
    snprintf(text, sizeof text, "--json @%s -q\n", inner);
    put("outer.args", text, outer);
    put("empty.args", "  # nothing but a comment\n\n", empty);
    snprintf(at, sizeof at, "@%s", outer);
    snprintf(at_empty, sizeof at_empty, "@%s", empty);
    /* "@" alone is not a file. */
    char *words[] = {"imgbatch", at_empty, at, "in", "@"};
    const char *want[] = {"imgbatch", "--json", "-j", "1", "-q", "in", "@", NULL};
    expect_expansion(words, 5, want);
}

/* One-line reasons that name the file. */
static void refusals_name_the_file(void **state)
{
    (void)state;
    char path[PATH_MAX], at[PATH_MAX + 1], text[PATH_MAX + 8], err[512], **out = NULL;
    int argc;
    static const char *const cases[][2] = {
        {"absent.args", NULL},
        {"quote.args", "-f 'unterminated\n"},
        {"loop.args", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ib_test_path_fmt(path, "%s/%s", root, cases[i][0]);
        if (cases[i][1] != NULL)
            put(cases[i][0], cases[i][1], path);
        if (strcmp(cases[i][0], "loop.args") == 0) {
            snprintf(text, sizeof text, "@%s\n", path);
            put(cases[i][0], text, path);
        }
        snprintf(at, sizeof at, "@%s", path);
        char *words[] = {"imgbatch", at};
        err[0] = '\0';
        if (ib_argfile_expand(2, words, &argc, &out, err, sizeof err) != -1)
            fail_msg("%s accepted", cases[i][0]);
        if (strstr(err, cases[i][0]) == NULL || strchr(err, '\n') != NULL)
            fail_msg("%s: the reason does not name it on one line: %s", cases[i][0], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quotes_and_comments),
        cmocka_unit_test(nested_and_empty),
        cmocka_unit_test(refusals_name_the_file),
    };
    return ib_test_run_suite(tests, setup, teardown);
}
