/*
 * The few things read or changed in an EXIF block (TIFF structure, with or
 * without the "Exif\0\0" of a JPEG's APP1) by imgbatch itself: the capture
 * date for {date}, and the GPS IFD for --strip-gps. Pure functions on
 * bytes, no libvips: libvips 8.14 has no way to drop one IFD and keep the
 * rest.
 */
#ifndef IB_FILTERS_EXIF_H
#define IB_FILTERS_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* DateTimeOriginal (Exif IFD), else DateTime (IFD0), as wall-clock
 * seconds (clock.h). 0, or -1 when the block has neither, well formed. */
int ib_exif_date(const unsigned char *p, size_t n, int64_t *wall);

/* Removes the GPS IFD in place: its pointer leaves IFD0, and its entries
 * and their values are zeroed, so no reader finds a position. 1 if there
 * was one, 0 if not, -1 if the block is not one we can walk. */
int ib_exif_strip_gps(unsigned char *p, size_t n);

#endif
