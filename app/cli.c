/*
 * Command-line parsing into the plan. Every usage error is one line on
 * stderr naming the offending value, and nothing is touched before the
 * whole command line has been checked.
 */
#include "plan.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ib_config.h"
#include "naming.h"

enum {
    OPT_BASE = 256,
    OPT_QUALITY,
    OPT_NAME,
    OPT_IF_EXISTS,
    OPT_TIMEOUT,
    OPT_MAX_PIXELS,
    OPT_WORKER_JOBS,
    OPT_NO_AUTOROTATE,
    OPT_LENIENT,
    OPT_HIDDEN,
    OPT_FOLLOW,
    OPT_JSON,
    OPT_DRY_RUN,
    OPT_PROGRESS,
    OPT_VERSION,
    OPT_VARIANT,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_FILES_FROM,
    OPT_MAX_DEPTH,
    OPT_SHARD,
    OPT_INTERLACE,
    OPT_LOSSLESS,
    OPT_COMPRESSION,
    OPT_KEEP_METADATA,
    OPT_STRIP,
    OPT_MAX_MEMORY,
    OPT_MAX_ERRORS,
    OPT_FAIL_FAST,
    OPT_IN_PLACE,
};

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"base", required_argument, NULL, OPT_BASE},
    {"size", required_argument, NULL, 's'},
    {"filter", required_argument, NULL, 'f'},
    {"format", required_argument, NULL, 'F'},
    {"quality", required_argument, NULL, OPT_QUALITY},
    {"interlace", no_argument, NULL, OPT_INTERLACE},
    {"lossless", no_argument, NULL, OPT_LOSSLESS},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"keep-metadata", no_argument, NULL, OPT_KEEP_METADATA},
    {"strip", no_argument, NULL, OPT_STRIP},
    {"name", required_argument, NULL, OPT_NAME},
    {"if-exists", required_argument, NULL, OPT_IF_EXISTS},
    {"jobs", required_argument, NULL, 'j'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
    {"worker-jobs", required_argument, NULL, OPT_WORKER_JOBS},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"max-errors", required_argument, NULL, OPT_MAX_ERRORS},
    {"fail-fast", no_argument, NULL, OPT_FAIL_FAST},
    {"in-place", no_argument, NULL, OPT_IN_PLACE},
    {"no-autorotate", no_argument, NULL, OPT_NO_AUTOROTATE},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    {"hidden", no_argument, NULL, OPT_HIDDEN},
    {"follow-symlinks", no_argument, NULL, OPT_FOLLOW},
    {"json", no_argument, NULL, OPT_JSON},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"progress", required_argument, NULL, OPT_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"variant", required_argument, NULL, OPT_VARIANT},
    {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"files-from", required_argument, NULL, OPT_FILES_FROM},
    {"null", no_argument, NULL, '0'},
    {"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char *formats[] = {"same", "jpg",  "jpeg", "png",  "webp", "tif", "tiff",
                                "gif",  "avif", "heic", "heif", "jxl",  "jp2", NULL};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("imgbatch: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see imgbatch --help)\n", stderr);
}

static void print_help(void)
{
    fputs("usage: imgbatch [OPTIONS] INPUT... -o DIR\n"
          "\n"
          "Resize and convert a folder of images with a pool of worker processes.\n"
          "INPUT is an image file, a directory (walked recursively, its tree mirrored\n"
          "under DIR) or - to read paths from standard input, one per line.\n"
          "\n"
          "Output:\n"
          "  -o, --output DIR        output root (created as needed)\n"
          "      --in-place          replace each input (written aside, then renamed over it;\n"
          "                          the original stays if anything fails)\n"
          "      --base DIR          mirror files named one by one relative to DIR\n"
          "  -F, --format FMT        same (default), jpg, png, webp, tiff, gif, avif, heif\n"
          "      --quality N         encoder quality 1-100 (defaults: JPEG 85, WebP 80,\n"
          "                          AVIF/HEIF 50)\n"
          "      --interlace         progressive JPEG, interlaced PNG\n"
          "      --lossless          lossless WebP, AVIF/HEIF, JPEG XL\n"
          "      --compression N     PNG zlib level 0-9 (default 6)\n"
          "      --keep-metadata     keep EXIF and XMP (default: only the ICC profile)\n"
          "      --strip             strip all metadata, the ICC profile too\n"
          "      --name TEMPLATE     output path under DIR, default {dir}/{stem}.{ext};\n"
          "                          fields {dir} {stem} {ext} {w} {h} {variant}\n"
          "      --variant NAME:GEOM one more output per variant, resized to GEOM from one\n"
          "                          decode (repeatable); named {dir}/{stem}-{variant}.{ext}\n"
          "      --if-exists MODE    update (default: redo when the input or the recipe\n"
          "                          changed), overwrite, skip, fail\n"
          "\n"
          "Pixels:\n"
          "  -s, --size GEOM         resize, ImageMagick geometry: W, xH, WxH, WxH>,\n"
          "                          WxH<, WxH^, WxH!, P%, AREA@ (done first)\n"
          "  -f, --filter CHAIN      ops in order, comma-separated; repeatable:\n"
          "                          resize=GEOM crop=WxH[+X+Y] crop=WxH:GRAVITY\n"
          "                          (center north ... southwest attention entropy)\n"
          "                          rotate=DEG[:COLOR] autorotate flip flop grayscale\n"
          "                          blur=SIGMA sharpen[=SIGMA] brightness=F contrast=F\n"
          "                          gamma=G modulate=B:S:H sepia negate normalize\n"
          "                          threshold=N pad=WxH[:COLOR] flatten[=COLOR]\n"
          "                          colours: #rrggbb, #rrggbbaa or a name\n"
          "      --no-autorotate     keep pixels as stored, ignoring EXIF orientation\n"
          "      --lenient           accept images the decoder warns about\n"
          "      --max-pixels N      refuse images larger than N pixels (default 268402689)\n"
          "      --max-memory SIZE   memory a worker may use for an image, e.g. 512M or\n"
          "                          2G; an image that needs more fails, the run goes on\n"
          "\n"
          "Scanning:\n"
          "      --hidden            include hidden files and directories\n"
          "      --follow-symlinks   walk into symlinked directories (loops are detected)\n"
          "      --include GLOB      only paths matching GLOB (repeatable)\n"
          "      --exclude GLOB      skip paths (and directories) matching GLOB (repeatable);\n"
          "                          globs match the path under its input directory: * ? [..]\n"
          "                          and ** (any depth); a glob without / matches file names\n"
          "      --max-depth N       descend at most N directories below each input\n"
          "      --files-from FILE   read input paths from FILE (- for stdin), one per line\n"
          "  -0, --null              paths in lists are separated by NUL (find -print0)\n"
          "      --shard K/N         take only the K-th of N slices of the inputs (1-based);\n"
          "                          auto or auto/N read Slurm or Kubernetes job indexes\n"
          "\n"
          "Running:\n"
          "  -j, --jobs N            worker processes (default: the CPUs this task may use:\n"
          "                          SLURM_CPUS_PER_TASK, else the CPU affinity mask)\n"
          "      --timeout SEC       give up on an image after SEC seconds\n"
          "      --worker-jobs N     replace each worker after N images\n"
          "      --fail-fast         stop at the first failure (running images finish)\n"
          "      --max-errors N      stop after N failures\n"
          "      --dry-run           show what would be written, write nothing\n"
          "      --json              one JSON object per line on stdout\n"
          "      --progress WHEN     auto (default), always, never\n"
          "  -q, --quiet             only errors\n"
          "  -v, --verbose           one line per file\n"
          "  -h, --help              this help\n"
          "      --version           versions of imgbatch and its libraries\n"
          "\n"
          "Examples:\n"
          "  imgbatch photos/ -o thumbs/ -s 256x256\n"
          "  imgbatch photos/ -o web/ -s '1600x1600>' -F webp --quality 80\n"
          "  find . -name '*.png' -print0 | imgbatch --files-from - -0 -o out/ -F jpg\n"
          "  imgbatch photos/ -o out/ --variant sm:320x --variant lg:1280x -F webp\n"
          "  imgbatch photos/ -o out/ -f 'resize=800x800>,sharpen,grayscale' --json\n"
          "\n"
          "Exit status: 0 all done or up to date, 1 some inputs failed, 2 bad usage,\n"
          "130 interrupted.\n",
          stdout);
}

static int parse_uint(const char *opt, const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0') {
        usage_error("%s wants a whole number from %llu to %llu, not '%s'", opt, min, max, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        usage_error("%s wants a whole number from %llu to %llu, not '%s'", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* "512M", "2G", "1048576": bytes, at least 64 MiB. */
static int parse_size(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    uint64_t unit = 1;
    switch (*end) {
    case 'k':
    case 'K':
        unit = 1ULL << 10, end++;
        break;
    case 'm':
    case 'M':
        unit = 1ULL << 20, end++;
        break;
    case 'g':
    case 'G':
        unit = 1ULL << 30, end++;
        break;
    case 't':
    case 'T':
        unit = 1ULL << 40, end++;
        break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v * unit < (double)(64ULL << 20) ||
        v * unit > 1e15) {
        usage_error("%s wants a size of at least 64M, like 512M or 2G, not '%s'", opt, s);
        return -1;
    }
    *out = (uint64_t)(v * unit);
    return 0;
}

static int parse_seconds(const char *opt, const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || end == s || !(v > 0) || v > 86400) {
        usage_error("%s wants seconds (more than 0, at most 86400), not '%s'", opt, s);
        return -1;
    }
    *ms = (unsigned)(v * 1000 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

static int parse_choice(const char *opt, const char *s, const char *const *names, int *out)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char list[256] = "";
    for (int i = 0; names[i] != NULL; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    usage_error("%s wants one of %s, not '%s'", opt, list, s);
    return -1;
}

/* The CPUs this task was given: a Slurm task's allocation, else the
 * affinity mask (which containers and taskset narrow), else all online. */
static unsigned default_jobs(void)
{
    const char *slurm = getenv("SLURM_CPUS_PER_TASK");
    if (slurm != NULL) {
        char *end;
        unsigned long n = strtoul(slurm, &end, 10);
        if (*slurm != '\0' && *end == '\0' && n >= 1 && n <= 256)
            return (unsigned)n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void print_version(void)
{
    /* The parent never starts libvips, so the versions are those it was
     * built against. */
    printf("imgbatch %s\n", IB_VERSION);
    printf("libvips %s (%s), libjpeg-turbo %s, libpng %s, libdeflate %s (built with)\n",
           IB_VIPS_VERSION, IB_VIPS_BUILD, IB_JPEG_VERSION, IB_PNG_VERSION, IB_DEFLATE_VERSION);
}

static int parse_variant(ib_plan_t *p, const char *arg)
{
    const char *colon = strchr(arg, ':');
    size_t n = colon != NULL ? (size_t)(colon - arg) : 0;
    char err[256];
    if (colon == NULL || n == 0 || n >= sizeof p->variants[0].name ||
        strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < n) {
        usage_error("--variant wants NAME:GEOM with a name of letters, digits, - or _, "
                    "not '%s'",
                    arg);
        return -1;
    }
    if (p->n_variants == IB_MAX_VARIANTS) {
        usage_error("at most %d --variant options", IB_MAX_VARIANTS);
        return -1;
    }
    ib_variant_t *var = &p->variants[p->n_variants];
    snprintf(var->name, sizeof var->name, "%.*s", (int)n, arg);
    for (unsigned i = 0; i < p->n_variants; i++)
        if (strcmp(p->variants[i].name, var->name) == 0) {
            usage_error("--variant name '%s' given twice", var->name);
            return -1;
        }
    if (ib_geometry_parse(colon + 1, &var->geom, err, sizeof err) < 0) {
        usage_error("--variant %s: %s", var->name, err);
        return -1;
    }
    p->n_variants++;
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
 * the -F format's: otherwise the file's name lies about its bytes. */
static int check_name_extension(const ib_plan_t *p)
{
    const char *slash = strrchr(p->name_template, '/');
    const char *last = slash != NULL ? slash + 1 : p->name_template;
    const char *dot = strrchr(last, '.');
    if (p->format[0] == '\0' || dot == NULL || strpbrk(dot, "{}") != NULL)
        return 0;
    const char *named = format_of_extension(dot + 1);
    if (named == NULL || strcmp(named, format_of_extension(p->format)) == 0)
        return 0;
    usage_error("--name '%s' ends in %s, but -F %s writes %s files: use .{ext}, or -F %s",
                p->name_template, dot, p->format, format_of_extension(p->format), dot + 1);
    return -1;
}

/* The directory an input's mirrored path is relative to: the input itself
 * for a directory, else --base or the file's own directory. */
static int input_root(const ib_plan_t *p, const char *in, struct stat *st)
{
    if (stat(in, st) < 0 || S_ISDIR(st->st_mode))
        return 0;
    char dir[PATH_MAX];
    const char *slash = strrchr(in, '/');
    if (p->base != NULL)
        snprintf(dir, sizeof dir, "%s", p->base);
    else
        snprintf(dir, sizeof dir, "%.*s", slash != NULL ? (int)(slash - in + 1) : 1,
                 slash != NULL ? in : ".");
    return stat(dir, st);
}

/* Whether --name gives each input its own name back (the default does). */
static int names_unchanged(const ib_plan_t *p)
{
    ib_name_vars_t v = {.rel = "d/s.e", .ext = "e", .width = 1, .height = 1};
    if (p->n_variants > 0)
        v.variant = p->variants[0].name;
    char out[64];
    return ib_name_render("r", p->name_template, &v, out, sizeof out) == 0 &&
           strcmp(out, "r/d/s.e") == 0;
}

/* An output root that is where the inputs are, with names that do not
 * change, would have every output replace its input: that is --in-place,
 * and not something to do by accident. */
static int check_output_not_input(const ib_plan_t *p)
{
    struct stat out, in;
    if (p->output == NULL || stat(p->output, &out) < 0 || !names_unchanged(p))
        return 0;
    for (int i = 0; i < p->n_inputs; i++) {
        if (strcmp(p->inputs[i], "-") == 0 || input_root(p, p->inputs[i], &in) < 0 ||
            in.st_dev != out.st_dev || in.st_ino != out.st_ino)
            continue;
        usage_error("-o %s is where the input '%s' is: every output would replace its input; "
                    "use --in-place for that, or a --name that makes new names, like "
                    "'{dir}/{stem}-small.{ext}'",
                    p->output, p->inputs[i]);
        return -1;
    }
    return 0;
}

static void build_recipe(ib_plan_t *p, const char *size_text, const char *filters)
{
    /* Everything that shapes the bytes of an output, and nothing else. */
    int n = snprintf(p->recipe, sizeof p->recipe,
                     "v3;size=%s;filter=%s;format=%s;quality=%d;autorotate=%d;strict=%d;"
                     "interlace=%d;lossless=%d;compression=%d;metadata=%d",
                     size_text, filters, p->format, p->quality, p->autorotate, p->strict,
                     p->interlace, p->lossless, p->compression, p->metadata);
    /* Each output carries its own variant's geometry. */
    for (unsigned i = 0; i < p->n_variants && n > 0 && (size_t)n < sizeof p->recipe; i++) {
        const ib_geometry_t *g = &p->variants[i].geom;
        n += snprintf(p->recipe + n, sizeof p->recipe - (size_t)n, ";variant=%s:%g:%g:%u",
                      p->variants[i].name, g->w, g->h, g->flags);
    }
}

int ib_cli_parse(int argc, char **argv, ib_plan_t *p)
{
    static const char *const exists_names[] = {"update", "overwrite", "skip", "fail", NULL};
    static const char *const progress_names[] = {"auto", "always", "never", NULL};
    const char *size_text = "";
    const char *shard_text = NULL;
    char filters[1024] = "";
    ib_chain_t extra = {.n = 0};
    char err[512];
    unsigned long long v;
    int choice;

    memset(p, 0, sizeof *p);
    p->jobs = default_jobs();
    p->max_pixels = 268402689ULL; /* 0x3FFF * 0x3FFF, as sharp */
    p->autorotate = 1;
    p->strict = 1;
    p->name_template = NULL;
    p->max_depth = -1;
    p->compression = -1;
    /* Each glob option takes one argv slot at most. */
    p->includes = calloc((size_t)argc + 1, sizeof *p->includes);
    p->excludes = calloc((size_t)argc + 1, sizeof *p->excludes);
    if (p->includes == NULL || p->excludes == NULL) {
        usage_error("out of memory");
        return -1;
    }

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:s:f:F:j:0qvh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            p->output = optarg;
            break;
        case OPT_BASE:
            p->base = optarg;
            break;
        case 's':
            if (ib_geometry_parse(optarg, &p->chain.op[0].geom, err, sizeof err) < 0) {
                usage_error("-s: %s", err);
                return -1;
            }
            p->chain.op[0].kind = IB_OP_RESIZE;
            p->chain.n = 1;
            size_text = optarg;
            break;
        case 'f':
            if (ib_chain_parse(&extra, optarg, err, sizeof err) < 0) {
                usage_error("-f: %s", err);
                return -1;
            }
            strncat(filters, optarg, sizeof filters - strlen(filters) - 2);
            strncat(filters, ";", sizeof filters - strlen(filters) - 1);
            break;
        case 'F': {
            char lower[16];
            size_t n = strlen(optarg);
            if (n >= sizeof lower)
                n = sizeof lower - 1;
            for (size_t i = 0; i < n; i++)
                lower[i] = (char)(optarg[i] | 0x20);
            lower[n] = '\0';
            if (parse_choice("-F", lower, formats, &choice) < 0)
                return -1;
            snprintf(p->format, sizeof p->format, "%s", choice == 0 ? "" : formats[choice]);
            break;
        }
        case OPT_QUALITY:
            if (parse_uint("--quality", optarg, 1, 100, &v) < 0)
                return -1;
            p->quality = (int)v;
            break;
        case OPT_INTERLACE:
            p->interlace = 1;
            break;
        case OPT_LOSSLESS:
            p->lossless = 1;
            break;
        case OPT_COMPRESSION:
            if (parse_uint("--compression", optarg, 0, 9, &v) < 0)
                return -1;
            p->compression = (int)v;
            break;
        case OPT_KEEP_METADATA:
        case OPT_STRIP:
            if (p->metadata != 0 && p->metadata != (c == OPT_STRIP ? 2 : 1)) {
                usage_error("--keep-metadata and --strip contradict each other");
                return -1;
            }
            p->metadata = c == OPT_STRIP ? 2 : 1;
            break;
        case OPT_NAME:
            if (ib_name_check(optarg, err, sizeof err) < 0) {
                usage_error("%s", err);
                return -1;
            }
            p->name_template = optarg;
            break;
        case OPT_IF_EXISTS:
            if (parse_choice("--if-exists", optarg, exists_names, &choice) < 0)
                return -1;
            p->if_exists = (ib_exists_t)choice;
            break;
        case 'j':
            if (parse_uint("-j", optarg, 1, 256, &v) < 0)
                return -1;
            p->jobs = (unsigned)v;
            break;
        case OPT_TIMEOUT:
            if (parse_seconds("--timeout", optarg, &p->timeout_ms) < 0)
                return -1;
            break;
        case OPT_MAX_PIXELS:
            if (parse_uint("--max-pixels", optarg, 1, UINT64_MAX / 2, &v) < 0)
                return -1;
            p->max_pixels = v;
            break;
        case OPT_WORKER_JOBS:
            if (parse_uint("--worker-jobs", optarg, 1, UINT_MAX, &v) < 0)
                return -1;
            p->worker_jobs = (unsigned)v;
            break;
        case OPT_MAX_MEMORY:
            if (parse_size("--max-memory", optarg, &p->max_memory) < 0)
                return -1;
            break;
        case OPT_MAX_ERRORS:
            if (parse_uint("--max-errors", optarg, 1, UINT_MAX, &v) < 0)
                return -1;
            p->max_errors = (unsigned)v;
            break;
        case OPT_FAIL_FAST:
            p->max_errors = 1;
            break;
        case OPT_IN_PLACE:
            p->in_place = 1;
            break;
        case OPT_NO_AUTOROTATE:
            p->autorotate = 0;
            break;
        case OPT_LENIENT:
            p->strict = 0;
            break;
        case OPT_HIDDEN:
            p->hidden = 1;
            break;
        case OPT_FOLLOW:
            p->follow_symlinks = 1;
            break;
        case OPT_JSON:
            p->json = 1;
            break;
        case OPT_DRY_RUN:
            p->dry_run = 1;
            break;
        case OPT_PROGRESS:
            if (parse_choice("--progress", optarg, progress_names, &choice) < 0)
                return -1;
            p->progress = (ib_progress_t)choice;
            break;
        case OPT_VARIANT:
            if (parse_variant(p, optarg) < 0)
                return -1;
            break;
        case OPT_INCLUDE:
            p->includes[p->n_includes++] = optarg;
            break;
        case OPT_EXCLUDE:
            p->excludes[p->n_excludes++] = optarg;
            break;
        case OPT_FILES_FROM:
            p->files_from = optarg;
            break;
        case '0':
            p->null_separated = 1;
            break;
        case OPT_MAX_DEPTH:
            if (parse_uint("--max-depth", optarg, 0, 10000, &v) < 0)
                return -1;
            p->max_depth = (int)v;
            break;
        case OPT_SHARD:
            shard_text = optarg;
            break;
        case 'q':
            p->quiet = 1;
            break;
        case 'v':
            p->verbose = 1;
            break;
        case 'h':
            print_help();
            return 1;
        case OPT_VERSION:
            print_version();
            return 1;
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
            return -1;
        default: {
            /* For a long option getopt leaves its code in optopt, not a
             * letter: name it from argv instead. */
            const char *arg = argv[optind - 1];
            const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
            if (eq != NULL)
                usage_error("option '%.*s' takes no value", (int)(eq - arg), arg);
            else if (strncmp(arg, "--", 2) == 0 || optopt <= 0 || optopt > 127)
                usage_error("unknown option '%s'", arg);
            else
                usage_error("unknown option '-%c'", optopt);
            return -1;
        }
        }
    }

    p->inputs = argv + optind;
    p->n_inputs = argc - optind;
    if (p->n_inputs == 0 && p->files_from == NULL) {
        usage_error("usage: imgbatch [OPTIONS] INPUT... -o DIR: no INPUT given");
        return -1;
    }
    for (int i = 0; i < p->n_inputs; i++) {
        struct stat st;
        if (strcmp(p->inputs[i], "-") == 0)
            continue;
        if (stat(p->inputs[i], &st) < 0) {
            usage_error("cannot read input '%s': %s", p->inputs[i], strerror(errno));
            return -1;
        }
    }
    if (p->files_from != NULL && strcmp(p->files_from, "-") != 0 &&
        access(p->files_from, R_OK) < 0) {
        usage_error("cannot read --files-from '%s': %s", p->files_from, strerror(errno));
        return -1;
    }
    if (p->lossless && p->format[0] != '\0' && strcmp(p->format, "webp") != 0 &&
        strcmp(p->format, "avif") != 0 && strcmp(p->format, "heic") != 0 &&
        strcmp(p->format, "heif") != 0 && strcmp(p->format, "jxl") != 0 &&
        strcmp(p->format, "jp2") != 0 && strcmp(p->format, "png") != 0 &&
        strcmp(p->format, "tif") != 0 && strcmp(p->format, "tiff") != 0) {
        usage_error("--lossless: %s has no lossless mode (webp, avif, heif, jxl have)", p->format);
        return -1;
    }
    if (shard_text != NULL) {
        int rc = strncmp(shard_text, "auto", 4) == 0
                     ? ib_shard_auto(shard_text, getenv, &p->shard, err, sizeof err)
                     : ib_shard_parse(shard_text, &p->shard, err, sizeof err);
        if (rc < 0) {
            usage_error("%s", err);
            return -1;
        }
        p->has_shard = 1;
    }
    if (p->name_template == NULL)
        p->name_template = p->n_variants > 0 ? IB_DEFAULT_VARIANT_TEMPLATE : IB_DEFAULT_TEMPLATE;
    else if (p->n_variants > 1 && strstr(p->name_template, "{variant}") == NULL) {
        usage_error("--name '%s' needs {variant}: with several variants, every output "
                    "would get the same name",
                    p->name_template);
        return -1;
    }
    if (check_name_extension(p) < 0 || check_output_not_input(p) < 0)
        return -1;
    if (p->output != NULL && strcmp(p->output, "-") == 0) {
        usage_error("-o -: the output must be a directory; imgbatch cannot write images to "
                    "standard output (--dry-run --json lists what it would write)");
        return -1;
    }
    if (p->in_place && p->output != NULL) {
        usage_error("--in-place writes over the inputs: leave out -o %s", p->output);
        return -1;
    }
    if (p->in_place && p->n_variants > 0) {
        usage_error("--in-place and --variant: several outputs cannot all replace one input");
        return -1;
    }
    if (p->output == NULL && !p->dry_run && !p->in_place) {
        usage_error("no output directory: give -o DIR (or --in-place)");
        return -1;
    }
    if (p->output != NULL) {
        struct stat st;
        if (stat(p->output, &st) == 0 && !S_ISDIR(st.st_mode)) {
            usage_error("output '%s' exists and is not a directory", p->output);
            return -1;
        }
    }
    if (p->base != NULL) {
        struct stat st;
        if (stat(p->base, &st) < 0 || !S_ISDIR(st.st_mode)) {
            usage_error("--base '%s' is not a directory", p->base);
            return -1;
        }
    }
    if (p->chain.n + extra.n > IB_MAX_OPS) {
        usage_error("too many filters (at most %d)", IB_MAX_OPS);
        return -1;
    }
    for (unsigned i = 0; i < extra.n; i++)
        p->chain.op[p->chain.n++] = extra.op[i];
    if (p->output == NULL)
        p->output = ".";
    build_recipe(p, size_text, filters);
    return 0;
}
