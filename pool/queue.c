/*
 * Shared-memory bounded work queue. See queue.h for the locking rules.
 */
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

struct ib_queue {
    pthread_mutex_t lock;
    /* Bumped (and woken) whenever a job is added or the queue is closed. */
    _Atomic uint32_t added;
    /* Bumped (and woken) whenever a job is taken. */
    _Atomic uint32_t taken;
    /* Positions in the ring's history; length is tail - head. */
    uint64_t head;
    uint64_t tail;
    int closed;
    unsigned capacity;
    size_t slot_size;
    size_t map_size;
    unsigned char slots[];
};

/* The longest a waiter sleeps before looking again by itself. */
#define WAKE_CHECK_MS 500

typedef struct {
    uint32_t len;
    unsigned char data[];
} slot_t;

static size_t slot_stride(size_t slot_size)
{
    size_t stride = sizeof(slot_t) + slot_size;
    return (stride + 15) & ~(size_t)15;
}

static slot_t *slot_at(ib_queue_t *q, uint64_t pos)
{
    return (slot_t *)(q->slots + (pos % q->capacity) * slot_stride(q->slot_size));
}

static void futex_wait(_Atomic uint32_t *word, uint32_t seen, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    /* Not FUTEX_PRIVATE: the word is shared between processes. */
    syscall(SYS_futex, word, FUTEX_WAIT, seen, tsp, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    atomic_fetch_add(word, 1);
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int lock(ib_queue_t *q)
{
    int rc = pthread_mutex_lock(&q->lock);
    if (rc == EOWNERDEAD) {
        /* The dead owner's last store either happened or it did not; both
         * leave head/tail describing a valid ring. */
        pthread_mutex_consistent(&q->lock);
        rc = 0;
    }
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

static void unlock(ib_queue_t *q)
{
    pthread_mutex_unlock(&q->lock);
}

ib_queue_t *ib_queue_create(unsigned capacity, size_t slot_size)
{
    if (capacity == 0 || slot_size == 0 || slot_size > UINT32_MAX) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = sizeof(ib_queue_t) + (size_t)capacity * slot_stride(slot_size);
    ib_queue_t *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&q->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(q, size);
        errno = rc;
        return NULL;
    }
    q->capacity = capacity;
    q->slot_size = slot_size;
    q->map_size = size;
    return q;
}

void ib_queue_destroy(ib_queue_t *q)
{
    if (q == NULL)
        return;
    /* No pthread_mutex_destroy: a dead process may still be recorded as the
     * owner, and the mapping goes away with munmap anyway. */
    munmap(q, q->map_size);
}

int ib_queue_push(ib_queue_t *q, const void *job, size_t len, int timeout_ms, uint64_t *seq)
{
    if (len > q->slot_size) {
        errno = EMSGSIZE;
        return -1;
    }
    int64_t deadline = timeout_ms > 0 ? ib_now_ms() + timeout_ms : 0;
    for (;;) {
        uint32_t seen = atomic_load(&q->taken);
        if (lock(q) < 0)
            return -1;
        if (q->closed) {
            unlock(q);
            errno = EPIPE;
            return -1;
        }
        if (q->tail - q->head < q->capacity) {
            slot_t *s = slot_at(q, q->tail);
            s->len = (uint32_t)len;
            memcpy(s->data, job, len);
            if (seq != NULL)
                *seq = q->tail;
            q->tail++;
            unlock(q);
            futex_wake_all(&q->added);
            return 0;
        }
        unlock(q);
        if (timeout_ms == 0)
            return 1;
        /* Bounded like pop's wait: a consumer killed between taking a job
         * and waking us must not leave us asleep beside a free slot. */
        int wait_ms = WAKE_CHECK_MS;
        if (timeout_ms > 0) {
            int64_t left = deadline - ib_now_ms();
            if (left <= 0)
                return 1;
            if (left < wait_ms)
                wait_ms = (int)left;
        }
        futex_wait(&q->taken, seen, wait_ms);
    }
}

int ib_queue_pop(ib_queue_t *q, void *buf, size_t cap, size_t *len, uint64_t *seq,
                 volatile uint64_t *claim)
{
    for (;;) {
        uint32_t seen = atomic_load(&q->added);
        if (lock(q) < 0)
            return -1;
        if (q->tail != q->head) {
            slot_t *s = slot_at(q, q->head);
            if (s->len > cap) {
                unlock(q);
                errno = EMSGSIZE;
                return -1;
            }
            memcpy(buf, s->data, s->len);
            *len = s->len;
            if (seq != NULL)
                *seq = q->head;
            /* The claim is recorded before the job leaves the ring, so a
             * reaper never sees a job that is neither queued nor claimed.
             * The process may be killed between the two stores: the fence
             * keeps the compiler from swapping them. */
            if (claim != NULL)
                *claim = q->head + 1;
            atomic_signal_fence(memory_order_seq_cst);
            q->head++;
            unlock(q);
            futex_wake_all(&q->taken);
            return 0;
        }
        int closed = q->closed;
        unlock(q);
        if (closed)
            return 1;
        /* A bounded wait: a wake-up lost to a process that died between the
         * bump and the wake costs at most this much. */
        futex_wait(&q->added, seen, WAKE_CHECK_MS);
    }
}

void ib_queue_close(ib_queue_t *q)
{
    if (lock(q) == 0) {
        q->closed = 1;
        unlock(q);
    }
    futex_wake_all(&q->added);
    futex_wake_all(&q->taken);
}

/* The jobs still on the ring, dropped under the lock; close: and no more. */
static void drop_queued(ib_queue_t *q, uint64_t *first, uint64_t *end, int close)
{
    *first = *end = 0;
    if (lock(q) == 0) {
        q->closed |= close;
        *first = q->head;
        *end = q->tail;
        q->head = q->tail;
        unlock(q);
    }
    futex_wake_all(&q->added);
    futex_wake_all(&q->taken);
}

void ib_queue_cancel(ib_queue_t *q, uint64_t *first, uint64_t *end)
{
    drop_queued(q, first, end, 1);
}

void ib_queue_drop(ib_queue_t *q, uint64_t *first, uint64_t *end)
{
    drop_queued(q, first, end, 0);
}

int ib_queue_taken(ib_queue_t *q, uint64_t seq)
{
    if (lock(q) < 0)
        return 0;
    int taken = seq < q->head;
    unlock(q);
    return taken;
}

unsigned ib_queue_length(ib_queue_t *q)
{
    if (lock(q) < 0)
        return 0;
    unsigned n = (unsigned)(q->tail - q->head);
    unlock(q);
    return n;
}

unsigned ib_queue_capacity(const ib_queue_t *q)
{
    return q->capacity;
}

int ib_queue_lock_for_test(ib_queue_t *q)
{
    return lock(q);
}

void ib_queue_unlock_for_test(ib_queue_t *q)
{
    unlock(q);
}
