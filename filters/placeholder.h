/*
 * Web placeholders for an image: its dominant colour, a BlurHash and a
 * tiny inline copy (LQIP), for a page to show while the image loads.
 * Private to filters/.
 */
#ifndef IB_FILTERS_PLACEHOLDER_H
#define IB_FILTERS_PLACEHOLDER_H

#include <stddef.h>
#include <vips/vips.h>

#include "image.h"

/* The LQIP's data: URI is always shorter than this, its NUL excluded. */
#define IB_PLACEHOLDER_LQIP_MAX 1536
/* The longest side of the LQIP, in pixels. */
#define IB_PLACEHOLDER_LQIP_SIDE 32

/* ib_placeholder_t is in image.h: app/ carries it in a job's result. */

/*
 * All three placeholders of im, which must already be upright and may have
 * any bands and format libvips' colourspace converts to sRGB (grey, 16 bits,
 * alpha). Alpha is flattened on white. An ICC profile is not applied here:
 * the caller's pipeline has done that. 0, or -1 with libvips' error buffer
 * set.
 */
int ib_placeholder_make(VipsImage *im, ib_placeholder_t *out);

/*
 * The BlurHash (Wolt's algorithm) of w x h sRGB pixels, 3 bytes each, rows
 * stride bytes apart, with cx components along x and cy along y (1-9 each).
 * Its length (4 + 2 * cx * cy), or -1 if the arguments are out of range or
 * out cannot hold the hash and its NUL.
 */
int ib_placeholder_blurhash(const unsigned char *rgb, unsigned w, unsigned h, size_t stride,
                            unsigned cx, unsigned cy, char *out, size_t cap);

/*
 * The dominant colour of w x h sRGB pixels (3 bytes each, rows stride bytes
 * apart): the mean of the most populated cell of an 8x8x8 histogram, the
 * first such cell on a tie. A solid image gives exactly its colour.
 */
void ib_placeholder_dominant(const unsigned char *rgb, unsigned w, unsigned h, size_t stride,
                             unsigned char colour[3]);

#endif
