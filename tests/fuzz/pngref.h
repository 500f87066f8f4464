/*
 * The reference for fuzz_fastpng: a PNG decoded by libpng with the
 * expansions libvips' loader asks of it, and the box shrink the fast path
 * must give, computed the plain way (each output pixel over its box, the
 * edges copied outward).
 */
#ifndef IB_TESTS_FUZZ_PNGREF_H
#define IB_TESTS_FUZZ_PNGREF_H

#include <stddef.h>

typedef struct {
    unsigned w, h, bands;  /* 8-bit samples, bands 1-4 */
    unsigned char *pixels; /* NULL when libpng refused the file */
    int has_icc;           /* libpng kept an iCCP profile */
} ib_pngref_t;

/* Decodes png[0..len); ref->pixels is NULL if libpng refuses it. */
void ib_pngref_decode(const unsigned char *png, size_t len, ib_pngref_t *ref);
void ib_pngref_free(ib_pngref_t *ref);

/* ref shrunk by kx x ky as fastpng.c shrinks (see its NOTES), to free(). */
unsigned char *ib_pngref_shrink(const ib_pngref_t *ref, unsigned kx, unsigned ky);

#endif
