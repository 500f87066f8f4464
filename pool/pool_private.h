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

enum { IB_OUTPUT_NONE, IB_OUTPUT_BEGUN, IB_OUTPUT_DONE };

/* One output of the job in hand. state is stored last, so a parent that
 * sees BEGUN sees the rest whole. */
typedef struct {
    _Atomic int state;
    uint64_t dev;
    uint64_t ino;
    uint32_t info_len;
    unsigned char info[IB_POOL_OUTPUT_INFO_MAX];
    char path[PATH_MAX];
} ib_output_slot_t;

/* Each job on the queue starts with its kind (ib_pool_submit_kind); the
 * caller's bytes follow, 8-byte aligned. */
#define IB_JOB_HEADER 8

typedef struct {
    _Atomic int state;
    /* The kind of the job in hand: only kind 0 is held to the timeout. */
    _Atomic uint32_t kind;
    /* seq + 1 of the job this worker holds; 0 when none. */
    volatile uint64_t claim;
    _Atomic int64_t started_ms;
    _Atomic uint32_t guard_len;
    char guard[PATH_MAX];
    ib_output_slot_t outputs[IB_POOL_MAX_OUTPUTS];
} ib_worker_slot_t;

typedef struct {
    uint64_t seq;
    uint32_t magic;
    uint16_t part;  /* 0 .. parts - 1 */
    uint16_t parts; /* frames this result takes, 1 .. IB_RESULT_FRAMES */
} ib_frame_header_t;

#define IB_FRAME_MAGIC 0x1b1b0f0fu

struct ib_worker {
    ib_queue_t *queue;
    ib_worker_slot_t *slot;
    unsigned index;
    int fd;
    uint32_t kind; /* of the job in hand */
};

/* Forgets the outputs of the last job (worker, or parent on an empty slot). */
void ib_worker_slot_clear_outputs(ib_worker_slot_t *slot);

/* The worker's whole life; never returns. */
void ib_worker_main(const ib_pool_config_t *cfg, ib_worker_t *self) __attribute__((noreturn));

#endif
