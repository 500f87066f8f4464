/*
 * The op chain (-f/--filter): parsing into a fixed-size plan, and the output
 * size it gives. Pure functions: the parent checks every chain before any
 * work starts, and the size is known from a header alone (for --dry-run and
 * {w}/{h} in names). The pixel work is in ops_vips.c.
 */
#ifndef IB_FILTERS_OPS_H
#define IB_FILTERS_OPS_H

#include <stddef.h>
#include <stdint.h>

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
    IB_OP_TRIM,
    IB_OP_BORDER,
    IB_OP_OVERLAY,
    IB_OP_TEXT,
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

/* Room for an overlay's path or a text's template, unescaped. */
#define IB_OP_STR_MAX 1024

typedef struct {
    ib_op_kind_t kind;
    ib_geometry_t geom;   /* resize */
    unsigned w, h;        /* crop, pad; border: w is the width */
    long x, y;            /* crop */
    ib_gravity_t gravity; /* crop, pad, overlay, text */
    /* The numbers: sigma, factor, degrees, B:S:H, level; trim's threshold;
     * overlay's margin, opacity and width in percent (0: its own size);
     * text's size in pixels. */
    double v[3];
    int has_color;
    ib_color_t color;        /* rotate, pad, flatten, border, text */
    char str[IB_OP_STR_MAX]; /* overlay: the file; text: the template */
} ib_op_t;

#define IB_MAX_OPS 32

typedef struct {
    ib_op_t op[IB_MAX_OPS];
    unsigned n;
} ib_chain_t;

/* Appends the ops of text ("resize=800x600>,sharpen") to chain. Ops are
 * separated by commas and their arguments by colons; \, and \: put either
 * inside a value, \\ a backslash. 0, or -1 with a message naming
 * the op and the bad argument. */
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

/* Whether a chain holds an op whose output size depends on the pixels
 * (trim): then the size from a header is the size before it. */
int ib_chain_size_from_pixels(const ib_chain_t *chain);

/* Where a box of bw x bh goes on a w x h image at a gravity, margin
 * pixels in from the edges it leans on (the centre takes none). The
 * offset may be negative when the box is larger than the image. */
void ib_gravity_place(ib_gravity_t g, unsigned w, unsigned h, unsigned bw, unsigned bh,
                      unsigned margin, long *x, long *y);

/* What a text op's fields stand for, for one image. */
typedef struct {
    const char *stem; /* the input's name without its extension */
    const char *ext;  /* the output's extension, as in --name */
    unsigned w, h;    /* the image as the op finds it */
    int64_t date;     /* wall-clock capture date (clock.h); 0: unknown */
} ib_text_vars_t;

/* A text op's template with its fields filled in. 0, or -1 if it does
 * not fit in cap. */
int ib_text_expand(const char *tmpl, const ib_text_vars_t *v, char *out, size_t cap);

/* The canvas of a pad op: never smaller than the image. */
void ib_pad_size(const ib_op_t *op, unsigned w, unsigned h, unsigned *pw, unsigned *ph);

#endif
