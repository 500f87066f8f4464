/*
 * The last steps before bytes: colour conversion for the output, the
 * metadata policy, and the encoder with its options. Private to filters/.
 */
#ifndef IB_FILTERS_ENCODE_H
#define IB_FILTERS_ENCODE_H

#include <vips/vips.h>

#include "image.h"

/* Whether this extension's format stores only 8 bits per sample. */
int ib_encode_is_8bit(const char *ext);

/*
 * Brings a freshly loaded image into the colour space the ops work in:
 * CMYK always becomes sRGB; an ICC-tagged image becomes sRGB when the
 * output is 8-bit. Returns a new reference (the input itself if nothing
 * was needed), or NULL.
 */
VipsImage *ib_encode_colour(VipsImage *in, const ib_encode_t *enc);

/* Fills err with libvips' error text as one line ("path: a; b") and
 * clears it. Returns -1. */
int ib_fail_vips(ib_error_t *err, ib_error_kind_t kind, const char *path);

/* Whether the metadata in carries would all be written under this policy:
 * then the input's own bytes break no promise of the policy's. */
int ib_encode_policy_keeps_all(VipsImage *in, ib_metadata_t policy, int no_gps);

/* Encodes in into out (g_free'd data). 0, or -1 with err filled. */
int ib_encode(VipsImage *in, const ib_encode_t *enc, ib_encoded_t *out, const char *path,
              ib_error_t *err);

/* ib_encode() within enc->max_bytes, by bisection on the quality or the
 * palette's depth. in is encoded several times: it must be in memory. */
int ib_encode_within(VipsImage *in, const ib_encode_t *enc, ib_encoded_t *out, const char *path,
                     ib_error_t *err);

#endif
