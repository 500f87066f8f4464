/*
 * Shell completion: the bash, zsh and fish scripts made from the option
 * table at build time ($IB_BASH_COMPLETION, $IB_ZSH_COMPLETION,
 * $IB_FISH_COMPLETION) load in their shells, offer every option of the
 * table by each of its names, and complete values: formats after -F,
 * directories after -o, ops and gravities after -f, files elsewhere. The
 * words the -f chain offers agree with the op parser (filters/ops.c) both
 * ways.
 *
 * NOTES
 * - A test whose shell is not installed skips loudly (.ci/run installs
 *   zsh and fish).
 * - bash's function is called as bash-completion would call it, with
 *   COMP_WORDS split as readline splits them.
 * - zsh's _arguments only runs inside the completion system, so the zsh
 *   test reads the specs the script hands it (a stand-in _arguments
 *   prints them); fish's `complete -C` completes a command line as the
 *   shell would, so the fish test asks it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include "complete.h"
#include "ops.h"

/* ---- the -f chain's words and the op parser ---- */

/* The words of the list in a parser message: "... is a, b or c, not 'x'"
 * or "... (known: a b c)". */
static void message_words(const char *err, const char *from, const char *to, ib_test_strs_t *out)
{
    const char *a = strstr(err, from), *b = a != NULL ? strstr(a, to) : NULL;
    if (b == NULL)
        fail_msg("no list between '%s' and '%s' in the parser's message: %s", from, to, err);
    char list[1024];
    snprintf(list, sizeof list, "%.*s", (int)(b - a - strlen(from)), a + strlen(from));
    for (char *p = list; *p != '\0'; p++)
        if (*p == ',')
            *p = ' ';
    for (char *p = strstr(list, " or "); p != NULL; p = strstr(p, " or "))
        memcpy(p, "    ", 4);
    ib_test_strs_split(list, out);
}

/* text as -f's value: 0, or -1 with the parser's message in err. */
static int parse(ib_chain_t *chain, const char *text, char *err, size_t errlen)
{
    chain->n = 0; /* ib_chain_parse() appends to what the chain holds */
    return ib_chain_parse(chain, text, err, errlen);
}

/* An op offered bare parses alone; one offered with '=' is an op. Every
 * op the parser names in its "unknown filter" message is offered. */
static void chain_ops_match_the_parser(void **state)
{
    (void)state;
    ib_chain_t *chain = test_malloc(sizeof *chain);
    char err[1024], name[64];
    ib_test_strs_t offered = {0}, known = {0};
    ib_test_strs_split(ib_chain_ops, &offered);
    for (size_t i = 0; i < offered.n; i++) {
        size_t n = strcspn(offered.v[i], "=");
        snprintf(name, sizeof name, "%.*s", (int)n, offered.v[i]);
        int rc = parse(chain, name, err, sizeof err);
        if (offered.v[i][n] == '\0' && rc < 0)
            fail_msg("-f offers %s alone, which the parser refuses: %s", name, err);
        if (rc < 0 && strstr(err, "unknown filter") != NULL)
            fail_msg("-f offers %s, which is not an op: %s", offered.v[i], err);
    }
    assert_int_equal(parse(chain, "nosuchop", err, sizeof err), -1);
    message_words(err, "(known: ", ")", &known);
    for (size_t i = 0; i < known.n; i++) {
        snprintf(name, sizeof name, "%s=", known.v[i]);
        if (ib_test_strs_count(&offered, known.v[i]) + ib_test_strs_count(&offered, name) == 0)
            fail_msg("-f does not offer the op %s", known.v[i]);
    }
    ib_test_strs_free(&offered);
    ib_test_strs_free(&known);
    test_free(chain);
}

/* The fields before the gravity, for each op with one. */
static const char *gravity_sample(const char *op, int field)
{
    static const struct {
        const char *op;
        int field;
        const char *before;
    } samples[] = {{"crop", 1, "8x8:"},
                   {"pad", 2, "8x8:white:"},
                   {"overlay", 1, "logo.png:"},
                   {"text", 1, "hi:"}};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        if (strcmp(samples[i].op, op) == 0 && samples[i].field == field)
            return samples[i].before;
    fail_msg("no sample value for %s's field %d: add one to gravity_sample()", op, field);
    return NULL;
}

/* Each word an op's field offers parses there, and the parser's list of
 * what the field takes is the words offered. */
static void chain_fields_match_the_parser(void **state)
{
    (void)state;
    ib_chain_t *chain = test_malloc(sizeof *chain);
    char err[1024], text[256];
    for (const ib_chain_field_t *c = ib_chain_fields; c->op != NULL; c++) {
        if (strcmp(c->offers, "@file") == 0)
            continue;
        const char *before = gravity_sample(c->op, c->field);
        ib_test_strs_t offered = {0}, wanted = {0};
        ib_test_strs_split(c->offers, &offered);
        for (size_t i = 0; i < offered.n; i++) {
            snprintf(text, sizeof text, "%s=%s%s", c->op, before, offered.v[i]);
            if (parse(chain, text, err, sizeof err) < 0)
                fail_msg("-f %s is offered, but: %s", text, err);
        }
        snprintf(text, sizeof text, "%s=%snosuch", c->op, before);
        assert_int_equal(parse(chain, text, err, sizeof err), -1);
        message_words(err, " is ", ", not '", &wanted);
        snprintf(text, sizeof text, "-f %s=%s", c->op, before);
        ib_test_expect_same_set(&offered, &wanted, text);
        ib_test_strs_free(&offered);
        ib_test_strs_free(&wanted);
    }
    test_free(chain);
}

/* ---- running a shell ---- */

/* The shell's path, and the script from env_name, or a skip. */
static void need_shell(const char *shell, const char *env_name, char *prog, char *script)
{
    if (ib_test_find_program(shell, prog) < 0)
        ib_test_skip_loudly(NULL,
                            "%s is not installed (apt-get install %s): its completion "
                            "not tried",
                            shell, shell);
    const char *path = getenv(env_name);
    if (path == NULL)
        ib_test_skip_loudly(NULL, "%s is not set: %s completion not tried", env_name, shell);
    ib_test_path_fmt(script, "%s", path);
}

/* Runs argv in cwd, expecting exit 0 and nothing on stderr; the lines of
 * its stdout, up to the first tab of each, go to out (when not NULL). */
static void run_shell(ib_test_cli_t *t, const char *prog, const char *const *argv, const char *cwd,
                      ib_test_strs_t *out)
{
    ib_test_spawn_t how = {.cwd = cwd};
    ib_test_run_t r;
    ib_test_cli_run_prog(t, &r, &how, prog, argv);
    if (r.status != 0 || r.err_len != 0) {
        ib_test_run_show(&r, argv[0]);
        fail_msg("%s %s: exit %d, or it wrote to stderr", argv[0], argv[1], r.status);
    }
    for (char *line = r.out_text, *nl; out != NULL && (nl = strchr(line, '\n')) != NULL;
         line = nl + 1) {
        *nl = '\0';
        line[strcspn(line, "\t")] = '\0';
        ib_test_strs_add(out, line);
    }
    ib_test_run_free(&r);
}

/* A fresh directory name for a test, holding a directory (adir) and a
 * file (afile.png) to complete. */
static void completion_dir(ib_test_cli_t *t, const char *name, char *dir)
{
    char sub[PATH_MAX], file[PATH_MAX];
    ib_test_cli_dir(t, name, dir);
    ib_test_path_fmt(sub, "%s/adir", dir);
    ib_test_path_fmt(file, "%s/afile.png", dir);
    if (mkdir(sub, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed", sub);
    ib_test_write_file(file, "x", 1);
}

/* ---- bash ---- */

#define MAX_ARGS 64

/* What the bash completion offers for words, the last one being
 * completed, in cwd. */
static void complete_words(ib_test_cli_t *t, const char *cwd, const char *const *words,
                           ib_test_strs_t *out)
{
    char bash[PATH_MAX], script[PATH_MAX];
    need_shell("bash", "IB_BASH_COMPLETION", bash, script);
    const char *argv[MAX_ARGS] = {
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        "source \"$1\" && shift && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) && "
        "_imgbatch && for w in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$w\"; done",
        "bash",
        script};
    size_t n = 7;
    for (size_t i = 0; words[i] != NULL && n + 1 < MAX_ARGS; i++)
        argv[n++] = words[i];
    argv[n] = NULL;
    run_shell(t, bash, argv, cwd, out);
}

static void expect_completion(ib_test_cli_t *t, const char *cwd, const char *const *words,
                              const char *want)
{
    ib_test_strs_t got = {0}, w = {0};
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

static void bash_completes_options_and_values(void **state)
{
    ib_test_cli_t *t = *state;
    char dir[PATH_MAX];
    completion_dir(t, "bash", dir);

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
    /* -f: ops, and gravities in their values; bash splits the word at
     * '=' and ':' and replaces only the last piece. */
    expect_completion(t, dir, (const char *const[]){"imgbatch", "-f", "cr", NULL}, "crop=");
    expect_completion(t, dir,
                      (const char *const[]){"imgbatch", "-f", "resize", "=", "8x8,gr", NULL},
                      "8x8,grayscale 8x8,greyscale");
    expect_completion(
        t, dir,
        (const char *const[]){"imgbatch", "--filter", "=", "crop", "=", "8x8", ":", "no", NULL},
        "north northeast northwest");

    /* Every option of the table is offered, by each of its names. */
    ib_test_strs_t got = {0};
    complete_words(t, dir, (const char *const[]){"imgbatch", "-", NULL}, &got);
    for (size_t i = 0; i < ib_n_options; i++) {
        char want[80], letter[3] = {'-', ib_options[i].letter, '\0'};
        snprintf(want, sizeof want, "--%s", ib_options[i].name);
        if (ib_test_strs_count(&got, want) != 1 ||
            (letter[1] != 0 && ib_test_strs_count(&got, letter) != 1))
            fail_msg("completing '-' does not offer %s", want);
    }
    ib_test_strs_free(&got);
}

/* ---- zsh ---- */

/* The spec zsh's _arguments should get for one name of option o
 * ("-o+" or "--output="), into out. */
static void zsh_spec(const ib_option_t *o, const char *name, char *out, size_t cap)
{
    char summary[128], action[256] = "";
    ib_offer_summary(o, summary, sizeof summary);
    switch (ib_offer_kind(o)) {
    case IB_OFFER_DIR:
        snprintf(action, sizeof action, ":_files -/");
        break;
    case IB_OFFER_FILE:
        snprintf(action, sizeof action, ":_files");
        break;
    case IB_OFFER_CHAIN:
        snprintf(action, sizeof action, ":_imgbatch_chain");
        break;
    case IB_OFFER_WORDS:
        snprintf(action, sizeof action, ":(%s)", o->offers);
        break;
    default:
        snprintf(action, sizeof action, ": ");
        break;
    }
    /* The description and the value's name as written, less the
     * backslashes that keep ':' and ']' from ending them. */
    char value[64] = "";
    if (o->value != NULL)
        snprintf(value, sizeof value, ":%s", o->value);
    snprintf(out, cap, "*%s[%s]%s%s", name, summary, o->value != NULL ? value : "",
             o->value != NULL ? action : "");
}

/* Removes the backslash before each escaped character of s. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\\' && r[1] != '\0')
            r++;
        *w++ = *r;
    }
    *w = '\0';
}

static void zsh_offers_every_option(void **state)
{
    ib_test_cli_t *t = *state;
    char zsh[PATH_MAX], script[PATH_MAX], dir[PATH_MAX], want[512], name[80];
    need_shell("zsh", "IB_ZSH_COMPLETION", zsh, script);
    run_shell(t, zsh, (const char *const[]){"zsh", "-n", script, NULL}, NULL, NULL);

    /* compinit finds it on fpath and binds it to imgbatch. */
    ib_test_path_fmt(dir, "%s", script);
    *strrchr(dir, '/') = '\0';
    ib_test_strs_t got = {0};
    run_shell(t, zsh,
              (const char *const[]){"zsh", "-f", "-c",
                                    "fpath=(\"$1\" $fpath); autoload -Uz compinit && "
                                    "compinit -u -D && print -r -- ${_comps[imgbatch]}",
                                    "zsh", dir, NULL},
              NULL, &got);
    if (got.n != 1 || strcmp(got.v[0], "_imgbatch") != 0)
        fail_msg("compinit does not bind _imgbatch to imgbatch (from %s)", dir);
    ib_test_strs_free(&got);

    /* What the script asks _arguments for: a spec per name of each
     * option, with its value's completion. */
    run_shell(t, zsh,
              (const char *const[]){"zsh", "-f", "-c",
                                    "_arguments() { print -rl -- \"$@\" }; source \"$1\"", "zsh",
                                    script, NULL},
              NULL, &got);
    for (size_t i = 0; i < got.n; i++)
        unescape(got.v[i]);
    for (size_t i = 0; i < ib_n_options; i++) {
        const ib_option_t *o = &ib_options[i];
        snprintf(name, sizeof name, "--%s%s", o->name, o->value != NULL ? "=" : "");
        zsh_spec(o, name, want, sizeof want);
        if (ib_test_strs_count(&got, want) != 1)
            fail_msg("the zsh completion has no spec %s", want);
        snprintf(name, sizeof name, "-%c%s", o->letter, o->value != NULL ? "+" : "");
        zsh_spec(o, name, want, sizeof want);
        if (o->letter != 0 && ib_test_strs_count(&got, want) != 1)
            fail_msg("the zsh completion has no spec %s", want);
    }
    if (ib_test_strs_count(&got, "*:INPUT:_files") != 1)
        fail_msg("the zsh completion does not complete INPUT with files");
    ib_test_strs_free(&got);
}

/* What _imgbatch_chain offers for the -f value prefix, with zsh's
 * completion builtins played by functions: compset -P moves the longest
 * match of its pattern from PREFIX to IPREFIX, compadd prints the words
 * PREFIX begins (after IPREFIX), _files prints IPREFIX<files>. */
static void zsh_chain_expect(ib_test_cli_t *t, const char *zsh, const char *script,
                             const char *prefix, const char *want)
{
    static const char stand_ins[] =
        "_arguments() { :; }\n"
        "compset() {\n"
        "  [[ $1 == -P ]] || return 1\n"
        "  local m=${(M)PREFIX##${~2}}\n"
        "  [[ -n $m ]] || return 1\n"
        "  IPREFIX+=$m PREFIX=${PREFIX#\"$m\"}\n"
        "}\n"
        "compadd() {\n"
        "  while [[ $1 == -* && $1 != -- ]]; do [[ $1 == -S ]] && shift; shift; done\n"
        "  [[ $1 == -- ]] && shift\n"
        "  local w; for w; do [[ $w == \"$PREFIX\"* ]] && print -r -- \"$IPREFIX$w\"; done\n"
        "  return 0\n"
        "}\n"
        "_files() { print -r -- \"$IPREFIX<files>\"; }\n"
        "source \"$1\"\n"
        "IPREFIX= PREFIX=$2\n"
        "_imgbatch_chain\n";
    ib_test_strs_t got = {0}, w = {0};
    run_shell(t, zsh,
              (const char *const[]){"zsh", "-f", "-c", stand_ins, "zsh", script, prefix, NULL},
              NULL, &got);
    ib_test_strs_split(want, &w);
    char what[128];
    snprintf(what, sizeof what, "zsh completing -f %s", prefix);
    ib_test_expect_same_set(&got, &w, what);
    ib_test_strs_free(&got);
    ib_test_strs_free(&w);
}

static void zsh_completes_the_chain(void **state)
{
    ib_test_cli_t *t = *state;
    char zsh[PATH_MAX], script[PATH_MAX];
    need_shell("zsh", "IB_ZSH_COMPLETION", zsh, script);
    zsh_chain_expect(t, zsh, script, "cr", "crop=");
    zsh_chain_expect(t, zsh, script, "resize=8x8,gr", "resize=8x8,grayscale resize=8x8,greyscale");
    zsh_chain_expect(t, zsh, script, "crop=8x8:no",
                     "crop=8x8:north crop=8x8:northeast crop=8x8:northwest");
    zsh_chain_expect(t, zsh, script, "pad=8x8:red:southw", "pad=8x8:red:southwest");
    zsh_chain_expect(t, zsh, script, "overlay=lo", "overlay=<files>");
    zsh_chain_expect(t, zsh, script, "blur=", "");
}

/* ---- fish ---- */

/* Fails unless fish completes line, in cwd, to the strings of want. */
static void fish_expect_set(ib_test_cli_t *t, const char *fish, const char *script, const char *cwd,
                            const char *line, ib_test_strs_t *want)
{
    char command[256], what[300];
    snprintf(command, sizeof command, "source \"$argv[1]\"; complete -C'%s'", line);
    ib_test_strs_t got = {0};
    run_shell(t, fish, (const char *const[]){"fish", "--no-config", "-c", command, script, NULL},
              cwd, &got);
    snprintf(what, sizeof what, "fish completing [%s]", line);
    ib_test_expect_same_set(&got, want, what);
    ib_test_strs_free(&got);
}

/* The same for want's space-separated words. */
static void fish_expect(ib_test_cli_t *t, const char *fish, const char *script, const char *cwd,
                        const char *line, const char *want)
{
    ib_test_strs_t w = {0};
    ib_test_strs_split(want, &w);
    fish_expect_set(t, fish, script, cwd, line, &w);
    ib_test_strs_free(&w);
}

static void fish_completes_options_and_values(void **state)
{
    ib_test_cli_t *t = *state;
    char fish[PATH_MAX], script[PATH_MAX], dir[PATH_MAX];
    need_shell("fish", "IB_FISH_COMPLETION", fish, script);
    run_shell(t, fish, (const char *const[]){"fish", "--no-execute", script, NULL}, NULL, NULL);

    completion_dir(t, "fish", dir);

    /* Every option, by each of its names: "-" offers both. */
    ib_test_strs_t longs = {0}, all = {0};
    char word[80];
    for (size_t i = 0; i < ib_n_options; i++) {
        snprintf(word, sizeof word, "--%s", ib_options[i].name);
        ib_test_strs_add(&longs, word);
        ib_test_strs_add(&all, word);
        snprintf(word, sizeof word, "-%c", ib_options[i].letter);
        if (ib_options[i].letter != 0)
            ib_test_strs_add(&all, word);
    }
    fish_expect_set(t, fish, script, dir, "imgbatch --", &longs);
    fish_expect_set(t, fish, script, dir, "imgbatch -", &all);
    ib_test_strs_free(&longs);
    ib_test_strs_free(&all);

    fish_expect(t, fish, script, dir, "imgbatch -F ",
                "same jpg jpeg png webp tif tiff gif avif heic heif jxl jp2");
    fish_expect(t, fish, script, dir, "imgbatch --format=w", "--format=webp");
    fish_expect(t, fish, script, dir, "imgbatch -o ", "adir/");
    fish_expect(t, fish, script, dir, "imgbatch --output=", "--output=adir/");
    fish_expect(t, fish, script, dir, "imgbatch -s ", "");
    fish_expect(t, fish, script, dir, "imgbatch --files-from ", "adir/ afile.png");
    fish_expect(t, fish, script, dir, "imgbatch -q ", "adir/ afile.png");
    fish_expect(t, fish, script, dir, "imgbatch -f cr", "crop=");
    fish_expect(t, fish, script, dir, "imgbatch -f resize=8x8,gr",
                "resize=8x8,grayscale resize=8x8,greyscale");
    fish_expect(t, fish, script, dir, "imgbatch -f crop=8x8:no",
                "crop=8x8:north crop=8x8:northeast crop=8x8:northwest");
    fish_expect(t, fish, script, dir, "imgbatch -f pad=8x8:red:south",
                "pad=8x8:red:south pad=8x8:red:southeast pad=8x8:red:southwest");
    fish_expect(t, fish, script, dir, "imgbatch -f overlay=af", "overlay=afile.png");
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(chain_ops_match_the_parser),
                 cmocka_unit_test(chain_fields_match_the_parser),
                 cmocka_unit_test(bash_completes_options_and_values),
                 cmocka_unit_test(zsh_offers_every_option),
                 cmocka_unit_test(zsh_completes_the_chain),
                 cmocka_unit_test(fish_completes_options_and_values),
             })
