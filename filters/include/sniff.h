/*
 * Is this file an image? Decided from its first bytes (magic numbers), with
 * the file name's extension as a fallback for formats that have no magic
 * (TGA, ICO), text formats (SVG) and compressed SVG (.svgz, .svg.gz).
 * Pure functions: the scanner calls them in the parent, which never
 * touches libvips.
 */
#ifndef IB_FILTERS_SNIFF_H
#define IB_FILTERS_SNIFF_H

#include <stddef.h>

/* How many leading bytes ib_sniff_magic() wants to see. */
#define IB_SNIFF_BYTES 264

/* A short format name ("jpeg", "png", ...) or NULL if no magic matched. */
const char *ib_sniff_magic(const unsigned char *buf, size_t n);

/* Whether the name ends in an extension of an image format we may load. */
int ib_sniff_image_name(const char *name);

/* Whether an ICC profile describes itself as sRGB ("sRGB IEC61966-2.1",
 * "sRGB2014", "sRGB built-in", ...): converting such an image to sRGB
 * changes nothing and costs a colour transform per image. */
int ib_icc_is_srgb(const unsigned char *icc, size_t len);

#endif
