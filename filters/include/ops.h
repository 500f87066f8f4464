/*
 * The op chain (-f/--filter): parsing into a fixed-size plan, and the output
 * size it gives. Pure functions: the parent checks every chain before any
 * work starts, and the size is known from a header alone (for --dry-run and
 * {w}/{h} in names). The pixel work is in ops_vips.c.
 */
#ifndef IB_FILTERS_OPS_H
#define IB_FILTERS_OPS_H

#include <stddef.h>

#include "geometry.h"

typedef enum {
    IB_OP_RESIZE,
    IB_OP_CROP,
    IB_OP_ROTATE,
    IB_OP_AUTOROTATE,
    IB_OP_FLIP,
    IB_OP_FLOP,
    IB_OP_GRAYSCALE,
    IB_OP_BLUR,
    IB_OP_SHARPEN,
    IB_OP_BRIGHTNESS,
    IB_OP_CONTRAST,
    IB_OP_GAMMA,
    IB_OP_MODULATE,
    IB_OP_SEPIA,
    IB_OP_NEGATE,
    IB_OP_NORMALIZE,
    IB_OP_THRESHOLD,
    IB_OP_PAD,
    IB_OP_FLATTEN,
} ib_op_kind_t;

typedef enum {
    IB_GRAVITY_NONE, /* crop=WxH+X+Y */
    IB_GRAVITY_CENTER,
    IB_GRAVITY_NORTH,
    IB_GRAVITY_SOUTH,
    IB_GRAVITY_EAST,
    IB_GRAVITY_WEST,
    IB_GRAVITY_NORTHEAST,
    IB_GRAVITY_NORTHWEST,
    IB_GRAVITY_SOUTHEAST,
    IB_GRAVITY_SOUTHWEST,
    IB_GRAVITY_ATTENTION,
    IB_GRAVITY_ENTROPY,
} ib_gravity_t;

/* 0-255 per channel, whatever the image's depth. */
typedef struct {
    double r, g, b, a;
} ib_color_t;

typedef struct {
    ib_op_kind_t kind;
    ib_geometry_t geom;   /* resize */
    unsigned w, h;        /* crop, pad */
    long x, y;            /* crop */
    ib_gravity_t gravity; /* crop */
    double v[3];          /* the numbers: sigma, factor, degrees, B:S:H, level */
    int has_color;
    ib_color_t color; /* rotate, pad, flatten */
} ib_op_t;

#define IB_MAX_OPS 32

typedef struct {
    ib_op_t op[IB_MAX_OPS];
    unsigned n;
} ib_chain_t;

/* Appends the ops of text ("resize=800x600>,sharpen") to chain.
 * 0, or -1 with a message naming the op and the bad argument. */
int ib_chain_parse(ib_chain_t *chain, const char *text, char *err, size_t errlen);

/* Parses a colour: #rgb, #rrggbb, #rrggbbaa, or a common name. 0 or -1. */
int ib_color_parse(const char *text, ib_color_t *c);

/* The size after the chain, for an input of w x h whose EXIF orientation
 * is still to apply (1 once it is upright): an autorotate op turns it
 * then. Returns 1 when a resize asked for a side over IB_GEOM_MAX_SIDE and
 * kept the size. */
int ib_chain_size(const ib_chain_t *chain, unsigned w, unsigned h, int orientation, unsigned *out_w,
                  unsigned *out_h);

/* The crop window of a crop op on a w x h image, clipped to it.
 * 0, or -1 if the window misses the image. Attention/entropy give the size
 * only (x, y = 0): where the window goes depends on the pixels. */
int ib_crop_window(const ib_op_t *op, unsigned w, unsigned h, long *x, long *y, unsigned *cw,
                   unsigned *ch);

/* The canvas of a pad op: never smaller than the image. */
void ib_pad_size(const ib_op_t *op, unsigned w, unsigned h, unsigned *pw, unsigned *ph);

#endif
