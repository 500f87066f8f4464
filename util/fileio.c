/*
 * Read and write loops, and mkdir -p. See fileio.h.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ib_full_write(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t ib_read_upto(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t ib_full_read(int fd, void *buf, size_t n)
{
    ssize_t got = ib_read_upto(fd, buf, n);
    if (got < 0 || got == 0 || (size_t)got == n)
        return got;
    errno = EPROTO;
    return -1;
}

int ib_mkdirs(const char *dir, char *failed, size_t failed_len)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0)
        return 0;
    if (n >= sizeof path) {
        errno = ENAMETOOLONG;
        snprintf(failed, failed_len, "%s", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        /* EEXIST is fine: another worker, or another host on a shared
         * output tree, may have made it a moment ago. */
        if (mkdir(path, 0777) < 0 && errno != EEXIST) {
            snprintf(failed, failed_len, "%s", path);
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        if (errno == 0 || S_ISREG(st.st_mode))
            errno = ENOTDIR;
        snprintf(failed, failed_len, "%s", path);
        return -1;
    }
    return 0;
}

unsigned char *ib_read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (unsigned long long)st.st_size <= max) {
        buf = malloc((size_t)st.st_size);
        if (buf != NULL && ib_full_read(fd, buf, (size_t)st.st_size) != (ssize_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    close(fd);
    return buf;
}
