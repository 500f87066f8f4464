/*
 * The watcher behind --watch. See watch.h.
 *
 * NOTES
 * - Everything here runs in the parent, on its poll loop: the inotify fd is
 *   non-blocking and read only when ib_watch_next() is asked for work, so
 *   results are never held back by it.
 * - Watch descriptors map to the directory paths the scan gave (so the
 *   paths handed out match those of the first scan, and outputs land in
 *   the same place). A directory moved away or removed is forgotten with
 *   everything under it; moved within the tree, it comes back as new.
 * - "Is anyone still writing this file?" is answered by a read lease,
 *   which the kernel refuses while the file is open for writing. It is
 *   asked only of files found in a new directory (which may have been
 *   opened before its watch existed) and of files seen only as created
 *   (a link into place sends no close event). The lease is let go at
 *   once; SIGIO, its break signal, is ignored while the watcher lives.
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "clock.h"
#include "select.h"

/* A path is taken once no event has come for it this long... */
#define DEBOUNCE_MS 100
/* ...or this long after its first, however busy it is. */
#define HOLD_MAX_MS 1000
/* Paths waiting at most; more events wait in the kernel's queue. */
#define WATCH_PENDING_MAX 4096
#define PENDING_BUCKETS 4096

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF |    \
     IN_ONLYDIR | IN_EXCL_UNLINK)

typedef struct dir {
    struct dir *next; /* in its bucket */
    int wd;
    int root; /* an input directory itself */
    size_t root_len;
    char path[];
} dir_t;

/* How much a waiting path can be trusted to be whole. */
typedef enum {
    TAKE_CLOSED,  /* closed after writing, or renamed into place */
    TAKE_NEW_DIR, /* a new directory: its files may still be written */
    TAKE_CREATED, /* only created: a link into place, or a writer's open */
} take_t;

typedef struct pending {
    struct pending *older, *newer; /* in arrival order */
    struct pending *next;          /* in its bucket */
    uint64_t hash;
    int64_t first_ms, last_ms;
    take_t take;
    size_t root_len;
    char path[];
} pending_t;

typedef struct note {
    struct note *next;
    ib_scan_kind_t kind;
    char path[PATH_MAX];
    char message[sizeof(((ib_scan_item_t *)0)->message)];
} note_t;

struct ib_watch {
    ib_scan_opts_t opts;
    char **inputs;
    int n_inputs;
    int (*busy)(void *ctx, const char *path);
    void *ctx;
    int fd;
    dir_t **dirs;
    size_t dir_buckets, n_dirs;
    unsigned roots;
    pending_t *oldest, *newest;
    pending_t *pending[PENDING_BUCKETS];
    size_t n_pending;
    note_t *notes, *last_note;
    ib_scan_t *scan; /* being walked: the inputs, a rescan, or one path */
    take_t scan_take;
    int rescan;          /* the queue overflowed: every input again */
    unsigned unwatched;  /* directories refused a watch by the limit */
    unsigned limit_said; /* ... of which the user has been told */
    unsigned roots_said; /* input directories gone, told */
    struct sigaction old_io;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
};

/* ---- notes: what the watcher has to say, handed out as scan items ---- */

static void add_note(ib_watch_t *w, ib_scan_kind_t kind, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_note(ib_watch_t *w, ib_scan_kind_t kind, const char *path, const char *fmt, ...)
{
    note_t *n = calloc(1, sizeof *n);
    if (n == NULL)
        return;
    n->kind = kind;
    snprintf(n->path, sizeof n->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->message, sizeof n->message, fmt, ap);
    va_end(ap);
    if (w->last_note != NULL)
        w->last_note->next = n;
    else
        w->notes = n;
    w->last_note = n;
}

static int take_note(ib_watch_t *w, ib_scan_item_t *item)
{
    note_t *n = w->notes;
    if (n == NULL)
        return 0;
    w->notes = n->next;
    if (w->notes == NULL)
        w->last_note = NULL;
    item->kind = n->kind;
    snprintf(item->path, sizeof item->path, "%s", n->path);
    item->rel[0] = '\0';
    snprintf(item->message, sizeof item->message, "%s", n->message);
    free(n);
    return 1;
}

/* A kernel limit from /proc/sys, or -1. */
static long read_limit(const char *file)
{
    char buf[32];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* The watch limit, named by the sysctl that raises it; the user
 * namespace's own limit too when it is the lower one. */
static void watch_limit(char *out, size_t len)
{
    long global = read_limit("/proc/sys/fs/inotify/max_user_watches");
    long ns = read_limit("/proc/sys/user/max_inotify_watches");
    if (ns >= 0 && global >= 0 && ns < global)
        snprintf(out, len,
                 "fs.inotify.max_user_watches = %ld, and user.max_inotify_watches = %ld "
                 "in this user namespace",
                 global, ns);
    else
        snprintf(out, len, "fs.inotify.max_user_watches = %ld", global);
}

/* ---- watched directories, by watch descriptor ---- */

static dir_t **dir_slot(ib_watch_t *w, int wd)
{
    dir_t **at = &w->dirs[(size_t)wd & (w->dir_buckets - 1)];
    while (*at != NULL && (*at)->wd != wd)
        at = &(*at)->next;
    return at;
}

/* Doubles the buckets as the tree grows, so lookups stay short. */
static void grow_dirs(ib_watch_t *w)
{
    size_t nb = w->dir_buckets * 2;
    dir_t **nd = calloc(nb, sizeof *nd);
    if (nd == NULL)
        return;
    for (size_t i = 0; i < w->dir_buckets; i++) {
        for (dir_t *d = w->dirs[i], *next; d != NULL; d = next) {
            next = d->next;
            d->next = nd[(size_t)d->wd & (nb - 1)];
            nd[(size_t)d->wd & (nb - 1)] = d;
        }
    }
    free(w->dirs);
    w->dirs = nd;
    w->dir_buckets = nb;
}

/* Records (or renames) the directory a watch descriptor stands for. */
static void remember_dir(ib_watch_t *w, int wd, const char *path, size_t root_len)
{
    dir_t **at = dir_slot(w, wd);
    if (*at != NULL && strcmp((*at)->path, path) == 0)
        return;
    size_t n = strlen(path);
    dir_t *d = malloc(sizeof *d + n + 1);
    if (d == NULL)
        return;
    memcpy(d->path, path, n + 1);
    d->wd = wd;
    d->root_len = root_len;
    d->root = n <= root_len;
    if (*at != NULL) {
        /* The same directory under a new name (moved within the tree). */
        dir_t *old = *at;
        d->next = old->next;
        w->roots -= old->root;
        free(old);
        w->n_dirs--;
    } else {
        d->next = NULL;
    }
    *at = d;
    w->roots += d->root;
    if (++w->n_dirs > 2 * w->dir_buckets)
        grow_dirs(w);
}

/* A root is no longer watched: said once, with how many are left. */
static void root_gone(ib_watch_t *w, const char *path)
{
    w->roots_said++;
    if (w->roots > 0)
        add_note(w, IB_SCAN_NOTE, path,
                 "input directory %s was removed or moved away: no longer watched; watching the "
                 "other %u",
                 path, w->roots);
    else
        add_note(w, IB_SCAN_NOTE, path,
                 "input directory %s was removed or moved away: no input directory is left to "
                 "watch, stopping",
                 path);
}

/* Forgets path and every directory under it; rm says to remove the
 * kernel's watches too (they are gone already after IN_IGNORED). */
static void forget_tree(ib_watch_t *w, const char *path, int rm)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < w->dir_buckets; i++) {
        dir_t **at = &w->dirs[i];
        while (*at != NULL) {
            dir_t *d = *at;
            if (strncmp(d->path, path, n) != 0 || (d->path[n] != '\0' && d->path[n] != '/')) {
                at = &d->next;
                continue;
            }
            *at = d->next;
            w->n_dirs--;
            if (rm)
                inotify_rm_watch(w->fd, d->wd);
            if (d->root) {
                w->roots--;
                root_gone(w, d->path);
            }
            free(d);
        }
    }
}

/* The scan entered a directory: watch it from now on. */
static void on_entered(void *ctx, const char *dir, size_t root_len)
{
    ib_watch_t *w = ctx;
    int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
    if (wd >= 0) {
        remember_dir(w, wd, dir, root_len);
        return;
    }
    int e = errno;
    if (e == ENOENT)
        return; /* gone already: nothing to watch */
    if (e != ENOSPC) {
        add_note(w, IB_SCAN_ERROR, dir, "inotify_add_watch(\"%s\") failed: %s: not watched", dir,
                 strerror(e));
        return;
    }
    if (w->unwatched++ > 0)
        return; /* said once; the rest are counted when the scan ends */
    w->limit_said = 1;
    char limit[160];
    watch_limit(limit, sizeof limit);
    add_note(w, IB_SCAN_ERROR, dir,
             "inotify_add_watch(\"%s\") failed: the limit on inotify watches is reached (%s): "
             "new files there are not seen; raise it with sysctl fs.inotify.max_user_watches=N",
             dir, limit);
}

/* ---- paths waiting for their events to settle ---- */

/* d's path and name, joined as the scan joins them: its length, or -1
 * (said) when it is too long to be a path. */
static int child_path(ib_watch_t *w, const dir_t *d, const char *name, char *out)
{
    size_t dl = strlen(d->path);
    int n = snprintf(out, PATH_MAX, "%s%s%s", d->path, dl > 0 && d->path[dl - 1] == '/' ? "" : "/",
                     name);
    if (n >= 0 && n < PATH_MAX)
        return n;
    add_note(w, IB_SCAN_ERROR, d->path, "open(\"%s/%s\") failed: %s", d->path, name,
             strerror(ENAMETOOLONG));
    return -1;
}

static pending_t **pending_slot(ib_watch_t *w, uint64_t hash, const char *path)
{
    pending_t **at = &w->pending[hash & (PENDING_BUCKETS - 1)];
    while (*at != NULL && ((*at)->hash != hash || strcmp((*at)->path, path) != 0))
        at = &(*at)->next;
    return at;
}

static void drop_pending(ib_watch_t *w, pending_t *p)
{
    pending_t **at = pending_slot(w, p->hash, p->path);
    *at = p->next;
    if (p->older != NULL)
        p->older->newer = p->newer;
    else
        w->oldest = p->newer;
    if (p->newer != NULL)
        p->newer->older = p->older;
    else
        w->newest = p->older;
    w->n_pending--;
    free(p);
}

/* A path an event named, or a new one: it waits until its events settle.
 * A closed file stays closed, whatever came before. */
static void add_pending(ib_watch_t *w, const dir_t *d, const char *name, take_t take)
{
    char path[PATH_MAX];
    int n = child_path(w, d, name, path);
    if (n < 0)
        return;
    uint64_t hash = ib_path_hash(path);
    int64_t now = ib_now_ms();
    pending_t **at = pending_slot(w, hash, path), *p = *at;
    if (p != NULL) {
        p->last_ms = now;
        if (take < p->take)
            p->take = take;
        return;
    }
    p = malloc(sizeof *p + (size_t)n + 1);
    if (p == NULL)
        return;
    *p = (pending_t){.older = w->newest,
                     .hash = hash,
                     .first_ms = now,
                     .last_ms = now,
                     .take = take,
                     .root_len = d->root_len};
    memcpy(p->path, path, (size_t)n + 1);
    *at = p;
    if (w->newest != NULL)
        w->newest->newer = p;
    else
        w->oldest = p;
    w->newest = p;
    w->n_pending++;
}

static int64_t due_at(const pending_t *p)
{
    int64_t settled = p->last_ms + DEBOUNCE_MS, held = p->first_ms + HOLD_MAX_MS;
    return settled < held ? settled : held;
}

/* The oldest path that is due and whose job is not in flight, or NULL. */
static pending_t *next_due(ib_watch_t *w, int64_t now)
{
    for (pending_t *p = w->oldest; p != NULL; p = p->newer)
        if (due_at(p) <= now && !w->busy(w->ctx, p->path))
            return p;
    return NULL;
}

/* ---- events ---- */

static void overflowed(ib_watch_t *w)
{
    if (w->rescan)
        return;
    w->rescan = 1;
    add_note(w, IB_SCAN_NOTE, "",
             "the kernel's inotify event queue overflowed (fs.inotify.max_queued_events = %ld; "
             "raise it with sysctl): rescanning the inputs so that nothing is missed",
             read_limit("/proc/sys/fs/inotify/max_queued_events"));
}

/* What happened to the directory itself. 1 when the event is used up. */
static int on_dir_itself(ib_watch_t *w, dir_t *d, uint32_t mask)
{
    if (mask & IN_IGNORED) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", d->path);
        forget_tree(w, path, 0);
        return 1;
    }
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        /* Moved: its watch would go on under a name that is no longer
         * its own. A move within the tree brings it back as new. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", d->path);
        forget_tree(w, path, 1);
        return 1;
    }
    return 0;
}

static void on_event(ib_watch_t *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        overflowed(w);
        return;
    }
    dir_t *d = *dir_slot(w, ev->wd);
    if (d == NULL || on_dir_itself(w, d, ev->mask) || ev->len == 0 || ev->name[0] == '\0')
        return;
    if (ev->name[0] == '.' && !w->opts.hidden)
        return;
    if (ev->mask & IN_ISDIR) {
        char path[PATH_MAX];
        if (ev->mask & IN_MOVED_FROM) {
            if (child_path(w, d, ev->name, path) >= 0)
                forget_tree(w, path, 1);
        } else if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            add_pending(w, d, ev->name, TAKE_NEW_DIR);
        }
        return;
    }
    if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
        add_pending(w, d, ev->name, TAKE_CLOSED);
    else if (ev->mask & IN_CREATE)
        add_pending(w, d, ev->name, TAKE_CREATED);
}

/* Reads what the kernel has queued, without waiting, while there is room. */
static void read_events(ib_watch_t *w)
{
    while (w->n_pending < WATCH_PENDING_MAX) {
        ssize_t n = read(w->fd, w->buf, sizeof w->buf);
        if (n <= 0)
            return; /* EAGAIN: nothing more for now */
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const void *)(w->buf + at);
            on_event(w, ev);
            at += (ssize_t)(sizeof *ev + ev->len);
        }
    }
}

/* ---- what is handed out ---- */

/* Whether some process has path open for writing: 1 yes, 0 no, -1 when
 * the kernel will not say (a read lease is only for the file's owner or
 * a holder of CAP_LEASE). */
static int being_written(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    int rc = fcntl(fd, F_SETLEASE, F_RDLCK);
    int e = errno;
    if (rc == 0)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    close(fd);
    return rc == 0 ? 0 : e == EAGAIN ? 1 : -1;
}

/* Whether an image the scan found may go now. A file still open for
 * writing will send its close event: it waits for that. */
static int whole_enough(const ib_watch_t *w, const ib_scan_item_t *item)
{
    if (item->kind != IB_SCAN_IMAGE || w->scan_take == TAKE_CLOSED)
        return 1;
    int writing = being_written(item->path);
    /* Only created, and the kernel will not say: its close will tell. */
    return w->scan_take == TAKE_CREATED ? writing == 0 : writing != 1;
}

/* The walk in progress: 1 with an item, 0 when it is over. */
static int walk(ib_watch_t *w, ib_scan_item_t *item)
{
    for (;;) {
        int rc = ib_scan_next(w->scan, item);
        if (rc == 1 && !whole_enough(w, item))
            continue;
        if (rc == 1)
            return 1;
        ib_scan_free(w->scan);
        w->scan = NULL;
        if (w->unwatched > w->limit_said) {
            unsigned more = w->unwatched - w->limit_said;
            w->limit_said = w->unwatched;
            add_note(w, IB_SCAN_NOTE, "", "%u more director%s not watched (the same limit)", more,
                     more == 1 ? "y is" : "ies are");
        }
        return 0;
    }
}

/* Starts the walk of every input (the first, or after an overflow). */
static int scan_inputs(ib_watch_t *w)
{
    w->rescan = 0;
    w->scan = ib_scan_new(&w->opts, w->inputs, w->n_inputs);
    w->scan_take = TAKE_CLOSED;
    return w->scan != NULL ? 0 : -1;
}

/* Starts the walk of the next path that is due. 1 started, 0 none. */
static int scan_due(ib_watch_t *w)
{
    pending_t *p = next_due(w, ib_now_ms());
    if (p == NULL)
        return 0;
    w->scan = ib_scan_new_below(&w->opts, p->path, p->root_len);
    w->scan_take = p->take;
    if (w->scan == NULL)
        add_note(w, IB_SCAN_ERROR, p->path, "%s: out of memory", p->path);
    drop_pending(w, p);
    return 1;
}

int ib_watch_next(ib_watch_t *w, ib_scan_item_t *item)
{
    for (;;) {
        read_events(w);
        if (take_note(w, item))
            return 1;
        if (w->scan != NULL) {
            if (walk(w, item))
                return 1;
            continue;
        }
        if (w->rescan && scan_inputs(w) < 0) {
            add_note(w, IB_SCAN_ERROR, "", "rescanning the inputs failed: out of memory");
            continue;
        }
        if (w->scan != NULL || scan_due(w))
            continue;
        if (w->roots == 0 && w->n_pending == 0)
            return 0;
        return IB_SCAN_WAITING;
    }
}

int ib_watch_fd(const ib_watch_t *w)
{
    return w->n_pending < WATCH_PENDING_MAX ? w->fd : -1;
}

int ib_watch_due_ms(const ib_watch_t *w)
{
    int64_t now = ib_now_ms(), best = -1;
    /* In-flight paths are woken by their result, not by the clock. */
    for (const pending_t *p = w->oldest; p != NULL; p = p->newer) {
        if (w->busy(w->ctx, p->path))
            continue;
        int64_t left = due_at(p) - now;
        if (best < 0 || left < best)
            best = left < 0 ? 0 : left;
    }
    return (int)best;
}

int ib_watch_idle(const ib_watch_t *w)
{
    return w->scan == NULL && w->n_pending == 0 && w->notes == NULL && !w->rescan;
}

ib_watch_t *ib_watch_new(const ib_watch_config_t *cfg, char *err, size_t errlen)
{
    ib_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL || (w->dirs = calloc(1024, sizeof *w->dirs)) == NULL) {
        free(w);
        snprintf(err, errlen, "out of memory starting --watch");
        return NULL;
    }
    w->dir_buckets = 1024;
    w->opts = *cfg->scan;
    w->opts.entered = on_entered;
    w->opts.entered_ctx = w;
    w->inputs = cfg->inputs;
    w->n_inputs = cfg->n_inputs;
    w->busy = cfg->busy;
    w->ctx = cfg->ctx;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        if (e == EMFILE)
            snprintf(err, errlen,
                     "inotify_init1() failed: too many inotify instances "
                     "(fs.inotify.max_user_instances = %ld; raise it with sysctl)",
                     read_limit("/proc/sys/fs/inotify/max_user_instances"));
        else
            snprintf(err, errlen, "inotify_init1() failed: %s", strerror(e));
        ib_watch_free(w);
        return NULL;
    }
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGIO, &ign, &w->old_io);
    if (scan_inputs(w) < 0) {
        snprintf(err, errlen, "out of memory starting --watch");
        ib_watch_free(w);
        return NULL;
    }
    return w;
}

void ib_watch_free(ib_watch_t *w)
{
    if (w == NULL)
        return;
    while (w->oldest != NULL)
        drop_pending(w, w->oldest);
    for (size_t i = 0; i < w->dir_buckets; i++)
        for (dir_t *d = w->dirs[i], *next; d != NULL; d = next) {
            next = d->next;
            free(d);
        }
    free(w->dirs);
    for (note_t *n = w->notes, *next; n != NULL; n = next) {
        next = n->next;
        free(n);
    }
    ib_scan_free(w->scan);
    if (w->fd >= 0) {
        sigaction(SIGIO, &w->old_io, NULL);
        close(w->fd);
    }
    free(w);
}
