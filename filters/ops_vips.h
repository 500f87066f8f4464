/*
 * Applying an op chain with libvips. Private to filters/.
 */
#ifndef IB_FILTERS_OPS_VIPS_H
#define IB_FILTERS_OPS_VIPS_H

#include <vips/vips.h>

#include "ops.h"

/* Applies ops [first, chain->n) to in. Returns a new reference, or NULL
 * with the reason in libvips' error buffer. */
VipsImage *ib_chain_apply(VipsImage *in, const ib_chain_t *chain, unsigned first);

#endif
