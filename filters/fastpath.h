/*
 * What the fast decoders (fastjpeg.c, fastpng.c) share. Private to
 * filters/.
 */
#ifndef IB_FILTERS_FASTPATH_H
#define IB_FILTERS_FASTPATH_H

#include <stddef.h>
#include <vips/vips.h>

/* Files larger than this are left to libvips, which streams them. */
#define IB_FASTPATH_MAX_FILE ((size_t)1 << 30)

/*
 * A libvips image over pixels (8 bits, 1 to 4 bands, rows packed), which
 * it takes over: they are freed with the image, or at once if it cannot
 * be made. Grey or sRGB by its bands, with the ICC profile, if any,
 * copied onto it. NULL on failure.
 */
VipsImage *ib_fastpath_image(unsigned char *pixels, unsigned width, unsigned height, unsigned bands,
                             const void *icc, size_t icc_len);

/* The EXIF orientation libvips read for im, 1-8; 1 without a valid one.
 * The probe and the fast decoders must agree on it. */
int ib_fastpath_orientation(VipsImage *im);

#endif
