/*
 * Applying an op chain with libvips. Private to filters/.
 */
#ifndef IB_FILTERS_OPS_VIPS_H
#define IB_FILTERS_OPS_VIPS_H

#include <stdint.h>
#include <vips/vips.h>

#include "ops.h"

/* What a worker keeps for the ops from one image to the next: each
 * overlay decoded once, and scaled once per width asked for. */
typedef struct ib_ops_cache ib_ops_cache_t;

ib_ops_cache_t *ib_ops_cache_new(void);
void ib_ops_cache_free(ib_ops_cache_t *cache);

/* What the ops need besides the image: the worker's cache, the --font,
 * and what a text op's fields stand for (w and h are filled in here). */
typedef struct {
    ib_ops_cache_t *cache;
    const char *font; /* NULL: "sans" */
    ib_text_vars_t text;
} ib_ops_env_t;

/* Applies ops [first, chain->n) to in. Returns a new reference, or NULL
 * with the reason in libvips' error buffer. A trim that finds nothing but
 * border leaves the image and says so in the buffer, as a warning. */
VipsImage *ib_chain_apply(VipsImage *in, const ib_chain_t *chain, unsigned first,
                          ib_ops_env_t *env);

/* text with Pango markup's five special characters escaped, for
 * vips_text(); g_free() it. */
char *ib_markup_escape(const char *text);

#endif
