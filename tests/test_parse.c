/*
 * The command line, parsed without a process: every option of the table
 * reaches the plan (by its long and its short name), and every usage error
 * is a one-line reason. ib_cli_parse() is pure; the checks that need the
 * filesystem and the environment are ib_front_prepare()'s, tested at the
 * end on a scratch directory.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include "naming.h"
#include "options.h"
#include "plan.h"

#define MAX_WORDS 24

typedef struct {
    char *argv[MAX_WORDS + 2];
    int argc;
    ib_plan_t plan;
    int action;
    char err[1024];
    int rc;
} parsed_t;

/* Parses "imgbatch" followed by words (NULL-terminated). */
static void parse_words(parsed_t *ps, const char *const *words)
{
    memset(ps, 0, sizeof *ps);
    ps->argv[ps->argc++] = "imgbatch";
    for (size_t i = 0; words[i] != NULL; i++) {
        assert_true(ps->argc < MAX_WORDS);
        ps->argv[ps->argc++] = (char *)words[i];
    }
    ps->action = -1;
    ps->rc = ib_cli_parse(ps->argc, ps->argv, &ps->plan, &ps->action, ps->err, sizeof ps->err);
}

static void parsed_free(parsed_t *ps)
{
    ib_cli_free(&ps->plan);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- every option ---- */

typedef enum { AS_INT, AS_UINT, AS_U64, AS_STR, AS_CHECK } kind_t;

typedef struct {
    const char *option;    /* the table's long name */
    const char *words[10]; /* the command line after "imgbatch" */
    kind_t kind;           /* how the plan field at .field is compared */
    size_t field;
    long long want;                    /* AS_INT, AS_UINT, AS_U64 */
    const char *want_text;             /* AS_STR */
    void (*check)(const parsed_t *ps); /* AS_CHECK */
} option_case_t;

#define FIELD(f) offsetof(ib_plan_t, f)

static void check_variants(const parsed_t *ps)
{
    assert_int_equal(ps->plan.n_variants, 2);
    assert_string_equal(ps->plan.variants[0].name, "sm");
    assert_string_equal(ps->plan.variants[1].name, "lg");
    assert_true(ps->plan.variants[1].geom.w == 1280);
    assert_string_equal(ps->plan.name_template, IB_DEFAULT_VARIANT_TEMPLATE);
    assert_non_null(strstr(ps->plan.recipe, ";variant=sm:"));
}

static void check_webp(const parsed_t *ps)
{
    assert_int_equal(ps->plan.n_formats, 1);
    assert_string_equal(ps->plan.formats[0], "webp");
    assert_non_null(strstr(ps->plan.recipe, ";format=webp;"));
}

static void check_same(const parsed_t *ps)
{
    assert_int_equal(ps->plan.n_formats, 1);
    assert_string_equal(ps->plan.formats[0], "");
}

/* Repeated, in order, each once. */
static void check_two_formats(const parsed_t *ps)
{
    assert_int_equal(ps->plan.n_formats, 2);
    assert_string_equal(ps->plan.formats[0], "webp");
    assert_string_equal(ps->plan.formats[1], "avif");
    assert_non_null(strstr(ps->plan.recipe, ";format=webp,avif;"));
}

static void check_variant_encodings(const parsed_t *ps)
{
    const ib_variant_t *v = ps->plan.variants;
    assert_int_equal(ps->plan.n_variants, 2);
    assert_string_equal(v[0].format, "webp");
    assert_int_equal(v[0].quality, 70);
    assert_string_equal(v[1].format, "jpg");
    assert_int_equal(v[1].quality, 0);
    assert_true(v[1].geom.w == 1280);
    assert_non_null(strstr(ps->plan.recipe, ";variant=sm:320:0:"));
    assert_non_null(strstr(ps->plan.recipe, ":webp:70;variant=lg:1280:0:"));
}

static void check_size(const parsed_t *ps)
{
    assert_int_equal(ps->plan.chain.n, 1);
    assert_int_equal(ps->plan.chain.op[0].kind, IB_OP_RESIZE);
    assert_true(ps->plan.chain.op[0].geom.w == 320 && ps->plan.chain.op[0].geom.h == 200);
    assert_non_null(strstr(ps->plan.recipe, "size=320x200;"));
}

/* -s comes first in the chain, whatever its place on the line. */
static void check_filter(const parsed_t *ps)
{
    assert_int_equal(ps->plan.chain.n, 3);
    assert_int_equal(ps->plan.chain.op[0].kind, IB_OP_RESIZE);
    assert_int_equal(ps->plan.chain.op[1].kind, IB_OP_FLIP);
    assert_int_equal(ps->plan.chain.op[2].kind, IB_OP_GRAYSCALE);
    assert_non_null(strstr(ps->plan.recipe, "filter=flip;grayscale;"));
}

static void check_globs(const parsed_t *ps)
{
    const ib_plan_t *p = &ps->plan;
    assert_int_equal(p->n_includes + p->n_excludes, 2);
    const char *got = p->n_includes == 2 ? p->includes[1] : p->excludes[1];
    assert_string_equal(got, "*.png");
}

static void check_shard(const parsed_t *ps)
{
    assert_true(ps->plan.has_shard);
    assert_int_equal(ps->plan.shard.index, 2);
    assert_int_equal(ps->plan.shard.count, 5);
}

static void check_tile(const parsed_t *ps)
{
    assert_int_equal(ps->plan.tile_w, 320);
    assert_int_equal(ps->plan.tile_h, 240);
    assert_string_equal(ps->plan.contact_sheet, "s.webp");
}

/* "auto" waits for the environment: ib_front_prepare() reads it. */
static void check_shard_auto(const parsed_t *ps)
{
    assert_false(ps->plan.has_shard);
    assert_string_equal(ps->plan.shard_text, "auto/4");
}

static void check_dither(const parsed_t *ps)
{
    assert_true(ps->plan.dither == 0.25);
}

static void check_keep(const parsed_t *ps)
{
    assert_int_equal(ps->plan.metadata, IB_META_KEEP);
}

static void check_strip(const parsed_t *ps)
{
    assert_int_equal(ps->plan.metadata, IB_META_STRIP);
}

static void check_help(const parsed_t *ps)
{
    assert_int_equal(ps->rc, 1);
    assert_int_equal(ps->action, IB_CLI_HELP);
}

static void check_version(const parsed_t *ps)
{
    assert_int_equal(ps->rc, 1);
    assert_int_equal(ps->action, IB_CLI_VERSION);
}

static void check_null_output(const parsed_t *ps)
{
    /* Left for ib_front_prepare(), which names outputs under ".". */
    assert_null(ps->plan.output);
}

static const option_case_t option_cases[] = {
    {"output", {"--output", "out", "in"}, AS_STR, FIELD(output), 0, "out"},
    {"in-place", {"--in-place", "in"}, AS_INT, FIELD(in_place), 1},
    {"base", {"--base", "b", "in", "-o", "o"}, AS_STR, FIELD(base), 0, "b"},
    {"format", {"--format", "WebP", "in", "-o", "o"}, AS_CHECK, .check = check_webp},
    {"format", {"--format", "same", "in", "-o", "o"}, AS_CHECK, .check = check_same},
    {"format",
     {"--format", "webp", "-F", "avif", "-F", "webp", "in", "-o", "o"},
     AS_CHECK,
     .check = check_two_formats},
    {"variant",
     {"--variant", "sm:320x:webp:70", "--variant", "lg:1280x:JPG", "in", "-o", "o"},
     AS_CHECK,
     .check = check_variant_encodings},
    {"quality", {"--quality", "77", "in", "-o", "o"}, AS_INT, FIELD(quality), 77},
    {"interlace", {"--interlace", "in", "-o", "o"}, AS_INT, FIELD(interlace), 1},
    {"lossless", {"--lossless", "-F", "png", "in", "-o", "o"}, AS_INT, FIELD(lossless), 1},
    {"lossless", {"--lossless", "-F", "webp", "in", "-o", "o"}, AS_INT, FIELD(lossless), 1},
    {"lossless", {"--lossless", "-F", "tiff", "in", "-o", "o"}, AS_INT, FIELD(lossless), 1},
    {"lossless", {"--lossless", "in", "-o", "o"}, AS_INT, FIELD(lossless), 1},
    {"compression", {"--compression", "0", "in", "-o", "o"}, AS_INT, FIELD(compression), 0},
    {"max-bytes",
     {"--max-bytes", "60k", "-F", "webp", "in", "-o", "o"},
     AS_U64,
     FIELD(max_bytes),
     60 << 10},
    {"max-bytes", {"--max-bytes", "1.5M", "in", "-o", "o"}, AS_U64, FIELD(max_bytes), 3 << 19},
    {"palette", {"--palette", "in", "-o", "o"}, AS_INT, FIELD(palette), 1},
    {"preserve-times", {"--preserve-times", "in", "-o", "o"}, AS_INT, FIELD(preserve_times), 1},
    {"keep-smaller", {"--keep-smaller", "in", "-o", "o"}, AS_INT, FIELD(keep_smaller), 1},
    {"colors", {"--colors", "16", "--palette", "in", "-o", "o"}, AS_UINT, FIELD(colors), 16},
    {"dither", {"--dither", "0.25", "--palette", "in", "-o", "o"}, AS_CHECK, .check = check_dither},
    {"effort", {"--effort", "7", "in", "-o", "o"}, AS_INT, FIELD(effort), 7},
    {"subsample",
     {"--subsample", "off", "in", "-o", "o"},
     AS_INT,
     FIELD(subsample),
     IB_SUBSAMPLE_OFF},
    {"keep-metadata", {"--keep-metadata", "in", "-o", "o"}, AS_CHECK, .check = check_keep},
    {"strip", {"--strip", "--strip", "in", "-o", "o"}, AS_CHECK, .check = check_strip},
    {"strip-gps", {"--strip-gps", "--keep-metadata", "in", "-o", "o"}, AS_INT, FIELD(strip_gps), 1},
    {"name",
     {"--name", "{stem}-x.{ext}", "in", "-o", "o"},
     AS_STR,
     FIELD(name_template),
     0,
     "{stem}-x.{ext}"},
    {"if-exists",
     {"--if-exists", "fail", "in", "-o", "o"},
     AS_INT,
     FIELD(if_exists),
     IB_EXISTS_FAIL},
    {"variant",
     {"--variant", "sm:320x", "--variant", "lg:1280x", "in", "-o", "o"},
     AS_CHECK,
     .check = check_variants},
    {"size", {"--size", "320x200", "in", "-o", "o"}, AS_CHECK, .check = check_size},
    {"filter",
     {"--filter", "flip", "-s", "10", "-f", "grayscale", "in", "-o", "o"},
     AS_CHECK,
     .check = check_filter},
    {"font", {"--font", "DejaVu Serif", "in", "-o", "o"}, AS_STR, FIELD(font), 0, "DejaVu Serif"},
    {"no-autorotate", {"--no-autorotate", "in", "-o", "o"}, AS_INT, FIELD(autorotate), 0},
    {"lenient", {"--lenient", "in", "-o", "o"}, AS_INT, FIELD(strict), 0},
    {"max-pixels", {"--max-pixels", "1000", "in", "-o", "o"}, AS_U64, FIELD(max_pixels), 1000},
    {"max-memory", {"--max-memory", "1.5G", "in", "-o", "o"}, AS_U64, FIELD(max_memory), 3LL << 29},
    {"max-memory",
     {"--max-memory", "512m", "in", "-o", "o"},
     AS_U64,
     FIELD(max_memory),
     512LL << 20},
    {"hidden", {"--hidden", "in", "-o", "o"}, AS_INT, FIELD(hidden), 1},
    {"follow-symlinks", {"--follow-symlinks", "in", "-o", "o"}, AS_INT, FIELD(follow_symlinks), 1},
    {"include",
     {"--include", "*.jpg", "--include", "*.png", "in", "-o", "o"},
     AS_CHECK,
     .check = check_globs},
    {"exclude",
     {"--exclude", "a/**", "--exclude", "*.png", "in", "-o", "o"},
     AS_CHECK,
     .check = check_globs},
    {"max-depth", {"--max-depth", "0", "in", "-o", "o"}, AS_INT, FIELD(max_depth), 0},
    {"files-from", {"--files-from", "-", "-o", "o"}, AS_STR, FIELD(files_from), 0, "-"},
    {"null", {"--null", "in", "-o", "o"}, AS_INT, FIELD(null_separated), 1},
    {"shard", {"--shard", "2/5", "in", "-o", "o"}, AS_CHECK, .check = check_shard},
    {"shard", {"--shard", "auto/4", "in", "-o", "o"}, AS_CHECK, .check = check_shard_auto},
    {"jobs", {"--jobs", "3", "in", "-o", "o"}, AS_UINT, FIELD(jobs), 3},
    {"timeout", {"--timeout", "2.5", "in", "-o", "o"}, AS_UINT, FIELD(timeout_ms), 2500},
    {"timeout", {"--timeout", "0.0001", "in", "-o", "o"}, AS_UINT, FIELD(timeout_ms), 1},
    {"worker-jobs", {"--worker-jobs", "50", "in", "-o", "o"}, AS_UINT, FIELD(worker_jobs), 50},
    {"fail-fast", {"--fail-fast", "in", "-o", "o"}, AS_UINT, FIELD(max_errors), 1},
    {"max-errors", {"--max-errors", "7", "in", "-o", "o"}, AS_UINT, FIELD(max_errors), 7},
    {"dry-run", {"--dry-run", "in"}, AS_CHECK, .check = check_null_output},
    {"watch", {"--watch", "in", "-o", "o"}, AS_INT, FIELD(watch), 1},
    {"json", {"--json", "in", "-o", "o"}, AS_INT, FIELD(json), 1},
    {"manifest",
     {"--manifest", "m-{shard}.json", "in", "-o", "o"},
     AS_STR,
     FIELD(manifest),
     0,
     "m-{shard}.json"},
    {"placeholders",
     {"--placeholders", "--manifest", "m.json", "in", "-o", "o"},
     AS_INT,
     FIELD(placeholders),
     1},
    {"report",
     {"--report", "r-{shard}.html", "in", "-o", "o"},
     AS_STR,
     FIELD(report),
     0,
     "r-{shard}.html"},
    {"contact-sheet",
     {"--contact-sheet", "o/sheet.JPG", "in", "-o", "o"},
     AS_STR,
     FIELD(contact_sheet),
     0,
     "o/sheet.JPG"},
    {"columns",
     {"--columns", "12", "--contact-sheet", "s.png", "in", "-o", "o"},
     AS_UINT,
     FIELD(sheet_columns),
     12},
    {"tile",
     {"--tile", "320x240", "--contact-sheet", "s.webp", "in", "-o", "o"},
     AS_CHECK,
     .check = check_tile},
    {"progress",
     {"--progress", "never", "in", "-o", "o"},
     AS_INT,
     FIELD(progress),
     IB_PROGRESS_NEVER},
    {"quiet", {"--quiet", "in", "-o", "o"}, AS_INT, FIELD(quiet), 1},
    {"verbose", {"--verbose", "in", "-o", "o"}, AS_INT, FIELD(verbose), 1},
    {"help", {"--help", "--bogus-after-help"}, AS_CHECK, .check = check_help},
    {"version", {"--version"}, AS_CHECK, .check = check_version},
};

static const ib_option_t *option_named(const char *name)
{
    for (size_t i = 0; i < ib_n_options; i++)
        if (strcmp(ib_options[i].name, name) == 0)
            return &ib_options[i];
    fail_msg("test case for --%s, which the table does not have", name);
    return NULL;
}

static void expect_case(const option_case_t *oc, const parsed_t *ps, const char *form)
{
    if (oc->kind != AS_CHECK && ps->rc != 0)
        fail_msg("%s %s: parse failed: %s", form, oc->words[1], ps->err);
    const char *at = (const char *)&ps->plan + oc->field;
    long long got = 0;
    switch (oc->kind) {
    case AS_INT:
        got = *(const int *)at;
        break;
    case AS_UINT:
        got = *(const unsigned *)at;
        break;
    case AS_U64:
        got = (long long)*(const uint64_t *)at;
        break;
    case AS_STR:
        if (strcmp(*(const char *const *)at, oc->want_text))
            fail_msg("%s: plan has '%s', want '%s'", form, *(const char *const *)at, oc->want_text);
        return;
    case AS_CHECK:
        oc->check(ps);
        return;
    }
    if (got != oc->want)
        fail_msg("%s %s: plan has %lld, want %lld", form, oc->words[1], got, oc->want);
}

/* Runs a case as written, and again with the option's short name. */
static void run_case(const option_case_t *oc)
{
    const ib_option_t *o = option_named(oc->option);
    parsed_t ps;
    parse_words(&ps, oc->words);
    char form[80];
    snprintf(form, sizeof form, "--%s", o->name);
    expect_case(oc, &ps, form);
    parsed_free(&ps);
    if (o->letter == 0)
        return;
    const char *words[10];
    memcpy(words, oc->words, sizeof words);
    char letter[3] = {'-', o->letter, '\0'};
    words[0] = letter;
    parse_words(&ps, words);
    expect_case(oc, &ps, letter);
    parsed_free(&ps);
}

static void every_option_reaches_the_plan(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof option_cases / sizeof option_cases[0]; i++)
        run_case(&option_cases[i]);
    /* A new option in the table needs a case here. */
    for (size_t i = 0; i < ib_n_options; i++) {
        size_t k = 0;
        while (k < sizeof option_cases / sizeof option_cases[0] &&
               strcmp(option_cases[k].option, ib_options[i].name) != 0)
            k++;
        if (k == sizeof option_cases / sizeof option_cases[0])
            fail_msg("--%s has no case in option_cases", ib_options[i].name);
    }
}

static void defaults_without_options(void **state)
{
    (void)state;
    parsed_t ps;
    parse_words(&ps, WORDS("in", "-o", "o"));
    assert_int_equal(ps.rc, 0);
    assert_int_equal(ps.action, IB_CLI_RUN);
    const ib_plan_t *p = &ps.plan;
    assert_int_equal(p->n_inputs, 1);
    assert_string_equal(p->inputs[0], "in");
    assert_int_equal(p->max_pixels, 268402689ULL);
    assert_true(p->autorotate && p->strict && !p->in_place && !p->has_shard && !p->watch);
    assert_int_equal(p->max_depth, -1);
    assert_int_equal(p->compression, -1);
    assert_int_equal(p->metadata, IB_META_DEFAULT);
    assert_int_equal(p->jobs, 0); /* the machine's, from ib_front_prepare() */
    assert_string_equal(p->name_template, IB_DEFAULT_TEMPLATE);
    assert_int_equal(p->n_formats, 0);
    /* Inputs may come after options and before them; "--" ends options. */
    parsed_free(&ps);
    parse_words(&ps, WORDS("-o", "o", "a", "--json", "--", "-b"));
    assert_int_equal(ps.rc, 0);
    assert_int_equal(ps.plan.n_inputs, 2);
    assert_string_equal(ps.plan.inputs[1], "-b");
    assert_int_equal(ps.plan.json, 1);
    parsed_free(&ps);
    /* {hash} tells variants apart as {variant} does. */
    parse_words(&ps, WORDS("--variant", "a:10", "--variant", "b:20", "--name",
                           "{stem}-{hash}.{ext}", "in", "-o", "o"));
    assert_int_equal(ps.rc, 0);
    parsed_free(&ps);
}

/* ---- usage errors ---- */

typedef struct {
    const char *words[14];
    const char *want; /* in the one-line reason */
} usage_case_t;

static const usage_case_t usage_cases[] = {
    {{"--bogus", "in", "-o", "o"}, "unknown option '--bogus'"},
    {{"-Z", "in", "-o", "o"}, "unknown option '-Z'"},
    {{"--json=1", "in", "-o", "o"}, "option '--json' takes no value"},
    {{"--placeholders", "in", "-o", "o"}, "--placeholders needs --manifest FILE or --json"},
    {{"--manifest", "m.json", "--dry-run", "in"}, "--manifest and --dry-run"},
    {{"--manifest", "out/", "in", "-o", "o"}, "--manifest wants a file name"},
    {{"--report", "r.html", "--dry-run", "in"}, "--report and --dry-run"},
    {{"--report", "site/", "in", "-o", "o"}, "--report wants a file name"},
    {{"--contact-sheet", "s.jpg", "--dry-run", "in"}, "--contact-sheet and --dry-run"},
    {{"--contact-sheet", "sheet.gif", "in", "-o", "o"}, "wants a .jpg, .png, .webp or .tif"},
    {{"--contact-sheet", "o.png/sheet", "in", "-o", "o"}, "not 'o.png/sheet'"},
    {{"--contact-sheet", ".png", "in", "-o", "o"}, "not '.png'"},
    {{"--columns", "4", "in", "-o", "o"}, "--columns works with --contact-sheet FILE"},
    {{"--tile", "64x64", "in", "-o", "o"}, "--tile works with --contact-sheet FILE"},
    {{"--columns", "0", "--contact-sheet", "s.png", "in", "-o", "o"}, "--columns wants"},
    {{"--tile", "8x64", "--contact-sheet", "s.png", "in", "-o", "o"}, "not '8x64'"},
    {{"--tile", "64x64x", "--contact-sheet", "s.png", "in", "-o", "o"}, "not '64x64x'"},
    {{"--tile", "64", "--contact-sheet", "s.png", "in", "-o", "o"}, "--tile wants WxH"},
    {{"in", "-o"}, "-o needs a value"},
    {{"in", "-o", "o", "--quality"}, "--quality needs a value"},
    {{"--quality", "0", "in", "-o", "o"}, "--quality wants a whole number from 1 to 100, not '0'"},
    {{"--quality", "101", "in", "-o", "o"}, "not '101'"},
    {{"--quality", "9x", "in", "-o", "o"}, "not '9x'"},
    {{"--compression", "10", "in", "-o", "o"}, "--compression wants a whole number from 0 to 9"},
    {{"--max-depth", "-1", "in", "-o", "o"}, "--max-depth wants a whole number"},
    {{"-j", "0", "in", "-o", "o"}, "-j wants a whole number from 1 to 256, not '0'"},
    {{"-j", "257", "in", "-o", "o"}, "not '257'"},
    {{"--worker-jobs", "0", "in", "-o", "o"}, "--worker-jobs wants a whole number"},
    {{"--max-errors", "", "in", "-o", "o"}, "--max-errors wants a whole number"},
    {{"--max-pixels", "0", "in", "-o", "o"}, "--max-pixels wants a whole number"},
    {{"--timeout", "0", "in", "-o", "o"}, "--timeout wants seconds"},
    {{"--timeout", "1s", "in", "-o", "o"}, "not '1s'"},
    {{"--max-memory", "1M", "in", "-o", "o"}, "--max-memory wants a size of at least 64M"},
    {{"--max-memory", "2Q", "in", "-o", "o"}, "not '2Q'"},
    {{"-F", "bmp", "in", "-o", "o"}, "-F wants one of same, jpg, jpeg, png"},
    {{"--if-exists", "never", "in", "-o", "o"}, "--if-exists wants one of update, overwrite"},
    {{"--progress", "yes", "in", "-o", "o"}, "--progress wants one of auto, always, never"},
    {{"--variant", "320x", "in", "-o", "o"}, "--variant wants NAME:GEOM"},
    {{"--variant", "a b:320x", "in", "-o", "o"}, "--variant wants NAME:GEOM"},
    {{"--variant", "a:10", "--variant", "a:20", "in", "-o", "o"}, "'a' given twice"},
    {{"--variant", "a:10q", "in", "-o", "o"}, "--variant a:"},
    {{"--variant", "a:10:bmp", "in", "-o", "o"}, "--variant a: FORMAT wants one of same, jpg"},
    {{"--variant", "a:10:webp:0", "in", "-o", "o"}, "--variant a: QUALITY wants a whole number"},
    {{"--variant", "a:10:webp:", "in", "-o", "o"}, "QUALITY wants a whole number"},
    {{"-F", "webp", "-F", "avif", "--name", "{stem}.jpg", "in", "-o", "o"}, "ends in .jpg"},
    {{"-F", "webp", "-F", "avif", "--name", "{stem}", "in", "-o", "o"}, "needs {ext}"},
    {{"-F", "webp", "-F", "avif", "-F", "png", "-F", "gif", "-F", "jxl", "in", "-o", "o"},
     "at most 4 -F formats"},
    {{"--in-place", "-F", "webp", "-F", "avif", "in"}, "--in-place and several -F"},
    {{"--variant", "a:10:gif", "--lossless", "in", "-o", "o"}, "--lossless: gif"},
    {{"-s", "10q", "in", "-o", "o"}, "-s: "},
    {{"-f", "wobble", "in", "-o", "o"}, "-f: "},
    {{"--keep-metadata", "--strip", "in", "-o", "o"}, "contradict each other"},
    {{"--max-bytes", "10", "in", "-o", "o"}, "--max-bytes wants a size of at least 1k"},
    {{"--max-bytes", "5x", "in", "-o", "o"}, "not '5x'"},
    {{"--max-bytes", "50k", "-F", "png", "in", "-o", "o"}, "--max-bytes: png has no quality"},
    {{"--max-bytes", "50k", "-F", "tiff", "--palette", "in", "-o", "o"}, "--max-bytes: tiff"},
    {{"--max-bytes", "50k", "--variant", "a:10:gif", "in", "-o", "o"}, "--max-bytes: gif"},
    {{"--colors", "16", "in", "-o", "o"}, "--colors works with --palette"},
    {{"--dither", "0.5", "in", "-o", "o"}, "--dither works with --palette"},
    {{"--colors", "1", "--palette", "in", "-o", "o"}, "--colors wants a whole number from 2"},
    {{"--dither", "1.5", "--palette", "in", "-o", "o"}, "--dither wants an amount from 0 to 1"},
    {{"--effort", "10", "in", "-o", "o"}, "--effort wants a whole number from 0 to 9"},
    {{"--subsample", "half", "in", "-o", "o"}, "--subsample wants one of auto, on, off"},
    {{"--name", "{nope}", "in", "-o", "o"}, "{nope}"},
    {{"--variant", "a:10", "--variant", "b:20", "--name", "{stem}.{ext}", "in", "-o", "o"},
     "needs {variant} (or {w}, {h} or {hash})"},
    {{"--name", "{stem}.jpg", "-F", "png", "in", "-o", "o"}, "ends in .jpg, but -F png"},
    {{"--lossless", "-F", "jpg", "in", "-o", "o"}, "--lossless: jpg has no lossless mode"},
    {{"--lossless", "-F", "gif", "in", "-o", "o"}, "--lossless: gif has no lossless mode"},
    {{"in", "-o", "-"}, "-o -: the output must be a directory"},
    {{"--in-place", "-o", "o", "in"}, "--in-place writes over the inputs: leave out -o o"},
    {{"--in-place", "--variant", "a:10", "in"}, "--in-place and --variant"},
    {{"in"}, "no output directory: give -o DIR"},
    {{"-o", "o"}, "no INPUT given"},
    {{"--shard", "6/5", "in", "-o", "o"}, "--shard"},
    {{"--watch", "--dry-run", "in"}, "--watch and --dry-run"},
    {{"--watch", "--shard", "1/2", "in", "-o", "o"}, "--watch and --shard: run one watcher"},
    {{"--watch", "--shard", "auto", "in", "-o", "o"}, "--watch and --shard"},
    {{"--watch", "--files-from", "list", "-o", "o"}, "--watch and --files-from"},
    {{"--watch", "--manifest", "m.json", "in", "-o", "o"}, "--watch and --manifest"},
    {{"--watch", "in", "-", "-o", "o"}, "--watch and -: --watch watches directories"},
    {{"--font", "", "in", "-o", "o"}, "--font wants a font name"},
    {{"-f", "border=0", "in", "-o", "o"}, "-f: bad filter 'border=0'"},
    {{"-f", "overlay=w.png:up", "in", "-o", "o"}, "bad filter 'overlay=w.png:up'"},
    {{"-f", "trim", "--name", "{stem}-{w}.{ext}", "in", "-o", "o"},
     "{w} and {h} cannot be known before a trim"},
    {{"-f", "trim", "--variant", "sm:10", "in", "-o", "o"}, "--variant sm and trim"},
};

static void every_usage_error_says_why(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
        parsed_t ps;
        parse_words(&ps, usage_cases[i].words);
        if (ps.rc != -1)
            fail_msg("case %zu (%s ...): parse returned %d, want -1", i, usage_cases[i].words[0],
                     ps.rc);
        if (strstr(ps.err, usage_cases[i].want) == NULL || strchr(ps.err, '\n') != NULL)
            fail_msg("case %zu: reason '%s' does not say '%s' on one line", i, ps.err,
                     usage_cases[i].want);
        parsed_free(&ps);
    }
}

/* More -f ops than a chain holds. */
static void too_many_filters(void **state)
{
    (void)state;
    const char *words[MAX_WORDS] = {"in", "-o", "o"};
    size_t n = 3;
    while (n + 2 < MAX_WORDS)
        words[n++] = "-f", words[n++] = "flip,flop,flip,flop";
    words[n] = NULL;
    parsed_t ps;
    parse_words(&ps, words);
    assert_int_equal(ps.rc, -1);
    assert_non_null(strstr(ps.err, "too many filters"));
    parsed_free(&ps);
}

/* ---- the checks on the machine ---- */

typedef struct {
    char root[PATH_MAX];
} front_t;

static int front_setup(void **state)
{
    static front_t f;
    if (ib_test_make_root("parse", "front", f.root) < 0)
        return -1;
    char p[PATH_MAX];
    ib_test_path_fmt(p, "%s/in/a.png", f.root);
    ib_test_write_file(p, "x", 1);
    ib_test_path_fmt(p, "%s/file", f.root);
    ib_test_write_file(p, "x", 1);
    *state = &f;
    return chdir(f.root);
}

static int prepare(const char *const *words, parsed_t *ps)
{
    parse_words(ps, words);
    if (ps->rc != 0)
        fail_msg("parse failed: %s", ps->err);
    return ib_front_prepare(&ps->plan, ps->err, sizeof ps->err);
}

static void expect_front_error(const char *const *words, const char *want)
{
    parsed_t ps;
    if (prepare(words, &ps) != -1)
        fail_msg("%s ...: ib_front_prepare() accepted it", words[0]);
    if (strstr(ps.err, want) == NULL)
        fail_msg("reason '%s' does not say '%s'", ps.err, want);
    parsed_free(&ps);
}

static void front_checks_paths(void **state)
{
    (void)state;
    expect_front_error(WORDS("missing", "-o", "o"), "cannot read input 'missing'");
    expect_front_error(WORDS("--files-from", "missing", "-o", "o"),
                       "cannot read --files-from 'missing'");
    expect_front_error(WORDS("in", "-o", "file"), "output 'file' exists and is not a directory");
    expect_front_error(WORDS("in/a.png", "--base", "file", "-o", "o"),
                       "--base 'file' is not a directory");
    expect_front_error(WORDS("in", "-o", "in"), "-o in is where the input 'in' is");
    expect_front_error(WORDS("in/a.png", "-o", "in"), "use --in-place for that");
    expect_front_error(WORDS("in", "-o", "in/../in/"), "is where the input");
    expect_front_error(WORDS("--watch", "in", "file", "-o", "o"),
                       "--watch watches directories: 'file' is not one");
    /* New names beside the originals are fine, and so is a dry run. */
    parsed_t ps;
    assert_int_equal(prepare(WORDS("in", "-o", "in", "--name", "{dir}/{stem}-s.{ext}"), &ps), 0);
    parsed_free(&ps);
    assert_int_equal(prepare(WORDS(".", "--dry-run"), &ps), 0);
    assert_string_equal(ps.plan.output, ".");
    parsed_free(&ps);
}

static void front_reads_the_environment(void **state)
{
    (void)state;
    parsed_t ps;
    setenv("SLURM_CPUS_PER_TASK", "3", 1);
    setenv("IMGBATCH_FAST", "0", 1);
    setenv("IMGBATCH_DEBUG", "1", 1);
    unsetenv("IMGBATCH_PIN");
    assert_int_equal(prepare(WORDS("in", "-o", "o"), &ps), 0);
    assert_int_equal(ps.plan.jobs, 3);
    assert_true(!ps.plan.fast_paths && ps.plan.debug && ps.plan.pin_workers);
    parsed_free(&ps);
    /* -j wins over Slurm's count. */
    assert_int_equal(prepare(WORDS("in", "-o", "o", "-j", "5"), &ps), 0);
    assert_int_equal(ps.plan.jobs, 5);
    parsed_free(&ps);
    unsetenv("SLURM_CPUS_PER_TASK");
    assert_int_equal(prepare(WORDS("in", "-o", "o"), &ps), 0);
    assert_true(ps.plan.jobs >= 1);
    parsed_free(&ps);

    setenv("SLURM_ARRAY_TASK_ID", "2", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "0", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    assert_int_equal(prepare(WORDS("in", "-o", "o", "--shard", "auto"), &ps), 0);
    assert_true(ps.plan.has_shard);
    assert_int_equal(ps.plan.shard.index, 3);
    assert_int_equal(ps.plan.shard.count, 4);
    parsed_free(&ps);
    unsetenv("SLURM_ARRAY_TASK_ID");
    expect_front_error(WORDS("in", "-o", "o", "--shard", "auto"), "--shard auto");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_option_reaches_the_plan),
        cmocka_unit_test(defaults_without_options),
        cmocka_unit_test(every_usage_error_says_why),
        cmocka_unit_test(too_many_filters),
        cmocka_unit_test(front_checks_paths),
        cmocka_unit_test(front_reads_the_environment),
    };
    return cmocka_run_group_tests(tests, front_setup, NULL);
}
