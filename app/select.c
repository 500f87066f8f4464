/*
 * Path selection: globs and shards. See select.h.
 */
#include "select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Matches a set "[...]" at p against c; *end is set past the ']'. */
static int match_set(const char *p, char c, const char **end)
{
    int negate = *p == '!' || *p == '^';
    if (negate)
        p++;
    int hit = 0;
    const char *start = p;
    while (*p != '\0' && (*p != ']' || p == start)) {
        if (p[1] == '-' && p[2] != ']' && p[2] != '\0') {
            if ((unsigned char)c >= (unsigned char)p[0] && (unsigned char)c <= (unsigned char)p[2])
                hit = 1;
            p += 3;
        } else {
            hit |= *p == c;
            p++;
        }
    }
    if (*p != ']')
        return -1; /* no closing bracket: treat '[' as itself */
    *end = p + 1;
    return hit != negate;
}

static int match(const char *p, const char *s)
{
    while (*p != '\0') {
        if (p[0] == '*' && p[1] == '*') {
            /* "**" or "**" + "/": any run of characters, '/' included */
            const char *rest = p + 2;
            if (*rest == '/')
                rest++;
            for (const char *t = s;; t++) {
                if (match(rest, t))
                    return 1;
                if (*t == '\0')
                    return 0;
            }
        }
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (match(p + 1, t))
                    return 1;
                if (*t == '\0' || *t == '/')
                    return 0;
            }
        }
        if (*s == '\0')
            return 0;
        if (*p == '?') {
            if (*s == '/')
                return 0;
            p++, s++;
            continue;
        }
        if (*p == '[') {
            const char *end;
            int r = *s == '/' ? 0 : match_set(p + 1, *s, &end);
            if (r == 0)
                return 0;
            if (r > 0) {
                p = end, s++;
                continue;
            }
        }
        if (*p == '\\' && p[1] != '\0')
            p++;
        if (*p != *s)
            return 0;
        p++, s++;
    }
    return *s == '\0';
}

int ib_glob_match(const char *pattern, const char *path)
{
    if (strchr(pattern, '/') == NULL) {
        const char *slash = strrchr(path, '/');
        return match(pattern, slash != NULL ? slash + 1 : path);
    }
    return match(pattern, path);
}

static int parse_part(const char *s, const char *stop, unsigned long *v)
{
    char *end;
    if (s == stop || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return end == stop && errno == 0 && *v <= 1000000 ? 0 : -1;
}

int ib_shard_parse(const char *text, ib_shard_t *s, char *err, size_t errlen)
{
    const char *slash = strchr(text, '/');
    unsigned long k, n;
    if (slash == NULL || parse_part(text, slash, &k) < 0 ||
        parse_part(slash + 1, slash + 1 + strlen(slash + 1), &n) < 0 || n == 0 || k == 0 || k > n) {
        snprintf(err, errlen, "--shard wants K/N with 1 <= K <= N (e.g. 2/4) or auto, not '%s'",
                 text);
        return -1;
    }
    s->index = (unsigned)k;
    s->count = (unsigned)n;
    return 0;
}

static int env_number(char *(*getenv_fn)(const char *), const char *name, unsigned long *v)
{
    const char *s = getenv_fn(name);
    return s != NULL && parse_part(s, s + strlen(s), v) == 0 ? 0 : -1;
}

int ib_shard_auto(const char *text, char *(*getenv_fn)(const char *), ib_shard_t *s, char *err,
                  size_t errlen)
{
    unsigned long n = 0, id, min, count;
    if (strncmp(text, "auto/", 5) == 0) {
        if (parse_part(text + 5, text + strlen(text), &n) < 0 || n == 0) {
            snprintf(err, errlen, "--shard wants auto/N with N >= 1, not '%s'", text);
            return -1;
        }
    } else if (strcmp(text, "auto") != 0) {
        snprintf(err, errlen, "--shard wants K/N or auto, not '%s'", text);
        return -1;
    }
    if (env_number(getenv_fn, "SLURM_ARRAY_TASK_ID", &id) == 0 &&
        env_number(getenv_fn, "SLURM_ARRAY_TASK_COUNT", &count) == 0) {
        if (env_number(getenv_fn, "SLURM_ARRAY_TASK_MIN", &min) < 0)
            min = 0;
        /* An array like --array=5-8 numbers its tasks from 5. */
        if (count == 0 || id < min || id - min >= count || (n != 0 && n != count)) {
            snprintf(err, errlen,
                     "--shard %s: Slurm task %lu (first %lu) does not fit an array of %lu tasks",
                     text, id, min, count);
            return -1;
        }
        s->index = (unsigned)(id - min + 1);
        s->count = (unsigned)count;
        return 0;
    }
    if (env_number(getenv_fn, "JOB_COMPLETION_INDEX", &id) == 0) {
        if (n == 0) {
            snprintf(err, errlen,
                     "--shard auto: JOB_COMPLETION_INDEX is set, give the completion count "
                     "as --shard auto/N");
            return -1;
        }
        if (id >= n) {
            snprintf(err, errlen, "--shard %s: JOB_COMPLETION_INDEX %lu is not below %lu", text, id,
                     n);
            return -1;
        }
        s->index = (unsigned)(id + 1);
        s->count = (unsigned)n;
        return 0;
    }
    snprintf(err, errlen,
             "--shard %s: no job array found (looked for SLURM_ARRAY_TASK_ID with "
             "SLURM_ARRAY_TASK_COUNT, and JOB_COMPLETION_INDEX)",
             text);
    return -1;
}

uint64_t ib_path_hash(const char *path)
{
    /* FNV-1a, then a 64-bit finaliser so that paths differing only in
     * their last characters still spread over all buckets. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h != 0 ? h : 1;
}

unsigned ib_shard_of(const char *rel, unsigned count)
{
    return (unsigned)(ib_path_hash(rel) % count) + 1;
}
