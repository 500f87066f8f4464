/*
 * Files written aside, then renamed (aside.h).
 *
 * NOTES
 * - Write errors are sticky: the stream's error flag is checked once, at
 *   the close, and a file that failed never takes the final name.
 */
#include "aside.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ib_aside_name(const char *path, const char *suffix, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash != NULL ? (int)(slash - path + 1) : 0;
    int n = snprintf(out, cap, "%.*s.%s.XXXXXX%s", dir_len, path, path + dir_len, suffix);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

FILE *ib_aside_open(char *tmp, const char *opt, char *err, size_t errlen)
{
    int fd = mkostemps(tmp, (int)strlen(".tmp"), O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: open(\"%s\") failed: %s", opt, tmp, strerror(errno));
        return NULL;
    }
    /* For people and the web server that serves the outputs: what a new
     * file gets, not mkstemp's 0600. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        snprintf(err, errlen, "%s: fdopen(\"%s\") failed: %s", opt, tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    }
    return f;
}

int ib_aside_close(FILE *f, const char *tmp, const char *path, int commit, const char *opt,
                   char *err, size_t errlen)
{
    int rc = 0;
    /* Whole on disk before it takes the name, as the outputs are. */
    if (commit && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)) {
        snprintf(err, errlen, "%s: write(\"%s\") failed: %s", opt, tmp, strerror(errno));
        rc = -1;
    }
    if (fclose(f) != 0 && commit && rc == 0) {
        snprintf(err, errlen, "%s: close(\"%s\") failed: %s", opt, tmp, strerror(errno));
        rc = -1;
    }
    if (commit && rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename(\"%s\", \"%s\") failed: %s", opt, tmp, path,
                 strerror(errno));
        rc = -1;
    }
    if (!commit || rc < 0)
        unlink(tmp);
    return rc;
}
