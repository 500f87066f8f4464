/*
 * Tests for pool/: real forked workers running a job function defined here.
 * A job carries a number; the worker answers with its square, or, for the
 * special operations, sleeps, waits at a gate, crashes, exits or hangs, so
 * that every way a worker can end is seen from the parent's side: exactly one
 * event per job, the right one, and the batch goes on.
 *
 * Workers are children of the test process: they never call cmocka, and a
 * job that crashes on purpose first puts SIGSEGV back to SIG_DFL (cmocka and
 * AddressSanitizer catch it otherwise, and the child would not die of it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "pool.h"

#define MAX_JOBS 4096
/* Generous: a healthy run of any test here takes well under a second. */
#define LIMIT_MS 20000

typedef enum {
    OP_SQUARE,
    OP_SLEEP,       /* value: milliseconds, then square */
    OP_GATE,        /* wait until the test opens the gate, then square */
    OP_BARRIER,     /* wait until value jobs have started, then square */
    OP_SEGV,        /* die of SIGSEGV */
    OP_EXIT,        /* _exit(value) */
    OP_HANG,        /* never return */
    OP_GUARD_OK,    /* create path, guard it, finish normally */
    OP_GUARD_CRASH, /* create path, guard it, die of SIGSEGV */
    OP_GUARD_HANG,  /* create path, guard it, never return */
    OP_COMMIT,      /* write value outputs path.K, recording each, and finish */
    OP_COMMIT_SEGV, /* as OP_COMMIT, but die after value renames, records unmarked */
} op_t;

typedef struct {
    int32_t op;
    int32_t value;
    char path[128];
} job_t;

typedef struct {
    int64_t square;
    int32_t pid;
    uint32_t worker;
    int32_t cpus;      /* how many CPUs the worker may run on */
    int32_t first_cpu; /* the lowest of them */
    uint32_t kind;     /* the job's kind, as the worker saw it */
    uint32_t pad;
} result_t;

/* Shared with the workers (MAP_SHARED), reached through cfg.ctx. */
typedef struct {
    _Atomic unsigned inits;
    _Atomic unsigned started;
    _Atomic int gate;
    int init_fails;
} shared_t;

/* What the parent saw, per sequence number. */
typedef struct {
    ib_pool_t *pool;
    shared_t *shared;
    ib_pool_config_t cfg;
    uint64_t n;
    job_t jobs[MAX_JOBS];
    unsigned results[MAX_JOBS];
    result_t answer[MAX_JOBS];
    unsigned lost[MAX_JOBS];
    ib_pool_event_t lost_ev[MAX_JOBS];
    /* The pid in the dead worker's slot right after its LOST event. */
    pid_t replacement[MAX_JOBS];
    /* A LOST event's outputs: how many, which committed, their notes. */
    unsigned lost_outputs[MAX_JOBS];
    unsigned lost_committed[MAX_JOBS];
    int lost_notes_ok[MAX_JOBS];
    unsigned fatal;
    char fatal_msg[256];
    unsigned interrupts;
    int drained;
    pid_t pids[MAX_JOBS];
    unsigned pid_jobs[MAX_JOBS];
    unsigned n_pids;
} run_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void crash(void)
{
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    _exit(99);
}

static void hang(void)
{
    for (;;)
        pause();
}

static void create_and_guard(ib_worker_t *self, const char *path)
{
    ib_worker_guard_file(self, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        _exit(98);
    close(fd);
}

/* Output k of job, written as its writer would: a temporary file, recorded,
 * then renamed to its name. The note is the output's number. */
static void commit_output(ib_worker_t *self, const job_t *job, unsigned k, int mark_done)
{
    char tmp[160], path[160];
    snprintf(path, sizeof path, "%s.%u", job->path, k);
    snprintf(tmp, sizeof tmp, "%s.%u.tmp", job->path, k);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        _exit(98);
    close(fd);
    uint32_t note = 100 + k;
    if (ib_worker_output_begin(self, k, path, st.st_dev, st.st_ino, &note, sizeof note) < 0)
        _exit(96);
    if (rename(tmp, path) < 0)
        _exit(95);
    if (mark_done)
        ib_worker_output_done(self, k);
}

/* Outputs 0..value-1 written, the first value-1 of them marked done; an
 * output value begun but never renamed; then SIGSEGV. */
static void commit_and_crash(ib_worker_t *self, const job_t *job)
{
    for (int k = 0; k < job->value; k++)
        commit_output(self, job, (unsigned)k, k + 1 < job->value);
    char path[160];
    snprintf(path, sizeof path, "%s.%d", job->path, job->value);
    uint32_t note = 100 + (uint32_t)job->value;
    ib_worker_output_begin(self, (unsigned)job->value, path, 0, 0, &note, sizeof note);
    crash();
}

static int job_init(void *ctx)
{
    shared_t *sh = ctx;
    atomic_fetch_add(&sh->inits, 1);
    return sh->init_fails ? -1 : 0;
}

/* How much of the result a squaring job fills past its result_t: from
 * nothing to every frame's worth, so results of one to IB_RESULT_FRAMES
 * frames interleave across the workers' pipes. */
static size_t tail_len(const job_t *job)
{
    if (job->op != OP_SQUARE || job->value % 3 == 0)
        return 0;
    return (size_t)job->value * 977 % (IB_RESULT_MAX - sizeof(result_t));
}

static unsigned char tail_byte(const job_t *job, size_t i)
{
    return (unsigned char)((job->value + i) % 251 + 1); /* never 0 */
}

static void fill_tail(const job_t *job, unsigned char *out)
{
    for (size_t i = 0; i < tail_len(job); i++)
        out[sizeof(result_t) + i] = tail_byte(job, i);
}

/* The tail arrived whole, and zeros after it (the frames not sent). */
static void expect_tail(const job_t *job, const unsigned char *result)
{
    size_t n = tail_len(job);
    for (size_t i = 0; i < IB_RESULT_MAX - sizeof(result_t); i++)
        if (result[sizeof(result_t) + i] != (i < n ? tail_byte(job, i) : 0))
            fail_msg("job %d: result byte %zu of %zu is %u", job->value, sizeof(result_t) + i, n,
                     result[sizeof(result_t) + i]);
}

static void job_run(void *ctx, ib_worker_t *self, const void *data, size_t len, void *out)
{
    shared_t *sh = ctx;
    job_t job;
    if (len != sizeof job)
        _exit(97);
    memcpy(&job, data, sizeof job);
    atomic_fetch_add(&sh->started, 1);
    switch ((op_t)job.op) {
    case OP_SQUARE:
        break;
    case OP_SLEEP:
        sleep_ms(job.value);
        break;
    case OP_GATE:
        while (!atomic_load(&sh->gate))
            sleep_ms(1);
        break;
    case OP_BARRIER:
        while (atomic_load(&sh->started) < (unsigned)job.value)
            sleep_ms(1);
        break;
    case OP_SEGV:
        crash();
        break;
    case OP_EXIT:
        _exit(job.value);
    case OP_HANG:
        hang();
        break;
    case OP_GUARD_OK:
        create_and_guard(self, job.path);
        break;
    case OP_GUARD_CRASH:
        create_and_guard(self, job.path);
        crash();
        break;
    case OP_GUARD_HANG:
        create_and_guard(self, job.path);
        hang();
        break;
    case OP_COMMIT:
        for (int k = 0; k < job.value; k++)
            commit_output(self, &job, (unsigned)k, 1);
        break;
    case OP_COMMIT_SEGV:
        commit_and_crash(self, &job);
        break;
    }
    result_t res = {.square = (int64_t)job.value * job.value,
                    .pid = (int32_t)getpid(),
                    .worker = ib_worker_index(self),
                    .first_cpu = -1,
                    .kind = ib_worker_job_kind(self)};
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        res.cpus = CPU_COUNT(&set);
        for (int c = CPU_SETSIZE - 1; c >= 0; c--)
            if (CPU_ISSET(c, &set))
                res.first_cpu = c;
    }
    memcpy(out, &res, sizeof res);
    fill_tail(&job, out);
}

static int setup(void **state)
{
    run_t *r = test_calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    r->shared =
        mmap(NULL, sizeof *r->shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->shared == MAP_FAILED) {
        test_free(r);
        return -1;
    }
    memset(r->shared, 0, sizeof *r->shared);
    r->cfg = (ib_pool_config_t){
        .ctx = r->shared,
        .init = job_init,
        .run = job_run,
        .workers = 2,
        .job_size = sizeof(job_t),
    };
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    run_t *r = *state;
    ib_pool_free(r->pool);
    munmap(r->shared, sizeof *r->shared);
    test_free(r);
    return 0;
}

static void start(run_t *r)
{
    char err[256] = "";
    r->pool = ib_pool_start(&r->cfg, err, sizeof err);
    if (r->pool == NULL)
        fail_msg("ib_pool_start: %s", err);
}

static void count_pid(run_t *r, pid_t pid)
{
    for (unsigned i = 0; i < r->n_pids; i++) {
        if (r->pids[i] == pid) {
            r->pid_jobs[i]++;
            return;
        }
    }
    assert_true(r->n_pids < MAX_JOBS);
    r->pids[r->n_pids] = pid;
    r->pid_jobs[r->n_pids++] = 1;
}

/* A LOST event's outputs live until the next event: keep what the tests ask. */
static void note_outputs(run_t *r, const ib_pool_event_t *ev)
{
    r->lost_outputs[ev->seq] = ev->n_outputs;
    r->lost_notes_ok[ev->seq] = 1;
    for (unsigned k = 0; k < ev->n_outputs; k++) {
        uint32_t note = 0;
        const ib_pool_output_t *o = &ev->outputs[k];
        if (o->info_len == sizeof note)
            memcpy(&note, o->info, sizeof note);
        r->lost_notes_ok[ev->seq] &= note == 100 + k && strstr(o->path, "/out.") != NULL;
        if (o->committed)
            r->lost_committed[ev->seq] |= 1u << k;
    }
}

static void handle(run_t *r, const ib_pool_event_t *ev)
{
    switch (ev->kind) {
    case IB_POOL_RESULT: {
        assert_true(ev->seq < r->n);
        assert_true(ev->worker < r->cfg.workers);
        result_t res;
        memcpy(&res, ev->result, sizeof res);
        const job_t *job = &r->jobs[ev->seq];
        assert_int_equal(res.square, (int64_t)job->value * job->value);
        assert_int_equal(res.pid, ev->pid);
        assert_int_equal(res.worker, ev->worker);
        expect_tail(job, ev->result);
        r->results[ev->seq]++;
        r->answer[ev->seq] = res;
        count_pid(r, ev->pid);
        break;
    }
    case IB_POOL_LOST:
        assert_true(ev->seq < r->n);
        assert_true(ev->worker < r->cfg.workers);
        assert_true(ev->pid > 0);
        r->lost[ev->seq]++;
        r->lost_ev[ev->seq] = *ev;
        note_outputs(r, ev);
        r->replacement[ev->seq] = ib_pool_worker_pid(r->pool, ev->worker);
        break;
    case IB_POOL_FATAL:
        r->fatal++;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", ev->message);
        break;
    case IB_POOL_INTERRUPT:
        r->interrupts++;
        break;
    case IB_POOL_DRAINED:
        r->drained = 1;
        break;
    case IB_POOL_IDLE:
        break;
    }
}

static void next(run_t *r, int timeout_ms)
{
    ib_pool_event_t ev;
    ib_pool_next(r->pool, timeout_ms, &ev);
    handle(r, &ev);
}

static uint64_t answered(const run_t *r)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < r->n; i++)
        n += r->results[i] + r->lost[i];
    return n;
}

/* Queues a job, answering events while the queue is full. Returns its seq. */
static uint64_t submit(run_t *r, job_t job)
{
    assert_true(r->n < MAX_JOBS);
    r->jobs[r->n] = job;
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    for (;;) {
        uint64_t seq;
        int rc = ib_pool_submit(r->pool, &job, sizeof job, &seq);
        assert_int_not_equal(rc, -1);
        if (rc == 0) {
            /* Sequence numbers are handed out in order, from 0. */
            assert_int_equal(seq, r->n);
            return r->n++;
        }
        assert_true(ib_now_ms() < deadline);
        next(r, 20);
    }
}

static uint64_t submit_op(run_t *r, op_t op, int value)
{
    return submit(r, (job_t){.op = op, .value = value});
}

/* Answers events until every job submitted so far is answered. */
static void wait_answered(run_t *r)
{
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    while (answered(r) < r->n && r->fatal == 0) {
        assert_true(ib_now_ms() < deadline);
        next(r, 100);
    }
}

static void wait_started(run_t *r, unsigned n)
{
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    while (atomic_load(&r->shared->started) < n) {
        assert_true(ib_now_ms() < deadline);
        next(r, 5);
    }
}

/* Answers events until DRAINED; the pool must already be closed. */
static void wait_drained(run_t *r)
{
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    while (!r->drained) {
        assert_true(ib_now_ms() < deadline);
        next(r, 100);
    }
    for (unsigned i = 0; i < r->cfg.workers; i++)
        assert_int_equal(ib_pool_worker_pid(r->pool, i), 0);
}

static void finish(run_t *r)
{
    wait_answered(r);
    ib_pool_close(r->pool);
    wait_drained(r);
}

static void expect_results_except(const run_t *r, const uint64_t *skip, unsigned n_skip)
{
    for (uint64_t i = 0; i < r->n; i++) {
        int skipped = 0;
        for (unsigned k = 0; k < n_skip; k++)
            skipped |= skip[k] == i;
        if (skipped)
            continue;
        if (r->results[i] != 1 || r->lost[i] != 0)
            fail_msg("job %llu: %u results, %u lost", (unsigned long long)i, r->results[i],
                     r->lost[i]);
    }
}

static void expect_lost(const run_t *r, uint64_t seq, int signo, int exit_status, int timed_out)
{
    assert_int_equal(r->results[seq], 0);
    assert_int_equal(r->lost[seq], 1);
    const ib_pool_event_t *ev = &r->lost_ev[seq];
    assert_int_equal(ev->seq, seq);
    assert_int_equal(ev->signo, signo);
    assert_int_equal(ev->exit_status, exit_status);
    assert_int_equal(ev->timed_out, timed_out);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_start_needs_workers(void **state)
{
    run_t *r = *state;
    char err[256] = "";
    r->cfg.workers = 0;
    assert_null(ib_pool_start(&r->cfg, err, sizeof err));
    assert_true(strlen(err) > 0);
}

/* Every job answered exactly once, with its own result; then DRAINED. */
static void test_results_exactly_once(void **state)
{
    run_t *r = *state;
    r->cfg.workers = 3;
    start(r);
    assert_int_equal(ib_pool_workers(r->pool), 3);
    for (int i = 0; i < 3000; i++)
        submit_op(r, i % 50 == 0 ? OP_SLEEP : OP_SQUARE, i % 50 == 0 ? 1 : i);
    finish(r);
    expect_results_except(r, NULL, 0);
    assert_int_equal(r->fatal, 0);
    /* Workers are reused, not forked per job. */
    assert_int_equal(atomic_load(&r->shared->inits), 3);
    assert_true(r->n_pids <= 3);
    /* Closed means closed. */
    job_t job = {.op = OP_SQUARE};
    assert_int_equal(ib_pool_submit(r->pool, &job, sizeof job, NULL), -1);
}

/* A worker dying mid-job (signal or exit) costs that job alone: one LOST
 * saying how it died, a new worker in its slot, the rest completes. */
static void test_worker_dies_mid_job(void **state)
{
    run_t *r = *state;
    start(r);
    for (int i = 0; i < 40; i++)
        submit_op(r, OP_SQUARE, i);
    uint64_t segv = submit_op(r, OP_SEGV, 0);
    for (int i = 0; i < 40; i++)
        submit_op(r, OP_SQUARE, i);
    uint64_t exited = submit_op(r, OP_EXIT, 7);
    for (int i = 0; i < 40; i++)
        submit_op(r, OP_SQUARE, i);
    finish(r);

    expect_lost(r, segv, SIGSEGV, 0, 0);
    expect_lost(r, exited, 0, 7, 0);
    uint64_t skip[] = {segv, exited};
    expect_results_except(r, skip, 2);
    assert_int_equal(r->fatal, 0);
    for (unsigned k = 0; k < 2; k++) {
        pid_t dead = r->lost_ev[skip[k]].pid;
        assert_true(r->replacement[skip[k]] > 0);
        assert_int_not_equal(r->replacement[skip[k]], dead);
    }
    assert_int_equal(atomic_load(&r->shared->inits), 4);
}

/* Mostly 3, the status a worker uses when its init() fails. */
static int exit_status_of(unsigned i)
{
    return i % 4 == 3 ? 1 : 3;
}

/* Jobs that kill their worker, many in a row, are each one lost job; they
 * are not mistaken for workers failing to start, whatever the exit status. */
static void test_crashing_jobs_do_not_stop_the_pool(void **state)
{
    run_t *r = *state;
    r->cfg.workers = 1;
    start(r);
    uint64_t bad[12];
    for (unsigned i = 0; i < 12; i++)
        bad[i] = i % 4 == 0 ? submit_op(r, OP_SEGV, 0) : submit_op(r, OP_EXIT, exit_status_of(i));
    for (int i = 0; i < 5; i++)
        submit_op(r, OP_SQUARE, i);
    finish(r);
    assert_int_equal(r->fatal, 0);
    for (unsigned i = 0; i < 12; i++) {
        if (i % 4 == 0)
            expect_lost(r, bad[i], SIGSEGV, 0, 0);
        else
            expect_lost(r, bad[i], 0, exit_status_of(i), 0);
    }
    expect_results_except(r, bad, 12);
}

/* A job over the time limit is killed and reported as timed out; jobs well
 * under it are left alone. */
static void test_timeout(void **state)
{
    run_t *r = *state;
    r->cfg.timeout_ms = 1000;
    start(r);
    for (int i = 0; i < 10; i++)
        submit_op(r, OP_SLEEP, 20);
    uint64_t hung = submit_op(r, OP_HANG, 0);
    for (int i = 0; i < 10; i++)
        submit_op(r, OP_SQUARE, i);
    uint64_t hung2 = submit_op(r, OP_HANG, 0);
    for (int i = 0; i < 10; i++)
        submit_op(r, OP_SLEEP, 20);
    finish(r);

    /* The worker's own timer ends it, before the parent's backstop. */
    expect_lost(r, hung, SIGALRM, 0, 1);
    expect_lost(r, hung2, SIGALRM, 0, 1);
    assert_true(r->replacement[hung] > 0);
    assert_int_not_equal(r->replacement[hung], r->lost_ev[hung].pid);
    uint64_t skip[] = {hung, hung2};
    expect_results_except(r, skip, 2);
    assert_int_equal(r->fatal, 0);
}

/* A job of another kind reaches the worker with its kind, and is not held
 * to the timeout that ends an ordinary job taking as long. */
static void test_job_kinds(void **state)
{
    run_t *r = *state;
    r->cfg.timeout_ms = 200;
    r->cfg.workers = 1;
    start(r);
    job_t slow = {.op = OP_SLEEP, .value = 700};
    uint64_t seq;
    r->jobs[r->n] = slow;
    assert_int_equal(ib_pool_submit_kind(r->pool, 7, &slow, sizeof slow, &seq), 0);
    assert_int_equal(seq, r->n++);
    uint64_t timed = submit_op(r, OP_SLEEP, 700);
    uint64_t quick = submit_op(r, OP_SQUARE, 3);
    finish(r);
    assert_int_equal(r->results[seq], 1);
    assert_int_equal(r->answer[seq].kind, 7);
    expect_lost(r, timed, SIGALRM, 0, 1);
    assert_int_equal(r->results[quick], 1);
    assert_int_equal(r->answer[quick].kind, 0);
    /* A job larger than the pool's slots is refused, not cut. */
    unsigned char big[sizeof(job_t) + 1] = {0};
    ib_pool_free(r->pool);
    r->pool = NULL;
    r->drained = 0;
    start(r);
    assert_int_equal(ib_pool_submit_kind(r->pool, 1, big, sizeof big, &seq), -1);
    ib_pool_close(r->pool);
    wait_drained(r);
}

/* --worker-jobs: each worker process does at most that many jobs. */
static void test_recycling(void **state)
{
    run_t *r = *state;
    r->cfg.worker_jobs = 3;
    start(r);
    for (int i = 0; i < 40; i++)
        submit_op(r, OP_SQUARE, i);
    finish(r);
    expect_results_except(r, NULL, 0);
    assert_int_equal(r->fatal, 0);
    /* 40 jobs, at most 3 per process: at least 14 processes. */
    assert_true(r->n_pids >= 14);
    for (unsigned i = 0; i < r->n_pids; i++)
        assert_true(r->pid_jobs[i] <= 3);
    assert_true(atomic_load(&r->shared->inits) >= 14);
}

/* The n-th CPU this process may run on. */
static int nth_cpu(const cpu_set_t *set, unsigned n)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && n-- == 0)
            return c;
    return -1;
}

/* The CPUs this process may run on, in set; skips the test unless 2-64. */
static unsigned cpus_or_skip(cpu_set_t *set)
{
    assert_int_equal(sched_getaffinity(0, sizeof *set, set), 0);
    unsigned n = (unsigned)CPU_COUNT(set);
    if (n < 2 || n > 64) {
        ib_test_skip_loudly("pool", "pinning: %u CPUs here, the test wants 2 to 64", n);
    }
    return n;
}

/* With the pool pinning or not, one job per worker, each held until all
 * have started, so that every worker answers; the affinity each reported,
 * by worker index, in cpus[] and first[]. */
static void affinity_of_workers(run_t *r, unsigned workers, int pin, int *cpus, int *first)
{
    r->cfg.workers = workers;
    r->cfg.pin = pin;
    start(r);
    for (unsigned i = 0; i < workers; i++)
        submit_op(r, OP_BARRIER, (int)workers);
    finish(r);
    expect_results_except(r, NULL, 0);
    for (unsigned w = 0; w < workers; w++)
        cpus[w] = -1;
    for (uint64_t i = 0; i < r->n; i++) {
        const result_t *a = &r->answer[i];
        if (cpus[a->worker] >= 0)
            assert_int_equal(cpus[a->worker], a->cpus);
        cpus[a->worker] = a->cpus;
        first[a->worker] = a->first_cpu;
    }
    for (unsigned w = 0; w < workers; w++)
        assert_true(cpus[w] >= 1);
}

/* As many workers as CPUs: worker i keeps to the i-th CPU. Fewer workers,
 * or pinning off: they may run anywhere the parent may. */
static void test_workers_keep_to_a_cpu(void **state)
{
    run_t *r = *state;
    cpu_set_t set;
    unsigned n = cpus_or_skip(&set);
    int cpus[64], first[64];
    affinity_of_workers(r, n, 1, cpus, first);
    for (unsigned w = 0; w < n; w++) {
        assert_int_equal(cpus[w], 1);
        assert_int_equal(first[w], nth_cpu(&set, w));
    }
}

/* As many workers as CPUs, plus delta (-1, 0 or 1), with pinning on or
 * off as asked: every worker may run on all the CPUs. */
static void expect_workers_free(run_t *r, int delta, int pin)
{
    cpu_set_t set;
    unsigned n = cpus_or_skip(&set);
    unsigned workers = (unsigned)((int)n + delta);
    int cpus[65], first[65];
    affinity_of_workers(r, workers, pin, cpus, first);
    for (unsigned w = 0; w < workers; w++)
        assert_int_equal(cpus[w], (int)n);
}

static void test_fewer_workers_stay_free(void **state)
{
    expect_workers_free(*state, -1, 1);
}

/* Not a whole multiple of the CPUs: pinned, some CPUs would have more
 * workers than others. */
static void test_uneven_workers_stay_free(void **state)
{
    expect_workers_free(*state, 1, 1);
}

/* A mask with a gap in it ({0, 2} of three or more CPUs): worker i gets
 * the i-th CPU of the mask, not CPU i. */
static void test_pinning_follows_the_mask(void **state)
{
    run_t *r = *state;
    cpu_set_t set, gap;
    unsigned n = cpus_or_skip(&set);
    if (n < 3) {
        ib_test_skip_loudly("pool", "mask with a gap: %u CPUs here, the test wants 3", n);
    }
    CPU_ZERO(&gap);
    CPU_SET(nth_cpu(&set, 0), &gap);
    CPU_SET(nth_cpu(&set, 2), &gap);
    assert_int_equal(sched_setaffinity(0, sizeof gap, &gap), 0);
    int cpus[2], first[2];
    affinity_of_workers(r, 2, 1, cpus, first);
    assert_int_equal(sched_setaffinity(0, sizeof set, &set), 0);
    assert_int_equal(first[0], nth_cpu(&set, 0));
    assert_int_equal(first[1], nth_cpu(&set, 2));
    assert_true(cpus[0] == 1 && cpus[1] == 1);
}

static void test_pinning_can_be_turned_off(void **state)
{
    expect_workers_free(*state, 0, 0);
}

/* Workers that cannot start stop the pool with one FATAL, not a fork loop. */
static void test_init_failure_is_fatal(void **state)
{
    run_t *r = *state;
    r->shared->init_fails = 1;
    start(r);
    for (int i = 0; i < 4; i++)
        submit_op(r, OP_SQUARE, i);
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    while (r->fatal == 0) {
        assert_true(ib_now_ms() < deadline);
        next(r, 100);
    }
    assert_non_null(strstr(r->fatal_msg, "keep dying"));
    assert_non_null(strstr(r->fatal_msg, "status 3"));
    /* The pool is closed now; draining it says so once, not again. */
    job_t job = {.op = OP_SQUARE};
    assert_int_equal(ib_pool_submit(r->pool, &job, sizeof job, NULL), -1);
    wait_drained(r);
    assert_int_equal(r->fatal, 1);
    assert_int_equal(answered(r), 0);
    unsigned inits = atomic_load(&r->shared->inits);
    assert_true(inits >= 2);
    assert_true(inits <= 4 * r->cfg.workers + 4);
}

/* Cancel gives back exactly the jobs nobody started; the running one ends. */
static void test_cancel(void **state)
{
    run_t *r = *state;
    r->cfg.workers = 1;
    r->cfg.queue_slots = 8;
    start(r);
    uint64_t running = submit_op(r, OP_GATE, 5);
    wait_started(r, 1);
    for (int i = 0; i < 6; i++)
        submit_op(r, OP_SQUARE, i);
    uint64_t first = 99, end = 99;
    ib_pool_cancel(r->pool, &first, &end);
    assert_int_equal(first, running + 1);
    assert_int_equal(end, running + 7);
    atomic_store(&r->shared->gate, 1);
    wait_drained(r);
    assert_int_equal(r->results[running], 1);
    for (uint64_t s = first; s < end; s++)
        assert_int_equal(r->results[s] + r->lost[s], 0);
    assert_int_equal(atomic_load(&r->shared->started), 1);

    /* Nothing queued: an empty range. */
    ib_pool_free(r->pool);
    r->pool = NULL;
    memset(r->results, 0, sizeof r->results);
    r->n = 0;
    r->drained = 0;
    start(r);
    ib_pool_cancel(r->pool, &first, &end);
    assert_int_equal(first, end);
    wait_drained(r);
}

/* Cancel while workers are busy taking jobs: each job is either cancelled
 * or answered, never both, never neither. */
static void test_cancel_races_workers(void **state)
{
    run_t *r = *state;
    /* Many workers taking instant jobs from a long queue while it is
     * cancelled. The old job-by-job cancel failed this within a few dozen
     * rounds; a hundred keep the test short. */
    r->cfg.queue_slots = 64;
    r->cfg.workers = 4;
    for (int round = 0; round < 100; round++) {
        memset(r->results, 0, sizeof r->results);
        memset(r->lost, 0, sizeof r->lost);
        r->n = 0;
        r->drained = 0;
        start(r);
        for (unsigned i = 0; i < r->cfg.queue_slots; i++)
            submit_op(r, OP_SQUARE, (int)i);
        uint64_t first, end;
        ib_pool_cancel(r->pool, &first, &end);
        assert_true(first <= end && end <= r->n);
        wait_drained(r);
        for (uint64_t s = 0; s < r->n; s++) {
            unsigned cancelled = first <= s && s < end;
            if (r->results[s] + r->lost[s] + cancelled != 1)
                fail_msg("round %d, job %llu: %u results, %u lost, cancelled %u in [%llu, %llu)",
                         round, (unsigned long long)s, r->results[s], r->lost[s], cancelled,
                         (unsigned long long)first, (unsigned long long)end);
        }
        ib_pool_free(r->pool);
        r->pool = NULL;
    }
}

/* Kill: the jobs in progress come back LOST (SIGKILL), no worker is
 * replaced, and the pool drains. */
static void test_kill(void **state)
{
    run_t *r = *state;
    r->cfg.queue_slots = 8;
    start(r);
    uint64_t a = submit_op(r, OP_GATE, 1);
    uint64_t b = submit_op(r, OP_GATE, 2);
    for (int i = 0; i < 3; i++)
        submit_op(r, OP_SQUARE, i);
    wait_started(r, 2);
    ib_pool_kill(r->pool);
    wait_drained(r);
    expect_lost(r, a, SIGKILL, 0, 0);
    expect_lost(r, b, SIGKILL, 0, 0);
    assert_int_equal(r->replacement[a], 0);
    assert_int_equal(r->replacement[b], 0);
    for (uint64_t s = 2; s < r->n; s++)
        assert_int_equal(r->results[s], 0);
    assert_int_equal(r->fatal, 0);
    assert_int_equal(atomic_load(&r->shared->inits), 2);
}

/* A guarded file is removed when its worker dies, and kept when the job
 * finishes: a crash leaves no partial output, a success keeps its output. */
static void test_guard_file(void **state)
{
    run_t *r = *state;
    char dir[] = "/tmp/ib-test-pool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    job_t ok = {.op = OP_GUARD_OK, .value = 1};
    job_t crashed = {.op = OP_GUARD_CRASH};
    job_t hung = {.op = OP_GUARD_HANG};
    snprintf(ok.path, sizeof ok.path, "%s/ok.tmp", dir);
    snprintf(crashed.path, sizeof crashed.path, "%s/crashed.tmp", dir);
    snprintf(hung.path, sizeof hung.path, "%s/hung.tmp", dir);

    start(r);
    uint64_t s_ok = submit(r, ok);
    uint64_t s_crashed = submit(r, crashed);
    submit_op(r, OP_SQUARE, 3);
    wait_answered(r);
    expect_lost(r, s_crashed, SIGSEGV, 0, 0);
    assert_int_equal(r->results[s_ok], 1);
    assert_false(file_exists(crashed.path));
    assert_true(file_exists(ok.path));

    /* A worker still running when the pool is freed is killed and its
     * guarded file removed too. */
    submit(r, hung);
    wait_started(r, 4);
    int64_t deadline = ib_now_ms() + LIMIT_MS;
    while (!file_exists(hung.path)) {
        assert_true(ib_now_ms() < deadline);
        sleep_ms(1);
    }
    ib_pool_free(r->pool);
    r->pool = NULL;
    assert_false(file_exists(hung.path));
    assert_true(file_exists(ok.path));

    assert_int_equal(unlink(ok.path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/*
 * A worker that dies after putting outputs in place has them reported as
 * committed, whether or not it recorded that: the parent looks at what the
 * final names hold. An output begun but not in place is not committed, and
 * the next job on a worker never inherits the last one's records.
 */
static void test_outputs_of_a_dead_worker(void **state)
{
    run_t *r = *state;
    char dir[] = "/tmp/ib-test-pool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    r->cfg.workers = 1;
    start(r);
    job_t jobs[] = {{.op = OP_COMMIT_SEGV, .value = 1},
                    {.op = OP_COMMIT_SEGV, .value = 3},
                    {.op = OP_COMMIT, .value = 2},
                    {.op = OP_SEGV}};
    uint64_t seq[4];
    for (unsigned i = 0; i < 4; i++) {
        snprintf(jobs[i].path, sizeof jobs[i].path, "%s/%u/out", dir, i);
        char sub[160];
        snprintf(sub, sizeof sub, "%s/%u", dir, i);
        assert_int_equal(mkdir(sub, 0755), 0);
        seq[i] = submit(r, jobs[i]);
    }
    finish(r);
    expect_lost(r, seq[0], SIGSEGV, 0, 0);
    assert_int_equal(r->lost_outputs[seq[0]], 2);
    assert_int_equal(r->lost_committed[seq[0]], 0x1);
    assert_true(r->lost_notes_ok[seq[0]]);
    expect_lost(r, seq[1], SIGSEGV, 0, 0);
    assert_int_equal(r->lost_outputs[seq[1]], 4);
    assert_int_equal(r->lost_committed[seq[1]], 0x7);
    assert_true(r->lost_notes_ok[seq[1]]);
    assert_int_equal(r->results[seq[2]], 1);
    expect_lost(r, seq[3], SIGSEGV, 0, 0);
    assert_int_equal(r->lost_outputs[seq[3]], 0);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* SIGINT and SIGTERM reach the caller as events, counted; the pool puts
 * the caller's handlers back when freed. */
static void test_interrupt(void **state)
{
    run_t *r = *state;
    struct sigaction before;
    sigaction(SIGINT, NULL, &before);
    start(r);
    raise(SIGINT);
    ib_pool_event_t ev;
    ib_pool_next(r->pool, 1000, &ev);
    assert_int_equal(ev.kind, IB_POOL_INTERRUPT);
    assert_int_equal(ev.signo, SIGINT);
    assert_int_equal(ev.count, 1);
    raise(SIGTERM);
    ib_pool_next(r->pool, 1000, &ev);
    assert_int_equal(ev.kind, IB_POOL_INTERRUPT);
    assert_int_equal(ev.signo, SIGTERM);
    assert_int_equal(ev.count, 2);
    /* Nothing else to say: the timeout passes. */
    ib_pool_next(r->pool, 10, &ev);
    assert_int_equal(ev.kind, IB_POOL_IDLE);
    submit_op(r, OP_SQUARE, 4);
    finish(r);
    expect_results_except(r, NULL, 0);
    ib_pool_free(r->pool);
    r->pool = NULL;
    struct sigaction after;
    sigaction(SIGINT, NULL, &after);
    assert_true(after.sa_handler == before.sa_handler);
}

/* A watched fd wakes ib_pool_next() at once when it becomes readable, long
 * before its timeout; unwatched, the same fd wakes nothing. */
static void test_watched_fd_wakes_the_loop(void **state)
{
    run_t *r = *state;
    start(r);
    int p[2];
    assert_int_equal(pipe(p), 0);
    ib_pool_watch(r->pool, p[0]);
    ib_pool_event_t ev;
    int64_t t0 = ib_now_ms();
    ib_pool_next(r->pool, 200, &ev);
    assert_int_equal(ev.kind, IB_POOL_IDLE);
    assert_true(ib_now_ms() - t0 >= 150); /* nothing to read yet: the full wait */
    assert_int_equal(write(p[1], "x", 1), 1);
    t0 = ib_now_ms();
    ib_pool_next(r->pool, 10000, &ev);
    assert_int_equal(ev.kind, IB_POOL_IDLE);
    assert_true(ib_now_ms() - t0 < 5000);
    ib_pool_watch(r->pool, -1);
    t0 = ib_now_ms();
    ib_pool_next(r->pool, 200, &ev);
    assert_true(ib_now_ms() - t0 >= 150);
    close(p[0]);
    close(p[1]);
    finish(r);
}

#define POOL_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

IB_TEST_MAIN(NULL, NULL,
             {
                 POOL_TEST(test_start_needs_workers),
                 POOL_TEST(test_results_exactly_once),
                 POOL_TEST(test_worker_dies_mid_job),
                 POOL_TEST(test_crashing_jobs_do_not_stop_the_pool),
                 POOL_TEST(test_timeout),
                 POOL_TEST(test_job_kinds),
                 POOL_TEST(test_recycling),
                 POOL_TEST(test_workers_keep_to_a_cpu),
                 POOL_TEST(test_fewer_workers_stay_free),
                 POOL_TEST(test_uneven_workers_stay_free),
                 POOL_TEST(test_pinning_follows_the_mask),
                 POOL_TEST(test_pinning_can_be_turned_off),
                 POOL_TEST(test_init_failure_is_fatal),
                 POOL_TEST(test_cancel),
                 POOL_TEST(test_cancel_races_workers),
                 POOL_TEST(test_kill),
                 POOL_TEST(test_guard_file),
                 POOL_TEST(test_outputs_of_a_dead_worker),
                 POOL_TEST(test_interrupt),
                 POOL_TEST(test_watched_fd_wakes_the_loop),
             })
