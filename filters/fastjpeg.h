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

#include "fastpath.h"

/* A file's first bytes, read by ib_fastjpeg_probe() for the decode. */
typedef struct ib_fastjpeg_bytes ib_fastjpeg_bytes_t;

/*
 * Decodes path at the smallest scale whose size is at least min_w x min_h
 * (in stored orientation) times the resample margin. The image carries
 * the file's ICC profile, if any. It uses up *bytes, the probe's (NULL:
 * none), reading only the rest of the file. *shrunk (if not NULL) gets
 * the DCT shrink on each axis. The pixels come from spare (may be NULL)
 * and go back to it when the image closes. New reference, or NULL.
 */
VipsImage *ib_fastjpeg_load(const char *path, ib_fastjpeg_bytes_t **bytes, unsigned min_w,
                            unsigned min_h, int strict, ib_fastpath_spare_t *spare,
                            unsigned *shrunk);

/* What ib_fastjpeg_probe() reads from a JPEG's header. */
typedef struct {
    unsigned width, height; /* as stored */
    int orientation;        /* EXIF 1-8; 1 without one */
    double xres, yres;      /* pixels per mm, as libvips' loader sets them */
} ib_fastjpeg_header_t;

/*
 * The probe of an 8-bit grey, YCbCr or RGB JPEG, read by libjpeg-turbo
 * from fd (at any offset) instead of by libvips' loader, which costs a
 * small image about a twentieth of its time. 0, with the bytes read in
 * *bytes (ib_fastjpeg_bytes_free), or -1 to leave the file to libvips:
 * another colour space, a header warning, EXIF that libvips might read
 * otherwise (see read_exif).
 */
int ib_fastjpeg_probe(int fd, ib_fastjpeg_header_t *hdr, ib_fastjpeg_bytes_t **bytes);

void ib_fastjpeg_bytes_free(ib_fastjpeg_bytes_t *b);

#endif
