/*
 * Writing an output so that nothing is lost: the bytes go to a temporary
 * file in the destination directory, which gets the final name only once
 * complete.
 *
 * Where the filesystem allows (O_TMPFILE: ext4, XFS, btrfs, tmpfs), that
 * file has no name until it is linked into place. A crashed or killed
 * write then leaves nothing at all, and making the file does not hold the
 * directory's lock while the filesystem looks for a free inode; on a busy
 * ext4 without a journal that search passes every recently deleted inode,
 * and two workers writing into one folder waited on each other through it.
 * A name that already exists is replaced by rename, which is atomic where
 * a link is refused.
 *
 * Elsewhere the temporary file is named, and renamed over the final name;
 * the caller is told that name before the file exists, so that whoever
 * reaps a dead worker can remove it.
 */
#ifndef IB_FILTERS_OUTPUT_H
#define IB_FILTERS_OUTPUT_H

#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"

/* Told the temporary path before it is created, and NULL once it is gone. */
typedef void (*ib_guard_fn)(void *arg, const char *tmp_path);

/* Told the complete file (its device and inode in st) just before it is
 * linked or renamed to dest, so whoever reaps a writer that dies right
 * after can see from dest whether it got there. */
typedef void (*ib_commit_fn)(void *arg, const struct stat *st);

typedef struct {
    ib_guard_fn guard;
    ib_commit_fn committing;
    /* Passed to guard and committing. */
    void *hook_arg;
    /* Stored in the user.imgbatch.recipe extended attribute when not NULL. */
    const char *recipe;
    /* Makes the temporary name unique within this process (a job number). */
    unsigned long tag;
    /* The input that made it, stored in user.imgbatch.source when not NULL,
     * so a later run can tell its own outputs from another input's. */
    const char *source;
    /* Given to the file as its access and modification times when not
     * NULL (--preserve-times), before it takes its name. */
    const struct timespec *mtime;
} ib_output_opts_t;

/* Creates the destination directory as needed. 0, or -1 with an IB_ERR_WRITE. */
int ib_output_write(const char *dest, const void *data, size_t len, const ib_output_opts_t *o,
                    ib_error_t *err);

/* The named way alone, which ib_output_write takes where the filesystem has
 * no unnamed files; the directory must exist. For tests, which run it on
 * filesystems that have them. */
int ib_output_write_named(const char *dest, const void *data, size_t len, const ib_output_opts_t *o,
                          ib_error_t *err);

#define IB_RECIPE_XATTR "user.imgbatch.recipe"

#define IB_SOURCE_XATTR "user.imgbatch.source"

/* The recipe stored on an existing output: 1 found, 0 none or no xattrs. */
int ib_output_recipe(const char *path, char *buf, size_t len);

/* The input recorded as having made an existing output: 1 found, else 0. */
int ib_output_source(const char *path, char *buf, size_t len);

#endif
