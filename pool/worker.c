/*
 * The worker loop, run in each forked child: take a job, run it, send the
 * result, repeat until the queue is closed and empty or the recycle count is
 * reached. Ends with _exit(): the parent's stdio buffers and atexit handlers
 * are not the child's to run.
 */
#include "pool_private.h"

#include "clock.h"

#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void ib_worker_guard_file(ib_worker_t *self, const char *path)
{
    ib_worker_slot_t *slot = self->slot;
    if (path == NULL) {
        atomic_store(&slot->guard_len, 0);
        return;
    }
    size_t n = strlen(path);
    if (n >= sizeof slot->guard)
        n = sizeof slot->guard - 1;
    /* Length last, so the parent never reads a half-written name. */
    atomic_store(&slot->guard_len, 0);
    memcpy(slot->guard, path, n);
    slot->guard[n] = '\0';
    atomic_store(&slot->guard_len, (uint32_t)n);
}

int ib_worker_output_begin(ib_worker_t *self, unsigned k, const char *path, dev_t dev, ino_t ino,
                           const void *info, size_t len)
{
    size_t n = strlen(path);
    if (k >= IB_POOL_MAX_OUTPUTS || len > IB_POOL_OUTPUT_INFO_MAX || n >= PATH_MAX)
        return -1;
    ib_output_slot_t *o = &self->slot->outputs[k];
    atomic_store(&o->state, IB_OUTPUT_NONE);
    o->dev = (uint64_t)dev;
    o->ino = (uint64_t)ino;
    o->info_len = (uint32_t)len;
    memcpy(o->info, info, len);
    memcpy(o->path, path, n + 1);
    atomic_store(&o->state, IB_OUTPUT_BEGUN);
    return 0;
}

void ib_worker_output_done(ib_worker_t *self, unsigned k)
{
    if (k < IB_POOL_MAX_OUTPUTS && atomic_load(&self->slot->outputs[k].state) == IB_OUTPUT_BEGUN)
        atomic_store(&self->slot->outputs[k].state, IB_OUTPUT_DONE);
}

void ib_worker_slot_clear_outputs(ib_worker_slot_t *slot)
{
    for (unsigned k = 0; k < IB_POOL_MAX_OUTPUTS; k++)
        atomic_store(&slot->outputs[k].state, IB_OUTPUT_NONE);
}

unsigned ib_worker_index(const ib_worker_t *self)
{
    return self->index;
}

uint32_t ib_worker_job_kind(const ib_worker_t *self)
{
    return self->kind;
}

static void set_alarm(unsigned ms)
{
    struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * When the workers are a whole multiple of the CPUs to run on (usually
 * one each), worker i keeps to the i-th of them. libvips hands every image
 * back and forth between the worker's thread and its own pipeline
 * threads; left free, the kernel wakes those on the other CPUs, where
 * other workers are busy, and each hand-off waits or moves the pixels
 * between caches. Kept together they take turns on one CPU: 7-9% less
 * wall time for 2 workers on 2 CPUs (tests/bench). Other counts stay
 * free: fewer workers, so a worker's threads can spread; an uneven
 * number, which pinned would leave some CPUs with more workers than
 * others. A mask that does not fit a cpu_set_t (over 1024 CPUs) is not
 * read, and nothing is pinned. Done before init, so the threads libvips
 * starts there inherit it.
 */
static void pin_to_cpu(unsigned index, unsigned workers)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    unsigned n = (unsigned)CPU_COUNT(&allowed), k = 0;
    if (n < 2 || workers % n != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed) && k++ == index % n) {
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
}

/* How many frames a result needs: up to its last non-zero payload. */
static unsigned result_parts(const unsigned char *result)
{
    unsigned parts = IB_RESULT_FRAMES;
    while (parts > 1) {
        const unsigned char *payload = result + (parts - 1) * IB_FRAME_PAYLOAD;
        size_t i = 0;
        while (i < IB_FRAME_PAYLOAD && payload[i] == 0)
            i++;
        if (i < IB_FRAME_PAYLOAD)
            break;
        parts--;
    }
    return parts;
}

/* Sends a result as its frames, in order (see pool.h). */
static int send_result(int fd, uint64_t seq, const unsigned char *result)
{
    unsigned char frame[IB_FRAME_SIZE];
    unsigned parts = result_parts(result);
    for (unsigned k = 0; k < parts; k++) {
        ib_frame_header_t hdr = {
            .seq = seq, .magic = IB_FRAME_MAGIC, .part = (uint16_t)k, .parts = (uint16_t)parts};
        memcpy(frame, &hdr, sizeof hdr);
        memcpy(frame + sizeof hdr, result + k * IB_FRAME_PAYLOAD, IB_FRAME_PAYLOAD);
        if (ib_channel_send(fd, frame) < 0)
            return -1;
    }
    return 0;
}

void ib_worker_main(const ib_pool_config_t *cfg, ib_worker_t *self)
{
    unsigned char *job = malloc(IB_JOB_HEADER + cfg->job_size);
    unsigned char *result = malloc(IB_RESULT_MAX);
    if (job == NULL || result == NULL)
        _exit(IB_WORKER_INIT_FAILED);
    if (cfg->pin)
        pin_to_cpu(self->index, cfg->workers);
    if (cfg->init != NULL && cfg->init(cfg->ctx) != 0)
        _exit(IB_WORKER_INIT_FAILED);

    unsigned done = 0;
    atomic_store(&self->slot->state, IB_WORKER_IDLE);
    for (;;) {
        size_t len;
        uint64_t seq;
        /* Before the claim: a record left from the last job must never be
         * read as this one's. */
        ib_worker_slot_clear_outputs(self->slot);
        int rc = ib_queue_pop(self->queue, job, IB_JOB_HEADER + cfg->job_size, &len, &seq,
                              &self->slot->claim);
        if (rc == 1)
            _exit(0);
        if (rc < 0 || len < IB_JOB_HEADER)
            _exit(1);
        memcpy(&self->kind, job, sizeof self->kind);
        atomic_store(&self->slot->kind, self->kind);
        atomic_store(&self->slot->started_ms, ib_now_ms());
        atomic_store(&self->slot->state, IB_WORKER_BUSY);

        memset(result, 0, IB_RESULT_MAX);
        /* The worker times itself: an overrun ends it with SIGALRM while
         * it still holds this job, so the parent can never blame the next
         * one. The parent's own kill is only a backstop. */
        set_alarm(self->kind == 0 ? cfg->timeout_ms : 0);
        cfg->run(cfg->ctx, self, job + IB_JOB_HEADER, len - IB_JOB_HEADER, result);
        set_alarm(0);
        atomic_store(&self->slot->guard_len, 0);

        /* The result goes out before the claim is dropped: the parent
         * matches a dead worker's claim against the last result it read. */
        if (send_result(self->fd, seq, result) < 0)
            _exit(1);
        self->slot->claim = 0;
        atomic_store(&self->slot->state, IB_WORKER_IDLE);
        if (cfg->worker_jobs > 0 && ++done >= cfg->worker_jobs)
            _exit(0);
    }
}
