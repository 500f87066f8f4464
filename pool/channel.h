/*
 * Results channel: fixed-size frames over a pipe, one pipe per worker.
 *
 * A frame is IB_FRAME_SIZE bytes, which is PIPE_BUF, so the kernel writes it
 * whole or not at all even if the writer dies. The reader still loops over
 * short counts (a pipe may hand a frame over in pieces), and a frame cut off
 * by end of file is an error, never half a message.
 */
#ifndef IB_POOL_CHANNEL_H
#define IB_POOL_CHANNEL_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define IB_FRAME_SIZE PIPE_BUF

/* One frame. recv returns 1 with a frame, 0 at end of file, -1 on error. */
int ib_channel_send(int fd, const void *frame);
int ib_channel_recv(int fd, void *frame);

#endif
