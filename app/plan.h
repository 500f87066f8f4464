/*
 * The plan: everything the command line decided, fixed before the workers
 * are forked (they inherit it), never changed after.
 */
#ifndef IB_APP_PLAN_H
#define IB_APP_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "geometry.h"
#include "image.h"
#include "ops.h"
#include "select.h"

typedef enum { IB_EXISTS_UPDATE, IB_EXISTS_OVERWRITE, IB_EXISTS_SKIP, IB_EXISTS_FAIL } ib_exists_t;
typedef enum { IB_PROGRESS_AUTO, IB_PROGRESS_ALWAYS, IB_PROGRESS_NEVER } ib_progress_t;

#define IB_MAX_VARIANTS 8

#define IB_MAX_FORMATS 4
/* Files one input may make: variants (or one) times their formats. */
#define IB_MAX_OUTPUTS 32
_Static_assert(IB_MAX_FORMATS *IB_MAX_VARIANTS <= IB_MAX_OUTPUTS, "room for every output");

typedef struct {
    char name[32];
    ib_geometry_t geom;
    char format[16]; /* its own format ("webp"), or "" for every -F */
    int quality;     /* its own quality, or 0 for --quality */
} ib_variant_t;

typedef struct {
    char **inputs;
    int n_inputs;
    const char *output;
    const char *base;
    /* -s as a leading resize, then every -f in order. */
    ib_chain_t chain;
    /* Several sizes of the chain's result, each its own output. */
    ib_variant_t variants[IB_MAX_VARIANTS];
    unsigned n_variants;
    char **includes;
    int n_includes;
    char **excludes;
    int n_excludes;
    const char *files_from;
    int null_separated;
    int max_depth; /* -1: no limit */
    int has_shard;
    ib_shard_t shard;
    /* Every -F, in order; "" keeps each input's format. None: "same". */
    char formats[IB_MAX_FORMATS][16];
    unsigned n_formats;
    int quality;
    int interlace;
    int lossless;
    int compression; /* -1: the format's default */
    int palette;     /* --palette: PNG and GIF outputs get a palette */
    unsigned colors; /* --colors: at most this many palette colours; 0: 256 */
    double dither;   /* --dither 0-1; < 0: the quantiser's default */
    int effort;      /* --effort 0-9; < 0: each encoder's default */
    ib_subsample_t subsample;
    uint64_t max_bytes; /* --max-bytes; 0: no budget */
    int preserve_times; /* outputs get their input's modification time */
    int keep_smaller;   /* an output larger than its input may be the input's bytes */
    ib_metadata_t metadata;
    int strip_gps;    /* --strip-gps */
    const char *font; /* --font, for text ops; NULL: sans */
    const char *name_template;
    int want_date; /* {date} in --name or a text op: the probe reads it */
    ib_exists_t if_exists;
    unsigned jobs;
    unsigned timeout_ms;
    uint64_t max_pixels;
    unsigned worker_jobs;
    uint64_t max_memory; /* bytes of address space per worker; 0 no limit */
    unsigned max_errors; /* stop dispatching after this many failures; 0 never */
    int in_place;
    int autorotate;
    int strict;
    int hidden;
    int follow_symlinks;
    int quiet;
    int verbose;
    int json;
    /* --manifest FILE, as given ({shard} not yet replaced); NULL: none. */
    const char *manifest;
    int placeholders; /* colour, BlurHash and LQIP in the manifest and events */
    /* --report FILE, as given ({shard} not yet replaced); NULL: none. */
    const char *report;
    /* The report shows inline copies: its outputs are not all under the
     * report's folder, so workers make each input's LQIP (set by
     * ib_front_prepare). */
    int report_inline;
    /* --contact-sheet FILE ({shard} not yet replaced); NULL: none. */
    const char *contact_sheet;
    unsigned sheet_columns;  /* --columns; 0: about square */
    unsigned tile_w, tile_h; /* --tile; 0: 200x200 */
    int dry_run;
    /* --watch: after the inputs, convert what lands in them until stopped. */
    int watch;
    ib_progress_t progress;
    /* From the environment, read once by the front end (IMGBATCH_FAST,
     * IMGBATCH_DEBUG, IMGBATCH_PIN): nothing below it calls getenv. */
    int fast_paths;  /* JPEG and PNG fast paths; 1 unless IMGBATCH_FAST=0 */
    int debug;       /* workers keep stderr and say which path each file took */
    int pin_workers; /* each worker keeps to a CPU; 1 unless IMGBATCH_PIN=0 */
    /* What shapes an output, stored on it so a re-run with another recipe
     * redoes the work instead of skipping it. */
    char recipe[2048];
    /* --shard as given, for ib_front_prepare(): "auto" needs the environment. */
    const char *shard_text;
} ib_plan_t;

/* Exit statuses (docs/design.md). */
enum { IB_EXIT_OK = 0, IB_EXIT_FAILED = 1, IB_EXIT_USAGE = 2, IB_EXIT_INTERRUPTED = 130 };

/*
 * Parses argv into plan without touching the filesystem or the
 * environment, and prints nothing. 0 to run, 1 when --help or --version
 * was asked for (*action says which), -1 with a one-line reason in err.
 * Defaults that depend on the machine (jobs = 0) and --shard auto are left
 * for ib_front_prepare().
 */
int ib_cli_parse(int argc, char **argv, ib_plan_t *plan, int *action, char *err, size_t errlen);

/* Frees what ib_cli_parse allocated in plan. */
void ib_cli_free(ib_plan_t *plan);

/* --help and --version. */
void ib_cli_print_help(FILE *f);
void ib_cli_print_version(FILE *f);

/*
 * The checks that need the filesystem and the environment, done once
 * before the run: inputs, -o, --base and --files-from exist as they must,
 * -o is not an input directory under names that do not change, the
 * default -j (Slurm's allocation or the CPU affinity mask) and --shard
 * auto. 0, or -1 with a one-line reason in err (a usage error).
 */
int ib_front_prepare(ib_plan_t *plan, char *err, size_t errlen);

#endif
