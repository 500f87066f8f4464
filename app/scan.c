/*
 * The input scanner. See scan.h.
 *
 * Each open directory on the current path holds one DIR stream; entries are
 * read as they come (readdir order), so the first image is handed out
 * before the rest of the tree has been looked at.
 */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "hash.h"
#include "output.h"
#include "select.h"
#include "sniff.h"

typedef struct {
    DIR *dir;
    size_t path_len; /* length of path while this directory is current */
    dev_t dev;
    ino_t ino;
} frame_t;

struct ib_scan {
    ib_scan_opts_t opts;
    char **inputs;
    int n_inputs;
    int next_input;
    FILE *list;    /* the list being read: stdin for -, or --files-from */
    int list_done; /* --files-from has been read */
    /* What has been read of the list and not yet used: buf[at, len). The
     * list is read through its fd, never through stdio, whose buffer a
     * poll() cannot see. */
    struct {
        char *buf;
        size_t at, len, cap;
        int end;        /* read() said end of file (or failed) */
        int discarding; /* the rest of a line too long to be a path */
    } in;
    char path[PATH_MAX];
    size_t root_len;  /* prefix of path not mirrored (the root and its '/') */
    int beside;       /* this root is the output root: outputs are among its files */
    int below;        /* ib_scan_new_below()'s entry is still to be started */
    size_t depth_off; /* directories between the root and the bottom of the stack */
    frame_t *stack;
    size_t depth;
    size_t cap;
    char base_real[PATH_MAX];
};

ib_scan_t *ib_scan_new(const ib_scan_opts_t *opts, char **inputs, int n_inputs)
{
    ib_scan_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->opts = *opts;
    s->inputs = inputs;
    s->n_inputs = n_inputs;
    if (opts->base != NULL && realpath(opts->base, s->base_real) == NULL)
        s->base_real[0] = '\0';
    return s;
}

ib_scan_t *ib_scan_new_below(const ib_scan_opts_t *opts, const char *path, size_t root_len)
{
    ib_scan_t *s = ib_scan_new(opts, NULL, 0);
    if (s == NULL)
        return NULL;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->root_len = root_len < strlen(s->path) ? root_len : strlen(s->path);
    s->below = 1;
    /* The walk of the root meets a directory at rel "a/b" from inside
     * "a", two levels down: its --max-depth check counts from there. */
    s->depth_off = 1;
    for (const char *c = s->path + s->root_len; *c != '\0'; c++)
        s->depth_off += *c == '/';
    char root[PATH_MAX];
    struct stat st;
    snprintf(root, sizeof root, "%.*s", (int)s->root_len, s->path);
    s->beside = opts->has_skip && stat(root, &st) == 0 && st.st_dev == opts->skip_dev &&
                st.st_ino == opts->skip_ino;
    return s;
}

void ib_scan_free(ib_scan_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->depth; i++)
        closedir(s->stack[i].dir);
    free(s->stack);
    free(s->in.buf);
    free(s);
}

static int error_item(ib_scan_item_t *item, const char *call, const char *path, int e)
{
    item->kind = IB_SCAN_ERROR;
    snprintf(item->path, sizeof item->path, "%s", path);
    item->rel[0] = '\0';
    snprintf(item->message, sizeof item->message, "%s(\"%s\") failed: %s", call, path, strerror(e));
    return 1;
}

static int is_image_file(int dirfd, const char *name, const char *path)
{
    unsigned char buf[IB_SNIFF_BYTES];
    int fd = dirfd >= 0 ? openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY)
                        : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        /* Unreadable: hand it on when the name says image, so the user
         * hears about it instead of it vanishing. */
        return ib_sniff_image_name(name);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0 && ib_sniff_magic(buf, (size_t)n) != NULL)
        return 1;
    return ib_sniff_image_name(name);
}

/* The mirrored part of a file named on its own. */
static void named_rel(ib_scan_t *s, const char *path, char *rel, size_t len)
{
    if (s->base_real[0] != '\0') {
        char real[PATH_MAX];
        size_t b = strlen(s->base_real);
        if (realpath(path, real) != NULL && strncmp(real, s->base_real, b) == 0 &&
            (real[b] == '/' || s->base_real[b - 1] == '/')) {
            snprintf(rel, len, "%s", real + b + (real[b] == '/'));
            return;
        }
    }
    const char *slash = strrchr(path, '/');
    snprintf(rel, len, "%s", slash != NULL ? slash + 1 : path);
}

static int excluded(const ib_scan_t *s, const char *rel)
{
    for (int i = 0; i < s->opts.n_excludes; i++)
        if (ib_glob_match(s->opts.excludes[i], rel))
            return 1;
    return 0;
}

/* Whether a file with this relative path is wanted. */
static int selected(const ib_scan_t *s, const char *rel)
{
    if (excluded(s, rel))
        return 0;
    if (s->opts.n_includes == 0)
        return 1;
    for (int i = 0; i < s->opts.n_includes; i++)
        if (ib_glob_match(s->opts.includes[i], rel))
            return 1;
    return 0;
}

static int push_dir(ib_scan_t *s, DIR *d, const struct stat *st)
{
    if (s->depth == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        frame_t *n = realloc(s->stack, cap * sizeof *n);
        if (n == NULL)
            return -1;
        s->stack = n;
        s->cap = cap;
    }
    s->stack[s->depth++] = (frame_t){d, strlen(s->path), st->st_dev, st->st_ino};
    return 0;
}

static void pop_dir(ib_scan_t *s)
{
    frame_t *f = &s->stack[--s->depth];
    closedir(f->dir);
    if (s->depth > 0)
        s->path[s->stack[s->depth - 1].path_len] = '\0';
}

static int on_stack(const ib_scan_t *s, const struct stat *st)
{
    for (size_t i = 0; i < s->depth; i++)
        if (s->stack[i].dev == st->st_dev && s->stack[i].ino == st->st_ino)
            return 1;
    return 0;
}

/* Opens path as a directory and makes it current. 1 pushed, else an item. */
static int enter_dir(ib_scan_t *s, int parent_fd, const char *name, ib_scan_item_t *item)
{
    int fd = parent_fd >= 0 ? openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                            : open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        error_item(item, "opendir", s->path, errno);
        return 0;
    }
    struct stat st;
    DIR *d = fstat(fd, &st) == 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int e = errno;
        close(fd);
        error_item(item, "opendir", s->path, e);
        return 0;
    }
    if (s->opts.has_skip && st.st_dev == s->opts.skip_dev && st.st_ino == s->opts.skip_ino) {
        /* Named as an input itself, the output root is walked, and the
         * outputs in it are told apart file by file. */
        if (parent_fd < 0) {
            s->beside = 1;
        } else {
            closedir(d);
            return 2;
        }
    }
    if (on_stack(s, &st)) {
        closedir(d);
        item->kind = IB_SCAN_NOTE;
        snprintf(item->path, sizeof item->path, "%s", s->path);
        snprintf(item->message, sizeof item->message, "%s: symlink loop, not entered again",
                 s->path);
        return 0;
    }
    if (push_dir(s, d, &st) < 0) {
        closedir(d);
        error_item(item, "opendir", s->path, ENOMEM);
        return 0;
    }
    if (s->opts.entered != NULL)
        s->opts.entered(s->opts.entered_ctx, s->path, s->root_len);
    return 1;
}

/* Appends "/name" to the current path. -1 if it would not fit. */
static int join(ib_scan_t *s, const char *name)
{
    size_t n = strlen(s->path), m = strlen(name);
    if (n + 1 + m >= sizeof s->path)
        return -1;
    if (n > 0 && s->path[n - 1] != '/')
        s->path[n++] = '/';
    memcpy(s->path + n, name, m + 1);
    return 0;
}

static void file_item(ib_scan_t *s, ib_scan_item_t *item, ib_scan_kind_t kind)
{
    item->kind = kind;
    snprintf(item->path, sizeof item->path, "%s", s->path);
    snprintf(item->rel, sizeof item->rel, "%s", s->path + s->root_len);
    item->message[0] = '\0';
}

/* Matches text from its start against the rest of a template: {dir} any
 * path, {stem} and {ext} a name without '/', {w} and {h} digits, {hash} hex digits, {variant}
 * one of the variant names. A '/' that would start the path or double
 * another is dropped, as ib_name_render() drops it. */
static int match_template(const char *t, const char *text, const char *at,
                          const char *const *variants, unsigned n_variants)
{
    if (*t == '\0')
        return *at == '\0';
    if (*t == '/' && (at == text || at[-1] == '/'))
        return match_template(t + 1, text, at, variants, n_variants);
    const char *end = *t == '{' ? strchr(t, '}') : NULL;
    if (end == NULL)
        return *at == *t && match_template(t + 1, text, at + 1, variants, n_variants);
    size_t klen = (size_t)(end - t - 1);
    const char *key = t + 1;
    if (klen == 7 && memcmp(key, "variant", 7) == 0) {
        for (unsigned i = 0; i < n_variants; i++) {
            size_t n = strlen(variants[i]);
            if (strncmp(at, variants[i], n) == 0 &&
                match_template(end + 1, text, at + n, variants, n_variants))
                return 1;
        }
        return n_variants == 0 && match_template(end + 1, text, at, variants, n_variants);
    }
    /* A date's format may hold '/' ({date:%Y/%m}). */
    int any_path =
        (klen == 3 && memcmp(key, "dir", 3) == 0) || (klen >= 4 && memcmp(key, "date", 4) == 0);
    int digits = klen == 1 && (*key == 'w' || *key == 'h');
    if (klen == 4 && memcmp(key, "hash", 4) == 0) {
        /* IB_HASH_DIGITS lowercase hex digits. */
        for (size_t n = 0; n < IB_HASH_DIGITS; n++)
            if (!((at[n] >= '0' && at[n] <= '9') || (at[n] >= 'a' && at[n] <= 'f')))
                return 0;
        return match_template(end + 1, text, at + IB_HASH_DIGITS, variants, n_variants);
    }
    /* {dir} may be empty (a file at the top); the others never are. The
     * field's value is at[0..n). */
    for (size_t n = any_path ? 0 : 1;; n++) {
        char c = n > 0 ? at[n - 1] : 'x';
        if (c == '\0' || (c == '/' && !any_path) || (digits && (c < '0' || c > '9')))
            return 0;
        if (match_template(end + 1, text, at + n, variants, n_variants))
            return 1;
    }
}

int ib_scan_made_by_template(const char *tmpl, const char *rel, const char *const *variants,
                             unsigned n_variants)
{
    return tmpl != NULL && match_template(tmpl, rel, rel, variants, n_variants);
}

/* Whether the current file is an output of ours, beside its original. */
static int own_output(const ib_scan_t *s, const char *rel)
{
    if (getxattr(s->path, IB_SOURCE_XATTR, NULL, 0) >= 0)
        return 1;
    if (errno == ENODATA)
        return 0; /* the filesystem keeps attributes, and this file has none */
    return ib_scan_made_by_template(s->opts.name_template, rel, s->opts.variants,
                                    s->opts.n_variants);
}

/* One step inside the current directory: 1 with an item, 0 to go on. */
static int walk_step(ib_scan_t *s, ib_scan_item_t *item)
{
    frame_t *f = &s->stack[s->depth - 1];
    s->path[f->path_len] = '\0';
    errno = 0;
    struct dirent *de = readdir(f->dir);
    if (de == NULL) {
        int e = errno;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", s->path);
        pop_dir(s);
        return e != 0 ? error_item(item, "readdir", dir, e) : 0;
    }
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    if (name[0] == '.' && !s->opts.hidden)
        return 0;
    if (join(s, name) < 0)
        return error_item(item, "open", s->path, ENAMETOOLONG);

    int dfd = dirfd(f->dir);
    unsigned char type = de->d_type;
    struct stat st;
    /* Some file systems do not say what an entry is: ask, without
     * following a link, so the symlink rule below applies to them too. */
    if (type == DT_UNKNOWN) {
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return error_item(item, "stat", s->path, errno);
        type = S_ISLNK(st.st_mode)   ? DT_LNK
               : S_ISDIR(st.st_mode) ? DT_DIR
               : S_ISREG(st.st_mode) ? DT_REG
                                     : DT_UNKNOWN;
    }
    if (type == DT_LNK) {
        /* A dangling link: nothing to convert, nothing to say. */
        if (fstatat(dfd, name, &st, 0) < 0)
            return 0;
        if (S_ISDIR(st.st_mode) && !s->opts.follow_symlinks)
            return 0;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    const char *rel = s->path + s->root_len;
    if (type == DT_DIR) {
        /* The root is depth 1: its subdirectories are one level below. */
        if (excluded(s, rel) ||
            (s->opts.has_max_depth && s->depth + s->depth_off > s->opts.max_depth))
            return 0;
        int rc = enter_dir(s, dfd, name, item);
        return rc == 0 ? 1 : 0;
    }
    if (type != DT_REG || !selected(s, rel) || (s->beside && own_output(s, rel)))
        return 0;
    file_item(s, item, is_image_file(dfd, name, s->path) ? IB_SCAN_IMAGE : IB_SCAN_IGNORED);
    return 1;
}

/* Reads what the list has for us without waiting for more: 0 after a
 * read (or at the end), 1 when nothing has come yet. */
static int read_list(ib_scan_t *s)
{
    int fd = fileno(s->list);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (fd >= 0 && poll(&pfd, 1, 0) == 0)
        return 1;
    if (s->in.at > 0) {
        memmove(s->in.buf, s->in.buf + s->in.at, s->in.len - s->in.at);
        s->in.len -= s->in.at;
        s->in.at = 0;
    }
    if (s->in.len == s->in.cap) {
        size_t cap = s->in.cap ? 2 * s->in.cap : 8192;
        char *n = realloc(s->in.buf, cap);
        if (n == NULL) {
            s->in.end = 1;
            return 0;
        }
        s->in.buf = n;
        s->in.cap = cap;
    }
    ssize_t n = fd >= 0 ? read(fd, s->in.buf + s->in.len, s->in.cap - s->in.len) : 0;
    if (n > 0)
        s->in.len += (size_t)n;
    else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        s->in.end = 1;
    return 0;
}

/* The next whole line of the list (the last may lack its separator) into
 * *line, its length in *n: 1, 0 at the end, 2 while the rest has not come. */
static int next_line(ib_scan_t *s, char **line, size_t *n)
{
    int sep = s->opts.null_separated ? '\0' : '\n';
    for (;;) {
        char *start = s->in.buf + s->in.at;
        size_t avail = s->in.len - s->in.at;
        char *end = avail > 0 ? memchr(start, sep, avail) : NULL;
        if (end == NULL && !s->in.end && avail <= 2 * PATH_MAX) {
            if (read_list(s) == 1)
                return 2;
            continue;
        }
        if (end == NULL && avail == 0)
            return 0;
        *line = start;
        *n = end != NULL ? (size_t)(end - start) : avail;
        s->in.at += *n + (end != NULL);
        return 1;
    }
}

/* Reads one path from the list: 1 with it in s->path, 0 at the end, -1
 * for a line too long to be a path (reported as an item), 2 when the list
 * (a pipe) has nothing more yet. */
static int next_listed(ib_scan_t *s, ib_scan_item_t *item)
{
    int sep = s->opts.null_separated ? '\0' : '\n';
    for (;;) {
        char *line;
        size_t n;
        int rc = next_line(s, &line, &n);
        if (rc != 1)
            return rc;
        /* A piece of a line longer than the buffer: the rest follows. */
        int whole = s->in.at > 0 && s->in.buf[s->in.at - 1] == sep;
        if (s->in.discarding) {
            s->in.discarding = !whole;
            continue;
        }
        while (n > 0 && sep == '\n' && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if (n >= sizeof s->path) {
            s->in.discarding = !whole && !s->in.end;
            error_item(item, "open", "(a listed path)", ENAMETOOLONG);
            return -1;
        }
        memcpy(s->path, line, n);
        s->path[n] = '\0';
        return 1;
    }
}

/* Starts on a named path (an argument or a listed line). 1 with an item. */
static int start_named(ib_scan_t *s, ib_scan_item_t *item)
{
    struct stat st;
    s->beside = 0;
    if (stat(s->path, &st) < 0)
        return error_item(item, "stat", s->path, errno);
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(s->path);
        while (n > 1 && s->path[n - 1] == '/')
            s->path[--n] = '\0';
        s->root_len = n + (s->path[n - 1] != '/');
        int rc = enter_dir(s, -1, NULL, item);
        return rc == 0 ? 1 : 0;
    }
    item->kind = IB_SCAN_IMAGE;
    snprintf(item->path, sizeof item->path, "%s", s->path);
    named_rel(s, s->path, item->rel, sizeof item->rel);
    item->message[0] = '\0';
    return selected(s, item->rel);
}

/* Whether a directory met below a root is walked: the checks walk_step
 * makes before entering one. */
static int enters_below(const ib_scan_t *s, const char *rel, const struct stat *st)
{
    struct stat lst;
    if (!s->opts.follow_symlinks && lstat(s->path, &lst) == 0 && S_ISLNK(lst.st_mode))
        return 0;
    if (excluded(s, rel) || (s->opts.has_max_depth && s->depth_off > s->opts.max_depth))
        return 0;
    return !(s->opts.has_skip && st->st_dev == s->opts.skip_dev && st->st_ino == s->opts.skip_ino);
}

/* Starts on ib_scan_new_below()'s entry. 1 with an item. */
static int start_below(ib_scan_t *s, ib_scan_item_t *item)
{
    const char *rel = s->path + s->root_len;
    const char *slash = strrchr(rel, '/');
    const char *name = slash != NULL ? slash + 1 : rel;
    struct stat st;
    if (*name == '\0' || (name[0] == '.' && !s->opts.hidden))
        return 0;
    if (stat(s->path, &st) < 0)
        /* Gone again, or a dangling link: nothing to convert. */
        return errno == ENOENT || errno == ENOTDIR ? 0 : error_item(item, "stat", s->path, errno);
    if (S_ISDIR(st.st_mode))
        return enters_below(s, rel, &st) && enter_dir(s, -1, NULL, item) == 0;
    if (!S_ISREG(st.st_mode) || !selected(s, rel) || (s->beside && own_output(s, rel)))
        return 0;
    file_item(s, item, is_image_file(-1, name, s->path) ? IB_SCAN_IMAGE : IB_SCAN_IGNORED);
    return 1;
}

int ib_scan_next(ib_scan_t *s, ib_scan_item_t *item)
{
    for (;;) {
        if (s->below) {
            s->below = 0;
            if (start_below(s, item))
                return 1;
            continue;
        }
        if (s->depth > 0) {
            if (walk_step(s, item))
                return 1;
            continue;
        }
        if (s->list != NULL) {
            int rc = next_listed(s, item);
            if (rc == 2)
                return IB_SCAN_WAITING;
            if (rc < 0)
                return 1;
            if (rc > 0) {
                if (start_named(s, item))
                    return 1;
                continue;
            }
            s->list = NULL;
            s->in.at = s->in.len = 0;
            s->in.end = 0;
        }
        if (s->next_input >= s->n_inputs) {
            if (s->opts.list == NULL || s->list_done)
                return 0;
            s->list_done = 1;
            s->list = s->opts.list;
            continue;
        }
        const char *in = s->inputs[s->next_input++];
        if (strcmp(in, "-") == 0) {
            s->list = stdin;
            continue;
        }
        if (strlen(in) >= sizeof s->path)
            return error_item(item, "open", in, ENAMETOOLONG);
        snprintf(s->path, sizeof s->path, "%s", in);
        if (start_named(s, item))
            return 1;
    }
}

int ib_scan_list_fd(const ib_scan_t *s)
{
    return s->list != NULL ? fileno(s->list) : -1;
}
