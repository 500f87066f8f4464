/*
 * Command-line parsing into the plan, driven by the option table
 * (options.c). Pure: it reads argv and nothing else (no filesystem, no
 * environment) and prints nothing; a usage error is one line in err that
 * names the offending value. The checks that need the machine are
 * front.c's.
 */
#include "plan.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ib_config.h"
#include "naming.h"
#include "options.h"

/* getopt_long's view of the table: each option's index is its code, past
 * the byte values, so a short and a long name reach the same setter. */
#define CODE_BASE 256

static struct option *long_options(void)
{
    struct option *lo = calloc(ib_n_options + 1, sizeof *lo);
    for (size_t i = 0; lo != NULL && i < ib_n_options; i++)
        lo[i] = (struct option){ib_options[i].name,
                                ib_options[i].value != NULL ? required_argument : no_argument, NULL,
                                CODE_BASE + (int)i};
    return lo;
}

/* ":o:s:..." : the leading ':' makes a missing value its own case. */
static void short_options(char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = ':';
    for (size_t i = 0; i < ib_n_options && n + 3 < cap; i++) {
        if (ib_options[i].letter == 0)
            continue;
        out[n++] = ib_options[i].letter;
        if (ib_options[i].value != NULL)
            out[n++] = ':';
    }
    out[n] = '\0';
}

/* The table entry getopt's answer c stands for, or NULL. */
static const ib_option_t *option_for(int c)
{
    if (c >= CODE_BASE && (size_t)(c - CODE_BASE) < ib_n_options)
        return &ib_options[c - CODE_BASE];
    for (size_t i = 0; c > 0 && c < CODE_BASE && i < ib_n_options; i++)
        if (ib_options[i].letter == c)
            return &ib_options[i];
    return NULL;
}

/* What getopt could not take, in the user's words. */
static int unknown(ib_cli_t *c, int code, char **argv)
{
    /* For a long option getopt leaves its code in optopt, not a letter:
     * name it from argv instead. */
    const char *arg = argv[optind - 1];
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    if (code == ':')
        snprintf(c->err, c->errlen, "%s needs a value", arg);
    else if (eq != NULL)
        snprintf(c->err, c->errlen, "option '%.*s' takes no value", (int)(eq - arg), arg);
    else if (strncmp(arg, "--", 2) == 0 || optopt <= 0 || optopt > 127)
        snprintf(c->err, c->errlen, "unknown option '%s'", arg);
    else
        snprintf(c->err, c->errlen, "unknown option '-%c'", optopt);
    return -1;
}

/* Walks argv through the table; the inputs are what is left. */
static int walk(ib_cli_t *c, int argc, char **argv)
{
    char shorts[128];
    struct option *lo = long_options();
    if (lo == NULL) {
        snprintf(c->err, c->errlen, "out of memory");
        return -1;
    }
    short_options(shorts, sizeof shorts);
    opterr = 0;
    optind = 1;
    int code, rc = 0;
    while (rc == 0 && c->action == IB_CLI_RUN &&
           (code = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const ib_option_t *o = option_for(code);
        rc = o != NULL ? ib_option_apply(c, o, o->value != NULL ? optarg : NULL)
                       : unknown(c, code, argv);
    }
    free(lo);
    c->plan->inputs = argv + optind;
    c->plan->n_inputs = argc - optind;
    return rc;
}

static void set_defaults(ib_plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->max_pixels = 268402689ULL; /* 0x3FFF * 0x3FFF, as sharp */
    p->autorotate = 1;
    p->strict = 1;
    p->max_depth = -1;
    p->compression = -1;
    p->dither = -1;
    p->effort = -1;
    p->fast_paths = 1;
    p->pin_workers = 1;
}

/* The formats named anywhere (-F and the variants' own), "" aside. */
static unsigned named_formats(const ib_plan_t *p, const char **out)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->n_formats; i++)
        if (p->formats[i][0] != '\0')
            out[n++] = p->formats[i];
    for (unsigned i = 0; i < p->n_variants; i++)
        if (p->variants[i].format[0] != '\0')
            out[n++] = p->variants[i].format;
    return n;
}

/* --max-bytes with a format named that has nothing to trade for size. */
static int check_budget(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *f[IB_MAX_FORMATS + IB_MAX_VARIANTS];
    unsigned n = p->max_bytes > 0 ? named_formats(p, f) : 0;
    for (unsigned i = 0; i < n; i++)
        if (!ib_image_has_budget(f[i], p->palette))
            return snprintf(err, errlen,
                            "--max-bytes: %s has no quality to trade for size (jpg, webp, avif, "
                            "heif have; png and gif with --palette)",
                            f[i]),
                   -1;
    return 0;
}

/* --lossless with a format that cannot keep every pixel. */
static int check_lossless(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *f[IB_MAX_FORMATS + IB_MAX_VARIANTS];
    unsigned n = p->lossless ? named_formats(p, f) : 0;
    for (unsigned i = 0; i < n; i++)
        if (ib_image_lossless(f[i]) == 0)
            return snprintf(err, errlen,
                            "--lossless: %s has no lossless mode (webp, avif, heif, jxl and jp2 "
                            "have; png and tiff always are)",
                            f[i]),
                   -1;
    return 0;
}

/* The output format a file extension stands for ("jpeg" for .jpe), or
 * NULL for an extension that is not an image format -F knows. */
static const char *format_of_extension(const char *ext)
{
    static const char *const alias[][2] = {
        {"jpg", "jpeg"},  {"jpeg", "jpeg"}, {"jpe", "jpeg"},  {"jfif", "jpeg"}, {"png", "png"},
        {"webp", "webp"}, {"tif", "tiff"},  {"tiff", "tiff"}, {"gif", "gif"},   {"avif", "avif"},
        {"heic", "heif"}, {"heif", "heif"}, {"jxl", "jxl"},   {"jp2", "jp2"},   {"j2k", "jp2"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcasecmp(ext, alias[i][0]) == 0)
            return alias[i][1];
    return NULL;
}

/* A literal extension at the end of --name (".jpg", not ".{ext}") must be
 * that of every format written: otherwise a file's name lies about its
 * bytes. */
static int check_name_extension(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *slash = strrchr(p->name_template, '/');
    const char *last = slash != NULL ? slash + 1 : p->name_template;
    const char *dot = strrchr(last, '.');
    if (dot == NULL || strpbrk(dot, "{}") != NULL || format_of_extension(dot + 1) == NULL)
        return 0;
    const char *f[IB_MAX_FORMATS + IB_MAX_VARIANTS];
    unsigned n = named_formats(p, f);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(format_of_extension(dot + 1), format_of_extension(f[i])) != 0)
            return snprintf(err, errlen,
                            "--name '%s' ends in %s, but -F %s writes %s files: use .{ext}, or "
                            "-F %s",
                            p->name_template, dot, f[i], format_of_extension(f[i]), dot + 1),
                   -1;
    return 0;
}

/* How many formats one variant (or the one output) is written in. */
static unsigned formats_per_output(const ib_plan_t *p, const ib_variant_t *v)
{
    if (v != NULL && v->format[0] != '\0')
        return 1;
    return p->n_formats > 0 ? p->n_formats : 1;
}

/* A trim's size is known only from the pixels, after the name is made
 * and the variants are sized: the fields and options that need it first
 * cannot go with it. */
static int check_trim(const ib_plan_t *p, char *err, size_t errlen)
{
    if (!ib_chain_size_from_pixels(&p->chain))
        return 0;
    if (strstr(p->name_template, "{w}") != NULL || strstr(p->name_template, "{h}") != NULL)
        return snprintf(err, errlen,
                        "--name '%s': {w} and {h} cannot be known before a trim has seen the "
                        "pixels",
                        p->name_template),
               -1;
    if (p->n_variants > 0)
        return snprintf(err, errlen,
                        "--variant %s and trim: variants are sized before a trim has seen the "
                        "pixels; trim in a run of its own first",
                        p->variants[0].name),
               -1;
    return 0;
}

static int check_naming(ib_plan_t *p, char *err, size_t errlen)
{
    const char *t = p->name_template;
    /* {hash} tells apart what differs: outputs that would come out the
     * same are written once. */
    int sized = strstr(t != NULL ? t : "", "{w}") != NULL || strstr(t != NULL ? t : "", "{h}") ||
                ib_name_has_hash(t);
    if (t == NULL)
        p->name_template = p->n_variants > 0 ? IB_DEFAULT_VARIANT_TEMPLATE : IB_DEFAULT_TEMPLATE;
    else if (p->n_variants > 1 && strstr(t, "{variant}") == NULL && !sized)
        return snprintf(
                   err, errlen,
                   "--name '%s' needs {variant} (or {w}, {h} or {hash}): with several variants, "
                   "every output would get the same name",
                   t),
               -1;
    if (check_name_extension(p, err, errlen) < 0)
        return -1;
    /* One variant (or the one output) in several formats: only {ext}
     * tells its files apart. */
    unsigned formats = p->n_variants > 0 ? 1 : formats_per_output(p, NULL);
    for (unsigned i = 0; i < p->n_variants; i++)
        if (formats_per_output(p, &p->variants[i]) > formats)
            formats = formats_per_output(p, &p->variants[i]);
    if (formats > 1 && strstr(p->name_template, "{ext}") == NULL)
        return snprintf(err, errlen,
                        "--name '%s' needs {ext}: with several formats, outputs would get the "
                        "same name",
                        p->name_template),
               -1;
    return 0;
}

/* Where the outputs go: -o, or --in-place, never both or neither. */
static int check_destination(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (p->output != NULL && strcmp(p->output, "-") == 0)
        why = "-o -: the output must be a directory; imgbatch cannot write images to standard "
              "output (--dry-run --json lists what it would write)";
    else if (p->in_place && p->output != NULL)
        snprintf(err, errlen, "--in-place writes over the inputs: leave out -o %s", p->output);
    else if (p->in_place && p->n_variants > 0)
        why = "--in-place and --variant: several outputs cannot all replace one input";
    else if (p->in_place && p->n_formats > 1)
        why = "--in-place and several -F: several outputs cannot all replace one input";
    else if (p->output == NULL && !p->dry_run && !p->in_place)
        why = "no output directory: give -o DIR (or --in-place)";
    else
        return 0;
    if (why != NULL)
        snprintf(err, errlen, "%s", why);
    return -1;
}

/* --placeholders goes somewhere; --manifest describes files written. */
static int check_manifest(const ib_plan_t *p, char *err, size_t errlen)
{
    if (p->placeholders && p->manifest == NULL && !p->json)
        return snprintf(err, errlen, "--placeholders needs --manifest FILE or --json"), -1;
    if (p->manifest != NULL && p->dry_run)
        return snprintf(err, errlen,
                        "--manifest and --dry-run: a dry run writes nothing, not even the "
                        "manifest (--dry-run --json lists what it would write)"),
               -1;
    return 0;
}

/* --report and --contact-sheet show files written; --columns and --tile
 * shape the sheet. */
static int check_report(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *which = p->report != NULL ? "--report" : "--contact-sheet";
    if ((p->report != NULL || p->contact_sheet != NULL) && p->dry_run)
        return snprintf(err, errlen,
                        "%s and --dry-run: a dry run writes nothing (--dry-run --json lists "
                        "what it would write)",
                        which),
               -1;
    if ((p->sheet_columns > 0 || p->tile_w > 0) && p->contact_sheet == NULL)
        return snprintf(err, errlen, "--%s works with --contact-sheet FILE: add it",
                        p->sheet_columns > 0 ? "columns" : "tile"),
               -1;
    return 0;
}

/* --watch keeps one folder's outputs current: a run that writes nothing,
 * a slice of the inputs or a list read once has nothing to keep. */
static int check_watch(const ib_plan_t *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!p->watch)
        return 0;
    if (p->dry_run)
        why = "--watch and --dry-run: a watcher converts what lands; a dry run writes nothing";
    else if (p->shard_text != NULL)
        why = "--watch and --shard: run one watcher per folder instead of slices of one";
    else if (p->files_from != NULL)
        why = "--watch and --files-from: --watch watches directories, not lists";
    else if (p->manifest != NULL)
        why = "--watch and --manifest: a manifest is written when a run ends and lists each "
              "input once; a watcher goes on, and converts a changed input again (--json "
              "reports each file as it is done)";
    for (int i = 0; i < p->n_inputs && why == NULL; i++)
        if (strcmp(p->inputs[i], "-") == 0)
            why = "--watch and -: --watch watches directories, not paths on stdin";
    if (why == NULL)
        return 0;
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* Everything that shapes the bytes of an output, and nothing else. */
static void build_recipe(ib_plan_t *p, const char *size_text, const char *filters)
{
    char formats[IB_MAX_FORMATS * 17] = "";
    for (unsigned i = 0; i < p->n_formats; i++) {
        strncat(formats, i ? "," : "", sizeof formats - strlen(formats) - 1);
        strncat(formats, p->formats[i], sizeof formats - strlen(formats) - 1);
    }
    int n =
        snprintf(p->recipe, sizeof p->recipe,
                 "v4;size=%s;filter=%s;format=%s;quality=%d;autorotate=%d;strict=%d;"
                 "interlace=%d;lossless=%d;compression=%d;metadata=%d;palette=%d:%u:%g;"
                 "effort=%d;subsample=%d;max_bytes=%llu%s%s%s%s",
                 size_text, filters, formats, p->quality, p->autorotate, p->strict, p->interlace,
                 p->lossless, p->compression, (int)p->metadata, p->palette, p->colors, p->dither,
                 p->effort, (int)p->subsample, (unsigned long long)p->max_bytes,
                 p->strip_gps ? ";nogps" : "", p->keep_smaller ? ";keep_smaller" : "",
                 p->font != NULL ? ";font=" : "", p->font != NULL ? p->font : "");
    /* Each output carries its own variant's geometry and encoding. */
    for (unsigned i = 0; i < p->n_variants && n > 0 && (size_t)n < sizeof p->recipe; i++) {
        const ib_variant_t *v = &p->variants[i];
        n += snprintf(p->recipe + n, sizeof p->recipe - (size_t)n, ";variant=%s:%g:%g:%u:%s:%d",
                      v->name, v->geom.w, v->geom.h, v->geom.flags, v->format, v->quality);
    }
}

/* The checks between options, once argv is read. */
static int finish(ib_cli_t *c)
{
    ib_plan_t *p = c->plan;
    if (p->n_inputs == 0 && p->files_from == NULL)
        return snprintf(c->err, c->errlen,
                        "usage: imgbatch [OPTIONS] INPUT... -o DIR: no INPUT given"),
               -1;
    if ((p->colors > 0 || p->dither >= 0) && !p->palette)
        return snprintf(c->err, c->errlen, "--%s works with --palette: add it",
                        p->colors > 0 ? "colors" : "dither"),
               -1;
    if (check_budget(p, c->err, c->errlen) < 0 || check_lossless(p, c->err, c->errlen) < 0 ||
        check_naming(p, c->err, c->errlen) < 0 || check_destination(p, c->err, c->errlen) < 0)
        return -1;
    if (check_manifest(p, c->err, c->errlen) < 0 || check_report(p, c->err, c->errlen) < 0 ||
        check_watch(p, c->err, c->errlen) < 0)
        return -1;
    if (p->shard_text != NULL && strncmp(p->shard_text, "auto", 4) != 0) {
        if (ib_shard_parse(p->shard_text, &p->shard, c->err, c->errlen) < 0)
            return -1;
        p->has_shard = 1;
    }
    if (p->chain.n + c->extra.n > IB_MAX_OPS)
        return snprintf(c->err, c->errlen, "too many filters (at most %d)", IB_MAX_OPS), -1;
    for (unsigned i = 0; i < c->extra.n; i++)
        p->chain.op[p->chain.n++] = c->extra.op[i];
    if (check_trim(p, c->err, c->errlen) < 0)
        return -1;
    p->want_date = strstr(p->name_template, "{date") != NULL;
    for (unsigned i = 0; i < p->chain.n; i++)
        p->want_date |= p->chain.op[i].kind == IB_OP_TEXT && strstr(p->chain.op[i].str, "{date");
    build_recipe(p, c->size_text != NULL ? c->size_text : "", c->filters);
    return 0;
}

int ib_cli_parse(int argc, char **argv, ib_plan_t *p, int *action, char *err, size_t errlen)
{
    ib_cli_t c = {.plan = p, .action = IB_CLI_RUN, .max_args = argc, .err = err, .errlen = errlen};
    set_defaults(p);
    /* Each glob option takes one argv slot at most. */
    p->includes = calloc((size_t)argc + 1, sizeof *p->includes);
    p->excludes = calloc((size_t)argc + 1, sizeof *p->excludes);
    if (p->includes == NULL || p->excludes == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    if (walk(&c, argc, argv) < 0)
        return -1;
    *action = c.action;
    if (c.action != IB_CLI_RUN)
        return 1;
    return finish(&c);
}

void ib_cli_free(ib_plan_t *p)
{
    free(p->includes);
    free(p->excludes);
    p->includes = p->excludes = NULL;
}

void ib_cli_print_version(FILE *f)
{
    /* The parent never starts libvips, so the versions are those it was
     * built against. */
    fprintf(f, "imgbatch %s\n", IB_VERSION);
    fprintf(f, "libvips %s (%s), libjpeg-turbo %s, libpng %s, libdeflate %s (built with)\n",
            IB_VIPS_VERSION, IB_VIPS_BUILD, IB_JPEG_VERSION, IB_PNG_VERSION, IB_DEFLATE_VERSION);
}

void ib_cli_print_help(FILE *f)
{
    ib_options_help(f);
}
