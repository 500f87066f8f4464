/*
 * The PNG fast path: inflate with libdeflate, then unfilter each row and
 * box-shrink it by the largest whole factor that still leaves enough
 * pixels for a good final resample, into a libvips image in memory.
 * Private to filters/.
 *
 * It declines (returns NULL) what it does not handle like the libvips
 * loader: 16-bit samples, interlaced files, anything damaged or odd (it
 * is stricter than libvips' strict mode, so lenient runs lose nothing).
 * The caller then takes the libvips path, which reports errors in the
 * usual words.
 */
#ifndef IB_FILTERS_FASTPNG_H
#define IB_FILTERS_FASTPNG_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>

/*
 * What a worker keeps from one PNG to the next: the inflater and the
 * inflate buffer, held to a memory budget (see fastpng.c, NOTES).
 */
typedef struct ib_fastpng_ctx ib_fastpng_ctx_t;

/* budget: the bytes an image may use (--max-memory), 0 for no limit. NULL
 * when out of memory. */
ib_fastpng_ctx_t *ib_fastpng_ctx_new(uint64_t budget);
void ib_fastpng_ctx_free(ib_fastpng_ctx_t *ctx);

/* The bytes ctx holds between images (the inflate buffer). */
size_t ib_fastpng_ctx_held(const ib_fastpng_ctx_t *ctx);

/*
 * Decodes path shrunk by whole factors, set in *xshrink and *yshrink, to
 * no less than twice min_w x min_h on each axis; a partial box at an edge
 * counts as a whole pixel. An alpha channel comes out unpremultiplied, as
 * the file holds it, and the pixels under it were averaged weighted by
 * their alpha. The image carries the file's ICC profile, if any. New
 * reference, or NULL.
 */
VipsImage *ib_fastpng_load(ib_fastpng_ctx_t *ctx, const char *path, unsigned min_w, unsigned min_h,
                           unsigned *xshrink, unsigned *yshrink);

/*
 * The same for a file held in memory, file[0..len), which it changes (the
 * IDAT chunks are moved together in place) but does not free.
 */
VipsImage *ib_fastpng_decode(ib_fastpng_ctx_t *ctx, unsigned char *file, size_t len, unsigned min_w,
                             unsigned min_h, unsigned *xshrink, unsigned *yshrink);

#endif
