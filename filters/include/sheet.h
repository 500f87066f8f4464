/*
 * A contact sheet: a grid of thumbnails of images on disk, each with its
 * name under it, made with libvips and written like an output (whole or
 * not at all). Runs in a worker; the parent only lists the tiles.
 */
#ifndef IB_FILTERS_SHEET_H
#define IB_FILTERS_SHEET_H

#include <stddef.h>

#include "error.h"
#include "output.h"

typedef struct {
    const char *path;  /* the image to show; NULL for an input that failed */
    const char *label; /* the name under it */
} ib_sheet_tile_t;

typedef struct {
    unsigned columns;        /* tiles across */
    unsigned tile_w, tile_h; /* each tile, its label included */
    const char *font;        /* fontconfig name; NULL: sans */
} ib_sheet_opts_t;

/*
 * The sheet of tiles[0 .. n) to dest, its format from dest's extension:
 * columns x ceil(n / columns) tiles. An image that cannot be read gets a
 * tile that says so, as a failed input does. 0, or -1 with err filled.
 */
int ib_sheet_render(const ib_sheet_tile_t *tiles, size_t n, const ib_sheet_opts_t *opts,
                    const char *dest, const ib_output_opts_t *wo, ib_error_t *err);

/* The height of a tile's label strip: none on tiles too small to read. */
unsigned ib_sheet_label_height(unsigned tile_h);

#endif
