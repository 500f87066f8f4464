/*
 * Results channel: full reads and writes of fixed-size frames.
 */
#include "channel.h"

#include "fileio.h"

int ib_channel_send(int fd, const void *frame)
{
    return ib_full_write(fd, frame, IB_FRAME_SIZE);
}

int ib_channel_recv(int fd, void *frame)
{
    ssize_t r = ib_full_read(fd, frame, IB_FRAME_SIZE);
    if (r < 0)
        return -1;
    return r == 0 ? 0 : 1;
}
