/*
 * Process pool: N forked workers fed by the shared-memory queue, each
 * answering over its own results pipe, supervised by the parent's poll()
 * loop. The pool moves opaque jobs and results; it knows nothing of images.
 *
 * Rules:
 * - ib_pool_start() forks the workers before the caller has started any
 *   threads; the parent must stay single-threaded (replacements are forked
 *   from it too).
 * - The pool owns SIGCHLD, SIGINT and SIGTERM in the parent while it runs:
 *   their handlers set a flag and write one byte to a self-pipe. Workers
 *   ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the
 *   parent decides what a worker should do about it).
 * - A worker that dies for any reason is reaped, the job it held (if any) is
 *   reported as an IB_POOL_LOST event, the file it asked to guard is
 *   removed, and a replacement is forked while there is work left.
 */
#ifndef IB_POOL_POOL_H
#define IB_POOL_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"

/* A job's result travels as up to IB_RESULT_FRAMES frames on the worker's
 * own pipe, each with the pool's 16-byte header: only that worker writes
 * the pipe, so its frames arrive in order and never interleave with
 * another's. The parent hands the result over once the last has come; a
 * worker that dies between frames loses the job as if it had sent none.
 * Trailing frames whose payload is all zero are not sent (the parent
 * zero-fills them), so a small result costs one frame. */
#define IB_RESULT_FRAMES 4
#define IB_FRAME_PAYLOAD (IB_FRAME_SIZE - 16)
#define IB_RESULT_MAX (IB_RESULT_FRAMES * IB_FRAME_PAYLOAD)

/* How many files one job may commit, and the caller's note on each. */
#define IB_POOL_MAX_OUTPUTS 32
#define IB_POOL_OUTPUT_INFO_MAX 96

typedef struct ib_pool ib_pool_t;
typedef struct ib_worker ib_worker_t;

typedef struct {
    void *ctx;
    /* Called in every new worker after fork(), before its first job.
     * A non-zero return ends the worker (counted as a start-up failure). */
    int (*init)(void *ctx);
    /* Runs one job. result points to IB_RESULT_MAX zeroed bytes. */
    void (*run)(void *ctx, ib_worker_t *self, const void *job, size_t len, void *result);
    unsigned workers;
    unsigned queue_slots;
    size_t job_size;
    /* Recycle a worker after this many jobs; 0 never. */
    unsigned worker_jobs;
    /* Kill a worker whose job runs longer than this; 0 never. */
    unsigned timeout_ms;
    /* Keep worker i to the i-th CPU this process may use, when the
     * workers are a whole multiple of those CPUs (see pool/worker.c). */
    int pin;
} ib_pool_config_t;

typedef enum {
    IB_POOL_RESULT,    /* a worker finished a job: seq, worker, result */
    IB_POOL_LOST,      /* a worker died holding a job: seq, pid, signo/exit_status, timed_out */
    IB_POOL_INTERRUPT, /* SIGINT or SIGTERM reached the parent: signo, count */
    IB_POOL_IDLE,      /* the timeout passed with nothing to report */
    IB_POOL_DRAINED,   /* closed, every job answered, every worker gone */
    IB_POOL_FATAL,     /* the pool cannot go on: message */
} ib_pool_event_kind_t;

/* A file a dead worker's job had begun to commit (IB_POOL_LOST). */
typedef struct {
    /* The final name holds the file: it was linked or renamed into place. */
    int committed;
    const char *path;
    const void *info;
    size_t info_len;
} ib_pool_output_t;

typedef struct {
    ib_pool_event_kind_t kind;
    uint64_t seq;
    unsigned worker;
    pid_t pid;
    int signo;
    int exit_status;
    int timed_out;
    unsigned count;
    const void *result;
    /* LOST: the files the job had begun to commit, in the order it began
     * them, and how long it had run. Valid until the next ib_pool_next(). */
    const ib_pool_output_t *outputs;
    unsigned n_outputs;
    unsigned ms;
    char message[256];
} ib_pool_event_t;

/* Returns NULL with a message in err. */
ib_pool_t *ib_pool_start(const ib_pool_config_t *cfg, char *err, size_t errlen);

/* 0 queued (its sequence number in *seq), 1 the queue is full, -1 error. */
int ib_pool_submit(ib_pool_t *p, const void *job, size_t len, uint64_t *seq);

/*
 * Like ib_pool_submit(), for a job of another kind than the usual (kind 0):
 * the kind is the caller's own word, carried with the job and read in the
 * worker with ib_worker_job_kind(), so one run callback can serve several
 * sorts of work. A job of any kind but 0 is not held to timeout_ms: it is
 * the caller's own work (a summary of the batch, say), not an input that
 * may hang.
 */
int ib_pool_submit_kind(ib_pool_t *p, uint32_t kind, const void *job, size_t len, uint64_t *seq);

/* The next event; waits at most timeout_ms (< 0 forever) before IDLE. */
void ib_pool_next(ib_pool_t *p, int timeout_ms, ib_pool_event_t *ev);

/* Makes ib_pool_next() also return (IB_POOL_IDLE) as soon as fd is
 * readable or at its end, so a caller reading a slow source (a pipe) needs
 * no thread and no busy wait. -1 watches nothing again. The fd stays the
 * caller's; stop watching it at its end, or every wait ends at once. */
void ib_pool_watch(ib_pool_t *p, int fd);

/* No more jobs: workers finish what is queued, then exit. */
void ib_pool_close(ib_pool_t *p);

/* Drops the jobs still queued (none of them started) and closes the pool.
 * Their sequence numbers are [*first, *end). */
void ib_pool_cancel(ib_pool_t *p, uint64_t *first, uint64_t *end);
/* The same, but the pool stays open: a last job may still be submitted. */
void ib_pool_drop(ib_pool_t *p, uint64_t *first, uint64_t *end);

/* SIGKILLs every worker; their jobs come back as IB_POOL_LOST. */
void ib_pool_kill(ib_pool_t *p);

/* Reaps whatever is left and frees the pool. */
void ib_pool_free(ib_pool_t *p);

unsigned ib_pool_workers(const ib_pool_t *p);

/* The pid of worker i, or 0 if that slot is empty. */
pid_t ib_pool_worker_pid(const ib_pool_t *p, unsigned i);

/* In a worker: a file to remove if this worker dies; NULL clears it. */
void ib_worker_guard_file(ib_worker_t *self, const char *path);

/*
 * In a worker: output k of the current job, the file (dev, ino), is about
 * to be linked or renamed to path. Should the worker die before its
 * result is sent, the parent looks at what path holds and reports the
 * output as committed or not, with info (the caller's own description of
 * it, at most IB_POOL_OUTPUT_INFO_MAX bytes). 0, or -1 if k or len is out
 * of range.
 */
int ib_worker_output_begin(ib_worker_t *self, unsigned k, const char *path, dev_t dev, ino_t ino,
                           const void *info, size_t len);
/* In a worker: output k has its final name. */
void ib_worker_output_done(ib_worker_t *self, unsigned k);
unsigned ib_worker_index(const ib_worker_t *self);
/* In a worker: the kind of the job in hand (0 for ib_pool_submit's). */
uint32_t ib_worker_job_kind(const ib_worker_t *self);

#endif
