/*
 * Atomic output writes (filters/output.c), both ways: the unnamed file
 * linked into place, and the named temporary file renamed over the final
 * name, which is what filesystems without O_TMPFILE get.
 *
 * Every case runs on both ways and checks the same things: the bytes and
 * the attributes arrive, an existing output is replaced, a failure names
 * the output and the cause, and no temporary file is left. Which way ran
 * is seen through the guard: the unnamed way guards a name only when it
 * must replace one.
 *
 * linkat() and close() are this file's own, passing through to the
 * kernel unless a case asks them to fail: output.c, linked in statically,
 * calls these, so the failures no real filesystem here would give can be
 * had on demand.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "output.h"

/* While not 0, every linkat() fails with this errno. */
static int link_fails_with;
/* While not 0, the next close() closes the file and then fails with this. */
static int close_fails_with;

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
    if (link_fails_with != 0) {
        errno = link_fails_with;
        return -1;
    }
    return (int)syscall(SYS_linkat, olddirfd, oldpath, newdirfd, newpath, flags);
}

int close(int fd)
{
    int rc = (int)syscall(SYS_close, fd);
    if (close_fails_with != 0) {
        errno = close_fails_with;
        close_fails_with = 0;
        return -1;
    }
    return rc;
}

typedef int (*write_fn)(const char *, const void *, size_t, const ib_output_opts_t *, ib_error_t *);

typedef struct {
    char root[PATH_MAX];
    int unnamed; /* this filesystem has O_TMPFILE */
} fixture_t;

/* What the guard was told: how often, and whether each name was beside
 * the output and hidden, and cleared afterwards. */
typedef struct {
    int set, cleared;
    char last[PATH_MAX];
    char dir[PATH_MAX];
    int stray; /* a guarded name outside dir, or not a dot file */
} guard_log_t;

static void log_guard(void *arg, const char *tmp)
{
    guard_log_t *g = arg;
    if (tmp == NULL) {
        g->cleared++;
        return;
    }
    g->set++;
    snprintf(g->last, sizeof g->last, "%s", tmp);
    size_t n = strlen(g->dir);
    if (strncmp(tmp, g->dir, n) != 0 || tmp[n] != '/' || tmp[n + 1] != '.')
        g->stray = 1;
}

static int setup(void **state)
{
    static fixture_t f;
    if (ib_test_make_root("output", "output", f.root) < 0)
        return -1;
    int fd = open(f.root, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    f.unnamed = fd >= 0;
    if (fd >= 0)
        close(fd);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    return ib_test_rm_tree(f->root);
}

/* A fresh folder under the root for one case, and the output the case
 * writes in it (dir/a.jpg) unless dest is NULL. */
static void case_dir(const fixture_t *f, const char *name, char *dir, char *dest)
{
    ib_test_path_join(dir, f->root, name);
    if (mkdir(dir, 0755) < 0)
        fail_msg("mkdir(\"%s\") failed: %s", dir, strerror(errno));
    if (dest != NULL)
        ib_test_path_join(dest, dir, "a.jpg");
}

static void expect_attr(const char *path, const char *name, const char *want)
{
    char buf[256];
    ssize_t n = getxattr(path, name, buf, sizeof buf - 1);
    if (n < 0) {
        if (errno == ENOTSUP)
            return; /* no xattrs here: the write must still succeed */
        fail_msg("getxattr(\"%s\", %s) failed: %s", path, name, strerror(errno));
    }
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void expect_file(const char *path, const char *want)
{
    size_t len;
    char *got = ib_test_slurp(path, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    test_free(got);
}

/* The folder holds exactly the one file named. */
static void expect_only(const char *dir, const char *name)
{
    ib_test_listing_t l;
    ib_test_list_tree(dir, &l);
    if (l.temps > 0)
        fail_msg("a temporary file was left: %s", l.first_temp);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.paths[0], name);
    ib_test_listing_free(&l);
}

static ib_output_opts_t opts_for(guard_log_t *g, const char *dir, const char *recipe)
{
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    ib_output_opts_t o = {
        .guard = log_guard, .hook_arg = g, .recipe = recipe, .tag = 7, .source = "/in/a.jpg"};
    return o;
}

/* Writes bytes (a string) to dest in dir with the recipe, which must
 * leave them there with it; g logs the guard. */
static void expect_written(write_fn write, const char *dir, const char *dest, const char *bytes,
                           const char *recipe, guard_log_t *g)
{
    ib_output_opts_t o = opts_for(g, dir, recipe);
    ib_error_t err = {0};
    if (write(dest, bytes, strlen(bytes), &o, &err) != 0)
        fail_msg("%s", err.message);
    expect_file(dest, bytes);
    expect_attr(dest, IB_RECIPE_XATTR, recipe);
}

/* A new output gets its bytes and attributes, and nothing else appears. */
static void writes_a_new_output(const fixture_t *f, write_fn write, const char *name, int unnamed)
{
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, name, dir, dest);
    guard_log_t g;
    expect_written(write, dir, dest, "new bytes", "v3;size=64x64", &g);
    expect_attr(dest, IB_SOURCE_XATTR, "/in/a.jpg");
    expect_only(dir, "a.jpg");
    assert_int_equal(g.stray, 0);
    assert_int_equal(g.set, g.cleared);
    /* The unnamed way has no name to guard for a new output. */
    assert_int_equal(g.set, unnamed ? 0 : 1);

    /* The mode is the usual one for a new file: 0666 less the umask. */
    mode_t mask = umask(022);
    umask(mask);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
}

/* An existing output is replaced whole, by a new file (a reader holding
 * the old one keeps reading the old bytes), and nothing else appears. */
static void replaces_an_existing_output(const fixture_t *f, write_fn write, const char *name)
{
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, name, dir, dest);
    ib_test_write_file(dest, "old, longer bytes", 17);
    int old = open(dest, O_RDONLY | O_CLOEXEC);
    assert_true(old >= 0);

    guard_log_t g;
    expect_written(write, dir, dest, "new", "v3;size=32x32", &g);
    expect_only(dir, "a.jpg");
    assert_int_equal(g.stray, 0);
    assert_int_equal(g.set, 1);
    assert_int_equal(g.cleared, 1);
    assert_false(ib_test_exists(g.last));

    char buf[32];
    ssize_t n = pread(old, buf, sizeof buf, 0);
    close(old);
    assert_int_equal(n, 17);
    assert_memory_equal(buf, "old, longer bytes", 17);
}

/* A directory in the output's place is a write error naming the output
 * and the cause; the directory stays, and no temporary file is left. */
static void refuses_a_directory_in_the_way(const fixture_t *f, write_fn write, const char *name)
{
    char dir[PATH_MAX], dest[PATH_MAX], inside[PATH_MAX];
    case_dir(f, name, dir, dest);
    ib_test_path_join(inside, dest, "keep");
    ib_test_write_file(inside, "x", 1);

    guard_log_t g;
    ib_output_opts_t o = opts_for(&g, dir, NULL);
    ib_error_t err = {0};
    assert_int_equal(write(dest, "new", 3, &o, &err), -1);
    assert_int_equal(err.kind, IB_ERR_WRITE);
    if (strstr(err.message, dest) == NULL || strstr(err.message, strerror(EISDIR)) == NULL)
        fail_msg("the message does not name %s and '%s': %s", dest, strerror(EISDIR), err.message);
    expect_file(inside, "x");
    expect_only(dir, "a.jpg/keep");
    assert_int_equal(g.set, g.cleared);
}

/* Run in a child: a write that fails part way (here the file-size limit)
 * is reported as the write that failed, naming the output and the cause,
 * and leaves nothing. Exits 0 on success, 1 with a message. */
static int child_write_too_big_at(write_fn write, const char *dest)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
        fprintf(stderr, "setrlimit failed: %s\n", strerror(errno));
        return 1;
    }
    static char big[65536];
    ib_output_opts_t o = {.tag = 1};
    ib_error_t err = {0};
    if (write(dest, big, sizeof big, &o, &err) != -1 || err.kind != IB_ERR_WRITE ||
        strstr(err.message, "write(") == NULL || strstr(err.message, dest) == NULL ||
        strstr(err.message, strerror(EFBIG)) == NULL) {
        fprintf(stderr, "unexpected result: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int child_write_too_big(write_fn write, const char *dir)
{
    char dest[PATH_MAX];
    if (ib_test_try_path_fmt(dest, "%s/big.jpg", dir) < 0)
        return 1;
    return child_write_too_big_at(write, dest);
}

/* The same over an existing output: it keeps its bytes. */
static int child_replace_too_big(write_fn write, const char *dir)
{
    char dest[PATH_MAX];
    if (ib_test_try_path_fmt(dest, "%s/old.jpg", dir) < 0 ||
        ib_test_try_write_file(dest, "old", 3) < 0)
        return 1;
    if (child_write_too_big_at(write, dest) != 0)
        return 1;
    size_t len;
    char *got = ib_test_try_slurp(dest, &len);
    int same = got != NULL && len == 3 && memcmp(got, "old", 3) == 0;
    if (got != NULL)
        test_free(got);
    if (!same)
        fprintf(stderr, "the existing output lost its bytes\n");
    return same ? 0 : 1;
}

static void run_child(int (*child)(write_fn, const char *), write_fn write, const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(write, dir));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void reports_a_failed_write(const fixture_t *f, write_fn write, const char *name)
{
    char dir[PATH_MAX];
    case_dir(f, name, dir, NULL);
    run_child(child_write_too_big, write, dir);
    ib_test_listing_t l;
    ib_test_list_tree(dir, &l);
    assert_int_equal(l.n, 0);
    ib_test_listing_free(&l);

    run_child(child_replace_too_big, write, dir);
    expect_only(dir, "old.jpg");
}

static void expect_failure(const ib_error_t *err, const char *call, const char *dest, int os_error)
{
    char want[64];
    snprintf(want, sizeof want, "%s(\"", call);
    assert_int_equal(err->kind, IB_ERR_WRITE);
    if (strstr(err->message, want) == NULL || strstr(err->message, dest) == NULL ||
        strstr(err->message, strerror(os_error)) == NULL)
        fail_msg("the message does not name %s, %s and '%s': %s", call, dest, strerror(os_error),
                 err->message);
}

/* Writes "new" to dest with *inject set to os_error: it must fail in
 * call, naming dest and the cause. */
static void expect_failed_write(write_fn write, const ib_output_opts_t *o, const char *dest,
                                int *inject, int os_error, const char *call)
{
    ib_error_t err = {0};
    *inject = os_error;
    assert_int_equal(write(dest, "new", 3, o, &err), -1);
    *inject = 0;
    expect_failure(&err, call, dest, os_error);
}

/* A close that fails (the filesystem saying the bytes may not all be
 * there) is a write error: a new output is not left under its name, an
 * existing one (with --in-place, the input) keeps its bytes. */
static void reports_a_failed_close(const fixture_t *f, write_fn write, const char *name)
{
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, name, dir, dest);
    guard_log_t g;
    ib_output_opts_t o = opts_for(&g, dir, NULL);
    expect_failed_write(write, &o, dest, &close_fails_with, EIO, "close");
    assert_false(ib_test_exists(dest));

    ib_test_write_file(dest, "old", 3);
    expect_failed_write(write, &o, dest, &close_fails_with, EIO, "close");
    expect_file(dest, "old");
    expect_only(dir, "a.jpg");
    assert_int_equal(g.set, g.cleared);
}

/* Every case above, written one way; the folders are named after it. */
static void every_case(const fixture_t *f, write_fn write, const char *way, int unnamed)
{
    static const char *const cases[] = {"new", "replace", "dir", "big", "close"};
    char name[5][64];
    for (size_t i = 0; i < 5; i++)
        snprintf(name[i], sizeof name[i], "%s-%s", way, cases[i]);
    writes_a_new_output(f, write, name[0], unnamed);
    replaces_an_existing_output(f, write, name[1]);
    refuses_a_directory_in_the_way(f, write, name[2]);
    reports_a_failed_write(f, write, name[3]);
    reports_a_failed_close(f, write, name[4]);
}

static void unnamed_way(void **state)
{
    fixture_t *f = *state;
    if (!f->unnamed)
        ib_test_skip_loudly("output", "%s has no O_TMPFILE: only the named way is tested", f->root);
    every_case(f, ib_output_write, "unnamed", 1);
}

static void named_way(void **state)
{
    every_case(*state, ib_output_write_named, "named", 0);
}

/* Where the system will not name an unnamed file (here: linkat refused
 * with EPERM, as on a filesystem without hard links), the output is
 * written the named way: new or existing, it arrives, and nothing else. */
static void falls_back_when_linking_is_refused(void **state)
{
    fixture_t *f = *state;
    if (!f->unnamed)
        ib_test_skip_loudly("output", "%s has no O_TMPFILE: there is nothing to fall back from",
                            f->root);
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, "refused", dir, dest);
    guard_log_t g;
    ib_output_opts_t o = opts_for(&g, dir, "v3");
    ib_error_t err = {0};

    link_fails_with = EPERM;
    int rc = ib_output_write(dest, "first", 5, &o, &err);
    link_fails_with = 0;
    if (rc != 0)
        fail_msg("%s", err.message);
    expect_file(dest, "first");
    expect_attr(dest, IB_RECIPE_XATTR, "v3");
    assert_int_equal(g.set, 1); /* the named way's temporary file */

    link_fails_with = EPERM;
    rc = ib_output_write(dest, "second", 6, &o, &err);
    link_fails_with = 0;
    if (rc != 0)
        fail_msg("%s", err.message);
    expect_file(dest, "second");
    expect_only(dir, "a.jpg");
    assert_int_equal(g.set, 2);
    assert_int_equal(g.cleared, 2);
}

/* A link that fails for a reason of the filesystem's own (here ENOSPC) is
 * a write error naming the output and the cause, not a second try. */
static void reports_a_failed_link(void **state)
{
    fixture_t *f = *state;
    if (!f->unnamed)
        ib_test_skip_loudly("output", "%s has no O_TMPFILE: nothing is linked", f->root);
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, "link-enospc", dir, dest);
    guard_log_t g;
    ib_output_opts_t o = opts_for(&g, dir, NULL);
    expect_failed_write(ib_output_write, &o, dest, &link_fails_with, ENOSPC, "link");
    assert_false(ib_test_exists(dest));
    assert_int_equal(g.set, 0);

    ib_test_write_file(dest, "old", 3);
    expect_failed_write(ib_output_write, &o, dest, &link_fails_with, ENOSPC, "link");
    expect_file(dest, "old");
    expect_only(dir, "a.jpg");
    assert_int_equal(g.set, g.cleared);
}

/* Run in a child with /proc hidden: the link goes through AT_EMPTY_PATH
 * (allowed to root, and on recent kernels to the file's opener), or where
 * that is refused the write goes the named way, which
 * falls_back_when_linking_is_refused covers. Either way the output arrives
 * and nothing else. */
static int child_without_proc(const char *dir)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", "/proc", "tmpfs", 0, "size=4k") < 0)
        return 2;
    char dest[PATH_MAX];
    if (ib_test_try_path_fmt(dest, "%s/a.jpg", dir) < 0)
        return 1;
    ib_output_opts_t o = {.tag = 1, .recipe = "r"};
    ib_error_t err = {0};
    if (ib_output_write(dest, "bytes", 5, &o, &err) != 0) {
        fprintf(stderr, "write failed: %s\n", err.message);
        return 1;
    }
    return 0;
}

static void works_without_proc(void **state)
{
    fixture_t *f = *state;
    char dir[PATH_MAX], dest[PATH_MAX];
    case_dir(f, "no-proc", dir, dest);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_without_proc(dir));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2)
        ib_test_skip_loudly("output", "cannot hide /proc here (needs root and mount "
                                      "namespaces): the write without /proc is not tested");
    assert_int_equal(WEXITSTATUS(status), 0);
    expect_file(dest, "bytes");
    expect_attr(dest, IB_RECIPE_XATTR, "r");
    expect_only(dir, "a.jpg");
}

IB_TEST_MAIN(setup, teardown,
             {
                 cmocka_unit_test(unnamed_way),
                 cmocka_unit_test(named_way),
                 cmocka_unit_test(falls_back_when_linking_is_refused),
                 cmocka_unit_test(reports_a_failed_link),
                 cmocka_unit_test(works_without_proc),
             })
