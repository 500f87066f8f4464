/*
 * Tests for pool/queue: the shared-memory ring used between forked
 * processes. Producers and consumers here are real fork()ed children, as the
 * workers are; they report through MAP_SHARED tallies and their exit status,
 * never through cmocka (an assertion in a child would run the rest of the
 * suite in the child).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

#define N_JOBS 100000
#define N_PRODUCERS 3
#define N_CONSUMERS 3

typedef struct {
    uint64_t id;
    uint64_t check;
} job_t;

/* What the consumers saw, in memory shared with the test. */
typedef struct {
    _Atomic uint32_t seen[N_JOBS];
    _Atomic uint32_t seq_seen[N_JOBS];
    _Atomic uint32_t bad_claim;
    _Atomic uint32_t bad_job;
    volatile uint64_t claim[N_CONSUMERS];
} tally_t;

static uint64_t check_of(uint64_t id)
{
    return id * 0x9e3779b97f4a7c15ull ^ 0x5555;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void *shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

/* Waits for a child, killing it if it takes unreasonably long so that a
 * wedged queue fails the test instead of hanging the suite. */
static int wait_child(pid_t pid, int limit_ms)
{
    int64_t deadline = now_ms() + limit_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        assert_int_equal(r, 0);
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("child %d still running after %d ms", (int)pid, limit_ms);
        }
        sleep_ms(2);
    }
}

static void expect_exit(pid_t pid, int code)
{
    int status = wait_child(pid, 20000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

static void produce(ib_queue_t *q, unsigned index)
{
    for (uint64_t id = index; id < N_JOBS; id += N_PRODUCERS) {
        job_t job = {.id = id, .check = check_of(id)};
        if (ib_queue_push(q, &job, sizeof job, -1, NULL) != 0)
            _exit(1);
    }
    _exit(0);
}

static void consume(ib_queue_t *q, tally_t *t, unsigned index)
{
    for (;;) {
        job_t job;
        size_t len;
        uint64_t seq;
        int rc = ib_queue_pop(q, &job, sizeof job, &len, &seq, &t->claim[index]);
        if (rc == 1)
            _exit(0);
        if (rc < 0)
            _exit(1);
        if (t->claim[index] != seq + 1)
            atomic_fetch_add(&t->bad_claim, 1);
        if (len != sizeof job || job.id >= N_JOBS || job.check != check_of(job.id) ||
            seq >= N_JOBS) {
            atomic_fetch_add(&t->bad_job, 1);
            continue;
        }
        atomic_fetch_add(&t->seen[job.id], 1);
        atomic_fetch_add(&t->seq_seen[seq], 1);
    }
}

static pid_t fork_or_fail(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    return pid;
}

/* Many producers and consumers through a ring of 8: every job arrives once. */
static void test_many_producers_many_consumers(void **state)
{
    (void)state;
    ib_queue_t *q = ib_queue_create(8, sizeof(job_t));
    assert_non_null(q);
    tally_t *t = shared_alloc(sizeof *t);

    pid_t consumers[N_CONSUMERS], producers[N_PRODUCERS];
    for (unsigned i = 0; i < N_CONSUMERS; i++)
        if ((consumers[i] = fork_or_fail()) == 0)
            consume(q, t, i);
    for (unsigned i = 0; i < N_PRODUCERS; i++)
        if ((producers[i] = fork_or_fail()) == 0)
            produce(q, i);

    for (unsigned i = 0; i < N_PRODUCERS; i++)
        expect_exit(producers[i], 0);
    ib_queue_close(q);
    for (unsigned i = 0; i < N_CONSUMERS; i++)
        expect_exit(consumers[i], 0);

    assert_int_equal(atomic_load(&t->bad_job), 0);
    assert_int_equal(atomic_load(&t->bad_claim), 0);
    unsigned missing = 0, doubled = 0;
    for (unsigned i = 0; i < N_JOBS; i++) {
        missing += atomic_load(&t->seen[i]) == 0;
        doubled += atomic_load(&t->seen[i]) > 1;
        /* Sequence numbers are positions in the ring's history: 0..N-1. */
        assert_int_equal(atomic_load(&t->seq_seen[i]), 1);
    }
    assert_int_equal(missing, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(ib_queue_length(q), 0);
    assert_true(ib_queue_taken(q, N_JOBS - 1));
    assert_false(ib_queue_taken(q, N_JOBS));

    munmap(t, sizeof *t);
    ib_queue_destroy(q);
}

static void test_create_rejects_empty(void **state)
{
    (void)state;
    errno = 0;
    assert_null(ib_queue_create(0, 16));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(ib_queue_create(4, 0));
    assert_int_equal(errno, EINVAL);
}

/* A queue of capacity 64-bit values, or a failed test. */
static ib_queue_t *new_queue(unsigned capacity)
{
    ib_queue_t *q = ib_queue_create(capacity, sizeof(uint64_t));
    assert_non_null(q);
    return q;
}

static void push_value(ib_queue_t *q, uint64_t value, uint64_t expect_seq)
{
    uint64_t seq = 12345;
    assert_int_equal(ib_queue_push(q, &value, sizeof value, 0, &seq), 0);
    assert_int_equal(seq, expect_seq);
}

/* A queue of capacity values holding first, first + 1, ... (n of them),
 * pushed as jobs 0, 1, ... */
static ib_queue_t *queue_with(unsigned capacity, uint64_t first, unsigned n)
{
    ib_queue_t *q = new_queue(capacity);
    for (unsigned i = 0; i < n; i++)
        push_value(q, first + i, i);
    return q;
}

static void pop_value(ib_queue_t *q, uint64_t expect_value, uint64_t expect_seq)
{
    uint64_t value = 0, seq = 12345;
    volatile uint64_t claim = 0;
    size_t len = 0;
    assert_int_equal(ib_queue_pop(q, &value, sizeof value, &len, &seq, &claim), 0);
    assert_int_equal(len, sizeof value);
    assert_int_equal(value, expect_value);
    assert_int_equal(seq, expect_seq);
    /* seq + 1, so that 0 can mean "holds nothing" even for job 0. */
    assert_int_equal(claim, expect_seq + 1);
}

/* Full, closed, too big, too small: the return codes a caller branches on. */
static void test_push_pop_edges(void **state)
{
    (void)state;
    ib_queue_t *q = new_queue(2);
    assert_int_equal(ib_queue_capacity(q), 2);
    assert_int_equal(ib_queue_length(q), 0);

    push_value(q, 100, 0);
    push_value(q, 101, 1);
    assert_int_equal(ib_queue_length(q), 2);

    uint64_t v = 102;
    assert_int_equal(ib_queue_push(q, &v, sizeof v, 0, NULL), 1);
    int64_t t0 = now_ms();
    assert_int_equal(ib_queue_push(q, &v, sizeof v, 100, NULL), 1);
    int64_t waited = now_ms() - t0;
    /* The clock is read in whole milliseconds: allow for rounding. */
    assert_true(waited >= 90);
    assert_true(waited < 10000);
    assert_int_equal(ib_queue_length(q), 2);

    /* A job larger than a slot is refused whole. */
    unsigned char big[16] = {0};
    errno = 0;
    assert_int_equal(ib_queue_push(q, big, sizeof big, 0, NULL), -1);
    assert_int_equal(errno, EMSGSIZE);

    assert_false(ib_queue_taken(q, 0));
    pop_value(q, 100, 0);
    assert_true(ib_queue_taken(q, 0));
    assert_false(ib_queue_taken(q, 1));
    assert_int_equal(ib_queue_length(q), 1);

    /* A buffer too small for the job leaves it on the ring. */
    unsigned char small[4];
    size_t len;
    errno = 0;
    assert_int_equal(ib_queue_pop(q, small, sizeof small, &len, NULL, NULL), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(ib_queue_length(q), 1);
    assert_false(ib_queue_taken(q, 1));

    /* Room again, and the ring wraps around. */
    push_value(q, 102, 2);
    ib_queue_close(q);

    errno = 0;
    assert_int_equal(ib_queue_push(q, &v, sizeof v, 0, NULL), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(ib_queue_push(q, &v, sizeof v, -1, NULL), -1);

    /* Closed is not empty: what was queued still comes out, in order. */
    pop_value(q, 101, 1);
    pop_value(q, 102, 2);
    assert_true(ib_queue_taken(q, 2));
    volatile uint64_t claim = 77;
    assert_int_equal(ib_queue_pop(q, &v, sizeof v, &len, NULL, &claim), 1);
    assert_int_equal(claim, 77);
    assert_int_equal(ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL), 1);
    ib_queue_destroy(q);
}

/* Cancel drops exactly what is queued, in one step, and wakes consumers. */
static void test_cancel_drops_queued(void **state)
{
    (void)state;
    ib_queue_t *q = queue_with(4, 50, 3);
    pop_value(q, 50, 0);

    uint64_t first = 99, end = 99;
    ib_queue_cancel(q, &first, &end);
    assert_int_equal(first, 1);
    assert_int_equal(end, 3);
    assert_int_equal(ib_queue_length(q), 0);
    /* Dropped jobs have left the ring; nothing after them existed. */
    assert_true(ib_queue_taken(q, 2));
    assert_false(ib_queue_taken(q, 3));
    uint64_t v = 53;
    size_t len;
    assert_int_equal(ib_queue_push(q, &v, sizeof v, 0, NULL), -1);
    assert_int_equal(ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL), 1);

    /* Nothing queued: an empty range. A consumer waiting in another
     * process is woken and told the queue is done. */
    ib_queue_destroy(q);
    q = new_queue(4);
    pid_t pid = fork_or_fail();
    if (pid == 0) {
        _exit(ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL));
    }
    sleep_ms(20);
    ib_queue_cancel(q, &first, &end);
    assert_int_equal(first, end);
    expect_exit(pid, 1);
    ib_queue_destroy(q);
}

/* Drop removes what is queued as cancel does, but the queue stays open:
 * a job pushed afterwards is handed out (a watcher's last job). */
static void test_drop_keeps_the_queue_open(void **state)
{
    (void)state;
    ib_queue_t *q = queue_with(4, 50, 3);
    uint64_t first = 99, end = 99, v = 60, seq = 0;
    size_t len;
    ib_queue_drop(q, &first, &end);
    assert_int_equal(first, 0);
    assert_int_equal(end, 3);
    assert_int_equal(ib_queue_length(q), 0);
    assert_int_equal(ib_queue_push(q, &v, sizeof v, 0, &seq), 0);
    assert_int_equal(seq, 3);
    pop_value(q, 60, 3);
    ib_queue_close(q);
    assert_int_equal(ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL), 1);
    ib_queue_destroy(q);
}

/* A producer blocked on a full ring is woken by a consumer in another process. */
static void test_push_waits_for_room(void **state)
{
    (void)state;
    ib_queue_t *q = queue_with(2, 1, 2);

    pid_t pid = fork_or_fail();
    if (pid == 0) {
        uint64_t v;
        size_t len;
        sleep_ms(50);
        _exit(ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL) == 0 && v == 1 ? 0 : 1);
    }
    uint64_t v = 3, seq = 0;
    assert_int_equal(ib_queue_push(q, &v, sizeof v, -1, &seq), 0);
    assert_int_equal(seq, 2);
    expect_exit(pid, 0);
    pop_value(q, 2, 1);
    pop_value(q, 3, 2);
    ib_queue_destroy(q);
}

/* A consumer blocked on an empty ring gets a job pushed by another process,
 * and consumers blocked when the queue is closed return 1. */
static void test_pop_waits_and_close_wakes(void **state)
{
    (void)state;
    ib_queue_t *q = new_queue(4);

    pid_t pids[3];
    for (unsigned i = 0; i < 3; i++) {
        if ((pids[i] = fork_or_fail()) == 0) {
            uint64_t v;
            size_t len;
            int rc = ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL);
            /* 42 for the job, 1 for "closed and empty". */
            _exit(rc == 0 ? (int)v : rc == 1 ? 1 : 2);
        }
    }
    sleep_ms(50);
    push_value(q, 42, 0);

    /* Exactly one of the three gets the job; the others are still waiting. */
    int got = -1;
    int64_t deadline = now_ms() + 10000;
    while (got < 0 && now_ms() < deadline) {
        for (unsigned i = 0; i < 3 && got < 0; i++) {
            int status;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 42);
                got = (int)i;
            }
        }
        sleep_ms(2);
    }
    assert_true(got >= 0);

    ib_queue_close(q);
    for (unsigned i = 0; i < 3; i++)
        if ((int)i != got)
            expect_exit(pids[i], 1);
    ib_queue_destroy(q);
}

/* Forks a child that does hold(q, arg), which must return 0, says so and
 * waits to be killed; returns its pid once it has said so. */
static pid_t fork_holder(ib_queue_t *q, int (*hold)(ib_queue_t *q, void *arg), void *arg)
{
    int ready[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = fork_or_fail();
    if (pid == 0) {
        close(ready[0]);
        if (hold(q, arg) != 0 || write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    return pid;
}

/* Takes one job, its claim in the shared word at claim. */
static int take_one(ib_queue_t *q, void *claim)
{
    uint64_t v;
    size_t len;
    return ib_queue_pop(q, &v, sizeof v, &len, NULL, claim);
}

/* Takes the queue's lock and keeps it. */
static int take_lock(ib_queue_t *q, void *unused)
{
    (void)unused;
    return ib_queue_lock_for_test(q) < 0 ? -1 : 0;
}

/* The claim word of a consumer killed right after taking a job names that job. */
static void test_claim_of_killed_consumer(void **state)
{
    (void)state;
    ib_queue_t *q = queue_with(4, 10, 3);
    volatile uint64_t *claim = shared_alloc(sizeof *claim);
    pop_value(q, 10, 0);

    pid_t pid = fork_holder(q, take_one, (void *)claim);
    kill(pid, SIGKILL);
    int status = wait_child(pid, 10000);
    assert_true(WIFSIGNALED(status));

    /* A reaper sees: job 1 was taken, and this consumer held it. */
    assert_int_equal(*claim, 2);
    assert_true(ib_queue_taken(q, *claim - 1));
    assert_false(ib_queue_taken(q, 2));
    pop_value(q, 12, 2);
    munmap((void *)claim, sizeof *claim);
    ib_queue_destroy(q);
}

/* A process SIGKILLed while it holds the lock must not wedge the queue:
 * the next locker (here a consumer already waiting for the lock, then the
 * test itself) recovers it, and no job is lost. */
static void test_lock_owner_killed(void **state)
{
    (void)state;
    ib_queue_t *q = queue_with(8, 20, 3);

    pid_t holder = fork_holder(q, take_lock, NULL);
    pid_t waiter = fork_or_fail();
    if (waiter == 0) {
        uint64_t v;
        size_t len;
        int rc = ib_queue_pop(q, &v, sizeof v, &len, NULL, NULL);
        _exit(rc == 0 ? (int)v : 1);
    }
    /* Give the waiter time to block on the lock; the test holds either way. */
    sleep_ms(50);
    kill(holder, SIGKILL);
    int status = wait_child(holder, 10000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    expect_exit(waiter, 20);

    pop_value(q, 21, 1);
    push_value(q, 23, 3);
    pop_value(q, 22, 2);
    pop_value(q, 23, 3);

    /* Again, with nobody waiting: the test process is the next locker. */
    for (int round = 0; round < 2; round++) {
        holder = fork_holder(q, take_lock, NULL);
        kill(holder, SIGKILL);
        wait_child(holder, 10000);
        push_value(q, 30 + (uint64_t)round, 4 + (uint64_t)round);
        assert_int_equal(ib_queue_length(q), 1);
        pop_value(q, 30 + (uint64_t)round, 4 + (uint64_t)round);
    }

    /* The hooks themselves: lock and unlock leave the queue usable. */
    assert_int_equal(ib_queue_lock_for_test(q), 0);
    ib_queue_unlock_for_test(q);
    push_value(q, 40, 6);
    pop_value(q, 40, 6);
    ib_queue_destroy(q);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(test_create_rejects_empty),
                 cmocka_unit_test(test_push_pop_edges),
                 cmocka_unit_test(test_cancel_drops_queued),
                 cmocka_unit_test(test_drop_keeps_the_queue_open),
                 cmocka_unit_test(test_push_waits_for_room),
                 cmocka_unit_test(test_pop_waits_and_close_wakes),
                 cmocka_unit_test(test_claim_of_killed_consumer),
                 cmocka_unit_test(test_lock_owner_killed),
                 cmocka_unit_test(test_many_producers_many_consumers),
             })
