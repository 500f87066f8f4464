/*
 * The public image corpus (../shared/corpus, see its README.md) through
 * the built imgbatch ($IMGBATCH) in one run, checked against MANIFEST.tsv.
 *
 * NOTES
 * - Without the corpus the tests say so on stderr and skip: a missing
 *   corpus must never look like a pass.
 * - One run, made by the group setup, feeds every test. Over the 647 files
 *   takes about 45 s here: one truncated SVGZ holds a worker until
 *   --timeout (20 s, far above any valid file's time even under ASan)
 *   while the other does the rest.
 * - The paths go in on stdin ("-"), so every file is named: a named file
 *   the tool cannot read must be reported, never passed over. --base keeps
 *   the corpus tree in the output; named files would otherwise all land at
 *   the output root, where same-named files from different folders collide.
 * - What each file should give comes from the manifest: `expected` and the
 *   `local:` probe results in `notes` (what this machine's libvips made of
 *   it, loading leniently). A valid file that libvips reads must convert; a
 *   damaged one must fail with its path in the message, unless the notes
 *   say libvips still decodes it. Files of one folder and stem (sample.png,
 *   sample.exr) may want the same output name: there a `collision` failure
 *   is right, and two outputs at one path is a bug.
 * - Problems are collected and printed one per line before a test fails,
 *   so one run shows every file that misbehaves.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "decode.h"
#include "harness.h"

typedef enum { EXPECT_VALID, EXPECT_INVALID, EXPECT_UNKNOWN } expect_t;

static const char *const expect_names[] = {"valid", "invalid", "unknown"};

typedef struct {
    char *rel;  /* path under corpus/ */
    char *full; /* corpus/rel, as passed to imgbatch */
    expect_t expected;
    char vips[16];   /* local libvips verdict: ok warn fail crash limit unsup, or "" */
    int nb_decodes;  /* notes: "NB: local libvips ... still decodes it" */
    int stem_shared; /* another file has the same folder and stem */
    int unread;      /* a format the bundled libvips has no decoder for */
    int tiff;        /* a TIFF, by the manifest's format column */
    unsigned events;
    ib_test_event_t ev; /* the first file event for it */
} entry_t;

typedef struct {
    const char *bin;
    char corpus[PATH_MAX];
    int missing;
    char root[PATH_MAX]; /* mkdtemp(): the list, the captures, the outputs */
    char out[PATH_MAX];
    entry_t *entries; /* sorted by full */
    size_t n;
    int status;     /* imgbatch's exit status, or 128 + signal */
    double seconds; /* how long the run took */
    char **strays;  /* file events for inputs not in the manifest */
    size_t n_strays;
    ib_test_event_t summary;
    int has_summary;
    char bad_line[512]; /* the first stdout line that is not a JSON object */
} corpus_t;

static corpus_t corpus;

/* ---- helpers ---- */

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int by_full(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->full, ((const entry_t *)b)->full);
}

static entry_t *find_entry(corpus_t *c, const char *full)
{
    entry_t key = {.full = (char *)full};
    return bsearch(&key, c->entries, c->n, sizeof *c->entries, by_full);
}

/* ---- the manifest ---- */

/* The libvips verdict in the notes' "local:" part ("vips=ok", not
 * "vips[fail]=..."). */
static void local_vips(const char *notes, char *out, size_t len)
{
    out[0] = '\0';
    const char *local = strstr(notes, "local: ");
    if (local == NULL)
        return;
    const char *end = strchr(local, ';');
    for (const char *p = strstr(local, "vips="); p != NULL && (end == NULL || p < end);
         p = strstr(p + 1, "vips=")) {
        if (p[-1] != ' ')
            continue;
        p += 5;
        size_t n = strcspn(p, " ;");
        snprintf(out, len, "%.*s", (int)n, p);
        return;
    }
}

/*
 * The formats in the manifest (file(1)'s words) that the bundled libvips
 * (-Dlibvips=bundled) has no decoder for, where the system's has.
 */
static int bundled_cannot_read(const char *format)
{
    static const char *const lacks[] = {"PC bitmap",      "Netpbm",          "PDF document",
                                        "JPEG 2000",      "OpenEXR",         "Radiance HDR",
                                        "FITS image",     "Matlab",          "SGI image",
                                        "Targa",          "MS Windows icon", "MS Windows cursor",
                                        "HEIF Image HEVC"};
    for (size_t i = 0; i < sizeof lacks / sizeof lacks[0]; i++)
        if (strstr(format, lacks[i]) != NULL)
            return 1;
    return 0;
}

/* folder/stem: two files sharing it may want one output name. */
static size_t stem_len(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash != NULL ? slash + 1 : rel;
    const char *dot = strrchr(base, '.');
    return dot != NULL && dot != base ? (size_t)(dot - rel) : strlen(rel);
}

static void mark_shared_stems(corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = i + 1; j < c->n; j++) {
            size_t a = stem_len(c->entries[i].rel), b = stem_len(c->entries[j].rel);
            if (a == b && memcmp(c->entries[i].rel, c->entries[j].rel, a) == 0)
                c->entries[i].stem_shared = c->entries[j].stem_shared = 1;
        }
}

static int parse_row(corpus_t *c, char *line, entry_t *e)
{
    char *field[8];
    size_t n = 0;
    /* Columns: path source_repo source_path format width height expected
     * notes. width and height are empty where the format has none. */
    for (char *f = line; f != NULL && n < 8;) {
        field[n++] = f;
        f = strchr(f, '\t');
        if (f != NULL)
            *f++ = '\0';
    }
    if (n != 8 || strchr(field[7], '\t') != NULL)
        return -1;
    memset(e, 0, sizeof *e);
    size_t k;
    for (k = 0; k < 3 && strcmp(field[6], expect_names[k]) != 0; k++)
        ;
    char full[PATH_MAX];
    if (k == 3 || ib_test_try_path_fmt(full, "%s/%s", c->corpus, field[0]) < 0)
        return -1;
    e->expected = (expect_t)k;
    local_vips(field[7], e->vips, sizeof e->vips);
    e->unread = bundled_cannot_read(field[3]);
    e->tiff = strncmp(field[3], "TIFF", 4) == 0;
    e->nb_decodes = strstr(field[7], "NB: local libvips") != NULL;
    e->rel = dup_str(field[0], strlen(field[0]));
    e->full = dup_str(full, strlen(full));
    if (e->rel == NULL || e->full == NULL) {
        free(e->rel);
        free(e->full);
        return -1;
    }
    return 0;
}

static int load_manifest(corpus_t *c)
{
    char path[PATH_MAX], line[16384];
    if (ib_test_try_path_fmt(path, "%s/MANIFEST.tsv", c->corpus) < 0)
        return -1;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "corpus: fopen(\"%s\") failed: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            fprintf(stderr, "corpus: %s:%zu: line too long\n", path, lineno);
            rc = -1;
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1 || line[0] == '\0')
            continue; /* the header */
        if (c->n == cap) {
            cap = cap ? cap * 2 : 1024;
            entry_t *n = realloc(c->entries, cap * sizeof *n);
            if (n == NULL) {
                rc = -1;
                break;
            }
            c->entries = n;
        }
        if (parse_row(c, line, &c->entries[c->n]) < 0) {
            fprintf(stderr, "corpus: %s:%zu: not a manifest row\n", path, lineno);
            rc = -1;
            break;
        }
        c->n++;
    }
    fclose(f);
    if (rc == 0 && c->n == 0) {
        fprintf(stderr, "corpus: %s lists no files\n", path);
        rc = -1;
    }
    if (rc < 0)
        return -1;
    qsort(c->entries, c->n, sizeof *c->entries, by_full);
    mark_shared_stems(c);
    return 0;
}

/* ---- the run ---- */

static int write_list(corpus_t *c, const char *list)
{
    FILE *f = fopen(list, "we");
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        if (strchr(c->entries[i].full, '\n') != NULL) {
            fprintf(stderr, "corpus: %s has a newline in its name: cannot go on a list\n",
                    c->entries[i].rel);
            fclose(f);
            return -1;
        }
        fprintf(f, "%s\n", c->entries[i].full);
    }
    return fclose(f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs imgbatch over the list; -1 if it could not be started or had to be
 * killed after limit_s seconds. */
static int run_imgbatch(corpus_t *c, const char *list, const char *out_txt, const char *err_txt,
                        int limit_s)
{
    char *argv[] = {(char *)c->bin, "-",          "-o",    c->out,      "--base", c->corpus,
                    "--json",       "-j",         "2",     "--timeout", "20",     "-s",
                    "128x128",      "--progress", "never", NULL};
    ib_test_spawn_t how = {.in = list, .out = out_txt, .err = err_txt};
    char err[PATH_MAX + 64];
    double t0 = now_s();
    pid_t pid = ib_test_spawn(c->bin, argv, &how, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "corpus: %s\n", err);
        return -1;
    }
    int status = ib_test_try_wait(pid, limit_s);
    if (status < 0) {
        if (errno == ETIMEDOUT)
            fprintf(stderr, "corpus: imgbatch still running after %d s: killed\n", limit_s);
        return -1;
    }
    c->status = status;
    c->seconds = now_s() - t0;
    return 0;
}

static void take_event(corpus_t *c, ib_test_event_t *ev)
{
    if (strcmp(ev->event, "summary") == 0 && !c->has_summary) {
        c->summary = *ev;
        c->has_summary = 1;
        return;
    }
    entry_t *e =
        strcmp(ev->event, "file") == 0 && ev->input != NULL ? find_entry(c, ev->input) : NULL;
    if (e != NULL && e->events++ == 0) {
        e->ev = *ev;
        return;
    }
    if (e == NULL) {
        /* Not asked for, or a second summary: either way worth a line. */
        const char *what = ev->input != NULL ? ev->input : ev->event;
        char **n = realloc(c->strays, (c->n_strays + 1) * sizeof *n);
        if (n != NULL) {
            c->strays = n;
            c->strays[c->n_strays++] = dup_str(what, strlen(what));
        }
    }
    ib_test_event_free(ev);
}

static int load_events(corpus_t *c, const char *out_txt)
{
    FILE *f = fopen(out_txt, "re");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        size_t n = (size_t)len - (line[len - 1] == '\n');
        line[n] = '\0';
        ib_test_event_t ev;
        char err[256] = "";
        if (ib_test_event_parse(line, n, &ev, err, sizeof err) < 0 || ev.event == NULL) {
            if (c->bad_line[0] == '\0')
                snprintf(c->bad_line, sizeof c->bad_line, "%.200s: %.250s",
                         ev.event == NULL ? "no \"event\"" : err, line);
            ib_test_event_free(&ev); /* a no-op after a parse error */
            continue;
        }
        take_event(c, &ev);
    }
    free(line);
    fclose(f);
    return 0;
}

static const char *status_of(const entry_t *e)
{
    return e->events > 0 && e->ev.status != NULL ? e->ev.status : "none";
}

static void print_tally(const corpus_t *c)
{
    static const char *const statuses[] = {"ok", "skipped", "failed", "none"};
    unsigned count[3][4] = {{0}};
    for (size_t i = 0; i < c->n; i++)
        for (size_t s = 0; s < 4; s++)
            if (strcmp(status_of(&c->entries[i]), statuses[s]) == 0)
                count[c->entries[i].expected][s]++;
    fprintf(stderr, "corpus: %zu files in %.1f s, exit %d\n", c->n, c->seconds, c->status);
    fprintf(stderr, "corpus: %-8s %6s %8s %7s %5s\n", "expected", "ok", "skipped", "failed",
            "none");
    for (size_t k = 0; k < 3; k++)
        fprintf(stderr, "corpus: %-8s %6u %8u %7u %5u\n", expect_names[k], count[k][0], count[k][1],
                count[k][2], count[k][3]);
    static const char *const kinds[] = {"read",  "decode", "unsupported", "too_large", "timeout",
                                        "crash", "write",  "collision",   "internal"};
    fprintf(stderr, "corpus: failures by kind:");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        unsigned n = 0;
        for (size_t i = 0; i < c->n; i++)
            n += c->entries[i].ev.error_kind != NULL &&
                 strcmp(c->entries[i].ev.error_kind, kinds[k]) == 0;
        if (n > 0)
            fprintf(stderr, " %s %u", kinds[k], n);
    }
    fputc('\n', stderr);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    corpus_t *c = &corpus;
    memset(c, 0, sizeof *c);
    *state = c;
    if (ib_test_find_corpus(c->corpus) < 0) {
        fprintf(stderr, "corpus: SKIPPED: %s not found\n", c->corpus);
        c->missing = 1;
        return 0;
    }
    c->bin = ib_test_imgbatch("corpus");
    if (c->bin == NULL || load_manifest(c) < 0)
        return -1;

    char list[PATH_MAX], out_txt[PATH_MAX], err_txt[PATH_MAX];
    if (ib_test_make_root("corpus", "ib-corpus", c->root) < 0)
        return -1;
    if (ib_test_try_path_fmt(c->out, "%s/out", c->root) < 0 ||
        ib_test_try_path_fmt(list, "%s/list", c->root) < 0 ||
        ib_test_try_path_fmt(out_txt, "%s/stdout", c->root) < 0 ||
        ib_test_try_path_fmt(err_txt, "%s/stderr", c->root) < 0 || write_list(c, list) < 0)
        return -1;
    /* 647 files at -j 2 take about a minute here; ten is a hang. */
    if (run_imgbatch(c, list, out_txt, err_txt, 600) < 0 || load_events(c, out_txt) < 0)
        return -1;
    print_tally(c);
    return 0;
}

static int group_teardown(void **state)
{
    corpus_t *c = *state;
    if (c == NULL)
        return 0;
    ib_test_drop_root("corpus", c->root);
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].rel);
        free(c->entries[i].full);
        ib_test_event_free(&c->entries[i].ev);
    }
    free(c->entries);
    for (size_t i = 0; i < c->n_strays; i++)
        free(c->strays[i]);
    free(c->strays);
    if (c->has_summary)
        ib_test_event_free(&c->summary);
    return 0;
}

static corpus_t *need_corpus(void **state)
{
    corpus_t *c = *state;
    if (c->missing)
        ib_test_skip_loudly("corpus", "no corpus (the setup said where it looked)");
    return c;
}

/* One line per problem; the caller fails on a non-zero count. */
static void problem(unsigned *count, const entry_t *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(unsigned *count, const entry_t *e, const char *fmt, ...)
{
    va_list ap;
    (*count)++;
    fprintf(stderr, "corpus: %s [%s, local vips=%s]: ", e->rel, expect_names[e->expected],
            e->vips[0] ? e->vips : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e->events > 0)
        fprintf(stderr, " (got %s%s%s%s%s)", status_of(e), e->ev.error_kind ? " " : "",
                e->ev.error_kind ? e->ev.error_kind : "", e->ev.error_message ? ": " : "",
                e->ev.error_message ? e->ev.error_message : "");
    fputc('\n', stderr);
}

static int is_status(const entry_t *e, const char *status)
{
    return strcmp(status_of(e), status) == 0;
}

static int is_kind(const entry_t *e, const char *kind)
{
    return e->ev.error_kind != NULL && strcmp(e->ev.error_kind, kind) == 0;
}

/* A failure the user can act on: the message names the file. */
static int named_failure(const entry_t *e)
{
    return is_status(e, "failed") && e->ev.error_message != NULL &&
           strstr(e->ev.error_message, e->full) != NULL;
}

/* Two files with one folder/stem may want one output name; the second is
 * then a reported collision, which is right. */
static int collided(const entry_t *e)
{
    return e->stem_shared && is_status(e, "failed") && is_kind(e, "collision");
}

/* A check of one file of the manifest: problem() for each thing wrong. */
typedef void (*entry_check_t)(const entry_t *e, unsigned *bad);

/* Runs check on every file of the manifest; fails on any problem, after
 * all were listed. */
static void check_each(void **state, entry_check_t check)
{
    corpus_t *c = need_corpus(state);
    unsigned bad = 0;
    for (size_t i = 0; i < c->n; i++)
        check(&c->entries[i], &bad);
    assert_int_equal(bad, 0);
}

/* ---- tests ---- */

/* The run itself: it ends by itself with 0 or 1, prints only JSON on
 * stdout, and its summary adds up. */
static void run_finishes_cleanly(void **state)
{
    corpus_t *c = need_corpus(state);
    if (c->status != 0 && c->status != 1)
        fail_msg("imgbatch exited %d over the corpus (0 or 1 expected; over 128 is a signal)",
                 c->status);
    if (c->bad_line[0] != '\0')
        fail_msg("stdout holds a line that is not a JSON event: %s", c->bad_line);
    assert_true(c->has_summary);
    size_t failed = 0;
    for (size_t i = 0; i < c->n; i++)
        failed += is_status(&c->entries[i], "failed");
    assert_int_equal(c->status, failed > 0 ? 1 : 0);
    assert_int_equal(c->summary.total, (long long)c->n);
    assert_int_equal(c->summary.failed, (long long)failed);
}

/* Every named file gets exactly one file event, and no event names a file
 * that was not asked for. */
static void one_event_per_file(void **state)
{
    corpus_t *c = need_corpus(state);
    unsigned bad = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].events != 1)
            problem(&bad, &c->entries[i], "%u file events, expected 1", c->entries[i].events);
    for (size_t i = 0; i < c->n_strays; i++) {
        fprintf(stderr, "corpus: an event not asked for: %s\n", c->strays[i]);
        bad++;
    }
    assert_int_equal(bad, 0);
}

/* A worker may only die where this machine's libvips itself crashes. */
static void crashed_only_where_libvips_does(const entry_t *e, unsigned *bad)
{
    if (is_kind(e, "crash") && strcmp(e->vips, "crash") != 0)
        problem(bad, e, "a worker crashed on it");
}

static void no_crash_but_the_known_ones(void **state)
{
    check_each(state, crashed_only_where_libvips_does);
}

/* Nothing existed under the fresh output root, so nothing can be up to
 * date; and every failure names its file. */
static void not_skipped_failure_named(const entry_t *e, unsigned *bad)
{
    if (is_status(e, "skipped"))
        problem(bad, e, "skipped on an empty output root");
    else if (is_status(e, "failed") && !named_failure(e))
        problem(bad, e, "the error message does not name %s", e->full);
}

static void nothing_skipped_and_failures_named(void **state)
{
    check_each(state, not_skipped_failure_named);
}

/*
 * The manifest's verdicts are the system libvips'. A build on the bundled
 * one (-Dlibvips=bundled, IB_LIBVIPS=bundled) has no decoder for some of
 * those formats (bundled_cannot_read), and fails on TIFF warnings the
 * system's keeps to itself.
 */
static int bundled_vips(void)
{
    const char *b = getenv("IB_LIBVIPS");
    return b != NULL && strcmp(b, "bundled") == 0;
}

/* A named failure of the bundled build that is the bundled libvips': a
 * format it lacks fails as unsupported (ICO and TGA, whose bytes the
 * sniffer does not know, as "not an image"); a TIFF the system's libvips
 * reads with warnings fails as a decode error in strict mode. */
static int not_read_by_this_build(const entry_t *e)
{
    if (!named_failure(e))
        return 0;
    if (e->unread)
        return is_kind(e, "unsupported") ||
               (is_kind(e, "decode") && strstr(e->ev.error_message, "match no format") != NULL);
    return e->tiff && strcmp(e->vips, "warn") == 0 && is_kind(e, "decode");
}

/* Files this libvips reads (cleanly or with warnings) convert. Valid files
 * it cannot read may fail, or may convert anyway (a JPEG 2000 that crashes
 * the full-size decode can shrink on load from a smaller level). */
static void valid_files_convert(void **state)
{
    corpus_t *c = need_corpus(state);
    unsigned bad = 0, unread = 0;
    for (size_t i = 0; i < c->n; i++) {
        const entry_t *e = &c->entries[i];
        if (e->expected != EXPECT_VALID || e->events == 0 || collided(e))
            continue;
        int readable = strcmp(e->vips, "ok") == 0 || strcmp(e->vips, "warn") == 0;
        if (readable && !is_status(e, "ok") && bundled_vips() && not_read_by_this_build(e)) {
            unread++;
            fprintf(stderr,
                    "corpus: note: %s: the system libvips reads it, the bundled one not: %s\n",
                    e->rel, e->ev.error_kind);
        } else if (readable && !is_status(e, "ok"))
            problem(&bad, e, "libvips reads it here, so it must convert");
        else if (!readable && !is_status(e, "ok") && !named_failure(e) &&
                 !(strcmp(e->vips, "crash") == 0 && is_kind(e, "crash")))
            problem(&bad, e, "expected ok or a failure that names the file");
    }
    if (unread > 0)
        fprintf(stderr, "corpus: note: %u valid files not read by the bundled libvips\n", unread);
    assert_int_equal(bad, 0);
}

/* Damaged files fail with their name in the message; only those this
 * libvips still decodes may come out as images. */
static void damaged_fails(const entry_t *e, unsigned *bad)
{
    if (e->expected != EXPECT_INVALID || e->events == 0 || named_failure(e))
        return;
    int decodes = e->nb_decodes || strcmp(e->vips, "ok") == 0;
    if (!(decodes && is_status(e, "ok")))
        problem(bad, e, "a damaged file must fail%s",
                decodes ? " or convert" : " (libvips does not decode it cleanly)");
}

static void invalid_files_fail(void **state)
{
    check_each(state, damaged_fails);
}

/* Whether entry i's output is another ok entry's too. */
static const entry_t *output_shared(const corpus_t *c, size_t i)
{
    const char *path = c->entries[i].ev.outputs[0].path;
    for (size_t j = 0; j < c->n; j++) {
        const entry_t *f = &c->entries[j];
        if (j != i && is_status(f, "ok") && f->ev.n_outputs > 0 && f->ev.outputs[0].path != NULL &&
            strcmp(f->ev.outputs[0].path, path) == 0)
            return f;
    }
    return NULL;
}

/* The output of ok entry i: one, under the output root, not empty, its
 * own, fitting 128x128 with a side at 128. -1 if it cannot be decoded. */
static int check_output(const corpus_t *c, size_t i, unsigned *bad)
{
    const entry_t *e = &c->entries[i], *other;
    const ib_test_output_t *o = &e->ev.outputs[0];
    size_t outlen = strlen(c->out);
    struct stat st;
    if (e->ev.n_outputs != 1 || o->path == NULL) {
        problem(bad, e, "%u outputs in an ok event, expected 1", e->ev.n_outputs);
        return -1;
    }
    if (strncmp(o->path, c->out, outlen) != 0 || o->path[outlen] != '/') {
        problem(bad, e, "output %s is not under %s", o->path, c->out);
        return -1;
    }
    if (stat(o->path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        problem(bad, e, "output %s is missing or empty", o->path);
        return -1;
    }
    if ((other = output_shared(c, i)) != NULL)
        problem(bad, e, "output %s is also the output of %s", o->path, other->rel);
    long long big = o->width > o->height ? o->width : o->height;
    if (big != 128 || o->width < 1 || o->height < 1)
        problem(bad, e, "output %lldx%lld does not fit 128x128 with a side at 128", o->width,
                o->height);
    return 0;
}

/* A PNG or JPEG output decodes completely with our own decoders at the
 * size its event reports; 1 if it was one. */
static int check_decodes(const entry_t *e, unsigned *bad)
{
    const ib_test_output_t *o = &e->ev.outputs[0];
    if (o->format == NULL || (strcmp(o->format, "png") != 0 && strcmp(o->format, "jpeg") != 0))
        return 0;
    ib_test_image_t img;
    char err[512];
    if (ib_test_decode(o->path, &img, err, sizeof err) < 0) {
        problem(bad, e, "its output does not decode: %s", err);
        return 0;
    }
    if (img.width != o->width || img.height != o->height)
        problem(bad, e, "output is %ux%u, the event says %lldx%lld", img.width, img.height,
                o->width, o->height);
    ib_test_image_free(&img);
    return 1;
}

/* Every ok event's output exists under the output root, belongs to that
 * file alone, fits -s 128x128 with one side at 128, and, for PNG and
 * JPEG, decodes completely with our own decoders at the reported size. */
static void outputs_exist_and_decode(void **state)
{
    corpus_t *c = need_corpus(state);
    unsigned bad = 0, decoded = 0;
    for (size_t i = 0; i < c->n; i++)
        if (is_status(&c->entries[i], "ok") && check_output(c, i, &bad) == 0)
            decoded += check_decodes(&c->entries[i], &bad);
    fprintf(stderr, "corpus: %u PNG/JPEG outputs decoded with libpng/libjpeg\n", decoded);
    assert_int_equal(bad, 0);
}

/* Crashes and timeouts included, no temporary file survives the run. */
static void no_temp_files_left(void **state)
{
    corpus_t *c = need_corpus(state);
    ib_test_listing_t l;
    ib_test_list_tree(c->out, &l);
    size_t temps = l.temps;
    if (temps > 0)
        fprintf(stderr, "corpus: temporary file left: %s\n", l.first_temp);
    ib_test_listing_free(&l);
    assert_int_equal(temps, 0);
}

IB_TEST_MAIN(group_setup, group_teardown,
             {
                 cmocka_unit_test(run_finishes_cleanly),
                 cmocka_unit_test(one_event_per_file),
                 cmocka_unit_test(no_crash_but_the_known_ones),
                 cmocka_unit_test(nothing_skipped_and_failures_named),
                 cmocka_unit_test(valid_files_convert),
                 cmocka_unit_test(invalid_files_fail),
                 cmocka_unit_test(outputs_exist_and_decode),
                 cmocka_unit_test(no_temp_files_left),
             })
