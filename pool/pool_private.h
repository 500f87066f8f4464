/*
 * What the supervisor (parent) and the worker loop (child) share: the
 * worker table in shared memory and the frame header. Not for app/.
 *
 * A worker writes only its own slot; the parent reads slots and writes a
 * slot only while no live process owns it.
 */
#ifndef IB_POOL_PRIVATE_H
#define IB_POOL_PRIVATE_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool.h"
#include "queue.h"

enum { IB_WORKER_STARTING, IB_WORKER_IDLE, IB_WORKER_BUSY };

/* Exit code of a worker whose init() failed. */
#define IB_WORKER_INIT_FAILED 3

typedef struct {
    _Atomic int state;
    /* seq + 1 of the job this worker holds; 0 when none. */
    volatile uint64_t claim;
    _Atomic int64_t started_ms;
    _Atomic uint32_t guard_len;
    char guard[PATH_MAX];
} ib_worker_slot_t;

typedef struct {
    uint64_t seq;
    uint32_t magic;
    uint32_t pad;
} ib_frame_header_t;

#define IB_FRAME_MAGIC 0x1b1b0f0fu

struct ib_worker {
    ib_queue_t *queue;
    ib_worker_slot_t *slot;
    unsigned index;
    int fd;
};

/* The worker's whole life; never returns. */
void ib_worker_main(const ib_pool_config_t *cfg, ib_worker_t *self) __attribute__((noreturn));

#endif
