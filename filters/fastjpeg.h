/*
 * The JPEG fast path: decode straight through libjpeg-turbo, with the
 * largest DCT-domain shrink that still leaves enough pixels for a good
 * final resample, into a libvips image in memory. Private to filters/.
 *
 * It declines (returns NULL with *declined set) whatever it does not
 * handle exactly like the libvips loader would: CMYK/YCCK, a decoder
 * warning in strict mode, any error. The caller then takes the libvips
 * path, which reports errors in the usual words.
 */
#ifndef IB_FILTERS_FASTJPEG_H
#define IB_FILTERS_FASTJPEG_H

#include <vips/vips.h>

/*
 * Decodes path at the smallest scale whose size is at least min_w x min_h
 * (in stored orientation) times the resample margin. The image carries
 * the file's ICC profile, if any. New reference, or NULL.
 */
VipsImage *ib_fastjpeg_load(const char *path, unsigned min_w, unsigned min_h, int strict);

#endif
