/*
 * The parent's side of the pool: forking workers, the poll() loop over the
 * results pipes and the self-pipe, reaping, timeouts and replacements.
 *
 * NOTES
 * - A worker's death is noticed by end of file on its results pipe: the
 *   parent holds only read ends, so end of file means the worker's process
 *   is gone or going. The pipe is drained first, so a result sent just
 *   before dying is never mistaken for a lost job. SIGCHLD only wakes poll().
 * - Signal handlers save errno, set a flag and write one byte; the loop does
 *   the work.
 * - A worker that keeps dying before it finishes any job (a broken library,
 *   a memory limit too small to start) stops the pool with a message
 *   instead of forking in a loop.
 */
#include "pool_private.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

_Static_assert(sizeof(ib_frame_header_t) + IB_FRAME_PAYLOAD == IB_FRAME_SIZE, "frame layout");

/* Reached by the signal handlers, so it cannot live in the pool. */
static int self_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_sigint;
static volatile sig_atomic_t got_sigterm;

typedef struct {
    pid_t pid;
    int fd;
    int timed_out;
    int64_t spawned_ms;
    unsigned done;
    uint64_t last_result; /* seq + 1 of the last result read, 0 none */
    /* The result being read, frame by frame (see pool.h). */
    unsigned char *result;
    unsigned parts_read;
    uint64_t result_seq;
} worker_t;

struct ib_pool {
    ib_pool_config_t cfg;
    ib_queue_t *queue;
    ib_worker_slot_t *slots;
    size_t slots_size;
    worker_t *w;
    pid_t parent;
    int closed;
    int killing;
    unsigned quick_deaths;
    unsigned rotate;
    unsigned interrupts;
    /* How many of the handlers' SIGINTs and SIGTERMs were handed out. */
    sig_atomic_t seen_sigint, seen_sigterm;
    /* A FATAL not yet reported: bury() may have a LOST to hand out first. */
    char fatal[256];
    unsigned char frame[IB_FRAME_SIZE];
    unsigned char *staging; /* a job with its header, on its way to the queue */
    unsigned char *results; /* each worker's result being read, IB_RESULT_MAX each */
    /* What the last LOST event's outputs point into. */
    ib_pool_output_t lost[IB_POOL_MAX_OUTPUTS];
    ib_output_slot_t lost_copy[IB_POOL_MAX_OUTPUTS];
    struct pollfd *pfd; /* the self-pipe, the workers, the watched fd */
    unsigned *pfd_worker;
    int watching; /* watch_fd is set (ib_pool_watch) */
    int watch_fd;
    struct sigaction old_chld, old_int, old_term, old_pipe;
};

static void on_signal(int signo)
{
    int saved = errno;
    if (signo == SIGINT)
        got_sigint++;
    else if (signo == SIGTERM)
        got_sigterm++;
    if (self_pipe[1] >= 0) {
        ssize_t r = write(self_pipe[1], "", 1);
        (void)r;
    }
    errno = saved;
}

static int install_handlers(ib_pool_t *p)
{
    if (pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    got_sigint = got_sigterm = 0;
    p->seen_sigint = p->seen_sigterm = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &p->old_chld);
    sigaction(SIGINT, &sa, &p->old_int);
    sigaction(SIGTERM, &sa, &p->old_term);
    /* A write to a pipe nobody reads must fail with EPIPE, not kill us. */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &p->old_pipe);
    return 0;
}

static void restore_handlers(ib_pool_t *p)
{
    sigaction(SIGCHLD, &p->old_chld, NULL);
    sigaction(SIGINT, &p->old_int, NULL);
    sigaction(SIGTERM, &p->old_term, NULL);
    sigaction(SIGPIPE, &p->old_pipe, NULL);
    close(self_pipe[0]);
    close(self_pipe[1]);
    self_pipe[0] = self_pipe[1] = -1;
}

static void child_setup(ib_pool_t *p, unsigned idx, int wfd)
{
    /* Die with the parent rather than linger on the queue. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p->parent)
        _exit(1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    /* A file-size limit (ulimit -f) must fail a write with EFBIG, which the
     * job reports, rather than kill the worker. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(self_pipe[0]);
    close(self_pipe[1]);
    for (unsigned i = 0; i < p->cfg.workers; i++)
        if (i != idx && p->w[i].fd >= 0)
            close(p->w[i].fd);
    ib_worker_t self = {.queue = p->queue, .slot = &p->slots[idx], .index = idx, .fd = wfd};
    ib_worker_main(&p->cfg, &self);
}

static int spawn(ib_pool_t *p, unsigned idx, char *err, size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe() failed while starting worker %u: %s", idx, strerror(errno));
        return -1;
    }
    ib_worker_slot_t *slot = &p->slots[idx];
    atomic_store(&slot->state, IB_WORKER_STARTING);
    slot->claim = 0;
    atomic_store(&slot->guard_len, 0);
    ib_worker_slot_clear_outputs(slot);
    /* Nothing buffered may be written twice. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork() failed while starting worker %u: %s", idx, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_setup(p, idx, fds[1]);
    }
    close(fds[1]);
    worker_t *w = &p->w[idx];
    w->pid = pid;
    w->fd = fds[0];
    w->timed_out = 0;
    w->done = 0;
    w->last_result = 0;
    w->parts_read = 0;
    w->spawned_ms = ib_now_ms();
    return 0;
}

ib_pool_t *ib_pool_start(const ib_pool_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->workers == 0 || cfg->run == NULL || cfg->job_size == 0) {
        snprintf(err, errlen, "pool needs at least one worker and a job function");
        return NULL;
    }
    ib_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory starting the pool");
        return NULL;
    }
    p->cfg = *cfg;
    if (p->cfg.queue_slots == 0)
        p->cfg.queue_slots = 2 * cfg->workers + 2;
    p->parent = getpid();
    p->w = calloc(cfg->workers, sizeof *p->w);
    p->pfd = calloc(cfg->workers + 2, sizeof *p->pfd);
    p->pfd_worker = calloc(cfg->workers + 2, sizeof *p->pfd_worker);
    p->results = calloc(cfg->workers, IB_RESULT_MAX);
    p->staging = malloc(IB_JOB_HEADER + cfg->job_size);
    p->queue = ib_queue_create(p->cfg.queue_slots, IB_JOB_HEADER + cfg->job_size);
    p->slots_size = cfg->workers * sizeof(ib_worker_slot_t);
    p->slots = mmap(NULL, p->slots_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->w == NULL || p->pfd == NULL || p->pfd_worker == NULL || p->results == NULL ||
        p->staging == NULL || p->queue == NULL || p->slots == MAP_FAILED) {
        snprintf(err, errlen, "could not set up the shared work queue: %s", strerror(errno));
        if (p->slots == MAP_FAILED)
            p->slots = NULL;
        ib_pool_free(p);
        return NULL;
    }
    for (unsigned i = 0; i < cfg->workers; i++) {
        p->w[i].fd = -1;
        p->w[i].result = p->results + (size_t)i * IB_RESULT_MAX;
    }
    if (install_handlers(p) < 0) {
        snprintf(err, errlen, "pipe() failed for the signal self-pipe: %s", strerror(errno));
        ib_pool_free(p);
        return NULL;
    }
    for (unsigned i = 0; i < cfg->workers; i++) {
        if (spawn(p, i, err, errlen) < 0) {
            ib_pool_kill(p);
            ib_pool_free(p);
            return NULL;
        }
    }
    return p;
}

int ib_pool_submit(ib_pool_t *p, const void *job, size_t len, uint64_t *seq)
{
    return ib_pool_submit_kind(p, 0, job, len, seq);
}

int ib_pool_submit_kind(ib_pool_t *p, uint32_t kind, const void *job, size_t len, uint64_t *seq)
{
    if (p->closed) {
        errno = EPIPE;
        return -1;
    }
    if (len > p->cfg.job_size) {
        errno = EMSGSIZE;
        return -1;
    }
    memset(p->staging, 0, IB_JOB_HEADER);
    memcpy(p->staging, &kind, sizeof kind);
    memcpy(p->staging + IB_JOB_HEADER, job, len);
    return ib_queue_push(p->queue, p->staging, IB_JOB_HEADER + len, 0, seq);
}

void ib_pool_close(ib_pool_t *p)
{
    p->closed = 1;
    ib_queue_close(p->queue);
}

void ib_pool_cancel(ib_pool_t *p, uint64_t *first, uint64_t *end)
{
    /* One step under the queue's lock: popping the jobs one by one would
     * race the workers, and a job a worker took between two pops would be
     * inside [first, end) and still answered. */
    p->closed = 1;
    ib_queue_cancel(p->queue, first, end);
}

void ib_pool_drop(ib_pool_t *p, uint64_t *first, uint64_t *end)
{
    ib_queue_drop(p->queue, first, end);
}

void ib_pool_kill(ib_pool_t *p)
{
    p->killing = 1;
    ib_pool_close(p);
    for (unsigned i = 0; i < p->cfg.workers; i++)
        if (p->w[i].pid > 0)
            kill(p->w[i].pid, SIGKILL);
}

unsigned ib_pool_workers(const ib_pool_t *p)
{
    return p->cfg.workers;
}

pid_t ib_pool_worker_pid(const ib_pool_t *p, unsigned i)
{
    return i < p->cfg.workers ? p->w[i].pid : 0;
}

static int work_left(ib_pool_t *p)
{
    return !p->killing && (!p->closed || ib_queue_length(p->queue) > 0);
}

static int live_workers(const ib_pool_t *p)
{
    int n = 0;
    for (unsigned i = 0; i < p->cfg.workers; i++)
        n += p->w[i].pid > 0;
    return n;
}

static int take_fatal(ib_pool_t *p, ib_pool_event_t *ev)
{
    if (p->fatal[0] == '\0')
        return 0;
    memset(ev, 0, sizeof *ev);
    ev->kind = IB_POOL_FATAL;
    snprintf(ev->message, sizeof ev->message, "%s", p->fatal);
    p->fatal[0] = '\0';
    return 1;
}

/* Whether path holds the file (dev, ino): a rename or link done. */
static int holds(const char *path, uint64_t dev, uint64_t ino)
{
    struct stat st;
    return lstat(path, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/*
 * The outputs a dead worker's job had begun, each marked committed from
 * its record and, where the worker died between the rename or link and
 * the record, from what the final name holds. Copied out of the slot, which
 * a replacement will reuse.
 */
static void collect_outputs(ib_pool_t *p, const ib_worker_slot_t *slot, ib_pool_event_t *ev)
{
    ev->n_outputs = 0;
    ev->outputs = p->lost;
    for (unsigned k = 0; k < IB_POOL_MAX_OUTPUTS; k++) {
        int state = atomic_load(&slot->outputs[k].state);
        if (state == IB_OUTPUT_NONE)
            continue;
        ib_output_slot_t *c = &p->lost_copy[ev->n_outputs];
        memcpy(c, &slot->outputs[k], sizeof *c);
        c->path[sizeof c->path - 1] = '\0';
        if (c->info_len > sizeof c->info)
            c->info_len = sizeof c->info;
        ib_pool_output_t *o = &p->lost[ev->n_outputs++];
        o->committed = state == IB_OUTPUT_DONE || holds(c->path, c->dev, c->ino);
        o->path = c->path;
        o->info = c->info;
        o->info_len = c->info_len;
    }
}

/* Worker idx's pipe reached end of file: reap it, report its job, replace it. */
static int bury(ib_pool_t *p, unsigned idx, ib_pool_event_t *ev)
{
    worker_t *w = &p->w[idx];
    ib_worker_slot_t *slot = &p->slots[idx];
    int started = atomic_load(&slot->state) != IB_WORKER_STARTING;
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(w->fd);
    w->fd = -1;

    uint32_t glen = atomic_load(&slot->guard_len);
    if (glen > 0) {
        slot->guard[glen < sizeof slot->guard ? glen : sizeof slot->guard - 1] = '\0';
        unlink(slot->guard);
        atomic_store(&slot->guard_len, 0);
    }

    int lost = 0;
    uint64_t claim = slot->claim;
    if (claim != 0 && claim != w->last_result && ib_queue_taken(p->queue, claim - 1)) {
        lost = 1;
        memset(ev, 0, sizeof *ev);
        ev->kind = IB_POOL_LOST;
        ev->seq = claim - 1;
        ev->worker = idx;
        ev->pid = w->pid;
        ev->timed_out = w->timed_out || (p->cfg.timeout_ms > 0 && WIFSIGNALED(status) &&
                                         WTERMSIG(status) == SIGALRM);
        if (WIFSIGNALED(status))
            ev->signo = WTERMSIG(status);
        else
            ev->exit_status = WEXITSTATUS(status);
        int64_t ran = ib_now_ms() - atomic_load(&slot->started_ms);
        ev->ms = ran > 0 ? (unsigned)ran : 0;
        collect_outputs(p, slot, ev);
    }
    slot->claim = 0;

    int quick = w->done == 0 && !w->timed_out && !p->killing &&
                (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) && !lost;
    /* Only a worker that never got past init() failed to start: a job may
     * end its worker with any status, IB_WORKER_INIT_FAILED included, and
     * a run of bad images must not be taken for a broken pool. */
    int init_failed = !started && WIFEXITED(status) && WEXITSTATUS(status) == IB_WORKER_INIT_FAILED;
    pid_t dead = w->pid;
    w->pid = 0;

    if (quick || init_failed)
        p->quick_deaths++;
    if (p->killing) {
        /* Stopping anyway: no replacement, and no second FATAL for the
         * workers killed because of the first. */
    } else if (p->quick_deaths > 2 * p->cfg.workers + 2) {
        if (WIFSIGNALED(status))
            snprintf(p->fatal, sizeof p->fatal,
                     "workers keep dying as they start (worker %d killed by signal %d)", (int)dead,
                     WTERMSIG(status));
        else
            snprintf(p->fatal, sizeof p->fatal,
                     "workers keep dying as they start (worker %d exited with status %d)",
                     (int)dead, WEXITSTATUS(status));
        ib_pool_kill(p);
    } else if (work_left(p) && spawn(p, idx, p->fatal, sizeof p->fatal) < 0) {
        /* Reported even when this death also lost a job (after the LOST):
         * a pool that quietly runs a worker short can end up with none,
         * waiting forever on a queue nobody takes from. */
        ib_pool_kill(p);
    }
    return lost ? 1 : take_fatal(p, ev);
}

/* A worker ends itself with SIGALRM when its job overruns; this is how much
 * later the parent kills it if that did not happen. */
#define TIMEOUT_BACKSTOP_MS 2000

static void check_timeouts(ib_pool_t *p, int64_t now, int *wait_ms)
{
    if (p->cfg.timeout_ms == 0)
        return;
    for (unsigned i = 0; i < p->cfg.workers; i++) {
        worker_t *w = &p->w[i];
        if (w->pid <= 0 || w->timed_out || atomic_load(&p->slots[i].state) != IB_WORKER_BUSY ||
            atomic_load(&p->slots[i].kind) != 0)
            continue;
        int64_t due =
            atomic_load(&p->slots[i].started_ms) + p->cfg.timeout_ms + TIMEOUT_BACKSTOP_MS;
        if (now >= due) {
            w->timed_out = 1;
            kill(w->pid, SIGKILL);
        } else if (*wait_ms < 0 || due - now < *wait_ms) {
            *wait_ms = (int)(due - now);
        }
    }
}

static int take_signals(ib_pool_t *p, ib_pool_event_t *ev)
{
    char buf[64];
    while (read(self_pipe[0], buf, sizeof buf) > 0)
        ;
    /* Only the handler writes the counts: a decrement here could race an
     * increment there and lose a signal. */
    int signo = 0;
    if (got_sigint != p->seen_sigint) {
        p->seen_sigint++;
        signo = SIGINT;
    } else if (got_sigterm != p->seen_sigterm) {
        p->seen_sigterm++;
        signo = SIGTERM;
    }
    if (signo == 0)
        return 0;
    memset(ev, 0, sizeof *ev);
    ev->kind = IB_POOL_INTERRUPT;
    ev->signo = signo;
    return 1;
}

void ib_pool_watch(ib_pool_t *p, int fd)
{
    p->watching = fd >= 0;
    p->watch_fd = fd;
}

/* Adds the watched fd after the workers' (so the loop over those stays as
 * it is); its index, or 0 for none. */
static nfds_t add_watched(ib_pool_t *p, nfds_t *n)
{
    if (!p->watching)
        return 0;
    p->pfd[*n].fd = p->watch_fd;
    p->pfd[*n].events = POLLIN;
    p->pfd[*n].revents = 0;
    return (*n)++;
}

/* The self-pipe, then each worker's result pipe; the number of entries. */
static nfds_t poll_workers(ib_pool_t *p)
{
    nfds_t n = 0;
    p->pfd[n].fd = self_pipe[0];
    p->pfd[n].events = POLLIN;
    n++;
    for (unsigned k = 0; k < p->cfg.workers; k++) {
        /* Rotate the start so one busy worker cannot starve the rest. */
        unsigned i = (p->rotate + k) % p->cfg.workers;
        if (p->w[i].fd < 0)
            continue;
        p->pfd[n].fd = p->w[i].fd;
        p->pfd[n].events = POLLIN;
        p->pfd_worker[n] = i;
        n++;
    }
    p->rotate++;
    return n;
}

/* Adds one frame to the result w is sending: 1 when it completes the
 * result, 0 when more are to come, -1 for a frame out of order or
 * garbled (the worker cannot be trusted then). */
static int take_part(worker_t *w, const ib_frame_header_t *hdr, const unsigned char *payload)
{
    if (hdr->magic != IB_FRAME_MAGIC || hdr->parts < 1 || hdr->parts > IB_RESULT_FRAMES ||
        hdr->part != w->parts_read || (hdr->part > 0 && hdr->seq != w->result_seq))
        return -1;
    memcpy(w->result + hdr->part * IB_FRAME_PAYLOAD, payload, IB_FRAME_PAYLOAD);
    w->result_seq = hdr->seq;
    if (++w->parts_read < hdr->parts)
        return 0;
    memset(w->result + hdr->parts * IB_FRAME_PAYLOAD, 0,
           (size_t)(IB_RESULT_FRAMES - hdr->parts) * IB_FRAME_PAYLOAD);
    w->parts_read = 0;
    return 1;
}

/* Reads what worker i's pipe holds: a result, or its end. 1 with an event
 * in ev. */
static int read_worker(ib_pool_t *p, unsigned i, ib_pool_event_t *ev)
{
    worker_t *w = &p->w[i];
    int got = ib_channel_recv(w->fd, p->frame);
    ib_frame_header_t hdr;
    memcpy(&hdr, p->frame, sizeof hdr);
    int part = got == 1 ? take_part(w, &hdr, p->frame + sizeof hdr) : -1;
    if (part == 0)
        return 0; /* more frames of this result to come */
    if (part == 1) {
        w->last_result = hdr.seq + 1;
        w->done++;
        p->quick_deaths = 0;
        memset(ev, 0, sizeof *ev);
        ev->kind = IB_POOL_RESULT;
        ev->seq = hdr.seq;
        ev->worker = i;
        ev->pid = w->pid;
        ev->result = w->result;
        return 1;
    }
    /* End of file, a read error or a garbled frame: the worker is gone or
     * cannot be trusted; make sure it is gone. */
    if (got != 0)
        kill(w->pid, SIGKILL);
    return bury(p, i, ev);
}

void ib_pool_next(ib_pool_t *p, int timeout_ms, ib_pool_event_t *ev)
{
    int64_t deadline = timeout_ms >= 0 ? ib_now_ms() + timeout_ms : -1;
    for (;;) {
        if (take_fatal(p, ev))
            return;
        if (take_signals(p, ev)) {
            ev->count = ++p->interrupts;
            return;
        }
        if (p->closed && live_workers(p) == 0) {
            memset(ev, 0, sizeof *ev);
            ev->kind = IB_POOL_DRAINED;
            return;
        }
        int64_t now = ib_now_ms();
        int wait_ms = deadline < 0 ? -1 : (int)(deadline > now ? deadline - now : 0);
        check_timeouts(p, now, &wait_ms);

        nfds_t n = poll_workers(p), workers_end = n, watched = add_watched(p, &n);
        int rc = poll(p->pfd, n, wait_ms);
        if (rc < 0 && errno != EINTR) {
            memset(ev, 0, sizeof *ev);
            ev->kind = IB_POOL_FATAL;
            snprintf(ev->message, sizeof ev->message, "poll() failed: %s", strerror(errno));
            return;
        }
        for (nfds_t k = 1; rc > 0 && k < workers_end; k++) {
            if ((p->pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                continue;
            if (read_worker(p, p->pfd_worker[k], ev))
                return;
        }
        if (rc > 0 && watched != 0 && (p->pfd[watched].revents & (POLLIN | POLLHUP | POLLERR))) {
            memset(ev, 0, sizeof *ev);
            ev->kind = IB_POOL_IDLE;
            return;
        }
        if (rc == 0 && deadline >= 0 && ib_now_ms() >= deadline) {
            memset(ev, 0, sizeof *ev);
            ev->kind = IB_POOL_IDLE;
            return;
        }
    }
}

void ib_pool_free(ib_pool_t *p)
{
    if (p == NULL)
        return;
    if (p->w != NULL) {
        for (unsigned i = 0; i < p->cfg.workers; i++) {
            if (p->w[i].pid > 0) {
                kill(p->w[i].pid, SIGKILL);
                while (waitpid(p->w[i].pid, NULL, 0) < 0 && errno == EINTR)
                    ;
                ib_worker_slot_t *slot = &p->slots[i];
                uint32_t glen = atomic_load(&slot->guard_len);
                if (glen > 0 && glen < sizeof slot->guard) {
                    slot->guard[glen] = '\0';
                    unlink(slot->guard);
                }
            }
            if (p->w[i].fd >= 0)
                close(p->w[i].fd);
        }
    }
    if (self_pipe[0] >= 0)
        restore_handlers(p);
    ib_queue_destroy(p->queue);
    if (p->slots != NULL)
        munmap(p->slots, p->slots_size);
    free(p->w);
    free(p->results);
    free(p->staging);
    free(p->pfd);
    free(p->pfd_worker);
    free(p);
}
