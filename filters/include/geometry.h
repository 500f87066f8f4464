/*
 * ImageMagick -resize geometry: parsing and the output size it gives.
 * Pure functions, no libvips, so the parent and the tests can use them.
 *
 * Forms: W, xH, WxH, with the flags > (only shrink), < (only enlarge),
 * ^ (fill: the smaller side reaches the box), ! (exact, ignore aspect),
 * P% or P%xQ% (scale), AREA@ (at most AREA pixels). Rounding follows
 * ImageMagick's ParseMetaGeometry(), so sizes match `convert -resize`.
 */
#ifndef IB_FILTERS_GEOMETRY_H
#define IB_FILTERS_GEOMETRY_H

#include <stddef.h>

enum {
    IB_GEOM_WIDTH = 1 << 0,
    IB_GEOM_HEIGHT = 1 << 1,
    IB_GEOM_PERCENT = 1 << 2,
    IB_GEOM_AREA = 1 << 3,
    IB_GEOM_EXACT = 1 << 4,   /* ! */
    IB_GEOM_SHRINK = 1 << 5,  /* > */
    IB_GEOM_ENLARGE = 1 << 6, /* < */
    IB_GEOM_FILL = 1 << 7,    /* ^ */
};

typedef struct {
    double w;
    double h;
    unsigned flags;
} ib_geometry_t;

/* 0, or -1 with a message for the user in err. */
int ib_geometry_parse(const char *text, ib_geometry_t *g, char *err, size_t errlen);

/* Largest side an enlargement may reach. Past it the image keeps its size,
 * as ImageMagick does under Debian's default policy (16KP). */
#define IB_GEOM_MAX_SIDE 16000

/* The size an image of in_w x in_h gets; never 0 in either direction.
 * Returns 1 when the geometry asked for a side over IB_GEOM_MAX_SIDE and the
 * size was kept, else 0. */
int ib_geometry_apply(const ib_geometry_t *g, unsigned in_w, unsigned in_h, unsigned *out_w,
                      unsigned *out_h);

#endif
