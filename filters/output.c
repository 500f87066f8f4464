/*
 * Atomic output writes. See output.h.
 *
 * The temporary name carries the host's and the process's identity, so
 * workers on several machines writing into one shared tree never pick the
 * same name.
 */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileio.h"

static unsigned long host_tag(void)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    unsigned long h = 5381;
    for (const char *p = host; *p != '\0'; p++)
        h = h * 33 + (unsigned char)*p;
    return h & 0xffffff;
}

static void split_dest(const char *dest, char *dir, size_t dirlen, const char **base)
{
    const char *slash = strrchr(dest, '/');
    if (slash == NULL) {
        snprintf(dir, dirlen, ".");
        *base = dest;
        return;
    }
    size_t n = (size_t)(slash - dest);
    if (n == 0)
        n = 1;
    snprintf(dir, dirlen, "%.*s", (int)n, dest);
    *base = slash + 1;
}

/* 0, or -1 on a real failure; a filesystem without xattrs is no failure
 * (re-runs then compare times only). */
static int set_attr(int fd, const char *name, const char *value)
{
    if (value == NULL || fsetxattr(fd, name, value, strlen(value), 0) == 0)
        return 0;
    return errno == ENOTSUP || errno == EPERM ? 0 : -1;
}

/* A temporary name beside dest, unique across hosts, processes and jobs. */
static int temp_name(char *tmp, size_t len, const char *dest, const ib_output_opts_t *o)
{
    char dir[PATH_MAX];
    const char *base;
    split_dest(dest, dir, sizeof dir, &base);
    int n = snprintf(tmp, len, "%s/.%s.%06lx-%ld-%lu.tmp", dir, base, host_tag(), (long)getpid(),
                     o->tag);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* Writes the bytes and the attributes: NULL, or the call that failed. */
static const char *fill(int fd, const void *data, size_t len, const ib_output_opts_t *o)
{
    if (ib_full_write(fd, data, len) < 0)
        return "write";
    if (set_attr(fd, IB_RECIPE_XATTR, o->recipe) < 0 ||
        set_attr(fd, IB_SOURCE_XATTR, o->source) < 0)
        return "fsetxattr";
    /* Last: the write above would move the time again. */
    if (o->mtime != NULL && futimens(fd, (const struct timespec[2]){*o->mtime, *o->mtime}) < 0)
        return "futimens";
    return NULL;
}

static void guard(const ib_output_opts_t *o, const char *tmp)
{
    if (o->guard != NULL)
        o->guard(o->hook_arg, tmp);
}

/* Tells the caller which file fd is before it takes the final name: 0, or
 * -1 with errno when it cannot be told (then it does not take it). */
static int announce(const ib_output_opts_t *o, int fd)
{
    struct stat st;
    if (o->committing == NULL)
        return 0;
    if (fstat(fd, &st) < 0)
        return -1;
    o->committing(o->hook_arg, &st);
    return 0;
}

int ib_output_write_named(const char *dest, const void *data, size_t len, const ib_output_opts_t *o,
                          ib_error_t *err)
{
    char tmp[PATH_MAX];
    if (temp_name(tmp, sizeof tmp, dest, o) < 0)
        return ib_fail(err, IB_ERR_WRITE, "%s: path too long", dest);

    guard(o, tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        guard(o, NULL);
        return ib_fail(err, IB_ERR_WRITE, "open(\"%s\") failed: %s", dest, strerror(e));
    }
    const char *call = fill(fd, data, len, o);
    if (call == NULL && announce(o, fd) < 0)
        call = "fstat";
    int e = errno;
    if (close(fd) < 0 && call == NULL) {
        call = "close";
        e = errno;
    }
    if (call == NULL && rename(tmp, dest) < 0) {
        call = "rename";
        e = errno;
    }
    if (call != NULL)
        unlink(tmp);
    guard(o, NULL);
    if (call != NULL)
        return ib_fail(err, IB_ERR_WRITE, "%s(\"%s\") failed: %s", call, dest, strerror(e));
    return 0;
}

/* Closes a file being given up on, keeping errno: the cause to report. */
static void abandon(int fd)
{
    int e = errno;
    close(fd);
    errno = e;
}

/* Gives the unnamed file fd the name path: 0, or -1 with errno. Through
 * /proc, which needs no privilege; AT_EMPTY_PATH where /proc is missing. */
static int link_unnamed(int fd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    return linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH);
}

/* A link refused for one of these means this filesystem or system cannot
 * name an unnamed file here (no /proc and no AT_EMPTY_PATH, no hard links,
 * a security module): the named way can still write the output. */
static int cannot_name(int e)
{
    return e == ENOENT || e == EPERM || e == EACCES || e == EOPNOTSUPP || e == EINVAL || e == EXDEV;
}

/* Closes the unnamed file fd once it is linked at dest. A close that fails
 * (the filesystem saying the bytes may not all be there) takes the name
 * back, but only while it is still this file's: another writer may have
 * renamed a file of its own onto dest since. */
static int close_linked(int fd, const char *dest)
{
    struct stat mine, now;
    int known = fstat(fd, &mine) == 0;
    if (close(fd) == 0)
        return 0;
    int e = errno;
    if (known && lstat(dest, &now) == 0 && now.st_dev == mine.st_dev && now.st_ino == mine.st_ino)
        unlink(dest);
    errno = e;
    return -1;
}

/*
 * Replaces the existing dest with the unnamed file fd, and closes fd: the
 * file gets a temporary name, is closed, and only then renamed over dest,
 * so a failure at any step leaves the old file (with --in-place, the
 * input) whole. NULL, or the call that failed with errno set.
 */
static const char *replace_with_unnamed(int fd, const char *dest, const ib_output_opts_t *o)
{
    char tmp[PATH_MAX];
    if (temp_name(tmp, sizeof tmp, dest, o) < 0) {
        close(fd);
        errno = ENAMETOOLONG;
        return "link";
    }
    guard(o, tmp);
    const char *call = NULL;
    if (link_unnamed(fd, tmp) < 0) {
        call = "link";
        abandon(fd);
    } else if (close(fd) < 0) {
        call = "close";
    } else if (rename(tmp, dest) < 0) {
        call = "rename";
    }
    int e = errno;
    if (call != NULL)
        unlink(tmp);
    guard(o, NULL);
    errno = e;
    return call;
}

/*
 * The unnamed file's way; closes fd. 0 written, -1 failed (err set), 1
 * this filesystem or system cannot give the file a name, so the caller
 * writes it the named way instead.
 */
static int write_unnamed(int fd, const char *dest, const void *data, size_t len,
                         const ib_output_opts_t *o, ib_error_t *err)
{
    const char *call = fill(fd, data, len, o);
    if (call == NULL && announce(o, fd) < 0)
        call = "fstat";
    if (call != NULL) {
        abandon(fd);
    } else if (link_unnamed(fd, dest) == 0) {
        if (close_linked(fd, dest) < 0)
            call = "close";
    } else if (errno == EEXIST) {
        /* A link never replaces a name; a rename does, atomically. */
        call = replace_with_unnamed(fd, dest, o);
    } else if (cannot_name(errno)) {
        close(fd);
        return 1;
    } else {
        call = "link";
        abandon(fd);
    }
    if (call != NULL)
        return ib_fail(err, IB_ERR_WRITE, "%s(\"%s\") failed: %s", call, dest, strerror(errno));
    return 0;
}

int ib_output_write(const char *dest, const void *data, size_t len, const ib_output_opts_t *o,
                    ib_error_t *err)
{
    char dir[PATH_MAX], failed[PATH_MAX];
    const char *base;
    split_dest(dest, dir, sizeof dir, &base);
    if (ib_mkdirs(dir, failed, sizeof failed) < 0)
        return ib_fail(err, IB_ERR_WRITE, "mkdir(\"%s\") failed: %s", failed, strerror(errno));

#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) {
        int rc = write_unnamed(fd, dest, data, len, o, err);
        if (rc <= 0)
            return rc;
    }
#endif
    return ib_output_write_named(dest, data, len, o, err);
}

static int get_attr(const char *path, const char *name, char *buf, size_t len)
{
    ssize_t n = getxattr(path, name, buf, len - 1);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    return 1;
}

int ib_output_recipe(const char *path, char *buf, size_t len)
{
    return get_attr(path, IB_RECIPE_XATTR, buf, len);
}

int ib_output_source(const char *path, char *buf, size_t len)
{
    return get_attr(path, IB_SOURCE_XATTR, buf, len);
}
