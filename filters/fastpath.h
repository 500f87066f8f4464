/*
 * What the fast decoders (fastjpeg.c, fastpng.c) share. Private to
 * filters/.
 */
#ifndef IB_FILTERS_FASTPATH_H
#define IB_FILTERS_FASTPATH_H

/* Whether the fast paths may be used (IMGBATCH_FAST=0 turns them off, so
 * tests and benchmarks can compare with the libvips path). */
int ib_fastpath_enabled(void);

/*
 * With IMGBATCH_DEBUG set, says on stderr that path took a fast path and
 * how much it shrank on load, so tests can tell it ran.
 */
void ib_fastpath_trace(const char *path, const char *codec, unsigned xshrink, unsigned yshrink);

#endif
