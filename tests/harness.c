/*
 * The integration tests' shared helpers. See harness.h.
 *
 * NOTES
 * - A pair of ib_test_X() and ib_test_try_X() shares one function that
 *   writes its error into a buffer: the first fails the test with that
 *   text, the second returns -1. The messages name the call and the
 *   object: `mkdir("a/b") failed: Permission denied`.
 * - nftw() passes no argument to its callback, so the listing being built
 *   is reached through two statics, set only around the nftw() call. The
 *   tests are single-threaded.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

extern char **environ;

#define ERR_LEN (PATH_MAX + 128)

static int say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- paths and files ---- */

static int vpath_fmt(char *out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static int vpath_fmt(char *out, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

void ib_test_path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vpath_fmt(out, fmt, ap);
    va_end(ap);
    if (rc < 0)
        fail_msg("path too long: %s...", out);
}

int ib_test_try_path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vpath_fmt(out, fmt, ap);
    va_end(ap);
    return rc;
}

void ib_test_path_join(char *out, const char *a, const char *b)
{
    ib_test_path_fmt(out, "%s/%s", a, b);
}

int ib_test_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int mkdirs_for(const char *file, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (ib_test_try_path_fmt(dir, "%s", file) < 0)
        return say(err, errlen, "path too long: %s...", dir);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) < 0 && errno != EEXIST)
            return say(err, errlen, "mkdir(\"%s\") failed: %s", dir, strerror(errno));
        *p = '/';
    }
    return 0;
}

void ib_test_mkdirs_for(const char *file)
{
    char err[ERR_LEN];
    if (mkdirs_for(file, err, sizeof err) < 0)
        fail_msg("%s", err);
}

int ib_test_try_mkdirs_for(const char *file)
{
    char err[ERR_LEN];
    return mkdirs_for(file, err, sizeof err);
}

static int write_file(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
    if (mkdirs_for(path, err, errlen) < 0)
        return -1;
    FILE *f = fopen(path, "wbe");
    if (f == NULL)
        return say(err, errlen, "fopen(\"%s\") failed: %s", path, strerror(errno));
    size_t w = fwrite(data, 1, n, f);
    if (fclose(f) != 0 || w != n)
        return say(err, errlen, "writing \"%s\" failed", path);
    return 0;
}

void ib_test_write_file(const char *path, const void *data, size_t n)
{
    char err[ERR_LEN];
    if (write_file(path, data, n, err, sizeof err) < 0)
        fail_msg("%s", err);
}

int ib_test_try_write_file(const char *path, const void *data, size_t n)
{
    char err[ERR_LEN];
    return write_file(path, data, n, err, sizeof err);
}

static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = test_malloc(cap);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = test_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say(err, errlen, "read(\"%s\") failed: %s", path, strerror(errno));
            close(fd);
            test_free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

char *ib_test_slurp(const char *path, size_t *len)
{
    char err[ERR_LEN];
    char *buf = slurp(path, len, err, sizeof err);
    if (buf == NULL)
        fail_msg("%s", err);
    return buf;
}

char *ib_test_try_slurp(const char *path, size_t *len)
{
    char err[ERR_LEN];
    return slurp(path, len, err, sizeof err);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int ib_test_rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ib_test_exists(path) ? -1 : 0;
}

int ib_test_find_program(const char *name, char *out)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    for (;;) {
        size_t n = strcspn(path, ":");
        /* An empty entry is the current directory, as for execvp(). */
        const char *dir = n > 0 ? path : ".";
        int len = snprintf(out, PATH_MAX, "%.*s/%s", n > 0 ? (int)n : 1, dir, name);
        if (len > 0 && len < PATH_MAX && access(out, X_OK) == 0)
            return 0;
        if (path[n] == '\0')
            return -1;
        path += n + 1;
    }
}

/* One line on stderr: "suite: " (unless suite is NULL), tag, the message. */
static void vtell(const char *suite, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vtell(const char *suite, const char *tag, const char *fmt, va_list ap)
{
    if (suite != NULL)
        fprintf(stderr, "%s: ", suite);
    fputs(tag, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void tell(const char *suite, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell(const char *suite, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtell(suite, "", fmt, ap);
    va_end(ap);
}

const char *ib_test_imgbatch(const char *suite)
{
    const char *bin = getenv("IMGBATCH");
    if (bin == NULL || access(bin, X_OK) != 0) {
        tell(suite, "IMGBATCH must name the built imgbatch (got %s)", bin ? bin : "nothing");
        return NULL;
    }
    return bin;
}

int ib_test_make_root(const char *suite, const char *name, char *root)
{
    const char *tmp = getenv("TMPDIR");
    if (ib_test_try_path_fmt(root, "%s/%s-XXXXXX", tmp != NULL ? tmp : "/tmp", name) < 0)
        errno = ENAMETOOLONG;
    else if (mkdtemp(root) != NULL)
        return 0;
    tell(suite, "mkdtemp(\"%s\") failed: %s", root, strerror(errno));
    root[0] = '\0';
    return -1;
}

void ib_test_skip_loudly(const char *suite, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtell(suite, "SKIPPED: ", fmt, ap);
    va_end(ap);
    skip();
}

double ib_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ib_test_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the files of an output tree ---- */

static ib_test_listing_t *walk_listing;
static size_t walk_root_len;

static int list_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    ib_test_listing_t *l = walk_listing;
    const char *base = path + ftw->base;
    size_t bl = strlen(base);
    if (flag == FTW_F && base[0] == '.' && bl > 4 && strcmp(base + bl - 4, ".tmp") == 0) {
        if (l->temps++ == 0)
            snprintf(l->first_temp, sizeof l->first_temp, "%s", path);
    }
    if (flag != FTW_F && flag != FTW_SL)
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->paths = test_realloc(l->paths, l->cap * sizeof *l->paths);
    }
    const char *rel = path + walk_root_len + 1;
    l->paths[l->n] = test_malloc(strlen(rel) + 1);
    strcpy(l->paths[l->n++], rel);
    return 0;
}

void ib_test_list_tree(const char *root, ib_test_listing_t *l)
{
    memset(l, 0, sizeof *l);
    walk_listing = l;
    walk_root_len = strlen(root);
    if (nftw(root, list_entry, 16, FTW_PHYS) < 0 && errno != ENOENT)
        fail_msg("nftw(\"%s\") failed: %s", root, strerror(errno));
    walk_listing = NULL;
    if (l->n > 0)
        qsort(l->paths, l->n, sizeof *l->paths, ib_test_cmp_str);
}

void ib_test_listing_free(ib_test_listing_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        test_free(l->paths[i]);
    test_free(l->paths);
    memset(l, 0, sizeof *l);
}

/* ---- running a program ---- */

pid_t ib_test_spawn(const char *prog, char *const *argv, const ib_test_spawn_t *how, char *err,
                    size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* The files before the directory: relative names are this process's. */
    posix_spawn_file_actions_addopen(&fa, 0, how->in != NULL ? how->in : "/dev/null", O_RDONLY, 0);
    if (how->out != NULL)
        posix_spawn_file_actions_addopen(&fa, 1, how->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (how->err != NULL)
        posix_spawn_file_actions_addopen(&fa, 2, how->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (how->cwd != NULL)
        posix_spawn_file_actions_addchdir_np(&fa, how->cwd);
    if (how->own_group) {
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, prog, &fa, &attr, argv, how->env != NULL ? how->env : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return say(err, errlen, "posix_spawn(\"%s\") failed: %s", prog, strerror(rc));
    return pid;
}

int ib_test_exit_status(int wait_status)
{
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

int ib_test_try_wait(pid_t pid, int timeout_s)
{
    struct timespec tick = {0, 5 * 1000 * 1000};
    double deadline = ib_test_now() + timeout_s;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return ib_test_exit_status(st);
        if (w < 0 && errno != EINTR)
            return -1;
        if (ib_test_now() > deadline) {
            /* A program started with own_group leads its group: its
             * workers go with it rather than outliving the test. */
            kill(getpgid(pid) == pid ? -pid : pid, SIGKILL);
            waitpid(pid, &st, 0);
            errno = ETIMEDOUT;
            return -1;
        }
        nanosleep(&tick, NULL);
    }
}

int ib_test_wait(pid_t pid, int timeout_s, const char *what)
{
    int status = ib_test_try_wait(pid, timeout_s);
    if (status >= 0)
        return status;
    if (errno != ETIMEDOUT)
        fail_msg("waitpid(%d) failed: %s", (int)pid, strerror(errno));
    if (what != NULL)
        fail_msg("%s (pid %d) still running after %d s: killed", what, (int)pid, timeout_s);
    fail_msg("pid %d still running after %d s: killed", (int)pid, timeout_s);
    return -1;
}

void ib_test_run_files(ib_test_run_t *r, const char *dir, unsigned n)
{
    ib_test_path_fmt(r->out, "%s/run%u.stdout", dir, n);
    ib_test_path_fmt(r->err, "%s/run%u.stderr", dir, n);
}

void ib_test_run_show(const ib_test_run_t *r, const char *what)
{
    char *out = ib_test_try_slurp(r->out, NULL), *err = ib_test_try_slurp(r->err, NULL);
    fprintf(stderr, "--- %s%sexited %d; stdout:\n%s--- stderr:\n%s---\n", what != NULL ? what : "",
            what != NULL ? " " : "", r->status, out != NULL ? out : "", err != NULL ? err : "");
    if (out != NULL)
        test_free(out);
    if (err != NULL)
        test_free(err);
}

/* ---- the --json events of an imgbatch run ---- */

void ib_test_events_load(const ib_test_run_t *r, ib_test_events_t *e)
{
    char *text = ib_test_try_slurp(r->out, NULL);
    assert_non_null(text);
    memset(e, 0, sizeof *e);
    size_t lines = 0;
    for (char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    e->files = test_calloc(lines + 1, sizeof *e->files);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        ib_test_event_t ev;
        char err[512];
        if (ib_test_event_parse(line, &ev, err, sizeof err) < 0)
            fail_msg("stdout line is not a JSON object: %s\n  %s", err, line);
        if (ev.event != NULL && strcmp(ev.event, "summary") == 0) {
            if (e->has_summary)
                fail_msg("two summary events");
            e->summary = ev;
            e->has_summary = 1;
        } else if (ev.event != NULL && strcmp(ev.event, "file") == 0) {
            if (e->has_summary)
                fail_msg("a file event after the summary: %s", line);
            e->files[e->n++] = ev;
        } else {
            fail_msg("unknown event: %s", line);
        }
    }
    test_free(text);
    if (!e->has_summary) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("no summary event on stdout");
    }
}

void ib_test_events_free(ib_test_events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        ib_test_event_free(&e->files[i]);
    if (e->has_summary)
        ib_test_event_free(&e->summary);
    test_free(e->files);
    memset(e, 0, sizeof *e);
}

const ib_test_event_t *ib_test_event_find(const ib_test_events_t *e, const char *suffix)
{
    const ib_test_event_t *hit = NULL;
    size_t sl = strlen(suffix);
    for (size_t i = 0; i < e->n; i++) {
        const char *in = e->files[i].input;
        size_t il = in != NULL ? strlen(in) : 0;
        if (il >= sl && strcmp(in + il - sl, suffix) == 0 && (il == sl || in[il - sl - 1] == '/')) {
            if (hit != NULL)
                fail_msg("two file events for %s", suffix);
            hit = &e->files[i];
        }
    }
    return hit;
}

const ib_test_event_t *ib_test_event_for(const ib_test_events_t *e, const char *suffix)
{
    const ib_test_event_t *hit = ib_test_event_find(e, suffix);
    if (hit == NULL)
        fail_msg("no file event for %s", suffix);
    return hit;
}

void ib_test_expect_event(const ib_test_event_t *ev, const char *status)
{
    if (ev->status == NULL || strcmp(ev->status, status) != 0)
        fail_msg("%s: status %s, expected %s (%s: %s)", ev->input,
                 ev->status ? ev->status : "(none)", status, ev->error_kind ? ev->error_kind : "-",
                 ev->error_message ? ev->error_message : "-");
}
