/*
 * Reliability: every way an image, a worker, the user or the machine can
 * make a batch go wrong, caused for real through the built imgbatch
 * ($IMGBATCH), and checked the way a user would: the --json events, the
 * exit status and the files on disk.
 *
 * NOTES
 * - After every run: every file under the output root decodes completely
 *   with tests/decode.c's own readers (WebP: a whole RIFF container), no
 *   '.NAME.*.tmp' file is left, and where inputs could be touched they are
 *   byte for byte what they were.
 * - Inputs are made here (decode.c's encoders, or valid files whose bytes
 *   are then cut, patched or cloned); no image tool runs.
 * - Slow work comes from one 1500x1500 PNG, hard-linked under many names:
 *   with -f blur=10 each copy costs about half a second, and blur's cost
 *   grows with its sigma, which is how the hang and interrupt tests make an
 *   image that would take many seconds.
 * - imgbatch is started with fork() and execve() rather than posix_spawn()
 *   because some runs need a file-size limit or another user: the child
 *   only makes async-signal-safe calls before execve().
 * - Running every file of ../shared/corpus through the pool (no parent
 *   crash, exactly one result per file, --timeout) is tests/test_corpus.c's
 *   job and is not repeated here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>

#include "harness.h"

extern char **environ;

/* Address-space limits cannot work under AddressSanitizer, which reserves
 * terabytes of shadow memory up front. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

typedef struct {
    ib_test_cli_t cli;   /* first: the harness's fixtures take it for all */
    char slow[PATH_MAX]; /* the 1500x1500 PNG the slow runs link to */
    char mnt[PATH_MAX];  /* the tmpfs of full_disk_is_a_write_error, "" if none */
} rel_t;

/* ---- small helpers ---- */

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- making inputs ---- */

static void cut_in_half(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
}

/* PNG's CRC-32 (ISO 3309), bit by bit: a few chunks need no table. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Offset of the first chunk of this type in a PNG file; fails the test if
 * there is none. */
static size_t png_chunk(const unsigned char *b, size_t n, const char *type)
{
    for (size_t at = 8; at + 12 <= n; at += 12 + be32(b + at))
        if (memcmp(b + at + 4, type, 4) == 0)
            return at;
    fail_msg("no %s chunk", type);
    return 0;
}

/* A valid PNG whose IHDR (with a correct CRC) claims w x h; the image
 * data is that of a tiny picture. */
static void make_png_bomb(const char *path, uint32_t w, uint32_t h)
{
    size_t n;
    ib_test_make_png(path, 8, 8, IB_TEST_FILL_SOLID, 0);
    unsigned char *b = (unsigned char *)ib_test_slurp(path, &n);
    size_t at = png_chunk(b, n, "IHDR");
    put_be32(b + at + 8, w);
    put_be32(b + at + 12, h);
    put_be32(b + at + 8 + 13, crc32_of(b + at + 4, 4 + 13));
    ib_test_write_file(path, b, n);
    test_free(b);
}

/* A valid JPEG whose frame header claims w x h. */
static void make_jpeg_bomb(const char *path, unsigned w, unsigned h)
{
    size_t n;
    ib_test_make_jpeg(path, 16, 16, IB_TEST_FILL_SOLID, 0);
    unsigned char *b = (unsigned char *)ib_test_slurp(path, &n);
    size_t at = 2;
    while (at + 9 <= n && b[at] == 0xff && !(b[at + 1] >= 0xc0 && b[at + 1] <= 0xc2))
        at += 2 + ((size_t)b[at + 2] << 8 | b[at + 3]);
    if (at + 9 > n || b[at] != 0xff)
        fail_msg("no SOF marker in %s", path);
    b[at + 5] = (unsigned char)(h >> 8);
    b[at + 6] = (unsigned char)h;
    b[at + 7] = (unsigned char)(w >> 8);
    b[at + 8] = (unsigned char)w;
    ib_test_write_file(path, b, n);
    test_free(b);
}

/* A w x h black RGB PNG written row by row: a picture too large for the
 * test's own memory is never built there. */
static int write_black_rows(png_structp png, png_infop info, FILE *f, const unsigned char *row,
                            unsigned w, unsigned h)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, 0, PNG_FILTER_NONE);
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    for (unsigned y = 0; y < h; y++)
        png_write_row(png, row);
    png_write_end(png, NULL);
    return 0;
}

static void make_huge_png(const char *path, unsigned w, unsigned h)
{
    ib_test_mkdirs_for(path);
    FILE *f = fopen(path, "wbe");
    assert_non_null(f);
    unsigned char *row = calloc(w, 3);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    int rc = row != NULL && info != NULL ? write_black_rows(png, info, f, row, w, h) : -1;
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0 || rc < 0)
        fail_msg("writing the %ux%u PNG %s failed", w, h, path);
}

/* Bytes that no image format starts with. */
static void make_garbage(const char *path)
{
    unsigned char junk[4096];
    uint32_t seed = 99;
    for (size_t i = 0; i < sizeof junk; i++) {
        seed = seed * 1664525u + 1013904223u;
        junk[i] = (unsigned char)(seed >> 24);
    }
    junk[0] = 'Z';
    ib_test_write_file(path, junk, sizeof junk);
}

/* n hard links to the slow PNG, in/NAMEnn.png. */
static void link_slow(const rel_t *t, const char *in, unsigned n)
{
    char path[PATH_MAX];
    for (unsigned i = 0; i < n; i++) {
        ib_test_path_fmt(path, "%s/s%02u.png", in, i);
        ib_test_mkdirs_for(path);
        if (link(t->slow, path) < 0)
            fail_msg("link(\"%s\", \"%s\") failed: %s", t->slow, path, strerror(errno));
    }
}

/* ---- input snapshots: inputs must come out of a run untouched ---- */

typedef struct {
    char path[PATH_MAX];
    unsigned char *bytes;
    size_t len;
    ino_t ino;
} snap_file_t;

typedef struct {
    snap_file_t *f;
    size_t n;
} snapshot_t;

static void snapshot_add(snapshot_t *s, const char *path, ino_t ino)
{
    s->f = test_realloc(s->f, (s->n + 1) * sizeof *s->f);
    snap_file_t *f = &s->f[s->n++];
    snprintf(f->path, sizeof f->path, "%s", path);
    f->ino = ino;
    /* Root reads a mode-000 file; other users keep its inode only. */
    f->bytes = (unsigned char *)ib_test_try_slurp(path, &f->len);
}

static snapshot_t *walk_snap;

static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F)
        snapshot_add(walk_snap, path, st->st_ino);
    return 0;
}

static void snapshot_take(const char *dir, snapshot_t *s)
{
    memset(s, 0, sizeof *s);
    walk_snap = s;
    nftw(dir, snap_entry, 16, FTW_PHYS);
    walk_snap = NULL;
}

/* How the first snapshotted file that is not as it was differs ("gone",
 * "replaced", "changed"), with its path; NULL when all are the same. */
static const char *snapshot_changed(const snapshot_t *s, const char **path)
{
    for (size_t i = 0; i < s->n; i++) {
        const snap_file_t *f = &s->f[i];
        struct stat st;
        *path = f->path;
        if (lstat(f->path, &st) < 0)
            return "gone";
        if (st.st_ino != f->ino)
            return "replaced";
        if (f->bytes == NULL)
            continue;
        size_t len;
        unsigned char *now = (unsigned char *)ib_test_try_slurp(f->path, &len);
        int same = now != NULL && len == f->len && memcmp(now, f->bytes, len) == 0;
        if (now != NULL)
            test_free(now);
        if (!same)
            return "changed";
    }
    return NULL;
}

/* Every snapshotted file still there, same inode, same bytes; what names
 * them in the failure ("input"). */
static void snapshot_expect_same(const snapshot_t *s, const char *what)
{
    const char *path, *how = snapshot_changed(s, &path);
    if (how != NULL)
        fail_msg("%s %s: %s", what, path, how);
}

static void snapshot_free(snapshot_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i].bytes != NULL)
            test_free(s->f[i].bytes);
    if (s->f != NULL)
        test_free(s->f);
    memset(s, 0, sizeof *s);
}

/* ---- output trees ---- */

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Size of a WebP file that is one whole RIFF container; -1 otherwise. */
static int webp_size(const unsigned char *b, size_t n, unsigned *w, unsigned *h)
{
    if (n < 30 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WEBP", 4) != 0 ||
        (size_t)le32(b + 4) + 8 != n)
        return -1;
    if (memcmp(b + 12, "VP8 ", 4) == 0 && b[23] == 0x9d && b[24] == 0x01 && b[25] == 0x2a) {
        *w = (b[26] | (unsigned)b[27] << 8) & 0x3fff;
        *h = (b[28] | (unsigned)b[29] << 8) & 0x3fff;
        return 0;
    }
    if (memcmp(b + 12, "VP8L", 4) == 0 && b[20] == 0x2f) {
        uint32_t bits = le32(b + 21);
        *w = (bits & 0x3fff) + 1;
        *h = ((bits >> 14) & 0x3fff) + 1;
        return 0;
    }
    if (memcmp(b + 12, "VP8X", 4) == 0) {
        *w = 1 + (b[24] | (unsigned)b[25] << 8 | (unsigned)b[26] << 16);
        *h = 1 + (b[27] | (unsigned)b[28] << 8 | (unsigned)b[29] << 16);
        return 0;
    }
    return -1;
}

/* Decodes one output completely: width and height, or fails the test. */
static void decode_output(const char *path, unsigned *w, unsigned *h)
{
    char err[512];
    if (ends_with(path, ".webp")) {
        size_t n;
        unsigned char *b = (unsigned char *)ib_test_slurp(path, &n);
        int rc = webp_size(b, n, w, h);
        test_free(b);
        if (rc < 0)
            fail_msg("output %s is not a whole WebP file", path);
        return;
    }
    ib_test_image_t img;
    if (ib_test_decode(path, &img, err, sizeof err) < 0)
        fail_msg("output %s does not decode completely: %s", path, err);
    *w = img.width;
    *h = img.height;
    ib_test_image_free(&img);
}

static int listed(const ib_test_listing_t *l, const char *rel)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->paths[i], rel) == 0)
            return 1;
    return 0;
}

/* What a run may leave under an output root: no temporary files, and only
 * whole images. Returns how many files there are. */
static size_t expect_clean_tree(const char *root)
{
    ib_test_listing_t l;
    ib_test_list_outputs(root, &l);
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        unsigned w, h;
        ib_test_path_join(path, root, l.paths[i]);
        decode_output(path, &w, &h);
    }
    size_t n = l.n;
    ib_test_listing_free(&l);
    return n;
}

/* How most runs end: their events done with, and out holding n whole
 * images and no temporary file. */
static void expect_outputs(ib_test_events_t *e, const char *out, size_t n)
{
    ib_test_events_free(e);
    assert_int_equal(expect_clean_tree(out), n);
}

/* Files under root that are not temporary files. */
static size_t count_outputs(const char *root)
{
    ib_test_listing_t l;
    ib_test_list_tree(root, &l);
    size_t n = l.n - l.temps;
    ib_test_listing_free(&l);
    return n;
}

/* ---- running imgbatch ---- */

typedef ib_test_args_t args_t;

static void args_start(args_t *a, const rel_t *t)
{
    ib_test_args_start(a, t->cli.bin);
}

typedef ib_test_spawn_t run_opts_t;
typedef ib_test_run_t run_t;

/* Starts imgbatch with stdin from /dev/null and its output in files. */
static void start(rel_t *t, run_t *r, const run_opts_t *o, args_t *a)
{
    ib_test_cli_files(&t->cli, r);
    ib_test_run_start(r, a->v, o);
}

static void finish(run_t *r, int timeout_s)
{
    ib_test_run_finish(r, timeout_s);
}

static void run_with(rel_t *t, run_t *r, const run_opts_t *o, args_t *a)
{
    start(t, r, o, a);
    finish(r, 120);
}

static void run_args(rel_t *t, run_t *r, args_t *a)
{
    run_with(t, r, NULL, a);
}

static void show_output(const run_t *r)
{
    ib_test_run_show(r, "imgbatch");
}

static void expect_status(const run_t *r, int want)
{
    ib_test_expect_exit(r, want, "imgbatch");
}

static int output_has(const char *file, const char *text)
{
    return ib_test_file_has(file, text);
}

static void abandon(run_t *r)
{
    ib_test_run_abandon(r);
}

/* Starts imgbatch --json with the NULL-terminated arguments in ap. */
static void vstart_json(rel_t *t, run_t *r, const run_opts_t *o, va_list ap)
{
    args_t a;
    args_start(&a, t);
    ib_test_args_add(&a, "--json", NULL);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        ib_test_args_add(&a, s, NULL);
    start(t, r, o, &a);
}

/* Starts `imgbatch --json ARGS...` (NULL-terminated) with o (NULL for
 * none). */
static void start_json(rel_t *t, run_t *r, const run_opts_t *o, ...) __attribute__((sentinel));
static void start_json(rel_t *t, run_t *r, const run_opts_t *o, ...)
{
    va_list ap;
    va_start(ap, o);
    vstart_json(t, r, o, ap);
    va_end(ap);
}

/* Runs `imgbatch --json ARGS...` to its end and loads its events into e:
 * it must exit status with n file events. */
static void run_json(rel_t *t, run_t *r, const run_opts_t *o, int status, ib_test_events_t *e,
                     size_t n, ...) __attribute__((sentinel));
static void run_json(rel_t *t, run_t *r, const run_opts_t *o, int status, ib_test_events_t *e,
                     size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    vstart_json(t, r, o, ap);
    va_end(ap);
    finish(r, 120);
    expect_status(r, status);
    ib_test_events_load(r, e);
    if (e->n != n) {
        show_output(r);
        fail_msg("%zu file events, expected %zu", e->n, n);
    }
}

/* ---- the process tree ---- */

/* Live children of pid, from /proc/PID/task/PID/children (or a walk of
 * /proc on kernels without it). */
static size_t children_of(pid_t pid, pid_t *kids, size_t cap)
{
    char path[64];
    size_t n = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        long k;
        while (n < cap && fscanf(f, "%ld", &k) == 1)
            kids[n++] = (pid_t)k;
        fclose(f);
        return n;
    }
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < cap) {
        char *end, buf[512];
        long k = strtol(de->d_name, &end, 10);
        if (*end != '\0' || k <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", k);
        FILE *s = fopen(path, "re");
        if (s == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, s);
        fclose(s);
        buf[len] = '\0';
        char *paren = strrchr(buf, ')'), state;
        long ppid;
        if (paren != NULL && sscanf(paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == pid &&
            state != 'Z')
            kids[n++] = (pid_t)k;
    }
    closedir(d);
    return n;
}

/* A process's state letter (R, S, D, Z, ...), or 0 when it is gone. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *paren = strrchr(buf, ')'), state;
    return paren != NULL && sscanf(paren + 1, " %c", &state) == 1 ? state : 0;
}

/* Fails, saying what it waited for, if imgbatch has already ended. */
static void expect_still_running(run_t *r, const char *waiting_for)
{
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
        r->status = ib_test_exit_status(st);
        show_output(r);
        fail_msg("imgbatch ended (exit %d) before %s", r->status, waiting_for);
    }
}

/* A worker for which pick(pid, arg) holds, or 0 if none is within
 * timeout_s; fails if imgbatch ends first. */
static pid_t find_worker(run_t *r, double timeout_s, int (*pick)(pid_t, const char *),
                         const char *arg, const char *what)
{
    double deadline = ib_test_now() + timeout_s;
    while (ib_test_now() < deadline) {
        expect_still_running(r, what);
        pid_t kids[64];
        size_t n = children_of(r->pid, kids, 64);
        for (size_t i = 0; i < n; i++)
            if (pick(kids[i], arg))
                return kids[i];
        nap_ms(2);
    }
    return 0;
}

static int is_computing(pid_t pid, const char *unused)
{
    (void)unused;
    return proc_state(pid) == 'R';
}

/* A worker that is computing (state R), or 0 if none is within timeout_s. */
static pid_t busy_worker(run_t *r, double timeout_s)
{
    return find_worker(r, timeout_s, is_computing, NULL, "a worker could be picked");
}

/* Whether pid has a file under dir open. */
static int holds_file_under(pid_t pid, const char *dir)
{
    char fds[64], link[PATH_MAX + 64], target[PATH_MAX];
    snprintf(fds, sizeof fds, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(fds);
    if (d == NULL)
        return 0;
    size_t n = strlen(dir);
    int hit = 0;
    struct dirent *de;
    while (!hit && (de = readdir(d)) != NULL) {
        snprintf(link, sizeof link, "%s/%s", fds, de->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        hit = strncmp(target, dir, n) == 0 && target[n] == '/';
    }
    closedir(d);
    return hit;
}

/* A worker that has one of the inputs under in open, that is, one in the
 * middle of an image, or 0 if none is within timeout_s. */
static pid_t worker_on_image(run_t *r, const char *in, double timeout_s)
{
    return find_worker(r, timeout_s, holds_file_under, in, "a worker took an image");
}

/* Waits until the output root holds at least n finished images. */
static void wait_for_outputs(run_t *r, const char *root, size_t n, double timeout_s)
{
    double deadline = ib_test_now() + timeout_s;
    while (count_outputs(root) < n) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->status = ib_test_exit_status(st);
            show_output(r);
            fail_msg("imgbatch ended (exit %d) before %zu outputs appeared", r->status, n);
        }
        if (ib_test_now() > deadline) {
            abandon(r);
            fail_msg("no %zu outputs under %s within %.0f s", n, root, timeout_s);
        }
        nap_ms(5);
    }
}

/* Waits until the run has written text to file (its stdout or stderr). */
static void wait_for_text(run_t *r, const char *file, const char *text, double timeout_s)
{
    double deadline = ib_test_now() + timeout_s;
    for (;;) {
        char *s = ib_test_try_slurp(file, NULL);
        int hit = s != NULL && strstr(s, text) != NULL;
        if (s != NULL)
            test_free(s);
        if (hit)
            return;
        expect_still_running(r, text);
        if (ib_test_now() > deadline) {
            abandon(r);
            fail_msg("imgbatch wrote no \"%s\" within %.0f s", text, timeout_s);
        }
        nap_ms(5);
    }
}

/* Every pid gone (or a zombie nobody reaps) soon after imgbatch ended:
 * no worker outlives the run. */
static void expect_gone(const pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double deadline = ib_test_now() + 2;
        char s;
        while ((s = proc_state(pids[i])) != 0 && s != 'Z' && ib_test_now() < deadline)
            nap_ms(10);
        if (s != 0 && s != 'Z')
            fail_msg("worker %d still runs (state %c) after imgbatch ended", (int)pids[i], s);
    }
}

/* ---- the JSON events of one run ---- */

static int is_status(const ib_test_event_t *ev, const char *status)
{
    return ev->status != NULL && strcmp(ev->status, status) == 0;
}

/* A failed event with one of the kinds ("decode|unsupported"), no output,
 * and a message that names the input and holds cause (if not NULL). */
static void expect_failure(const ib_test_event_t *ev, const char *kinds, const char *cause)
{
    ib_test_expect_event(ev, "failed");
    assert_non_null(ev->error_kind);
    assert_non_null(ev->error_message);
    int ok = 0;
    for (const char *p = kinds; *p != '\0';) {
        size_t n = strcspn(p, "|");
        if (strlen(ev->error_kind) == n && strncmp(p, ev->error_kind, n) == 0)
            ok = 1;
        p += n + (p[n] == '|');
    }
    if (!ok)
        fail_msg("%s: error kind %s, expected %s (%s)", ev->input, ev->error_kind, kinds,
                 ev->error_message);
    if (strstr(ev->error_message, ev->input) == NULL)
        fail_msg("%s: the message does not name the file: %s", ev->input, ev->error_message);
    if (cause != NULL && strstr(ev->error_message, cause) == NULL)
        fail_msg("%s: the message does not say '%s': %s", ev->input, cause, ev->error_message);
    assert_int_equal(ev->n_outputs, 0);
}

/* The output of an ok event is on disk, decodes, and has the size the
 * event reports. */
static void expect_done(const ib_test_event_t *ev)
{
    ib_test_expect_event(ev, "ok");
    assert_int_equal(ev->n_outputs, 1);
    assert_non_null(ev->outputs[0].path);
    unsigned w, h;
    decode_output(ev->outputs[0].path, &w, &h);
    if (w != ev->outputs[0].width || h != ev->outputs[0].height)
        fail_msg("%s is %ux%u, its event says %lldx%lld", ev->outputs[0].path, w, h,
                 ev->outputs[0].width, ev->outputs[0].height);
}

/* ---- fixtures ---- */

/* Fails (the teardown then removes the root) if the slow PNG cannot be
 * made. */
static int group_setup(void **state)
{
    rel_t *t = ib_test_cli_new(sizeof *t);
    *state = t;
    if (t == NULL)
        return -1;
    /* The unreadable-file test runs imgbatch as nobody, who must get in. */
    chmod(t->cli.root, 0755);
    ib_test_path_join(t->slow, t->cli.root, "slow.png");
    ib_test_make_png(t->slow, 1500, 1500, IB_TEST_FILL_GRADIENT, 0);
    return 0;
}

static void dir_for(const rel_t *t, const char *name, char *out)
{
    ib_test_path_join(out, t->cli.root, name);
}

/* The suite's state for one test, and the test's input and output
 * directories: NAME-in and NAME-out under the root. */
static rel_t *test_dirs(void **state, const char *name, char *in, char *out)
{
    rel_t *t = *state;
    ib_test_path_fmt(in, "%s/%s-in", t->cli.root, name);
    ib_test_path_fmt(out, "%s/%s-out", t->cli.root, name);
    return t;
}

/* ---- 1. bad inputs ---- */

typedef struct {
    const char *name;
    const char *kinds;
} bad_input_t;

/* A damaged or foreign file fails alone, with the kind of failure it is
 * and its path in the message; every good image is still done, and no
 * input is touched. A file whose bytes match no image format at all is
 * "decode", whatever its name claims; "unsupported" is for a format that
 * is recognised but cannot be read here. */
static void bad_inputs_fail_alone(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    rel_t *t = test_dirs(state, "bad", in, out);

    static const char *const good[] = {"good.png", "good.jpg", "sub/good2.png"};
    ib_test_make_image_in(path, in, good[0], 80, 60, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(path, in, good[1], 80, 60, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(path, in, good[2], 80, 60, IB_TEST_FILL_SOLID);

    static const bad_input_t bad[] = {
        {"cut.jpg", "decode"},        {"cut.png", "decode"},   {"garbage.jpg", "decode"},
        {"garbage.png", "decode"},    {"empty.jpg", "decode"}, {"empty.png", "decode"},
        {"sub/badcrc.png", "decode"}, {"notes.bmp", "decode"},
    };
    ib_test_make_image_in(path, in, "cut.jpg", 400, 300, IB_TEST_FILL_NOISE);
    cut_in_half(path);
    ib_test_make_image_in(path, in, "cut.png", 300, 200, IB_TEST_FILL_NOISE);
    cut_in_half(path);
    ib_test_path_join(path, in, "garbage.jpg");
    make_garbage(path);
    ib_test_path_join(path, in, "garbage.png");
    make_garbage(path);
    ib_test_path_join(path, in, "empty.jpg");
    ib_test_write_file(path, "", 0);
    ib_test_path_join(path, in, "empty.png");
    ib_test_write_file(path, "", 0);
    /* The image data's checksum, not the header's: libpng only meets it
     * while decoding pixels, after the header was read fine. */
    ib_test_make_image_in(path, in, "sub/badcrc.png", 120, 90, IB_TEST_FILL_GRADIENT);
    size_t n;
    unsigned char *b = (unsigned char *)ib_test_slurp(path, &n);
    size_t at = png_chunk(b, n, "IDAT");
    b[at + 8 + be32(b + at)] ^= 0x55;
    ib_test_write_file(path, b, n);
    test_free(b);
    ib_test_path_join(path, in, "notes.bmp");
    static const char text[] = "shopping list: milk, eggs\n";
    ib_test_write_file(path, text, sizeof text - 1);

    snapshot_t snap;
    snapshot_take(in, &snap);
    run_t r;
    ib_test_events_t e;
    size_t n_bad = sizeof bad / sizeof bad[0], n_good = sizeof good / sizeof good[0];
    run_json(t, &r, NULL, 1, &e, n_bad + n_good, "-j", "2", "-s", "64x64", in, "-o", out, NULL);
    for (size_t i = 0; i < n_bad; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, bad[i].name);
        ib_test_path_join(path, in, bad[i].name);
        assert_string_equal(ev->input, path);
        expect_failure(ev, bad[i].kinds, NULL);
    }
    for (size_t i = 0; i < n_good; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, good[i]);
        expect_done(ev);
        assert_int_equal(ev->outputs[0].width, 64);
        assert_int_equal(ev->outputs[0].height, 48);
    }
    assert_int_equal(e.summary.ok, n_good);
    assert_int_equal(e.summary.failed, n_bad);
    ib_test_events_free(&e);

    /* Nothing written for a file that failed. */
    assert_int_equal(expect_clean_tree(out), n_good);
    snapshot_expect_same(&snap, "input");
    snapshot_free(&snap);
}

/* Whether user nobody can run imgbatch and write into dir (the build or
 * the temporary directory may sit under a private home). */
static int nobody_can_use(const rel_t *t, const char *dir)
{
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        return 0;
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(1);
        _exit(access(t->cli.bin, X_OK) == 0 && access(dir, W_OK | X_OK) == 0 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A file imgbatch may not read is a "read" failure with the OS's reason.
 * Root reads any file, so imgbatch runs as nobody here. */
static void unreadable_input_is_a_read_error(void **state)
{
    rel_t *t = *state;
    char in[PATH_MAX], out[PATH_MAX], locked[PATH_MAX], path[PATH_MAX];
    dir_for(t, "locked", in);
    ib_test_path_join(out, in, "out");
    ib_test_make_image_in(path, in, "good.png", 40, 30, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(locked, in, "locked.png", 40, 30, IB_TEST_FILL_GRADIENT);
    assert_int_equal(chmod(in, 0777), 0);
    if (geteuid() == 0 && !nobody_can_use(t, in))
        ib_test_skip_loudly("reliability",
                            "running as root, and user nobody cannot run %s or write in %s",
                            t->cli.bin, in);
    assert_int_equal(chmod(locked, 0), 0);

    snapshot_t snap;
    snapshot_take(in, &snap);
    run_opts_t o = {.as_nobody = 1};
    run_t r;
    ib_test_events_t e;
    run_json(t, &r, &o, 1, &e, 2, "-j", "2", in, "-o", out, NULL);
    chmod(locked, 0644);
    expect_failure(ib_test_event_for(&e, "locked.png"), "read", "Permission denied");
    expect_done(ib_test_event_for(&e, "good.png"));
    expect_outputs(&e, out, 1);
    snapshot_expect_same(&snap, "input");
    snapshot_free(&snap);
}

/* ---- 2. decompression bombs ---- */

/* Headers that promise ten billion and four billion pixels are refused
 * from the header, at once, with the default --max-pixels. */
static void decompression_bombs_are_refused_at_once(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    rel_t *t = test_dirs(state, "bomb", in, out);
    ib_test_path_join(path, in, "bomb.png");
    make_png_bomb(path, 100000, 100000);
    ib_test_path_join(path, in, "bomb.jpg");
    make_jpeg_bomb(path, 65000, 65000);
    ib_test_make_image_in(path, in, "fine.png", 50, 50, IB_TEST_FILL_GRADIENT);

    run_t r;
    ib_test_events_t e;
    run_json(t, &r, NULL, 1, &e, 3, "-j", "2", "-s", "32x32", in, "-o", out, NULL);
    if (r.seconds > 5)
        fail_msg("refusing two bombs took %.1f s", r.seconds);
    expect_failure(ib_test_event_for(&e, "bomb.png"), "too_large", "100000x100000");
    expect_failure(ib_test_event_for(&e, "bomb.jpg"), "too_large", "65000x65000");
    expect_done(ib_test_event_for(&e, "fine.png"));
    expect_outputs(&e, out, 1);
}

/* A PNG of a few hundred bytes whose metadata chunk claims 2 GB: the pixels
 * are few, so --max-pixels lets it pass, and it must still cost neither
 * memory nor time. Reading its header makes libpng, under libvips' PNG
 * loader, allocate and touch the 2 GB. */
static void metadata_bomb_is_refused_cheaply(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    rel_t *t = test_dirs(state, "mbomb", in, out);
    ib_test_make_image_in(path, in, "itxt.png", 64, 64, IB_TEST_FILL_SOLID);
    size_t n;
    unsigned char *b = (unsigned char *)ib_test_slurp(path, &n);
    /* After IHDR: an iTXt chunk header claiming 0x7fffb280 bytes, and a
     * few of them; the rest of the file follows as if they were all. */
    static const unsigned char itxt[] =
        "\x7f\xff\xb2\x80iTXtXML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>";
    size_t at = png_chunk(b, n, "IHDR") + 12 + 13;
    unsigned char *bomb = test_malloc(n + sizeof itxt);
    memcpy(bomb, b, at);
    memcpy(bomb + at, itxt, sizeof itxt - 1);
    memcpy(bomb + at + sizeof itxt - 1, b + at, n - at);
    ib_test_write_file(path, bomb, n + sizeof itxt - 1);
    test_free(bomb);
    test_free(b);
    ib_test_make_image_in(path, in, "fine.png", 50, 50, IB_TEST_FILL_GRADIENT);

    run_t r;
    ib_test_events_t e;
    run_json(t, &r, NULL, 1, &e, 2, "-j", "1", in, "-o", out, NULL);
    expect_failure(ib_test_event_for(&e, "itxt.png"), "decode|too_large", NULL);
    expect_done(ib_test_event_for(&e, "fine.png"));
    expect_outputs(&e, out, 1);
    fprintf(stderr, "reliability: metadata bomb: %.1f s, largest process %ld MB\n", r.seconds,
            r.max_rss_kb / 1024);
    if (r.max_rss_kb > 512 * 1024 || r.seconds > 5)
        fail_msg("a %zu-byte PNG cost %ld MB of memory and %.1f s", n + sizeof itxt - 1,
                 r.max_rss_kb / 1024, r.seconds);
}

/* ---- 3. a worker crashes ---- */

#define CRASH_IMAGES 16

/* A worker killed by SIGSEGV in the middle of an image loses that image
 * and nothing else, and the failure names the signal. */
static void crashed_worker_loses_only_its_image(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], name[32];
    rel_t *t = test_dirs(state, "crash", in, out);
    link_slow(t, in, CRASH_IMAGES);

    run_opts_t o = {.segv_kills = 1};
    run_t r;
    start_json(t, &r, &o, "-j", "2", "-f", "blur=10", in, "-o", out, NULL);
    wait_for_outputs(&r, out, 1, 60);
    pid_t victim = busy_worker(&r, 30);
    if (victim == 0) {
        abandon(&r);
        fail_msg("no busy worker of imgbatch %d seen", (int)r.pid);
    }
    assert_int_equal(kill(victim, SIGSEGV), 0);
    finish(&r, 120);
    if (r.status != 0 && r.status != 1) {
        show_output(&r);
        fail_msg("imgbatch exited %d after worker %d was killed, expected 0 or 1", r.status,
                 (int)victim);
    }

    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, CRASH_IMAGES);
    size_t crashes = 0;
    for (unsigned i = 0; i < CRASH_IMAGES; i++) {
        snprintf(name, sizeof name, "s%02u.png", i);
        const ib_test_event_t *ev = ib_test_event_for(&e, name);
        if (is_status(ev, "failed")) {
            expect_failure(ev, "crash", NULL);
            if (strstr(ev->error_message, "signal 11") == NULL &&
                strstr(ev->error_message, "SIGSEGV") == NULL)
                fail_msg("the crash is not put down to SIGSEGV: %s", ev->error_message);
            crashes++;
            continue;
        }
        expect_done(ev);
    }
    if (crashes > 1)
        fail_msg("%zu images lost to one crashed worker", crashes);
    assert_int_equal(r.status, crashes > 0 ? 1 : 0);
    expect_outputs(&e, out, CRASH_IMAGES - crashes);
    fprintf(stderr, "reliability: SIGSEGV to worker %d: %zu image(s) lost\n", (int)victim, crashes);
}

/*
 * Workers killed at random moments, over many runs: every event must say
 * exactly what is on disk. Some kills come at random times, others the
 * moment an output appears (inotify), which is when a worker is between
 * putting its output in place and sending its result. Each job makes two
 * variants, so a death between them leaves one output.
 */
#define KILL_RUNS 30
#define KILL_IMAGES 12
/* Few enough that the pool never takes the kills for workers that cannot
 * start (it gives up after 2 * workers + 2 deaths without a result). */
#define KILLS_PER_RUN 5

/* The path of each output an event lists; fails on one that is not whole
 * or not the size the event says. */
static size_t check_event_outputs(const ib_test_event_t *ev, char seen[][PATH_MAX], size_t n_seen)
{
    for (unsigned k = 0; k < ev->n_outputs; k++) {
        const ib_test_output_t *o = &ev->outputs[k];
        struct stat st;
        if (o->path == NULL || stat(o->path, &st) < 0)
            fail_msg("%s (%s): output %s is not on disk", ev->input, ev->status,
                     o->path != NULL ? o->path : "(none)");
        if ((long long)st.st_size != o->bytes)
            fail_msg("%s: %s has %lld bytes, its event says %lld", ev->input, o->path,
                     (long long)st.st_size, o->bytes);
        unsigned w, h;
        decode_output(o->path, &w, &h);
        if (w != o->width || h != o->height)
            fail_msg("%s is %ux%u, its event says %lldx%lld", o->path, w, h, o->width, o->height);
        snprintf(seen[n_seen++], PATH_MAX, "%s", o->path);
    }
    return n_seen;
}

/* One event per input, each agreeing with the disk, and nothing on disk
 * that no event lists. Returns the failures. */
static unsigned check_events_against_disk(const run_t *r, const char *out)
{
    static char seen[2 * KILL_IMAGES][PATH_MAX];
    ib_test_events_t e;
    ib_test_events_load(r, &e);
    assert_int_equal(e.n, KILL_IMAGES);
    size_t n_seen = 0;
    unsigned failed = 0;
    for (size_t i = 0; i < e.n; i++) {
        const ib_test_event_t *ev = &e.files[i];
        if (is_status(ev, "ok")) {
            assert_int_equal(ev->n_outputs, 2);
        } else {
            ib_test_expect_event(ev, "failed");
            assert_string_equal(ev->error_kind, "crash");
            assert_true(ev->n_outputs < 2);
            failed++;
        }
        n_seen = check_event_outputs(ev, seen, n_seen);
    }
    ib_test_events_free(&e);
    ib_test_listing_t l;
    ib_test_list_outputs(out, &l);
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        int listed_here = 0;
        ib_test_path_join(path, out, l.paths[i]);
        for (size_t k = 0; k < n_seen; k++)
            listed_here |= strcmp(seen[k], path) == 0;
        if (!listed_here)
            fail_msg("%s is on disk but no event lists it", path);
    }
    ib_test_listing_free(&l);
    return failed;
}

/* Kills up to KILLS_PER_RUN workers of the run at random moments, with
 * SIGKILL or SIGSEGV, until imgbatch ends. */
static void kill_workers_randomly(run_t *r, const char *out, unsigned *seed)
{
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    assert_true(in >= 0);
    assert_true(inotify_add_watch(in, out, IN_CREATE | IN_MOVED_TO) >= 0);
    unsigned kills = 0;
    for (;;) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->status = ib_test_exit_status(st);
            break;
        }
        struct pollfd pfd = {.fd = in, .events = POLLIN};
        int wait_ms = (int)(rand_r(seed) % 40);
        int appeared = poll(&pfd, 1, wait_ms) > 0;
        char buf[4096];
        while (read(in, buf, sizeof buf) > 0)
            ;
        if (kills >= KILLS_PER_RUN || (!appeared && rand_r(seed) % 4 != 0))
            continue;
        pid_t kids[16];
        size_t n = children_of(r->pid, kids, 16);
        if (n == 0)
            continue;
        kill(kids[rand_r(seed) % n], rand_r(seed) % 2 ? SIGKILL : SIGSEGV);
        kills++;
    }
    close(in);
}

static void killed_workers_never_misreport(void **state)
{
    rel_t *t = *state;
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    dir_for(t, "kills-in", in);
    for (unsigned i = 0; i < KILL_IMAGES; i++) {
        ib_test_path_fmt(path, "%s/k%02u.png", in, i);
        ib_test_mkdirs_for(path);
        ib_test_make_png(path, 400, 300, IB_TEST_FILL_GRADIENT, 0);
    }
    unsigned seed = (unsigned)time(NULL), failed = 0;
    fprintf(stderr, "reliability: random kills, seed %u\n", seed);
    for (unsigned run = 0; run < KILL_RUNS; run++) {
        char name[32];
        snprintf(name, sizeof name, "kills-out-%u", run);
        dir_for(t, name, out);
        assert_int_equal(mkdir(out, 0755), 0);
        run_opts_t o = {.segv_kills = 1};
        run_t r;
        start_json(t, &r, &o, "-j", "2", "--variant", "sm:64x", "--variant", "lg:160x", in, "-o",
                   out, NULL);
        kill_workers_randomly(&r, out, &seed);
        unsigned f = check_events_against_disk(&r, out);
        if (r.status != (f > 0 ? 1 : 0)) {
            show_output(&r);
            fail_msg("run %u: exit %d with %u failed images", run, r.status, f);
        }
        failed += f;
    }
    fprintf(stderr, "reliability: %u runs, %u images lost to kills\n", KILL_RUNS, failed);
}

/* ---- 4. a hang ---- */

/* An image that would take about ten seconds is given up after --timeout;
 * the others are done and the run does not wait for it. The work scales
 * with the image: -s 1000% makes the 1500x1500 PNG a 225-megapixel one,
 * while a 32x32 image becomes 320x320 in milliseconds. An op whose cost
 * does not scale down (a sigma-400 blur costs the same on every pixel)
 * would make the quick images slow too, and a loaded machine would time
 * them out. */
static void slow_image_times_out(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX], name[32];
    rel_t *t = test_dirs(state, "hang", in, out);
    ib_test_path_join(path, in, "slow.png");
    ib_test_mkdirs_for(path);
    assert_int_equal(link(t->slow, path), 0);
    for (unsigned i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "quick%u.png", i);
        ib_test_make_image_in(path, in, name, 32, 32, IB_TEST_FILL_GRADIENT);
    }

    run_t r;
    ib_test_events_t e;
    run_json(t, &r, NULL, 1, &e, 5, "-j", "2", "--timeout", "0.5", "-s", "1000%", in, "-o", out,
             NULL);
    if (r.seconds > 5)
        fail_msg("a --timeout 0.5 run took %.1f s", r.seconds);
    expect_failure(ib_test_event_for(&e, "slow.png"), "timeout", "--timeout");
    for (unsigned i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "quick%u.png", i);
        expect_done(ib_test_event_for(&e, name));
    }
    expect_outputs(&e, out, 4);
}

/* ---- 5. interruption ---- */

#define INTERRUPT_IMAGES 16

/* Ctrl-C lets the images in progress finish and stops; the run says it
 * was interrupted, leaves only whole outputs, and a second run does the
 * rest: every image converted exactly once over the two runs. */
static void interrupted_run_resumes(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], name[32];
    rel_t *t = test_dirs(state, "int", in, out);
    link_slow(t, in, INTERRUPT_IMAGES);

    run_t r;
    start_json(t, &r, NULL, "-j", "2", "-f", "blur=10", in, "-o", out, NULL);
    wait_for_outputs(&r, out, 1, 60);
    pid_t workers[64];
    size_t n_workers = children_of(r.pid, workers, 64);
    assert_int_equal(kill(r.pid, SIGINT), 0);
    finish(&r, 60);
    expect_status(&r, 130);
    expect_gone(workers, n_workers);
    if (!output_has(r.out, "\"interrupted\":true") || !output_has(r.err, "interrupted: ") ||
        !output_has(r.err, " done, "))
        fail_msg("no summary saying the run was interrupted");

    ib_test_events_t first;
    ib_test_events_load(&r, &first);
    if (first.n >= INTERRUPT_IMAGES)
        fail_msg("all %zu images were done: the interrupt came too late to test anything", first.n);
    for (size_t i = 0; i < first.n; i++)
        expect_done(&first.files[i]);
    /* On disk: exactly the images reported done, each whole. */
    assert_int_equal(expect_clean_tree(out), first.n);
    assert_int_equal(first.summary.ok, first.n);

    ib_test_events_t second;
    run_json(t, &r, NULL, 0, &second, INTERRUPT_IMAGES, "-j", "2", "-f", "blur=10", in, "-o", out,
             NULL);
    for (unsigned i = 0; i < INTERRUPT_IMAGES; i++) {
        snprintf(name, sizeof name, "s%02u.png", i);
        const ib_test_event_t *ev = ib_test_event_for(&second, name);
        if (ib_test_event_find(&first, name) != NULL)
            ib_test_expect_event(ev, "skipped");
        else
            expect_done(ev);
    }
    assert_int_equal(second.summary.skipped, first.n);
    assert_int_equal(second.summary.ok, INTERRUPT_IMAGES - first.n);
    ib_test_events_free(&first);
    expect_outputs(&second, out, INTERRUPT_IMAGES);
}

/* A second Ctrl-C stops at once: images of about nine seconds each are
 * not waited for, their workers are gone and no temporary file is left. */
static void second_interrupt_stops_at_once(void **state)
{
    char in[PATH_MAX], out[PATH_MAX];
    rel_t *t = test_dirs(state, "int2", in, out);
    link_slow(t, in, 6);

    run_t r;
    start_json(t, &r, NULL, "-j", "2", "-f", "blur=200", in, "-o", out, NULL);
    if (worker_on_image(&r, in, 30) == 0) {
        abandon(&r);
        fail_msg("no worker of imgbatch %d took an image", (int)r.pid);
    }
    pid_t workers[64];
    size_t n_workers = children_of(r.pid, workers, 64);
    assert_int_equal(kill(r.pid, SIGINT), 0);
    /* Two signals sent before the first is delivered are one: the second
     * goes only once imgbatch says it has taken the first. */
    wait_for_text(&r, r.err, "finishing the images in progress", 30);
    double second = ib_test_now();
    assert_int_equal(kill(r.pid, SIGINT), 0);
    finish(&r, 60);
    double took = ib_test_now() - second;
    expect_status(&r, 130);
    if (took > 2.5)
        fail_msg("imgbatch took %.1f s to stop after the second SIGINT", took);
    expect_gone(workers, n_workers);
    if (!output_has(r.out, "\"interrupted\":true"))
        fail_msg("no summary saying the run was interrupted");
    expect_clean_tree(out);
}

/* ---- 6. full disks and write errors ---- */

/* The run both write-failure tests make, with o and -j jobs, and the
 * outcome they expect: small.png written, the two large outputs failed as
 * "write" naming the output and the OS error, and nothing half-written
 * left under out. */
static void expect_write_failures(rel_t *t, const run_opts_t *o, const char *jobs, const char *in,
                                  const char *out, int os_error)
{
    run_t r;
    ib_test_events_t e;
    run_json(t, &r, o, 1, &e, 3, "-j", jobs, in, "-o", out, NULL);
    expect_done(ib_test_event_for(&e, "small.png"));
    static const char *const big[] = {"noise1.png", "noise2.png"};
    for (size_t i = 0; i < 2; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, big[i]);
        char dest[PATH_MAX];
        ib_test_path_join(dest, out, big[i]);
        ib_test_expect_event(ev, "failed");
        assert_string_equal(ev->error_kind, "write");
        if (strstr(ev->error_message, dest) == NULL ||
            strstr(ev->error_message, strerror(os_error)) == NULL)
            fail_msg("the message does not name %s and '%s': %s", dest, strerror(os_error),
                     ev->error_message);
    }
    expect_outputs(&e, out, 1);
}

/* Under a file-size limit (ulimit -f) an output that does not fit is a
 * write failure naming the output and the OS's reason; outputs that fit
 * are written; nothing half-written remains. */
static void file_size_limit_is_a_write_error(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    rel_t *t = test_dirs(state, "fsize", in, out);
    ib_test_make_image_in(path, in, "small.png", 16, 16, IB_TEST_FILL_SOLID);
    ib_test_make_image_in(path, in, "noise1.png", 100, 100, IB_TEST_FILL_NOISE);
    ib_test_make_image_in(path, in, "noise2.png", 120, 100, IB_TEST_FILL_NOISE);

    /* Room for small.png and for the --json lines, not for 30 KB of noise. */
    run_opts_t o = {.fsize = 16384};
    expect_write_failures(t, &o, "2", in, out, EFBIG);
}

static int unmount_full_disk(void **state)
{
    rel_t *t = *state;
    if (t->mnt[0] != '\0') {
        if (umount2(t->mnt, MNT_DETACH) < 0)
            fprintf(stderr, "reliability: umount(\"%s\") failed: %s\n", t->mnt, strerror(errno));
        t->mnt[0] = '\0';
    }
    return 0;
}

/* A full disk (a 200 KB tmpfs): the same, with ENOSPC. */
static void full_disk_is_a_write_error(void **state)
{
    rel_t *t = *state;
    char in[PATH_MAX], mnt[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    dir_for(t, "full-in", in);
    dir_for(t, "full", mnt);
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("none", mnt, "tmpfs", 0, "size=200k") < 0)
        ib_test_skip_loudly("reliability", "mount -t tmpfs on %s failed (%s): no full-disk test",
                            mnt, strerror(errno));
    snprintf(t->mnt, sizeof t->mnt, "%s", mnt);
    ib_test_path_join(out, mnt, "out");
    ib_test_make_image_in(path, in, "small.png", 16, 16, IB_TEST_FILL_SOLID);
    /* 270 KB of noise each: neither fits, whatever the order. One worker:
     * two writing at once share the 200 KB, and a large file half written
     * could leave the small one no room. */
    ib_test_make_image_in(path, in, "noise1.png", 300, 300, IB_TEST_FILL_NOISE);
    ib_test_make_image_in(path, in, "noise2.png", 310, 300, IB_TEST_FILL_NOISE);
    expect_write_failures(t, NULL, "1", in, out, ENOSPC);
}

/* ---- 7. stopping early ---- */

#define STOP_GOOD 30

/* 33 inputs named in order, damaged ones at 0, 10 and 20. */
static void make_stop_inputs(rel_t *t, char names[][PATH_MAX], size_t *n)
{
    char in[PATH_MAX], first[PATH_MAX];
    dir_for(t, "stop-in", in);
    ib_test_path_join(first, in, "g00.png");
    if (!ib_test_exists(first))
        ib_test_make_png(first, 32, 32, IB_TEST_FILL_GRADIENT, 0);
    size_t k = 0;
    for (unsigned i = 0; i < STOP_GOOD; i++) {
        if (i % 10 == 0) {
            ib_test_path_fmt(names[k], "%s/bad%02u.jpg", in, i);
            if (!ib_test_exists(names[k]))
                make_garbage(names[k]);
            k++;
        }
        ib_test_path_fmt(names[k], "%s/g%02u.png", in, i);
        if (!ib_test_exists(names[k]))
            assert_int_equal(link(first, names[k]), 0);
        k++;
    }
    *n = k;
}

static void stop_run(rel_t *t, const char *opt, const char *val, const char *out, run_t *r,
                     ib_test_events_t *e)
{
    static char names[STOP_GOOD + 3][PATH_MAX];
    size_t n;
    make_stop_inputs(t, names, &n);
    args_t a;
    args_start(&a, t);
    /* One worker takes the inputs in order: with two, one of them can run
     * through ten good images while the other is still on a damaged one,
     * and a run that stops at once would still have reached the next. */
    ib_test_args_add(&a, "--json", "-j", "1", opt, NULL);
    if (val != NULL)
        ib_test_args_add(&a, val, NULL);
    ib_test_args_add(&a, "-o", out, NULL);
    for (size_t i = 0; i < n; i++)
        ib_test_args_add(&a, names[i], NULL);
    run_args(t, r, &a);
    expect_status(r, 1);
    ib_test_events_load(r, e);
    if (e->n >= n) {
        show_output(r);
        fail_msg("%s: %zu events for %zu inputs: it did not stop early", opt, e->n, n);
    }
    for (size_t i = 0; i < e->n; i++)
        if (is_status(&e->files[i], "ok"))
            expect_done(&e->files[i]);
    expect_clean_tree(out);
    if (!output_has(r->err, "stopping after"))
        fail_msg("%s: stderr does not say why the run stopped", opt);
}

static void fail_fast_and_max_errors_stop_early(void **state)
{
    rel_t *t = *state;
    char out[PATH_MAX];
    run_t r;
    ib_test_events_t e;

    dir_for(t, "stop-out1", out);
    stop_run(t, "--fail-fast", NULL, out, &r, &e);
    assert_int_equal(e.summary.failed, 1);
    expect_failure(ib_test_event_for(&e, "bad00.jpg"), "decode|unsupported", NULL);
    assert_null(ib_test_event_find(&e, "bad10.jpg"));
    ib_test_events_free(&e);

    dir_for(t, "stop-out2", out);
    stop_run(t, "--max-errors", "2", out, &r, &e);
    assert_int_equal(e.summary.failed, 2);
    expect_failure(ib_test_event_for(&e, "bad00.jpg"), "decode|unsupported", NULL);
    expect_failure(ib_test_event_for(&e, "bad10.jpg"), "decode|unsupported", NULL);
    assert_null(ib_test_event_find(&e, "bad20.jpg"));
    ib_test_events_free(&e);
}

/* ---- 8. collisions ---- */

/* One collision run: the input that lost is a collision naming the
 * output; the other is `want` ("ok" or "skipped") with the size of the
 * file on disk. When winner is given and the other input won, that goes
 * into problem (the caller still checks the file), else problem is "".
 * Returns the winner's name. */
static const char *collision_run(rel_t *t, args_t *a, const char *dest, const char *want,
                                 const char *winner, char *problem, size_t problem_len)
{
    run_t r;
    run_args(t, &r, a);
    expect_status(&r, 1);
    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, 2);
    const ib_test_event_t *png = ib_test_event_for(&e, "a.png"),
                          *jpg = ib_test_event_for(&e, "a.jpg");
    const ib_test_event_t *lost = is_status(png, "failed") ? png : jpg;
    const ib_test_event_t *won = lost == png ? jpg : png;
    const char *name = won == png ? "a.png" : "a.jpg";
    expect_failure(lost, "collision", dest);
    problem[0] = '\0';
    if (winner != NULL && strcmp(name, winner) != 0) {
        snprintf(problem, problem_len,
                 "%s is reported %s for %s (as %lldx%lld), the output of %s; it should be the "
                 "collision",
                 won->input, won->status, dest, won->outputs[0].width, won->outputs[0].height,
                 winner);
        show_output(&r);
        ib_test_events_free(&e);
        return name;
    }
    ib_test_expect_event(won, want);
    assert_int_equal(won->n_outputs, 1);
    assert_string_equal(won->outputs[0].path, dest);
    unsigned w, h;
    decode_output(dest, &w, &h);
    if (w != won->outputs[0].width || h != won->outputs[0].height)
        fail_msg("%s is reported %s as %lldx%lld, but %s is %ux%u", won->input, want,
                 won->outputs[0].width, won->outputs[0].height, dest, w, h);
    ib_test_events_free(&e);
    return name;
}

/* a.png and a.jpg both become a.webp: one is written, the other is a
 * collision, and the file is never written over, whichever of the two a
 * later run happens to take first. */
static void same_output_is_a_collision(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], png[PATH_MAX], jpg[PATH_MAX], dest[PATH_MAX];
    rel_t *t = test_dirs(state, "collide", in, out);
    ib_test_make_image_in(png, in, "a.png", 40, 30, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(jpg, in, "a.jpg", 50, 20, IB_TEST_FILL_GRADIENT);
    ib_test_path_join(dest, out, "a.webp");

    args_t a;
    args_start(&a, t);
    ib_test_args_add(&a, "--json", "-j", "2", "-F", "webp", in, "-o", out, NULL);
    char problem[3 * PATH_MAX];
    const char *winner = collision_run(t, &a, dest, "ok", NULL, problem, sizeof problem);
    assert_int_equal(expect_clean_tree(out), 1);
    snapshot_t snap = {0};
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    snapshot_add(&snap, dest, st.st_ino);

    /* Again, one worker, the inputs named loser first: the loser takes
     * the name first this time, and must neither pass the winner's output
     * off as its own nor, once it is newer than that output, write over
     * it. */
    const char *loser = strcmp(winner, "a.png") == 0 ? jpg : png;
    char problems[2][3 * PATH_MAX];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            assert_int_equal(utimensat(AT_FDCWD, loser, NULL, 0), 0);
        args_start(&a, t);
        ib_test_args_add(&a, "--json", "-j", "1", "-F", "webp", "-o", out, loser,
                         loser == jpg ? png : jpg, NULL);
        char *p = problems[pass];
        collision_run(t, &a, dest, "skipped", winner, p, sizeof problems[pass]);
        assert_int_equal(expect_clean_tree(out), 1);
        const char *path, *how = snapshot_changed(&snap, &path);
        if (how != NULL) {
            size_t n = strlen(p);
            snprintf(p + n, sizeof problems[pass] - n, "%s%s was written over (%s)",
                     n > 0 ? "; and " : "", path, how);
        }
    }
    snapshot_free(&snap);
    if (problems[0][0] != '\0' || problems[1][0] != '\0')
        fail_msg("%s\n%s", problems[0], problems[1]);
}

/* ---- 9. in place ---- */

/* --in-place replaces each input by rename (a new inode, never a file
 * rewritten where it stands); a corrupt input stays byte for byte what it
 * was; a second run with the same recipe finds everything up to date. */
static void in_place_replaces_atomically(void **state)
{
    rel_t *t = *state;
    char in[PATH_MAX], one[PATH_MAX], two[PATH_MAX], broken[PATH_MAX];
    dir_for(t, "inplace", in);
    ib_test_make_image_in(one, in, "one.png", 100, 80, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(two, in, "two.jpg", 100, 80, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(broken, in, "broken.png", 300, 200, IB_TEST_FILL_NOISE);
    cut_in_half(broken);
    struct stat st1, st2, stb;
    assert_int_equal(stat(one, &st1), 0);
    assert_int_equal(stat(two, &st2), 0);
    assert_int_equal(stat(broken, &stb), 0);
    snapshot_t snap = {0};
    snapshot_add(&snap, broken, stb.st_ino);

    run_t r;
    ib_test_events_t e;
    run_json(t, &r, NULL, 1, &e, 3, "-j", "2", "--in-place", "-s", "50x50", in, NULL);
    expect_failure(ib_test_event_for(&e, "broken.png"), "decode", NULL);
    const char *const replaced[] = {one, two};
    const struct stat *old[] = {&st1, &st2};
    struct stat after[2];
    for (size_t i = 0; i < 2; i++) {
        const ib_test_event_t *ev = ib_test_event_for(&e, strrchr(replaced[i], '/') + 1);
        expect_done(ev);
        assert_string_equal(ev->outputs[0].path, replaced[i]);
        assert_int_equal(ev->outputs[0].width, 50);
        assert_int_equal(ev->outputs[0].height, 40);
        assert_int_equal(stat(replaced[i], &after[i]), 0);
        if (after[i].st_ino == old[i]->st_ino)
            fail_msg("%s was rewritten where it stood, not replaced by rename", replaced[i]);
    }
    ib_test_events_free(&e);
    ib_test_listing_t l;
    ib_test_list_tree(in, &l);
    if (l.temps > 0 || l.n != 3 || !listed(&l, "one.png") || !listed(&l, "two.jpg") ||
        !listed(&l, "broken.png"))
        fail_msg("after --in-place the folder holds %zu files (%zu temporary), expected the 3 "
                 "inputs",
                 l.n, l.temps);
    ib_test_listing_free(&l);
    snapshot_expect_same(&snap, "input");
    snapshot_free(&snap);

    /* Without extended attributes the replaced files cannot be told from
     * originals, and a re-run redoes them (DESIGN.md). */
    if (setxattr(one, "user.imgbatch.test", "1", 1, 0) < 0) {
        fprintf(stderr, "reliability: SKIPPED the --in-place re-run: no user xattrs in %s (%s)\n",
                in, strerror(errno));
        return;
    }
    removexattr(one, "user.imgbatch.test");
    run_json(t, &r, NULL, 1, &e, 3, "-j", "2", "--in-place", "-s", "50x50", in, NULL);
    expect_failure(ib_test_event_for(&e, "broken.png"), "decode", NULL);
    for (size_t i = 0; i < 2; i++) {
        ib_test_expect_event(ib_test_event_for(&e, strrchr(replaced[i], '/') + 1), "skipped");
        struct stat now;
        assert_int_equal(stat(replaced[i], &now), 0);
        if (now.st_ino != after[i].st_ino)
            fail_msg("%s was replaced again by a run that reported it skipped", replaced[i]);
    }
    ib_test_events_free(&e);
}

/* ---- 10. recycled workers ---- */

/* With --worker-jobs 2 each worker ends after two images and is replaced;
 * every image is still done. */
static void recycled_workers_do_every_image(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], first[PATH_MAX], path[PATH_MAX];
    rel_t *t = test_dirs(state, "recycle", in, out);
    ib_test_make_image_in(first, in, "r00.png", 300, 300, IB_TEST_FILL_GRADIENT);
    for (unsigned i = 1; i < 20; i++) {
        ib_test_path_fmt(path, "%s/r%02u.png", in, i);
        assert_int_equal(link(first, path), 0);
    }

    run_t r;
    start_json(t, &r, NULL, "-j", "2", "--worker-jobs", "2", "-f", "blur=2", in, "-o", out, NULL);
    /* Watch the process tree: more than two workers means replacements. */
    pid_t seen[256];
    size_t n_seen = 0;
    for (;;) {
        int st;
        pid_t w = waitpid(r.pid, &st, WNOHANG);
        if (w == r.pid) {
            r.status = ib_test_exit_status(st);
            r.seconds = ib_test_now() - r.started;
            break;
        }
        if (ib_test_now() - r.started > 120) {
            abandon(&r);
            fail_msg("imgbatch still running after 120 s");
        }
        pid_t kids[64];
        size_t n = children_of(r.pid, kids, 64);
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            while (k < n_seen && seen[k] != kids[i])
                k++;
            if (k == n_seen && n_seen < 256)
                seen[n_seen++] = kids[i];
        }
        nap_ms(1);
    }
    expect_status(&r, 0);
    ib_test_events_t e;
    ib_test_events_load(&r, &e);
    assert_int_equal(e.n, 20);
    for (size_t i = 0; i < e.n; i++)
        expect_done(&e.files[i]);
    expect_outputs(&e, out, 20);
    fprintf(stderr, "reliability: %zu worker processes seen for 20 images\n", n_seen);
    if (n_seen <= 2)
        fail_msg("only %zu worker processes seen for 20 images with --worker-jobs 2", n_seen);
}

/* ---- 11. memory limit ---- */

/* A 10000x10000 picture (300 MB of pixels) that a rotation must hold
 * whole does not fit in --max-memory 256M: it fails, the others do not. */
static void max_memory_fails_only_the_large_image(void **state)
{
    char in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    if (UNDER_ASAN)
        ib_test_skip_loudly(
            "reliability",
            "--max-memory is an address-space limit, which AddressSanitizer's shadow "
            "memory makes meaningless");
    rel_t *t = test_dirs(state, "mem", in, out);
    ib_test_path_join(path, in, "huge.png");
    make_huge_png(path, 10000, 10000);
    ib_test_make_image_in(path, in, "small1.png", 200, 150, IB_TEST_FILL_GRADIENT);
    ib_test_make_image_in(path, in, "small2.png", 150, 200, IB_TEST_FILL_GRADIENT);

    run_t r;
    ib_test_events_t e;
    run_json(t, &r, NULL, 1, &e, 3, "-j", "2", "--max-memory", "256M", "-f", "rotate=45", in, "-o",
             out, NULL);
    const ib_test_event_t *huge = ib_test_event_for(&e, "huge.png");
    ib_test_expect_event(huge, "failed");
    assert_non_null(huge->error_message);
    if (strstr(huge->error_message, huge->input) == NULL)
        fail_msg("the message does not name the file: %s", huge->error_message);
    expect_done(ib_test_event_for(&e, "small1.png"));
    expect_done(ib_test_event_for(&e, "small2.png"));
    expect_outputs(&e, out, 2);
}

IB_TEST_MAIN(group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(bad_inputs_fail_alone),
                 cmocka_unit_test(unreadable_input_is_a_read_error),
                 cmocka_unit_test(decompression_bombs_are_refused_at_once),
                 cmocka_unit_test(metadata_bomb_is_refused_cheaply),
                 cmocka_unit_test(crashed_worker_loses_only_its_image),
                 cmocka_unit_test(killed_workers_never_misreport),
                 cmocka_unit_test(slow_image_times_out),
                 cmocka_unit_test(interrupted_run_resumes),
                 cmocka_unit_test(second_interrupt_stops_at_once),
                 cmocka_unit_test(file_size_limit_is_a_write_error),
                 cmocka_unit_test_teardown(full_disk_is_a_write_error, unmount_full_disk),
                 cmocka_unit_test(fail_fast_and_max_errors_stop_early),
                 cmocka_unit_test(same_output_is_a_collision),
                 cmocka_unit_test(in_place_replaces_atomically),
                 cmocka_unit_test(recycled_workers_do_every_image),
                 cmocka_unit_test(max_memory_fails_only_the_large_image),
             })
