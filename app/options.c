/*
 * The option table and the functions that apply each option. See
 * options.h. Every setter is pure: it reads its value, fills the plan or
 * the parser's state, and on a bad value writes one line saying what it
 * wants into cli->err.
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "naming.h"

static int fail(ib_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ib_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- values ---- */

static int parse_uint(ib_cli_t *c, const char *opt, const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = *s == '-' || *s == '\0' ? 0 : strtoull(s, &end, 10);
    if (*s == '-' || *s == '\0' || errno != 0 || *end != '\0' || v < min || v > max)
        return fail(c, "%s wants a whole number from %llu to %llu, not '%s'", opt, min, max, s);
    *out = v;
    return 0;
}

/* "60k", "1.5M", "2G", "1048576": bytes, from min up. */
static int parse_bytes(ib_cli_t *c, const char *opt, const char *s, double min, const char *like,
                       uint64_t *out)
{
    static const char units[] = "kmgt";
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    uint64_t unit = 1;
    const char *u = *end != '\0' ? strchr(units, *end | 0x20) : NULL;
    if (u != NULL) {
        unit = 1ULL << (10 * (u - units + 1));
        end++;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v * unit < min || v * unit > 1e15)
        return fail(c, "%s wants a size of at least %s, not '%s'", opt, like, s);
    *out = (uint64_t)(v * unit);
    return 0;
}

static int parse_seconds(ib_cli_t *c, const char *opt, const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || end == s || !(v > 0) || v > 86400)
        return fail(c, "%s wants seconds (more than 0, at most 86400), not '%s'", opt, s);
    *ms = (unsigned)(v * 1000 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

static int parse_choice(ib_cli_t *c, const char *opt, const char *s, const char *const *names,
                        int *out)
{
    char list[256] = "";
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return fail(c, "%s wants one of %s, not '%s'", opt, list, s);
}

/* ---- setters, in the table's order ---- */

/* The names -F takes; "same" keeps each input's format. */
static const char *const formats[] = {"same", "jpg",  "jpeg", "png",  "webp", "tif", "tiff",
                                      "gif",  "avif", "heic", "heif", "jxl",  "jp2", NULL};

/* A format name as -F takes it, lower-cased: its index in formats. */
static int format_choice(ib_cli_t *c, const char *opt, const char *arg, int *choice)
{
    char lower[16];
    size_t n = strlen(arg) < sizeof lower ? strlen(arg) : sizeof lower - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)(arg[i] | 0x20);
    lower[n] = '\0';
    return parse_choice(c, opt, lower, formats, choice);
}

/* -F FMT, repeatable: each format is one more output of every input. */
static int set_format(ib_cli_t *c, const char *arg)
{
    ib_plan_t *p = c->plan;
    int choice;
    if (format_choice(c, "-F", arg, &choice) < 0)
        return -1;
    const char *name = choice == 0 ? "" : formats[choice];
    for (unsigned i = 0; i < p->n_formats; i++)
        if (strcmp(p->formats[i], name) == 0)
            return 0;
    if (p->n_formats == IB_MAX_FORMATS)
        return fail(c, "at most %d -F formats", IB_MAX_FORMATS);
    snprintf(p->formats[p->n_formats++], sizeof p->formats[0], "%s", name);
    return 0;
}

static int set_dither(ib_cli_t *c, const char *arg)
{
    char *end;
    double v = strtod(arg, &end);
    if (*arg == '\0' || *end != '\0' || !(v >= 0 && v <= 1))
        return fail(c, "--dither wants an amount from 0 to 1, like 0.5, not '%s'", arg);
    c->plan->dither = v;
    return 0;
}

static int set_max_bytes(ib_cli_t *c, const char *arg)
{
    return parse_bytes(c, "--max-bytes", arg, 1024, "1k, like 60k or 1.5M", &c->plan->max_bytes);
}

static int set_metadata(ib_cli_t *c, ib_metadata_t want)
{
    if (c->plan->metadata != IB_META_DEFAULT && c->plan->metadata != want)
        return fail(c, "--keep-metadata and --strip contradict each other");
    c->plan->metadata = want;
    return 0;
}

static int set_keep_metadata(ib_cli_t *c, const char *arg)
{
    (void)arg;
    return set_metadata(c, IB_META_KEEP);
}

static int set_strip(ib_cli_t *c, const char *arg)
{
    (void)arg;
    return set_metadata(c, IB_META_STRIP);
}

static int set_name(ib_cli_t *c, const char *arg)
{
    if (ib_name_check(arg, c->err, c->errlen) < 0)
        return -1;
    c->plan->name_template = arg;
    return 0;
}

/* The optional :FORMAT[:QUALITY] after a variant's geometry. */
static int variant_encoding(ib_cli_t *c, ib_variant_t *var, char *rest)
{
    char *q = strchr(rest, ':');
    if (q != NULL)
        *q++ = '\0';
    int choice = 0;
    char opt[64];
    snprintf(opt, sizeof opt, "--variant %s: FORMAT", var->name);
    if (rest[0] != '\0' && format_choice(c, opt, rest, &choice) < 0)
        return -1;
    snprintf(var->format, sizeof var->format, "%s", choice == 0 ? "" : formats[choice]);
    char *end;
    long v = q != NULL ? strtol(q, &end, 10) : 0;
    if (q != NULL && (*q == '\0' || *end != '\0' || v < 1 || v > 100))
        return fail(c, "--variant %s: QUALITY wants a whole number from 1 to 100, not '%s'",
                    var->name, q);
    var->quality = (int)v;
    return 0;
}

/* --variant NAME:GEOM[:FORMAT[:QUALITY]] */
static int set_variant(ib_cli_t *c, const char *arg)
{
    ib_plan_t *p = c->plan;
    const char *colon = strchr(arg, ':');
    size_t n = colon != NULL ? (size_t)(colon - arg) : 0;
    char err[256], geom[128];
    if (colon == NULL || n == 0 || n >= sizeof p->variants[0].name ||
        strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < n)
        return fail(c,
                    "--variant wants NAME:GEOM[:FORMAT[:QUALITY]] with a name of letters, digits, "
                    "- or _, not '%s'",
                    arg);
    if (p->n_variants == IB_MAX_VARIANTS)
        return fail(c, "at most %d --variant options", IB_MAX_VARIANTS);
    ib_variant_t *var = &p->variants[p->n_variants];
    memset(var, 0, sizeof *var);
    snprintf(var->name, sizeof var->name, "%.*s", (int)n, arg);
    for (unsigned i = 0; i < p->n_variants; i++)
        if (strcmp(p->variants[i].name, var->name) == 0)
            return fail(c, "--variant name '%s' given twice", var->name);
    snprintf(geom, sizeof geom, "%s", colon + 1);
    char *rest = strchr(geom, ':');
    if (rest != NULL)
        *rest++ = '\0';
    if (ib_geometry_parse(geom, &var->geom, err, sizeof err) < 0)
        return fail(c, "--variant %s: %s", var->name, err);
    if (rest != NULL && variant_encoding(c, var, rest) < 0)
        return -1;
    p->n_variants++;
    return 0;
}

static int set_size(ib_cli_t *c, const char *arg)
{
    char err[256];
    ib_op_t *op = &c->plan->chain.op[0];
    if (ib_geometry_parse(arg, &op->geom, err, sizeof err) < 0)
        return fail(c, "-s: %s", err);
    op->kind = IB_OP_RESIZE;
    c->plan->chain.n = 1;
    c->size_text = arg;
    return 0;
}

static int set_filter(ib_cli_t *c, const char *arg)
{
    char err[256];
    if (ib_chain_parse(&c->extra, arg, err, sizeof err) < 0)
        return fail(c, "-f: %s", err);
    strncat(c->filters, arg, sizeof c->filters - strlen(c->filters) - 2);
    strncat(c->filters, ";", sizeof c->filters - strlen(c->filters) - 1);
    return 0;
}

static int set_font(ib_cli_t *c, const char *arg)
{
    if (arg[0] == '\0')
        return fail(c, "--font wants a font name, like 'DejaVu Sans Bold', not ''");
    c->plan->font = arg;
    return 0;
}

static int set_max_memory(ib_cli_t *c, const char *arg)
{
    return parse_bytes(c, "--max-memory", arg, (double)(64ULL << 20), "64M, like 512M or 2G",
                       &c->plan->max_memory);
}

static int set_include(ib_cli_t *c, const char *arg)
{
    if (c->plan->n_includes >= c->max_args)
        return fail(c, "too many --include options");
    c->plan->includes[c->plan->n_includes++] = (char *)arg;
    return 0;
}

static int set_exclude(ib_cli_t *c, const char *arg)
{
    if (c->plan->n_excludes >= c->max_args)
        return fail(c, "too many --exclude options");
    c->plan->excludes[c->plan->n_excludes++] = (char *)arg;
    return 0;
}

static int set_timeout(ib_cli_t *c, const char *arg)
{
    return parse_seconds(c, "--timeout", arg, &c->plan->timeout_ms);
}

static int set_fail_fast(ib_cli_t *c, const char *arg)
{
    (void)arg;
    c->plan->max_errors = 1;
    return 0;
}

static int set_manifest(ib_cli_t *c, const char *arg)
{
    if (arg[0] == '\0' || arg[strlen(arg) - 1] == '/')
        return fail(c, "--manifest wants a file name, not '%s'", arg);
    c->plan->manifest = arg;
    return 0;
}

static int set_report(ib_cli_t *c, const char *arg)
{
    if (arg[0] == '\0' || arg[strlen(arg) - 1] == '/')
        return fail(c, "--report wants a file name, not '%s'", arg);
    c->plan->report = arg;
    return 0;
}

static int set_contact_sheet(ib_cli_t *c, const char *arg)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"};
    const char *dot = strrchr(arg, '.'), *slash = strrchr(arg, '/');
    int named = dot != NULL && dot != arg && (slash == NULL || slash + 1 < dot);
    for (size_t i = 0; named && i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot, exts[i]) == 0) {
            c->plan->contact_sheet = arg;
            return 0;
        }
    return fail(c, "--contact-sheet wants a .jpg, .png, .webp or .tif file name, not '%s'", arg);
}

/* "WxH", each side 16 to 4000 pixels. */
static int set_tile(ib_cli_t *c, const char *arg)
{
    unsigned w = 0, h = 0;
    char x = 0, tail = 0;
    if (sscanf(arg, "%5u%c%5u%c", &w, &x, &h, &tail) != 3 || (x != 'x' && x != 'X') || w < 16 ||
        h < 16 || w > 4000 || h > 4000 || arg[0] < '0' || arg[0] > '9')
        return fail(c, "--tile wants WxH, each from 16 to 4000 pixels, not '%s'", arg);
    c->plan->tile_w = w;
    c->plan->tile_h = h;
    return 0;
}

static int set_help(ib_cli_t *c, const char *arg)
{
    (void)arg;
    c->action = IB_CLI_HELP;
    return 0;
}

static int set_version(ib_cli_t *c, const char *arg)
{
    (void)arg;
    c->action = IB_CLI_VERSION;
    return 0;
}

/* ---- the table ---- */

/* A switch that sets an int field of the plan: no setter of its own. */
#define SWITCH(f, v)                                                                               \
    NULL,                                                                                          \
    {                                                                                              \
        offsetof(ib_plan_t, f), IB_FIELD_SWITCH, 0, 0, v                                           \
    }
/* A value stored as given in a const char * field of the plan. */
#define TEXT(f)                                                                                    \
    NULL,                                                                                          \
    {                                                                                              \
        offsetof(ib_plan_t, f), IB_FIELD_TEXT, 0, 0, 0                                             \
    }
/* One of the option's offered words, in an enum field in their order. */
#define CHOICE(f)                                                                                  \
    NULL,                                                                                          \
    {                                                                                              \
        offsetof(ib_plan_t, f), IB_FIELD_CHOICE, 0, 0, 0                                           \
    }
/* A whole number from min to max in a plan field of that kind. */
#define NUMBER(f, kind, min, max)                                                                  \
    NULL,                                                                                          \
    {                                                                                              \
        offsetof(ib_plan_t, f), IB_FIELD_##kind, min, max, 0                                       \
    }

#define OUT "Output"
#define PIX "Pixels"
#define SCAN "Scanning"
#define RUN "Running"

const ib_option_t ib_options[] = {
    {"output", 'o', "DIR", OUT, "output root (created as needed)", "@dir", TEXT(output)},
    {"in-place", 0, NULL, OUT,
     "replace each input (written aside, then renamed\n"
     "over it; the original stays if anything fails)",
     NULL, SWITCH(in_place, 1)},
    {"base", 0, "DIR", OUT, "mirror files named one by one relative to DIR", "@dir", TEXT(base)},
    {"format", 'F', "FMT", OUT,
     "same (default), jpg, png, webp, tiff, gif, avif, heif,\n"
     "jxl, jp2; repeat for several formats from one decode",
     "same jpg jpeg png webp tif tiff gif avif heic heif jxl jp2", set_format},
    {"quality", 0, "N", OUT, "encoder quality 1-100 (defaults: JPEG 85, WebP 80,\nAVIF/HEIF 50)",
     NULL, NUMBER(quality, INT, 1, 100)},
    {"interlace", 0, NULL, OUT, "progressive JPEG, interlaced PNG", NULL, SWITCH(interlace, 1)},
    {"lossless", 0, NULL, OUT, "lossless WebP, AVIF/HEIF, JPEG XL, PNG, TIFF", NULL,
     SWITCH(lossless, 1)},
    {"compression", 0, "N", OUT, "PNG zlib level 0-9 (default 6)", "0 1 2 3 4 5 6 7 8 9",
     NUMBER(compression, INT, 0, 9)},
    {"max-bytes", 0, "SIZE", OUT,
     "at most SIZE bytes an output (60k, 1.5M): the highest\n"
     "quality that fits (JPEG, WebP, AVIF/HEIF), or with\n"
     "--palette the most colours (PNG, GIF)",
     NULL, set_max_bytes},
    {"palette", 0, NULL, OUT, "PNG and GIF with a palette of at most 256 colours", NULL,
     SWITCH(palette, 1)},
    {"colors", 0, "N", OUT,
     "with --palette: at most N colours (2-256; the palette\n"
     "holds 2, 4, 16 or 256, so N is rounded down to one)",
     NULL, NUMBER(colors, UINT, 2, 256)},
    {"dither", 0, "F", OUT, "with --palette: dithering from 0 (none) to 1", NULL, set_dither},
    {"effort", 0, "N", OUT,
     "encoder CPU effort 0-9 against size: WebP (0-6,\n"
     "higher capped), AVIF/HEIF, JPEG XL",
     NULL, NUMBER(effort, INT, 0, 9)},
    {"subsample", 0, "MODE", OUT, "JPEG chroma subsampling: auto (default), on, off", "auto on off",
     CHOICE(subsample)},
    {"preserve-times", 0, NULL, OUT,
     "give each output its input's modification time\n"
     "(re-runs still redo an input that changed)",
     NULL, SWITCH(preserve_times, 1)},
    {"keep-smaller", 0, NULL, OUT,
     "an output in its input's format and size that\n"
     "comes out larger is the input's bytes instead;\n"
     "with --in-place, no file grows",
     NULL, SWITCH(keep_smaller, 1)},
    {"keep-metadata", 0, NULL, OUT, "keep EXIF and XMP (default: only the ICC profile)", NULL,
     set_keep_metadata},
    {"strip", 0, NULL, OUT, "strip all metadata, the ICC profile too", NULL, set_strip},
    {"strip-gps", 0, NULL, OUT,
     "with --keep-metadata: drop the GPS position, keep\nthe rest of the EXIF and XMP", NULL,
     SWITCH(strip_gps, 1)},
    {"name", 0, "TEMPLATE", OUT,
     "output path under DIR, default {dir}/{stem}.{ext};\n"
     "fields {dir} {stem} {ext} {w} {h} {variant} {date}\n"
     "{date:FMT} {hash} (of the output's bytes)",
     NULL, set_name},
    {"if-exists", 0, "MODE", OUT,
     "update (default: redo when the input or the recipe\nchanged), overwrite, skip, fail",
     "update overwrite skip fail", CHOICE(if_exists)},
    {"variant", 0, "NAME:GEOM[:FMT[:Q]]", OUT,
     "one more output per input\n"
     "(repeatable): the chain's result resized to GEOM,\n"
     "in format FMT at quality Q if given (else every -F);\n"
     "a shrink-only GEOM (W>) that would enlarge is not\n"
     "written; with two or more, --name needs {variant},\n"
     "{w} or {h}",
     NULL, set_variant},
    {"size", 's', "GEOM", PIX,
     "resize, ImageMagick geometry: W, xH, WxH, WxH>,\nWxH<, WxH^, WxH!, P%, AREA@ (done first)",
     NULL, set_size},
    {"filter", 'f', "CHAIN", PIX,
     "ops in order, comma-separated; repeatable:\n"
     "resize=GEOM crop=WxH[+X+Y] crop=WxH:GRAVITY\n"
     "(center north ... southwest attention entropy)\n"
     "rotate=DEG[:COLOR] autorotate flip flop grayscale\n"
     "blur=SIGMA sharpen[=SIGMA] brightness=F contrast=F\n"
     "gamma=G modulate=B:S:H sepia negate normalize\n"
     "threshold=N pad=WxH[:COLOR[:GRAVITY]] flatten[=COLOR]\n"
     "trim[=THRESHOLD] border=N[:COLOR]\n"
     "overlay=FILE[:GRAVITY[:MARGIN[:OPACITY[:WIDTH%]]]]\n"
     "text=STRING[:GRAVITY[:SIZE[:COLOR]]], STRING with\n"
     "{stem} {ext} {w} {h} {date[:FORMAT]}\n"
     "colours: #rrggbb, #rrggbbaa or a name;\n"
     "\\, and \\: put a comma or colon in a value",
     "@chain", set_filter},
    {"font", 0, "NAME", PIX, "font of text ops, e.g. 'DejaVu Sans Bold'\n(default sans)", NULL,
     set_font},
    {"no-autorotate", 0, NULL, PIX, "keep pixels as stored, ignoring EXIF orientation", NULL,
     SWITCH(autorotate, 0)},
    {"lenient", 0, NULL, PIX, "accept images the decoder warns about", NULL, SWITCH(strict, 0)},
    {"max-pixels", 0, "N", PIX, "refuse images larger than N pixels (default 268402689)", NULL,
     NUMBER(max_pixels, U64, 1, UINT64_MAX / 2)},
    {"max-memory", 0, "SIZE", PIX,
     "memory a worker may use for an image, e.g. 512M or\n"
     "2G; an image that needs more fails, the run goes on",
     NULL, set_max_memory},
    {"hidden", 0, NULL, SCAN, "include hidden files and directories", NULL, SWITCH(hidden, 1)},
    {"follow-symlinks", 0, NULL, SCAN, "walk into symlinked directories (loops are detected)", NULL,
     SWITCH(follow_symlinks, 1)},
    {"include", 0, "GLOB", SCAN, "only paths matching GLOB (repeatable)", NULL, set_include},
    {"exclude", 0, "GLOB", SCAN,
     "skip paths (and directories) matching GLOB\n"
     "(repeatable); globs match the path under its input\n"
     "directory: * ? [..] and ** (any depth); a glob\n"
     "without / matches file names",
     NULL, set_exclude},
    {"max-depth", 0, "N", SCAN, "descend at most N directories below each input", NULL,
     NUMBER(max_depth, INT, 0, 10000)},
    {"files-from", 0, "FILE", SCAN, "read input paths from FILE (- for stdin), one per line",
     "@file", TEXT(files_from)},
    {"null", '0', NULL, SCAN, "paths in lists are separated by NUL (find -print0)", NULL,
     SWITCH(null_separated, 1)},
    {"shard", 0, "K/N", SCAN,
     "take only the K-th of N slices of the inputs\n"
     "(1-based); auto or auto/N read Slurm or Kubernetes\n"
     "job indexes",
     "auto auto/", TEXT(shard_text)},
    {"jobs", 'j', "N", RUN,
     "worker processes (default: the CPUs this task may use:\n"
     "SLURM_CPUS_PER_TASK, else the CPU affinity mask)",
     NULL, NUMBER(jobs, UINT, 1, 256)},
    {"timeout", 0, "SEC", RUN, "give up on an image after SEC seconds", NULL, set_timeout},
    {"worker-jobs", 0, "N", RUN, "replace each worker after N images", NULL,
     NUMBER(worker_jobs, UINT, 1, UINT_MAX)},
    {"fail-fast", 0, NULL, RUN, "stop at the first failure (running images finish)", NULL,
     set_fail_fast},
    {"max-errors", 0, "N", RUN, "stop after N failures", NULL,
     NUMBER(max_errors, UINT, 1, UINT_MAX)},
    {"dry-run", 0, NULL, RUN, "show what would be written, write nothing", NULL,
     SWITCH(dry_run, 1)},
    {"watch", 0, NULL, RUN,
     "keep running: convert each image that appears or\n"
     "changes under the input directories (SIGTERM stops)",
     NULL, SWITCH(watch, 1)},
    {"json", 0, NULL, RUN, "one JSON object per line on stdout", NULL, SWITCH(json, 1)},
    {"manifest", 0, "FILE", RUN,
     "write FILE at the end: one JSON document listing\n"
     "each input's size and outputs; {shard} in FILE\n"
     "becomes the --shard number K",
     "@file", set_manifest},
    {"placeholders", 0, NULL, RUN,
     "add each image's dominant colour, BlurHash and\n"
     "tiny inline copy (LQIP) to --manifest and --json",
     NULL, SWITCH(placeholders, 1)},
    {"report", 0, "FILE", RUN,
     "write FILE at the end: an HTML page of the run\n"
     "(thumbnails, sizes, times, failures first);\n"
     "{shard} in FILE becomes the --shard number K",
     "@file", set_report},
    {"contact-sheet", 0, "FILE", RUN,
     "write FILE (.jpg .png .webp .tif) at the end: a\n"
     "grid of the outputs' thumbnails, each named; past\n"
     "2500 tiles, numbered sheets FILE-1, FILE-2, ...",
     "@file", set_contact_sheet},
    {"columns", 0, "N", RUN, "tiles across the contact sheet (default: about square)", NULL,
     NUMBER(sheet_columns, UINT, 1, 1000)},
    {"tile", 0, "WxH", RUN, "contact sheet tile size (default 200x200)", NULL, set_tile},
    {"progress", 0, "WHEN", RUN, "auto (default), always, never", "auto always never",
     CHOICE(progress)},
    {"quiet", 'q', NULL, RUN, "only errors", NULL, SWITCH(quiet, 1)},
    {"verbose", 'v', NULL, RUN, "one line per file", NULL, SWITCH(verbose, 1)},
    {"help", 'h', NULL, RUN, "this help", NULL, set_help},
    {"version", 0, NULL, RUN, "versions of imgbatch and its libraries", NULL, set_version},
};

const size_t ib_n_options = sizeof ib_options / sizeof ib_options[0];

/* Enums the choice fields are stored in, as int. */
_Static_assert(sizeof(ib_subsample_t) == sizeof(int) && sizeof(ib_exists_t) == sizeof(int) &&
                   sizeof(ib_progress_t) == sizeof(int),
               "a choice field is an int");

/* arg's index among the space-separated words, or a usage error naming
 * them all. */
static int offered_word(ib_cli_t *c, const char *opt, const char *words, const char *arg, int *out)
{
    char copy[256];
    const char *names[16];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", words);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w != NULL && n < 15;
         w = strtok_r(NULL, " ", &save))
        names[n++] = w;
    names[n] = NULL;
    return parse_choice(c, opt, arg, names, out);
}

int ib_option_apply(ib_cli_t *cli, const ib_option_t *o, const char *arg)
{
    if (o->set != NULL)
        return o->set(cli, arg);
    void *at = (char *)cli->plan + o->field.offset;
    if (o->field.kind == IB_FIELD_SWITCH) {
        *(int *)at = o->field.value;
        return 0;
    }
    if (o->field.kind == IB_FIELD_TEXT) {
        *(const char **)at = arg;
        return 0;
    }
    /* Named as the user would type it: "-j", "--quality". */
    char name[64];
    if (o->letter != 0)
        snprintf(name, sizeof name, "-%c", o->letter);
    else
        snprintf(name, sizeof name, "--%s", o->name);
    if (o->field.kind == IB_FIELD_CHOICE)
        return offered_word(cli, name, o->offers, arg, (int *)at);
    unsigned long long v = 0;
    if (parse_uint(cli, name, arg, o->field.min, o->field.max, &v) < 0)
        return -1;
    if (o->field.kind == IB_FIELD_INT)
        *(int *)at = (int)v;
    else if (o->field.kind == IB_FIELD_UINT)
        *(unsigned *)at = (unsigned)v;
    else
        *(uint64_t *)at = v;
    return 0;
}

/* ---- what the table is turned into ---- */

/* "  -o, --output DIR" or "      --in-place": an option's left column. */
static void help_names(const ib_option_t *o, char *buf, size_t cap)
{
    char letter[8] = "    ";
    if (o->letter != 0)
        snprintf(letter, sizeof letter, "-%c, ", o->letter);
    snprintf(buf, cap, "  %s--%s%s%s", letter, o->name, o->value != NULL ? " " : "",
             o->value != NULL ? o->value : "");
}

/* One option: its names, then its help lines in the second column. */
static void help_option(FILE *f, const ib_option_t *o)
{
    enum { COLUMN = 26 };
    char names[64];
    help_names(o, names, sizeof names);
    const char *line = o->help;
    int width = (int)strlen(names) < COLUMN ? COLUMN : (int)strlen(names) + 1;
    fprintf(f, "%-*s", width, names);
    for (;;) {
        size_t n = strcspn(line, "\n");
        fprintf(f, "%.*s\n", (int)n, line);
        if (line[n] == '\0')
            break;
        line += n + 1;
        fprintf(f, "%*s", COLUMN, "");
    }
}

void ib_options_help(FILE *f)
{
    fputs("usage: imgbatch [OPTIONS] INPUT... -o DIR\n"
          "\n"
          "Resize and convert a folder of images with a pool of worker processes.\n"
          "INPUT is an image file, a directory (walked recursively, its tree mirrored\n"
          "under DIR) or - to read paths from standard input, one per line.\n"
          "@FILE anywhere stands for the arguments written in FILE (whitespace-\n"
          "separated, shell quotes, # comments; nested @FILEs are read too).\n",
          f);
    for (size_t i = 0; i < ib_n_options; i++) {
        if (i == 0 || strcmp(ib_options[i].group, ib_options[i - 1].group) != 0)
            fprintf(f, "\n%s:\n", ib_options[i].group);
        help_option(f, &ib_options[i]);
    }
    fputs("\n"
          "Examples:\n"
          "  imgbatch photos/ -o thumbs/ -s 256x256\n"
          "  imgbatch photos/ -o web/ -s '1600x1600>' -F webp --quality 80\n"
          "  find . -name '*.png' -print0 | imgbatch --files-from - -0 -o out/ -F jpg\n"
          "  imgbatch photos/ -o out/ --variant sm:320x --variant lg:1280x -F webp\n"
          "  imgbatch photos/ -o out/ -f 'resize=800x800>,sharpen,grayscale' --json\n"
          "  imgbatch photos/ -o site/ --variant sm:320x -F webp --manifest site/m.json \\\n"
          "      --placeholders\n"
          "\n"
          "Exit status: 0 all done or up to date, 1 some inputs failed, 2 bad usage,\n"
          "130 interrupted.\n",
          f);
}
