/*
 * The input scanner: turns the INPUT arguments into a stream of image paths,
 * one at a time, walking directories depth first. Memory grows with the
 * depth of the tree, not with the number of files: nothing is listed ahead.
 *
 * Rules:
 * - Hidden entries (a name starting with '.') are skipped unless asked for.
 * - Symlinks to files are followed; symlinks to directories only with
 *   follow_symlinks, and then a directory already on the current path (a
 *   loop) is reported and not entered.
 * - --exclude prunes directories as well as files; --include picks files.
 * - Inside directories, a file is an image if its first bytes or its
 *   extension say so; any other regular file the globs select comes out as
 *   IB_SCAN_IGNORED, so the user can be told. A file named on the command
 *   line is always handed on (the worker says if it is not an image).
 */
#ifndef IB_APP_SCAN_H
#define IB_APP_SCAN_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct ib_scan ib_scan_t;

typedef struct {
    int hidden;
    int follow_symlinks;
    /* A directory never to enter (the output root inside an input). */
    dev_t skip_dev;
    ino_t skip_ino;
    int has_skip;
    /* For files named on their own: mirror their path relative to this. */
    const char *base;
    /* Globs on the path relative to the input root (see select.h). */
    char **includes;
    int n_includes;
    char **excludes;
    int n_excludes;
    /* With has_max_depth: how many directories below an input directory
     * to descend (0: only its own files). */
    int has_max_depth;
    unsigned max_depth;
    /* When the output root is itself an input directory, outputs land
     * beside their originals: they are passed over, told by the
     * user.imgbatch.source attribute they carry, or where the filesystem
     * has no extended attributes, by the names this template (--name)
     * makes, with these variant names. */
    const char *name_template;
    const char *const *variants;
    unsigned n_variants;
    /* A list of paths read after the INPUT arguments (--files-from). */
    FILE *list;
    /* Lists (this one and '-' alike) are NUL-separated, not by lines. */
    int null_separated;
    /* Told of each directory as it is entered, before its entries are
     * read (the watcher watches exactly what the scan walks, from then
     * on); dir is the path, its first root_len bytes the input root. */
    void (*entered)(void *ctx, const char *dir, size_t root_len);
    void *entered_ctx;
} ib_scan_opts_t;

typedef enum { IB_SCAN_IMAGE, IB_SCAN_ERROR, IB_SCAN_NOTE, IB_SCAN_IGNORED } ib_scan_kind_t;

typedef struct {
    ib_scan_kind_t kind;
    char path[PATH_MAX];
    /* The part of path that is mirrored under the output root (images and
     * ignored files). */
    char rel[PATH_MAX];
    /* Why it is an error or worth a note. */
    char message[PATH_MAX + 128];
} ib_scan_item_t;

ib_scan_t *ib_scan_new(const ib_scan_opts_t *opts, char **inputs, int n_inputs);

/* A scan of one entry (a file, or a directory to walk) below an input
 * directory, as the walk of that directory would meet it: path's first
 * root_len bytes are the input root (with its '/'), rel is the rest, and
 * the rules for what is found inside directories apply (hidden names,
 * globs, --max-depth, sniffing, outputs beside their originals). An entry
 * that is gone gives nothing. For the watcher. */
ib_scan_t *ib_scan_new_below(const ib_scan_opts_t *opts, const char *path, size_t root_len);

/* 1 with an item, 0 when every input is exhausted, IB_SCAN_WAITING when
 * the list being read (a pipe, a terminal) has no whole path yet: nothing
 * waits for it here, so the caller can go on with its work, and call again
 * once ib_scan_list_fd() is readable. */
#define IB_SCAN_WAITING 2
int ib_scan_next(ib_scan_t *s, ib_scan_item_t *item);

/* The fd of the list being read, or -1. */
int ib_scan_list_fd(const ib_scan_t *s);

void ib_scan_free(ib_scan_t *s);

/* Whether rel (a path under the output root) is a name that the --name
 * template tmpl can make, whatever the input: "a/b-small.jpg" for
 * "{dir}/{stem}-small.{ext}". */
int ib_scan_made_by_template(const char *tmpl, const char *rel, const char *const *variants,
                             unsigned n_variants);

#endif
