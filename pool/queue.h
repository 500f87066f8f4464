/*
 * Shared-memory bounded work queue: a ring of fixed-size job slots in one
 * MAP_SHARED anonymous mapping, created before fork() and used by the parent
 * (producer) and the workers (consumers).
 *
 * Rules:
 * - The ring is guarded by a process-shared robust mutex. A process that dies
 *   holding it leaves the ring consistent: every update is a copy followed by
 *   a single store of a 64-bit counter, so the next locker only has to call
 *   pthread_mutex_consistent().
 * - Waiting is done on futex sequence words, not pthread_cond_t: glibc's
 *   process-shared condition variable makes a signaller wait for the
 *   references of waiters in the old group, and a worker killed while waiting
 *   would block the parent's next signal forever.
 * - Every job gets a sequence number (its position in the ring's history).
 *   A consumer can record the number it takes in a word of its own, inside
 *   the lock, so that whoever reaps a dead consumer knows exactly which job
 *   it held.
 */
#ifndef IB_POOL_QUEUE_H
#define IB_POOL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ib_queue ib_queue_t;

/* Returns NULL with errno set. */
ib_queue_t *ib_queue_create(unsigned capacity, size_t slot_size);
void ib_queue_destroy(ib_queue_t *q);

/*
 * Adds a job. timeout_ms < 0 waits for room, 0 never waits.
 * Returns 0 when queued (and its sequence number in *seq if seq != NULL),
 * 1 when the queue stayed full, -1 when it is closed or the job is too big.
 */
int ib_queue_push(ib_queue_t *q, const void *job, size_t len, int timeout_ms, uint64_t *seq);

/*
 * Takes the oldest job, waiting for one. Before the job leaves the ring,
 * seq + 1 is stored in *claim (if claim != NULL), inside the lock.
 * Returns 0 with a job, 1 when the queue is closed and empty, -1 on error.
 */
int ib_queue_pop(ib_queue_t *q, void *buf, size_t cap, size_t *len, uint64_t *seq,
                 volatile uint64_t *claim);

/* No more jobs will be pushed; consumers drain what is left, then get 1. */
void ib_queue_close(ib_queue_t *q);

/*
 * Closes the queue and drops every job still on it, in one step under the
 * lock, so that no consumer can take one of them meanwhile: the dropped
 * jobs are exactly [*first, *end), none of them started. Consumers get 1.
 */
void ib_queue_cancel(ib_queue_t *q, uint64_t *first, uint64_t *end);
/* The same, but the queue stays open for jobs pushed later. */
void ib_queue_drop(ib_queue_t *q, uint64_t *first, uint64_t *end);

/* Whether the job with this sequence number has left the ring (taken by a
 * consumer or dropped by ib_queue_cancel). */
int ib_queue_taken(ib_queue_t *q, uint64_t seq);

unsigned ib_queue_length(ib_queue_t *q);
unsigned ib_queue_capacity(const ib_queue_t *q);

/*
 * Test hooks, for the dead-owner test in tests/test_queue.c only: they take
 * and release the queue's lock and do nothing else, so that a test can
 * SIGKILL a process while it holds the lock and check that the queue still
 * works. Nothing in imgbatch calls them. lock returns 0 or -1 (errno).
 */
int ib_queue_lock_for_test(ib_queue_t *q);
void ib_queue_unlock_for_test(ib_queue_t *q);

#endif
