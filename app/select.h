/*
 * Which scanned paths a run takes: --include/--exclude globs and --shard.
 * Pure functions of the path relative to its input root, so every machine
 * running the same command makes the same choice, whatever order its
 * directories are read in.
 */
#ifndef IB_APP_SELECT_H
#define IB_APP_SELECT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Glob match against a relative path. '*' and '?' do not cross '/', '**'
 * matches any number of directories (also none), [...] is a set (with
 * ranges, '!' or '^' to negate). A pattern without '/' is matched against
 * the last component only, so "*.png" means PNGs at any depth.
 */
int ib_glob_match(const char *pattern, const char *path);

/* A slice of the inputs: index in 1..count. */
typedef struct {
    unsigned index;
    unsigned count;
} ib_shard_t;

/* Parses "K/N" (1 <= K <= N). 0, or -1 with a message. */
int ib_shard_parse(const char *text, ib_shard_t *s, char *err, size_t errlen);

/*
 * Resolves "--shard auto" or "auto/N" from the job engine's environment:
 * Slurm job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN,
 * SLURM_ARRAY_TASK_COUNT) or Kubernetes indexed Jobs (JOB_COMPLETION_INDEX,
 * with N from "auto/N"). getenv_fn is getenv in real use.
 */
int ib_shard_auto(const char *text, char *(*getenv_fn)(const char *), ib_shard_t *s, char *err,
                  size_t errlen);

/* A well-mixed 64-bit hash of a path (FNV-1a with a finaliser), never 0. */
uint64_t ib_path_hash(const char *path);

/* The 1-based shard a relative path belongs to among count. */
unsigned ib_shard_of(const char *rel, unsigned count);

#endif
