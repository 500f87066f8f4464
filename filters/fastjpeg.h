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

/* What ib_fastjpeg_probe() reads from a JPEG's header. */
typedef struct {
    unsigned width, height; /* as stored */
    int orientation;        /* EXIF 1-8; 1 without one */
    double xres, yres;      /* pixels per mm, as libvips' loader sets them */
} ib_fastjpeg_header_t;

/*
 * The probe of an 8-bit grey, YCbCr or RGB JPEG, read by libjpeg-turbo
 * from fd (at any offset) instead of by libvips' loader, which costs a
 * small image about a twentieth of its time. 0, or -1 to leave the file
 * to libvips: another colour space, a header warning when strict, EXIF
 * that libvips might read otherwise (see read_exif). The bytes read are
 * kept for the next ib_fastjpeg_load() of the same path.
 */
int ib_fastjpeg_probe(int fd, const char *path, int strict, ib_fastjpeg_header_t *hdr);

/* Drops the bytes the last probe kept. */
void ib_fastjpeg_forget(void);

#endif
