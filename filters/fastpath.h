/*
 * What the fast decoders (fastjpeg.c, fastpng.c) share. Private to
 * filters/.
 */
#ifndef IB_FILTERS_FASTPATH_H
#define IB_FILTERS_FASTPATH_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>

/* Files larger than this are left to libvips, which streams them. */
#define IB_FASTPATH_MAX_FILE ((size_t)1 << 30)

/*
 * One decode buffer a worker keeps between images. A full-size decode
 * (a JPEG shrunk by less than 2) is tens of megabytes: past glibc's
 * largest mmap threshold, so each would be a fresh mapping whose pages
 * the kernel faults in and zeroes, about 5% of a web-copy batch's CPU.
 * Kept, the next image writes over the same pages.
 *
 * Memory budget (--max-memory, enforced as RLIMIT_AS): a buffer over a
 * quarter of the budget is not kept, and ib_fastpath_spare_drop() lets
 * the caller free it before an image that will not take it, so an idle
 * buffer never takes memory from an image decoded another way.
 */
typedef struct ib_fastpath_spare ib_fastpath_spare_t;

/* budget: --max-memory in bytes, 0 for none. NULL when out of memory. */
ib_fastpath_spare_t *ib_fastpath_spare_new(uint64_t budget);
void ib_fastpath_spare_free(ib_fastpath_spare_t *spare);

/* At least len bytes: the kept buffer when it is large enough, else a
 * new one (the kept one freed first); *cap gets its size. spare may be
 * NULL. */
unsigned char *ib_fastpath_alloc(ib_fastpath_spare_t *spare, size_t len, size_t *cap);

/* Frees the kept buffer, if any. spare may be NULL. */
void ib_fastpath_spare_drop(ib_fastpath_spare_t *spare);

/* How many bytes the kept buffer holds; 0 when none. */
size_t ib_fastpath_spare_held(const ib_fastpath_spare_t *spare);

/*
 * A libvips image over pixels (8 bits, 1 to 4 bands, rows packed), which
 * it takes over: they go back to spare (may be NULL: freed) with the
 * image, or at once if it cannot be made. They must come from
 * ib_fastpath_alloc(spare, ..., &cap) or, with spare NULL, malloc(). Grey or
 * sRGB by its bands, with the ICC profile, if any, copied onto it. NULL
 * on failure.
 */
VipsImage *ib_fastpath_image(unsigned char *pixels, size_t cap, ib_fastpath_spare_t *spare,
                             unsigned width, unsigned height, unsigned bands, const void *icc,
                             size_t icc_len);

/* The EXIF orientation libvips read for im, 1-8; 1 without a valid one.
 * The probe and the fast decoders must agree on it. */
int ib_fastpath_orientation(VipsImage *im);

#endif
