/*
 * The option table (app/options.c) and what is made from it or written
 * beside it agree: --help lists every option, the man page's OPTIONS
 * section (app/imgbatch.1) has the same options, short names, values and
 * groups and renders without a warning. (The completion scripts made from
 * the table are tried in tests/test_completion.c.) The man page is read
 * under IB_SOURCE_ROOT; without it, or without groff, a test skips
 * loudly.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include "options.h"

typedef ib_test_run_t run_t;
typedef ib_test_cli_t cli_t;

#define run_ib ib_test_cli_run
#define run_free ib_test_run_free

static void need_source_root(const cli_t *t)
{
    if (t->source_root == NULL)
        ib_test_skip_loudly(NULL, "IB_SOURCE_ROOT is not set: cannot read app/imgbatch.1");
}

/* What --help prints, made from the table in this process, into the
 * caller's *text (free() it). */
static void help_text(char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    assert_non_null(f);
    ib_options_help(f);
    assert_int_equal(fclose(f), 0);
}

/* Whether --help's option list (the lines before "Examples:") has a line
 * for option o: "  -x, --name VALUE ..." or "      --name VALUE ...". An
 * example that merely uses the option does not count. */
static int help_lists_option(const char *help, const ib_option_t *o)
{
    char want[96];
    snprintf(want, sizeof want, "\n  %c%c%s--%s%s%s ", o->letter ? '-' : ' ',
             o->letter ? o->letter : ' ', o->letter ? ", " : "  ", o->name,
             o->value != NULL ? " " : "", o->value != NULL ? o->value : "");
    const char *end = strstr(help, "\nExamples:");
    size_t len = end != NULL ? (size_t)(end - help) : strlen(help);
    return memmem(help, len, want, strlen(want)) != NULL;
}

static void help_lists_every_option(void **state)
{
    cli_t *t = *state;
    char *help = NULL;
    size_t help_len = 0;
    help_text(&help, &help_len);
    for (size_t i = 0; i < ib_n_options; i++)
        if (!help_lists_option(help, &ib_options[i]))
            fail_msg("--help does not list --%s with its value", ib_options[i].name);
    /* Every line fits a terminal of 80 columns. */
    for (const char *line = help, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
        if (nl - line > 80)
            fail_msg("--help line over 80 columns: %.*s", (int)(nl - line), line);
    /* The binary prints the table's text. */
    run_t r;
    run_ib(t, &r, NULL, "--help", NULL);
    ib_test_expect_exit(&r, 0, "--help");
    assert_int_equal(r.err_len, 0);
    assert_string_equal(r.out_text, help);
    run_free(&r);
    free(help);
}

/* The table has one entry per name, and each group in one run. */
static void option_table_is_consistent(void **state)
{
    (void)state;
    for (size_t i = 0; i < ib_n_options; i++) {
        const ib_option_t *o = &ib_options[i];
        if (o->set == NULL && (o->value == NULL) != (o->field.kind == IB_FIELD_SWITCH))
            fail_msg("--%s: a switch must take no value, a number one", o->name);
        if (o->offers != NULL && o->value == NULL)
            fail_msg("--%s takes no value but completion offers some", o->name);
        int new_group = i > 0 && strcmp(ib_options[i - 1].group, o->group) != 0;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(o->name, ib_options[k].name) == 0 ||
                (o->letter != 0 && o->letter == ib_options[k].letter))
                fail_msg("--%s and --%s share a name", o->name, ib_options[k].name);
            if (new_group && strcmp(o->group, ib_options[k].group) == 0)
                fail_msg("--%s: group %s is split in two", o->name, o->group);
        }
    }
}

/* One option entry of the man page: the line after a .TP in OPTIONS. */
typedef struct {
    char group[32];
    char name[64];
    char letter;
    const char *header; /* the line, in the page's text */
} man_entry_t;

/* Reads "\-\-long\-name" at p into name; returns the characters read. */
static size_t roff_long_name(const char *p, char *name, size_t cap)
{
    size_t n = 0, i = 4; /* past "\-\-" */
    for (;;) {
        if ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9'))
            name[n < cap - 1 ? n++ : n] = p[i++];
        else if (p[i] == '\\' && p[i + 1] == '-')
            name[n < cap - 1 ? n++ : n] = '-', i += 2;
        else
            break;
    }
    name[n] = '\0';
    return i;
}

/* The names in an entry's header line. */
static void man_names(man_entry_t *e, const char *line, const char *eol)
{
    for (const char *p = line; p < eol; p++) {
        if (strncmp(p, "\\-\\-", 4) == 0) {
            p += roff_long_name(p, e->name, sizeof e->name) - 1;
        } else if (strncmp(p, "\\-", 2) == 0 && p[2] != '\\' && p[2] != '\0' &&
                   strchr(" \"", p[3]) != NULL) {
            e->letter = p[2];
            p += 2;
        }
    }
}

/* The entries of the page's OPTIONS section, in order. */
static size_t man_entries(const char *man, man_entry_t *out, size_t cap)
{
    const char *p = strstr(man, "\n.SH OPTIONS\n");
    const char *end = p != NULL ? strstr(p + 1, "\n.SH ") : NULL;
    if (end == NULL)
        fail_msg("app/imgbatch.1 has no OPTIONS section");
    char group[32] = "";
    size_t n = 0;
    for (p = strchr(p + 1, '\n'); p != NULL && p < end; p = strchr(p + 1, '\n')) {
        if (strncmp(p, "\n.SS ", 5) == 0)
            snprintf(group, sizeof group, "%.*s", (int)strcspn(p + 5, "\n"), p + 5);
        if (strncmp(p, "\n.TP", 4) != 0 || n == cap)
            continue;
        const char *line = strchr(p + 1, '\n') + 1;
        man_entry_t *e = &out[n++];
        memset(e, 0, sizeof *e);
        snprintf(e->group, sizeof e->group, "%s", group);
        e->header = line;
        man_names(e, line, strchr(line, '\n'));
    }
    return n;
}

/* Each word of a value ("NAME:GEOM": NAME and GEOM) is in the header. */
static int header_has_value(const man_entry_t *e, const char *value)
{
    size_t hl = strcspn(e->header, "\n");
    for (const char *w = value; *w != '\0';) {
        size_t n = strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if (n > 0 && memmem(e->header, hl, w, n) == NULL)
            return 0;
        w += n > 0 ? n : 1;
    }
    return 1;
}

static const man_entry_t *man_entry_for(const man_entry_t *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0)
            return &e[i];
    return NULL;
}

/* The man page's OPTIONS list and the table agree both ways: names,
 * short names, values and groups. */
static void man_page_lists_the_table(void **state)
{
    cli_t *t = *state;
    need_source_root(t);
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/app/imgbatch.1", t->source_root);
    char *man = ib_test_slurp(path, NULL);
    man_entry_t entries[128];
    size_t n = man_entries(man, entries, 128);
    int wrong = 0;
    for (size_t i = 0; i < ib_n_options; i++) {
        const ib_option_t *o = &ib_options[i];
        const man_entry_t *e = man_entry_for(entries, n, o->name);
        if (e == NULL || e->letter != o->letter || strcmp(e->group, o->group) != 0 ||
            (o->value != NULL && !header_has_value(e, o->value))) {
            print_error("app/imgbatch.1 has no entry for %s%c --%s %s under .SS %s\n",
                        o->letter ? "-" : "", o->letter ? o->letter : ' ', o->name,
                        o->value != NULL ? o->value : "", o->group);
            wrong++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < ib_n_options && strcmp(ib_options[k].name, entries[i].name) != 0)
            k++;
        if (k == ib_n_options) {
            print_error("app/imgbatch.1 documents --%s, which imgbatch does not take\n",
                        entries[i].name);
            wrong++;
        }
    }
    test_free(man);
    if (wrong > 0)
        fail_msg("%d option(s) differ between app/options.c and app/imgbatch.1", wrong);
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

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(option_table_is_consistent),
                 cmocka_unit_test(help_lists_every_option),
                 cmocka_unit_test(man_page_lists_the_table),
                 cmocka_unit_test(man_page_renders_cleanly),
             })
