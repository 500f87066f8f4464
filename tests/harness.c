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
 * - Programs are started with fork() and execve(), not posix_spawn(): a
 *   child may need a file size limit or another user first. Between the
 *   two it makes async-signal-safe calls only, and reports a failed step
 *   to the parent on a close-on-exec pipe (as git's run-command.c does).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* Cases skipped through ib_test_skip_loudly(), the one way a case skips,
 * for ib_test_suite_status(). */
static size_t skipped_cases;

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

void ib_test_mkdir(const char *path)
{
    char file[PATH_MAX];
    ib_test_path_fmt(file, "%s/", path);
    ib_test_mkdirs_for(file);
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

void ib_test_drop_root(const char *suite, const char *root)
{
    if (root[0] == '\0')
        return;
    if (getenv("IB_KEEP_TMP") != NULL)
        tell(suite, "kept %s", root);
    else
        ib_test_rm_tree(root);
}

void ib_test_skip_loudly(const char *suite, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtell(suite, "SKIPPED: ", fmt, ap);
    va_end(ap);
    skipped_cases++;
    skip();
}

int ib_test_find_corpus(char *corpus)
{
    const char *shared = getenv("IB_SHARED");
    struct stat st;
    if (ib_test_try_path_fmt(corpus, "%s/corpus", shared != NULL ? shared : "../shared") < 0)
        return -1;
    return shared != NULL && stat(corpus, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
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

/* nftw() takes no argument for its callback: what a walk fills. */
static ib_test_listing_t *walk_listing;
static ib_test_strs_t *walk_stamps;
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

void ib_test_list_outputs(const char *root, ib_test_listing_t *l)
{
    ib_test_list_tree(root, l);
    if (l->temps > 0)
        fail_msg("%zu temporary file(s) left under %s, e.g. %s", l->temps, root, l->first_temp);
}

void ib_test_listing_free(ib_test_listing_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        test_free(l->paths[i]);
    test_free(l->paths);
    memset(l, 0, sizeof *l);
}

/* Every entry under the root (not the root itself), with what a write
 * changes: its mode, size and modification time. */
static int stamp_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    if (ftw->level == 0)
        return 0;
    char entry[PATH_MAX + 96];
    snprintf(entry, sizeof entry, "%s|%o|%lld|%lld.%09ld", path + walk_root_len + 1,
             (unsigned)st->st_mode, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             st->st_mtim.tv_nsec);
    ib_test_strs_add(walk_stamps, entry);
    return 0;
}

void ib_test_tree_stamps(const char *root, ib_test_strs_t *out)
{
    walk_stamps = out;
    walk_root_len = strlen(root);
    int rc = nftw(root, stamp_entry, 16, FTW_PHYS);
    walk_stamps = NULL;
    if (rc < 0)
        fail_msg("nftw(\"%s\") failed: %s", root, strerror(errno));
}

void ib_test_tree_files(const char *root, ib_test_strs_t *out)
{
    ib_test_listing_t l;
    ib_test_list_tree(root, &l);
    for (size_t i = 0; i < l.n; i++)
        ib_test_strs_add(out, l.paths[i]);
    ib_test_listing_free(&l);
}

/* ---- test images ---- */

/* One sample: c of pixel (x, y). */
static unsigned char fill_sample(int how, unsigned x, unsigned y, unsigned c, unsigned seed,
                                 uint32_t *noise)
{
    unsigned k = 3 * x + c;
    switch (how) {
    case IB_TEST_FILL_SOLID:
        return (unsigned char)(60 + 50 * c);
    case IB_TEST_FILL_GRADIENT:
        return (unsigned char)(c == 0 ? x : c == 1 ? y : x ^ y);
    case IB_TEST_FILL_NOISE:
        *noise = *noise * 1103515245u + 12345u;
        return (unsigned char)(*noise >> 24);
    default:
        return (unsigned char)(k * 7 + y * 13 + (k * y) % 251 + seed * 31);
    }
}

void ib_test_fill(ib_test_image_t *img, int how, unsigned seed)
{
    uint32_t noise = 12345 + seed;
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++)
            for (unsigned c = 0; c < img->channels; c++)
                ib_test_pixel(img, x, y)[c] = fill_sample(how, x, y, c, seed, &noise);
}

void ib_test_expect_size(const char *path, unsigned w, unsigned h)
{
    ib_test_image_t img;
    char err[512];
    if (ib_test_decode(path, &img, err, sizeof err) < 0)
        fail_msg("%s", err);
    if (img.width != w || img.height != h)
        fail_msg("%s is %ux%u, want %ux%u", path, img.width, img.height, w, h);
    ib_test_image_free(&img);
}

void ib_test_save(const char *path, const ib_test_image_t *img, int quality, int orientation)
{
    char err[512];
    size_t n = strlen(path);
    ib_test_mkdirs_for(path);
    int rc = n > 4 && strcmp(path + n - 4, ".png") == 0
                 ? ib_test_write_png(path, img, err, sizeof err)
                 : ib_test_write_jpeg(path, img, quality, orientation, err, sizeof err);
    if (rc < 0)
        fail_msg("%s", err);
}

static void make_image(const char *path, unsigned w, unsigned h, int how, unsigned seed, int jpeg)
{
    ib_test_image_t img;
    char err[512];
    ib_test_mkdirs_for(path);
    if (ib_test_image_alloc(&img, w, h, 3) < 0)
        fail_msg("no memory for a %ux%u image", w, h);
    ib_test_fill(&img, how, seed);
    /* By the flag, not the name: some tests give a PNG a JPEG's name. */
    int rc = jpeg ? ib_test_write_jpeg(path, &img, 90, 0, err, sizeof err)
                  : ib_test_write_png(path, &img, err, sizeof err);
    ib_test_image_free(&img);
    if (rc < 0)
        fail_msg("%s", err);
}

void ib_test_make_png(const char *path, unsigned w, unsigned h, int how, unsigned seed)
{
    make_image(path, w, h, how, seed, 0);
}

void ib_test_make_jpeg(const char *path, unsigned w, unsigned h, int how, unsigned seed)
{
    make_image(path, w, h, how, seed, 1);
}

void ib_test_make_image_in(char *path, const char *dir, const char *name, unsigned w, unsigned h,
                           int how)
{
    size_t n = strlen(name);
    ib_test_path_join(path, dir, name);
    make_image(path, w, h, how, 0, n >= 4 && strcmp(name + n - 4, ".jpg") == 0);
}

void ib_test_make_pngs(const char *root, const char *const *rels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        ib_test_path_join(path, root, rels[i]);
        ib_test_make_png(path, 8, 6, IB_TEST_FILL_BUSY, (unsigned)i);
    }
}

/* ---- running a program ---- */

static int env_unset(const char *entry, const ib_test_spawn_t *how)
{
    for (size_t i = 0; how->env_unset != NULL && how->env_unset[i] != NULL; i++) {
        const char *name = how->env_unset[i];
        size_t nl = strlen(name);
        if (nl > 0 && name[nl - 1] == '*' ? strncmp(entry, name, nl - 1) == 0
                                          : strncmp(entry, name, nl) == 0 && entry[nl] == '=')
            return 1;
    }
    for (size_t i = 0; how->env_add != NULL && how->env_add[i] != NULL; i++) {
        size_t nl = strcspn(how->env_add[i], "=");
        if (strncmp(entry, how->env_add[i], nl + 1) == 0)
            return 1;
    }
    return 0;
}

/* NAME=old:more, or NAME=more, into buf. */
static const char *env_append(char *const *env, const char *name, const char *more, char *buf,
                              size_t buflen)
{
    size_t nl = strlen(name);
    const char *old = NULL;
    for (size_t i = 0; env[i] != NULL; i++)
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            old = env[i] + nl + 1;
    snprintf(buf, buflen, "%s=%s%s%s", name, old != NULL ? old : "",
             old != NULL && *old != '\0' ? ":" : "", more);
    return buf;
}

/* The child's environment: a test_malloc'ed array; the strings are the
 * caller's, environ's or the sanitizer entries in asan and ubsan. */
static char **child_env(const ib_test_spawn_t *how, char *asan, char *ubsan, size_t len)
{
    char *const *base = how->env != NULL ? how->env : environ;
    const char *segv[2] = {NULL, NULL};
    if (how->segv_kills) {
        segv[0] = env_append(base, "ASAN_OPTIONS", "handle_segv=0", asan, len);
        segv[1] = env_append(base, "UBSAN_OPTIONS", "handle_segv=0", ubsan, len);
    }
    const char *const segv_add[] = {segv[0], segv[1], NULL};
    size_t n = 0, k = 0;
    while (base[n] != NULL)
        n++;
    for (size_t i = 0; how->env_add != NULL && how->env_add[i] != NULL; i++)
        n++;
    char **env = test_calloc(n + 3, sizeof *env);
    for (size_t i = 0; base[i] != NULL; i++) {
        size_t nl = strcspn(base[i], "=");
        int replaced =
            how->segv_kills && ((nl == 12 && strncmp(base[i], "ASAN_OPTIONS", nl) == 0) ||
                                (nl == 13 && strncmp(base[i], "UBSAN_OPTIONS", nl) == 0));
        if (!replaced && !env_unset(base[i], how))
            env[k++] = base[i];
    }
    for (size_t i = 0; how->env_add != NULL && how->env_add[i] != NULL; i++)
        env[k++] = (char *)how->env_add[i];
    for (size_t i = 0; how->segv_kills && segv_add[i] != NULL; i++)
        env[k++] = (char *)segv_add[i];
    env[k] = NULL;
    return env;
}

static int open_for(int *fd, const char *path, int flags, char *err, size_t errlen)
{
    *fd = open(path, flags | O_CLOEXEC, 0644);
    if (*fd < 0)
        return say(err, errlen, "open(\"%s\") failed: %s", path, strerror(errno));
    return 0;
}

/* After fork(): async-signal-safe calls only. A failure is sent to the
 * parent as the step and the errno on the close-on-exec pipe. */
static void __attribute__((noreturn))
child_exec(const char *prog, char *const *argv, char **env, const ib_test_spawn_t *how,
           const int fds[3], uid_t uid, gid_t gid, int drop, int report)
{
    int step = 0;
    if (how->own_group && setpgid(0, 0) < 0)
        step = 1;
    for (int i = 0; step == 0 && i < 3; i++)
        if (fds[i] >= 0 && dup2(fds[i], i) < 0)
            step = 2;
    if (step == 0 && how->cwd != NULL && chdir(how->cwd) < 0)
        step = 3;
    struct rlimit rl = {(rlim_t)how->fsize, (rlim_t)how->fsize};
    if (step == 0 && how->fsize > 0 && setrlimit(RLIMIT_FSIZE, &rl) < 0)
        step = 4;
    if (step == 0 && drop && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
        step = 5;
    if (step == 0) {
        execve(prog, argv, env);
        step = 6;
    }
    int why[2] = {step, errno};
    ssize_t w = write(report, why, sizeof why);
    (void)w;
    _exit(127);
}

pid_t ib_test_spawn(const char *prog, char *const *argv, const ib_test_spawn_t *how, char *err,
                    size_t errlen)
{
    static const char *const steps[] = {"",         "setpgid()", "dup2()", "chdir()", "setrlimit()",
                                        "setuid()", "execve()"};
    /* The files before the directory: relative names are this process's. */
    int fds[3] = {-1, -1, -1};
    int rc = 0;
    if (how->in != NULL || how->in_fd <= 0)
        rc = open_for(&fds[0], how->in != NULL ? how->in : "/dev/null", O_RDONLY, err, errlen);
    if (rc == 0 && how->out != NULL)
        rc = open_for(&fds[1], how->out, O_WRONLY | O_CREAT | O_TRUNC, err, errlen);
    if (rc == 0 && how->err != NULL)
        rc = open_for(&fds[2], how->err, O_WRONLY | O_CREAT | O_TRUNC, err, errlen);
    uid_t uid = 0;
    gid_t gid = 0;
    int drop = how->as_nobody && geteuid() == 0;
    if (rc == 0 && drop) {
        struct passwd *pw = getpwnam("nobody");
        if (pw == NULL)
            rc = say(err, errlen, "getpwnam(\"nobody\") found no such user");
        else {
            uid = pw->pw_uid;
            gid = pw->pw_gid;
        }
    }
    int report[2] = {-1, -1};
    if (rc == 0 && pipe2(report, O_CLOEXEC) < 0)
        rc = say(err, errlen, "pipe2() failed: %s", strerror(errno));
    pid_t pid = -1;
    if (rc == 0) {
        char asan[1024], ubsan[1024];
        char **env = child_env(how, asan, ubsan, sizeof asan);
        int in = fds[0] >= 0 ? fds[0] : how->in_fd;
        const int child_fds[3] = {in, fds[1], fds[2]};
        fflush(NULL); /* or the child's exit could write our buffers twice */
        pid = fork();
        if (pid == 0)
            child_exec(prog, argv, env, how, child_fds, uid, gid, drop, report[1]);
        int fork_errno = errno;
        test_free(env);
        close(report[1]);
        if (pid < 0) {
            rc = say(err, errlen, "fork() for \"%s\" failed: %s", prog, strerror(fork_errno));
        } else {
            int why[2];
            ssize_t got;
            while ((got = read(report[0], why, sizeof why)) < 0 && errno == EINTR)
                ;
            if (got == (ssize_t)sizeof why) {
                int st;
                waitpid(pid, &st, 0);
                pid = -1;
                rc = say(err, errlen, "%s for \"%s\" failed: %s", steps[why[0]], prog,
                         strerror(why[1]));
            }
        }
        close(report[0]);
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc < 0 ? -1 : pid;
}

int ib_test_exit_status(int wait_status)
{
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

/* ib_test_try_wait() with the child's resource use. */
static int try_wait4(pid_t pid, int timeout_s, struct rusage *ru)
{
    struct timespec tick = {0, 5 * 1000 * 1000};
    double deadline = ib_test_now() + timeout_s;
    for (;;) {
        int st;
        pid_t w = wait4(pid, &st, WNOHANG, ru);
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

int ib_test_try_wait(pid_t pid, int timeout_s)
{
    struct rusage ru;
    return try_wait4(pid, timeout_s, &ru);
}

static void wait_failed(pid_t pid, int timeout_s, const char *what)
{
    if (errno != ETIMEDOUT)
        fail_msg("waitpid(%d) failed: %s", (int)pid, strerror(errno));
    if (what != NULL)
        fail_msg("%s (pid %d) still running after %d s: killed", what, (int)pid, timeout_s);
    fail_msg("pid %d still running after %d s: killed", (int)pid, timeout_s);
}

int ib_test_wait(pid_t pid, int timeout_s, const char *what)
{
    int status = ib_test_try_wait(pid, timeout_s);
    if (status < 0)
        wait_failed(pid, timeout_s, what);
    return status;
}

void ib_test_args_start(ib_test_args_t *a, const char *argv0)
{
    a->n = 0;
    a->v[a->n++] = (char *)argv0;
    a->v[a->n] = NULL;
}

static void args_push(ib_test_args_t *a, const char *s)
{
    if (a->n >= IB_TEST_MAX_ARGS)
        fail_msg("more than %d arguments", IB_TEST_MAX_ARGS);
    a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

void ib_test_args_add(ib_test_args_t *a, ...)
{
    va_list ap;
    va_start(ap, a);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        args_push(a, s);
    va_end(ap);
}

void ib_test_args_addv(ib_test_args_t *a, const char *const *list)
{
    for (; *list != NULL; list++)
        args_push(a, *list);
}

void ib_test_run_files(ib_test_run_t *r, const char *dir, unsigned n)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    ib_test_path_fmt(r->in, "%s/run%u.stdin", dir, n);
    ib_test_path_fmt(r->out, "%s/run%u.stdout", dir, n);
    ib_test_path_fmt(r->err, "%s/run%u.stderr", dir, n);
}

void ib_test_run_start(ib_test_run_t *r, char *const *argv, const ib_test_spawn_t *how)
{
    static const ib_test_spawn_t none = {0};
    char err[ERR_LEN];
    ib_test_spawn_t h = how != NULL ? *how : none;
    if (h.in_data != NULL) {
        ib_test_write_file(r->in, h.in_data, h.in_len);
        h.in = r->in;
    }
    h.out = r->out;
    h.err = r->err;
    r->started = ib_test_now();
    r->pid = ib_test_spawn(argv[0], argv, &h, err, sizeof err);
    if (r->pid < 0)
        fail_msg("%s", err);
}

void ib_test_run_finish(ib_test_run_t *r, int timeout_s)
{
    struct rusage ru;
    int status = try_wait4(r->pid, timeout_s, &ru);
    if (status < 0)
        wait_failed(r->pid, timeout_s, "imgbatch");
    r->status = status;
    r->seconds = ib_test_now() - r->started;
    r->max_rss_kb = ru.ru_maxrss;
}

void ib_test_run(ib_test_run_t *r, char *const *argv, const ib_test_spawn_t *how, int timeout_s)
{
    ib_test_run_start(r, argv, how);
    ib_test_run_finish(r, timeout_s);
}

void ib_test_run_abandon(ib_test_run_t *r)
{
    int st;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &st, 0);
}

void ib_test_run_read(ib_test_run_t *r)
{
    ib_test_run_free(r);
    r->out_text = ib_test_slurp(r->out, &r->out_len);
    r->err_text = ib_test_slurp(r->err, &r->err_len);
}

void ib_test_run_free(ib_test_run_t *r)
{
    if (r->out_text != NULL)
        test_free(r->out_text);
    if (r->err_text != NULL)
        test_free(r->err_text);
    r->out_text = r->err_text = NULL;
    r->out_len = r->err_len = 0;
}

void ib_test_run_show(const ib_test_run_t *r, const char *what)
{
    char *out = ib_test_try_slurp(r->out, NULL), *err = ib_test_try_slurp(r->err, NULL);
    fprintf(stderr, "--- %s%sexited %d after %.2f s; stdout:\n%s--- stderr:\n%s---\n",
            what != NULL ? what : "", what != NULL ? " " : "", r->status, r->seconds,
            out != NULL ? out : "", err != NULL ? err : "");
    if (out != NULL)
        test_free(out);
    if (err != NULL)
        test_free(err);
}

void ib_test_expect_exit(const ib_test_run_t *r, int want, const char *what)
{
    if (r->status != want) {
        ib_test_run_show(r, "imgbatch");
        fail_msg("%s: exit status %d, wanted %d", what != NULL ? what : "imgbatch", r->status,
                 want);
    }
}

int ib_test_file_has(const char *file, const char *text)
{
    char *s = ib_test_try_slurp(file, NULL);
    int hit = s != NULL && strstr(s, text) != NULL;
    if (s != NULL)
        test_free(s);
    return hit;
}

int ib_test_wait_for_text(const char *file, const char *text, double timeout_s)
{
    struct timespec tick = {0, 20 * 1000 * 1000};
    double deadline = ib_test_now() + timeout_s;
    for (;;) {
        if (ib_test_file_has(file, text))
            return 1;
        if (ib_test_now() >= deadline)
            return 0;
        nanosleep(&tick, NULL);
    }
}

/* ---- an imgbatch command-line suite ---- */

const char *const ib_test_job_variables[] = {"SLURM_*", "JOB_COMPLETION_INDEX", NULL};

int ib_test_cli_setup(ib_test_cli_t *t, const char *name)
{
    const char *suite = program_invocation_short_name;
    memset(t, 0, sizeof *t);
    t->bin = ib_test_imgbatch(suite);
    t->source_root = getenv("IB_SOURCE_ROOT");
    if (t->bin == NULL || ib_test_make_root(suite, name, t->root) < 0)
        return -1;
    if (ib_test_try_path_fmt(t->runs, "%s/runs", t->root) < 0 || mkdir(t->runs, 0777) < 0) {
        tell(suite, "mkdir(\"%s/runs\") failed: %s", t->root, strerror(errno));
        return -1;
    }
    return 0;
}

void ib_test_cli_teardown(ib_test_cli_t *t)
{
    if (t != NULL)
        ib_test_drop_root(program_invocation_short_name, t->root);
}

void *ib_test_cli_new(size_t size)
{
    ib_test_cli_t *t = calloc(1, size);
    if (t != NULL && ib_test_cli_setup(t, program_invocation_short_name) == 0)
        return t;
    ib_test_cli_teardown(t);
    free(t);
    return NULL;
}

int ib_test_cli_group_setup(void **state)
{
    *state = ib_test_cli_new(sizeof(ib_test_cli_t));
    return *state != NULL ? 0 : -1;
}

int ib_test_cli_group_teardown(void **state)
{
    ib_test_cli_teardown(*state);
    free(*state);
    *state = NULL;
    return 0;
}

void ib_test_cli_files(ib_test_cli_t *t, ib_test_run_t *r)
{
    ib_test_run_files(r, t->runs, ++t->n_runs);
}

void ib_test_cli_dir(const ib_test_cli_t *t, const char *name, char *out)
{
    ib_test_path_fmt(out, "%s/%s", t->root, name);
    ib_test_rm_tree(out);
    if (mkdir(out, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed: %s", out, strerror(errno));
}

void ib_test_cli_in_out(const ib_test_cli_t *t, const char *name, char *dir, char *in, char *out)
{
    ib_test_cli_dir(t, name, dir);
    ib_test_path_join(in, dir, "in");
    ib_test_path_join(out, dir, "out");
}

void ib_test_cli_run_prog(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how,
                          const char *prog, const char *const *argv)
{
    static const ib_test_spawn_t none = {0};
    ib_test_spawn_t h = how != NULL ? *how : none;
    ib_test_args_t a;
    ib_test_args_start(&a, prog);
    ib_test_args_addv(&a, argv + 1);
    if (h.cwd == NULL)
        h.cwd = t->root;
    h.env_unset = ib_test_job_variables;
    /* Its own process group, so a hung run is killed with its workers. */
    h.own_group = 1;
    ib_test_cli_files(t, r);
    ib_test_run(r, a.v, &h, 60);
    ib_test_run_read(r);
}

void ib_test_cli_runv(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how,
                      const char *const *args)
{
    ib_test_args_t a;
    ib_test_args_start(&a, t->bin);
    ib_test_args_addv(&a, args);
    ib_test_cli_run_prog(t, r, how, t->bin, (const char *const *)a.v);
}

void ib_test_cli_run(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how, ...)
{
    ib_test_args_t a;
    ib_test_args_start(&a, t->bin);
    va_list ap;
    va_start(ap, how);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        ib_test_args_add(&a, s, NULL);
    va_end(ap);
    ib_test_cli_run_prog(t, r, how, t->bin, (const char *const *)a.v);
}

/* ---- sets of strings ---- */

void ib_test_strs_add(ib_test_strs_t *s, const char *str)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = test_realloc(s->v, s->cap * sizeof *s->v);
    }
    size_t n = strlen(str) + 1;
    s->v[s->n] = test_malloc(n);
    memcpy(s->v[s->n++], str, n);
}

void ib_test_strs_free(ib_test_strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        test_free(s->v[i]);
    if (s->v != NULL)
        test_free(s->v);
    memset(s, 0, sizeof *s);
}

void ib_test_strs_sort(ib_test_strs_t *s)
{
    if (s->n > 0)
        qsort(s->v, s->n, sizeof *s->v, ib_test_cmp_str);
}

size_t ib_test_strs_count(const ib_test_strs_t *s, const char *str)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        k += strcmp(s->v[i], str) == 0;
    return k;
}

void ib_test_strs_split(const char *s, ib_test_strs_t *out)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
        ib_test_strs_add(out, w);
}

void ib_test_strs_print(const char *title, const ib_test_strs_t *s)
{
    print_error("%s (%zu):\n", title, s->n);
    for (size_t i = 0; i < s->n; i++)
        print_error("  [%s]\n", s->v[i]);
}

void ib_test_expect_same_set(ib_test_strs_t *got, ib_test_strs_t *want, const char *what)
{
    ib_test_strs_sort(got);
    ib_test_strs_sort(want);
    int same = got->n == want->n;
    for (size_t i = 0; same && i < got->n; i++)
        same = strcmp(got->v[i], want->v[i]) == 0;
    if (!same) {
        ib_test_strs_print("got", got);
        ib_test_strs_print("wanted", want);
        fail_msg("%s: not the expected set", what);
    }
}

/* ---- cmocka ---- */

int ib_test_suite_status(int failed, size_t n_tests)
{
    if (failed == 0 && n_tests > 0 && skipped_cases >= n_tests)
        return 77;
    return failed;
}

/* ---- the --json events of an imgbatch run ---- */

/* Takes one parsed line: a file event, or the summary, once and last. */
static void events_take(ib_test_events_t *e, ib_test_event_t *ev, const char *line, int len)
{
    if (ev->event != NULL && strcmp(ev->event, "summary") == 0) {
        if (e->has_summary)
            fail_msg("two summary events");
        e->summary = *ev;
        e->has_summary = 1;
    } else if (ev->event != NULL && strcmp(ev->event, "file") == 0) {
        if (e->has_summary)
            fail_msg("a file event after the summary: %.*s", len, line);
        e->files[e->n++] = *ev;
    } else {
        fail_msg("unknown event: %.*s", len, line);
    }
}

void ib_test_events_load(const ib_test_run_t *r, ib_test_events_t *e)
{
    size_t len, lines = 0;
    char *text = ib_test_slurp(r->out, &len);
    memset(e, 0, sizeof *e);
    /* A script reading lines must get the last one whole. */
    if (len == 0 || text[len - 1] != '\n') {
        ib_test_run_show(r, "imgbatch");
        fail_msg("--json output is empty or does not end with a newline");
    }
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    e->files = test_calloc(lines, sizeof *e->files);
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        ib_test_event_t ev;
        char err[512];
        if (ib_test_event_parse(p, (size_t)(nl - p), &ev, err, sizeof err) < 0) {
            ib_test_run_show(r, "imgbatch");
            fail_msg("a stdout line is not a JSON object (%s): %.*s", err, (int)(nl - p), p);
        }
        events_take(e, &ev, p, (int)(nl - p));
        p = nl + 1;
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
    if (e->files != NULL)
        test_free(e->files);
    memset(e, 0, sizeof *e);
}

/* The count a file event's status goes to, or NULL for no known status. */
static size_t *tally_slot(ib_test_tally_t *t, const char *status)
{
    return strcmp(status, "ok") == 0        ? &t->ok
           : strcmp(status, "skipped") == 0 ? &t->skipped
           : strcmp(status, "failed") == 0  ? &t->failed
                                            : NULL;
}

ib_test_tally_t ib_test_events_tally(const ib_test_events_t *e)
{
    ib_test_tally_t t = {0};
    for (size_t i = 0; i < e->n; i++) {
        const ib_test_event_t *ev = &e->files[i];
        if (ev->input == NULL || ev->status == NULL || !ev->has_outputs || ev->ms < 0)
            fail_msg("file event %zu lacks input, status, outputs or ms", i + 1);
        size_t *slot = tally_slot(&t, ev->status);
        if (slot == NULL)
            fail_msg("file event %zu has status \"%s\"", i + 1, ev->status);
        (*slot)++;
        t.files++;
    }
    const ib_test_event_t *s = &e->summary;
    if (s->ok < 0 || s->skipped < 0 || s->failed < 0 || s->total < 0)
        fail_msg("the summary lacks ok, skipped, failed or total");
    assert_int_equal(s->ok, t.ok);
    assert_int_equal(s->skipped, t.skipped);
    assert_int_equal(s->failed, t.failed);
    assert_int_equal(s->total, t.files);
    return t;
}

void ib_test_event_inputs(const ib_test_events_t *e, const char *prefix, ib_test_strs_t *out)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < e->n; i++) {
        const char *in = e->files[i].input;
        if (in == NULL || strncmp(in, prefix, n) != 0 || in[n] != '/')
            fail_msg("input \"%s\" is not under \"%s\"", in != NULL ? in : "(none)", prefix);
        ib_test_strs_add(out, in + n + 1);
    }
}

ib_test_tally_t ib_test_run_inputs(const ib_test_run_t *r, const char *prefix, ib_test_strs_t *out)
{
    ib_test_events_t e;
    ib_test_events_load(r, &e);
    ib_test_tally_t t = ib_test_events_tally(&e);
    ib_test_event_inputs(&e, prefix, out);
    ib_test_events_free(&e);
    return t;
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

void ib_test_run_dirv(ib_test_cli_t *t, const char *dir, ib_test_run_t *r, ib_test_events_t *e,
                      int want_exit, const char *const *args)
{
    char out[PATH_MAX], in[PATH_MAX];
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    const char *argv[40] = {"imgbatch", "--json", "-j", "1", "-o", out};
    size_t n = 6;
    for (; *args != NULL; args++) {
        if (n == 38)
            fail_msg("too many options for one run");
        argv[n++] = *args;
    }
    argv[n++] = in;
    argv[n] = NULL;
    ib_test_cli_run_prog(t, r, NULL, t->bin, argv);
    ib_test_expect_exit(r, want_exit, "imgbatch");
    if (e != NULL)
        ib_test_events_load(r, e);
}

void ib_test_run_dir(ib_test_cli_t *t, const char *dir, ib_test_run_t *r, ib_test_events_t *e,
                     int want_exit, ...)
{
    const char *args[34];
    size_t n = 0;
    va_list ap;
    va_start(ap, want_exit);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        if (n < 33)
            args[n++] = a;
        else
            fail_msg("too many options for one run");
    va_end(ap);
    args[n] = NULL;
    ib_test_run_dirv(t, dir, r, e, want_exit, args);
}

unsigned ib_test_base83(const char *s, size_t n)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        const char *d = strchr(digits, s[i]);
        if (d == NULL || s[i] == '\0')
            fail_msg("'%c' is not a base-83 digit", s[i]);
        v = v * 83 + (unsigned)(d - digits);
    }
    return v;
}
