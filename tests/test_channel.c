/*
 * Tests for pool/channel and the ib_full_read/ib_full_write loops under it:
 * a frame arrives whole or not at all, however the bytes are cut up on the
 * way, and a signal arriving mid-read or mid-write changes nothing.
 * Writers are fork()ed children, as workers are; they never call cmocka.
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
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "fileio.h"

static volatile sig_atomic_t alarms;
static struct sigaction saved_alrm;

static void on_alarm(int signo)
{
    (void)signo;
    alarms++;
}

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Deterministic pseudo-random bytes, different for each seed. */
static void fill_pattern(unsigned char *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
}

/* A pipe and a child to write into it: 0 in the child, which keeps only
 * the write end; the child's pid in the parent, which keeps only the read
 * end. */
static pid_t fork_writer(int fds[2])
{
    make_pipe(fds);
    pid_t pid = fork();
    assert_true(pid >= 0);
    close(fds[pid == 0 ? 0 : 1]);
    return pid;
}

static void expect_exit_zero(pid_t pid)
{
    int status;
    pid_t r;
    /* The alarm tests are still ticking here. */
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    assert_int_equal(r, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* In a child: writes n bytes in pieces of 1 to 7 bytes, pausing now and then,
 * so that the reader sees every kind of short count. */
static int write_in_pieces(int fd, const unsigned char *buf, size_t n, long pause_us)
{
    size_t off = 0;
    unsigned k = 0;
    while (off < n) {
        size_t piece = 1 + (k * 5 + 3) % 7;
        if (piece > n - off)
            piece = n - off;
        if (write(fd, buf + off, piece) != (ssize_t)piece)
            return -1;
        off += piece;
        if (++k % 64 == 0)
            sleep_us(pause_us);
    }
    return 0;
}

/* SIGALRM every millisecond, without SA_RESTART, so blocking pipe calls in
 * the test process are interrupted. */
static int alarm_setup(void **state)
{
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    alarms = 0;
    if (sigaction(SIGALRM, &sa, &saved_alrm) < 0)
        return -1;
    struct itimerval it = {.it_interval = {0, 1000}, .it_value = {0, 1000}};
    return setitimer(ITIMER_REAL, &it, NULL);
}

static int alarm_teardown(void **state)
{
    (void)state;
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    return sigaction(SIGALRM, &saved_alrm, NULL);
}

/* Frames written a few bytes at a time arrive intact, then end of file. */
static void test_frame_in_tiny_pieces(void **state)
{
    (void)state;
    static unsigned char sent[2][IB_FRAME_SIZE], got[IB_FRAME_SIZE];
    fill_pattern(sent[0], IB_FRAME_SIZE, 1);
    fill_pattern(sent[1], IB_FRAME_SIZE, 2);

    int fds[2];
    pid_t pid = fork_writer(fds);
    if (pid == 0) {
        int rc = write_in_pieces(fds[1], sent[0], IB_FRAME_SIZE, 500);
        if (rc == 0)
            rc = ib_channel_send(fds[1], sent[1]);
        _exit(rc == 0 ? 0 : 1);
    }
    assert_int_equal(ib_channel_recv(fds[0], got), 1);
    assert_memory_equal(got, sent[0], IB_FRAME_SIZE);
    assert_int_equal(ib_channel_recv(fds[0], got), 1);
    assert_memory_equal(got, sent[1], IB_FRAME_SIZE);
    assert_int_equal(ib_channel_recv(fds[0], got), 0);
    close(fds[0]);
    expect_exit_zero(pid);
}

/* End of file before a frame is a clean end; inside one it is an error. */
static void test_eof_and_truncated_frame(void **state)
{
    (void)state;
    static unsigned char buf[IB_FRAME_SIZE];
    int fds[2];

    make_pipe(fds);
    close(fds[1]);
    assert_int_equal(ib_full_read(fds[0], buf, sizeof buf), 0);
    assert_int_equal(ib_channel_recv(fds[0], buf), 0);
    close(fds[0]);

    make_pipe(fds);
    fill_pattern(buf, 100, 3);
    assert_int_equal(ib_full_write(fds[1], buf, 100), 0);
    close(fds[1]);
    errno = 0;
    assert_int_equal(ib_full_read(fds[0], buf, sizeof buf), -1);
    assert_int_equal(errno, EPROTO);
    close(fds[0]);

    /* The same through the channel, with the pieces coming from a child
     * that dies before finishing the frame. */
    pid_t pid = fork_writer(fds);
    if (pid == 0) {
        fill_pattern(buf, sizeof buf, 4);
        _exit(write_in_pieces(fds[1], buf, IB_FRAME_SIZE / 2, 200) == 0 ? 0 : 1);
    }
    errno = 0;
    assert_int_equal(ib_channel_recv(fds[0], buf), -1);
    assert_int_equal(errno, EPROTO);
    close(fds[0]);
    expect_exit_zero(pid);

    /* A read error is reported as such, not as end of file. */
    errno = 0;
    assert_int_equal(ib_channel_recv(-1, buf), -1);
    assert_int_equal(errno, EBADF);
}

/* Many writers on one pipe: PIPE_BUF frames never interleave. */
static void test_frames_from_many_writers(void **state)
{
    (void)state;
    enum { WRITERS = 4, FRAMES = 300 };
    int fds[2];
    make_pipe(fds);
    pid_t pids[WRITERS];
    for (unsigned w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            static unsigned char frame[IB_FRAME_SIZE];
            close(fds[0]);
            for (unsigned i = 0; i < FRAMES; i++) {
                memset(frame, (int)('a' + w), sizeof frame);
                memcpy(frame, &i, sizeof i);
                if (ib_channel_send(fds[1], frame) < 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    close(fds[1]);

    static unsigned char frame[IB_FRAME_SIZE];
    unsigned next[WRITERS] = {0};
    unsigned total = 0;
    int rc;
    while ((rc = ib_channel_recv(fds[0], frame)) == 1) {
        unsigned w = (unsigned)(frame[IB_FRAME_SIZE - 1] - 'a');
        assert_true(w < WRITERS);
        unsigned i;
        memcpy(&i, frame, sizeof i);
        /* Each writer's frames in its own order, none missing. */
        assert_int_equal(i, next[w]);
        next[w]++;
        for (size_t k = sizeof i; k < IB_FRAME_SIZE; k++)
            if (frame[k] != 'a' + w)
                fail_msg("frame %u of writer %u has a byte of another frame at %zu", i, w, k);
        total++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, WRITERS * FRAMES);
    close(fds[0]);
    for (unsigned w = 0; w < WRITERS; w++)
        expect_exit_zero(pids[w]);
}

/* Reads interrupted by a signal (EINTR) are retried, not reported. */
static void test_read_through_signals(void **state)
{
    (void)state;
    static unsigned char sent[IB_FRAME_SIZE], got[IB_FRAME_SIZE];
    fill_pattern(sent, IB_FRAME_SIZE, 5);
    int fds[2];

    /* Control: this set-up does make a blocking read() fail with EINTR. */
    make_pipe(fds);
    errno = 0;
    assert_int_equal(read(fds[0], got, sizeof got), -1);
    assert_int_equal(errno, EINTR);
    close(fds[0]);
    close(fds[1]);

    pid_t pid = fork_writer(fds);
    if (pid == 0) {
        /* Long pauses between pieces: the reader sits in read() while the
         * alarms arrive. */
        sleep_us(20000);
        _exit(write_in_pieces(fds[1], sent, IB_FRAME_SIZE, 5000) == 0 ? 0 : 1);
    }
    sig_atomic_t before = alarms;
    assert_int_equal(ib_channel_recv(fds[0], got), 1);
    assert_true(alarms - before >= 5);
    assert_memory_equal(got, sent, IB_FRAME_SIZE);
    assert_int_equal(ib_channel_recv(fds[0], got), 0);
    close(fds[0]);
    expect_exit_zero(pid);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Writes cut short by a signal (a short count or EINTR) are carried on. */
static void test_write_through_signals(void **state)
{
    (void)state;
    enum { TOTAL = 512 * 1024 };
    static unsigned char data[TOTAL];
    fill_pattern(data, TOTAL, 6);
    int fds[2];

    /* Control: with nobody reading, a write larger than the pipe is cut
     * short by the alarm, which is what ib_full_write must carry on from. */
    make_pipe(fds);
    ssize_t w = write(fds[1], data, TOTAL);
    assert_true(w > 0 && w < TOTAL);
    close(fds[0]);
    close(fds[1]);

    int back[2];
    make_pipe(fds);
    make_pipe(back);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static unsigned char buf[4096];
        uint64_t sum[2] = {0, 0xcbf29ce484222325ull};
        ssize_t r;
        close(fds[1]);
        close(back[0]);
        /* A slow reader keeps the pipe full, so the writer blocks often. */
        while ((r = ib_read_upto(fds[0], buf, sizeof buf)) > 0) {
            sum[0] += (uint64_t)r;
            sum[1] = fnv1a(sum[1], buf, (size_t)r);
            sleep_us(300);
        }
        _exit(r == 0 && ib_full_write(back[1], sum, sizeof sum) == 0 ? 0 : 1);
    }
    close(fds[0]);
    close(back[1]);
    sig_atomic_t before = alarms;
    assert_int_equal(ib_full_write(fds[1], data, TOTAL), 0);
    assert_true(alarms - before >= 5);
    close(fds[1]);

    uint64_t sum[2];
    assert_int_equal(ib_full_read(back[0], sum, sizeof sum), (ssize_t)sizeof sum);
    close(back[0]);
    assert_int_equal(sum[0], TOTAL);
    assert_int_equal(sum[1], fnv1a(0xcbf29ce484222325ull, data, TOTAL));
    expect_exit_zero(pid);
}

IB_TEST_MAIN(
    NULL, NULL,
    {
        cmocka_unit_test(test_frame_in_tiny_pieces),
        cmocka_unit_test(test_eof_and_truncated_frame),
        cmocka_unit_test(test_frames_from_many_writers),
        cmocka_unit_test_setup_teardown(test_read_through_signals, alarm_setup, alarm_teardown),
        cmocka_unit_test_setup_teardown(test_write_through_signals, alarm_setup, alarm_teardown),
    })
