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

int ib_output_write(const char *dest, const void *data, size_t len, const ib_output_opts_t *o,
                    ib_error_t *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX], failed[PATH_MAX];
    const char *base;
    split_dest(dest, dir, sizeof dir, &base);

    if (ib_mkdirs(dir, failed, sizeof failed) < 0)
        return ib_fail(err, IB_ERR_WRITE, "mkdir(\"%s\") failed: %s", failed, strerror(errno));
    int n = snprintf(tmp, sizeof tmp, "%s/.%s.%06lx-%ld-%lu.tmp", dir, base, host_tag(),
                     (long)getpid(), o->tag);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return ib_fail(err, IB_ERR_WRITE, "%s: path too long", dest);

    if (o->guard != NULL)
        o->guard(o->guard_arg, tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        if (o->guard != NULL)
            o->guard(o->guard_arg, NULL);
        return ib_fail(err, IB_ERR_WRITE, "open(\"%s\") failed: %s", dest, strerror(e));
    }
    const char *call = "write";
    int ok = ib_full_write(fd, data, len) == 0;
    if (ok && (set_attr(fd, IB_RECIPE_XATTR, o->recipe) < 0 ||
               set_attr(fd, IB_SOURCE_XATTR, o->source) < 0)) {
        call = "fsetxattr";
        ok = 0;
    }
    int e = errno;
    if (close(fd) < 0 && ok) {
        call = "close";
        e = errno;
        ok = 0;
    }
    if (ok && rename(tmp, dest) < 0) {
        call = "rename";
        e = errno;
        ok = 0;
    }
    if (!ok)
        unlink(tmp);
    if (o->guard != NULL)
        o->guard(o->guard_arg, NULL);
    if (!ok)
        return ib_fail(err, IB_ERR_WRITE, "%s(\"%s\") failed: %s", call, dest, strerror(e));
    return 0;
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
