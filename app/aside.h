/*
 * Files the parent writes whole or not at all (--manifest, --report):
 * made under a temporary name beside the final one (rename() does not
 * cross filesystems) and renamed over it only once they are on disk, so
 * a reader never sees half a file.
 */
#ifndef IB_APP_ASIDE_H
#define IB_APP_ASIDE_H

#include <stddef.h>
#include <stdio.h>

/* The mkstemps() template beside path: DIR/.NAME.XXXXXX then suffix.
 * 0, or -1 if it does not fit. */
int ib_aside_name(const char *path, const char *suffix, char *out, size_t cap);

/* Creates the file of template tmp (made by ib_aside_name with ".tmp")
 * for writing. NULL with err filled ("OPT: open(...) failed: ..."). */
FILE *ib_aside_open(char *tmp, const char *opt, char *err, size_t errlen);

/* Closes f, the file tmp; with commit, syncs it first and renames it to
 * path. 0, or -1 with err filled; tmp is removed unless it took path's
 * name. */
int ib_aside_close(FILE *f, const char *tmp, const char *path, int commit, const char *opt,
                   char *err, size_t errlen);

#endif
