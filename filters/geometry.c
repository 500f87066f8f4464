/*
 * ImageMagick -resize geometry. The arithmetic mirrors ImageMagick 6's
 * ParseMetaGeometry() step by step (including where it truncates instead
 * of rounding), because users compare our sizes with convert's.
 */
#include "geometry.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest side we accept: well past any real image, far from overflow. */
#define GEOM_MAX 1e7

/* ImageMagick 6's MagickEpsilon, which its area arithmetic adds in. */
#define IM_EPSILON 1.0e-12

/* Set beside the public flags when the geometry has an 'x'. ImageMagick
 * takes a side left out after an 'x' ("100x", "x100") as 0, not as the
 * image's own, and that decides whether "100x^" leaves a 100-wide image
 * alone ("100^" does, "100x^" fills). */
#define GEOM_SEPARATOR (1u << 16)

static int parse_number(const char **p, double *v)
{
    char *end;
    if (!isdigit((unsigned char)**p) && **p != '.')
        return 0;
    /* strtod() would read "0x10" as hex 16; ImageMagick reads width 0 and
     * height 10, which the caller then refuses for the 0. */
    if ((*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X')) {
        *v = 0;
        (*p)++;
        return 1;
    }
    errno = 0;
    *v = strtod(*p, &end);
    if (end == *p || errno != 0)
        return -1;
    *p = end;
    return 1;
}

static int take_flag(char c, unsigned *flags)
{
    switch (c) {
    case '%':
        *flags |= IB_GEOM_PERCENT;
        return 1;
    case '@':
        *flags |= IB_GEOM_AREA;
        return 1;
    case '!':
        *flags |= IB_GEOM_EXACT;
        return 1;
    case '>':
        *flags |= IB_GEOM_SHRINK;
        return 1;
    case '<':
        *flags |= IB_GEOM_ENLARGE;
        return 1;
    case '^':
        *flags |= IB_GEOM_FILL;
        return 1;
    default:
        return 0;
    }
}

/* One side: flags, then a number (which sets flag "given"), then flags,
 * as ImageMagick lets flags stand anywhere. -1 on a malformed number. */
static int take_side(const char **p, double *v, unsigned given, unsigned *flags)
{
    while (take_flag(**p, flags))
        (*p)++;
    int rc = parse_number(p, v);
    if (rc > 0)
        *flags |= given;
    while (rc >= 0 && take_flag(**p, flags))
        (*p)++;
    return rc < 0 ? -1 : 0;
}

int ib_geometry_parse(const char *text, ib_geometry_t *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    const char *p = text;

    if (take_side(&p, &g->w, IB_GEOM_WIDTH, &g->flags) < 0)
        goto bad;
    if (*p == 'x' || *p == 'X') {
        g->flags |= GEOM_SEPARATOR;
        p++;
        if (take_side(&p, &g->h, IB_GEOM_HEIGHT, &g->flags) < 0)
            goto bad;
    }
    while (take_flag(*p, &g->flags))
        p++;
    if (*p != '\0' || (g->flags & (IB_GEOM_WIDTH | IB_GEOM_HEIGHT)) == 0)
        goto bad;
    if ((g->flags & IB_GEOM_AREA) && !(g->flags & IB_GEOM_WIDTH))
        goto bad;
    if ((g->flags & IB_GEOM_SHRINK) && (g->flags & IB_GEOM_ENLARGE))
        goto bad;
    double limit = (g->flags & IB_GEOM_AREA) ? GEOM_MAX * GEOM_MAX : GEOM_MAX;
    if (g->w < 0 || g->h < 0 || g->w > limit || g->h > limit)
        goto bad;
    /* convert fails on 0% or 0@ ("negative or zero image size"): a usage
     * error here, rather than a batch of 1-pixel images. */
    if (((g->flags & IB_GEOM_WIDTH) && g->w == 0) || ((g->flags & IB_GEOM_HEIGHT) && g->h == 0))
        goto bad;
    if (!(g->flags & (IB_GEOM_PERCENT | IB_GEOM_AREA))) {
        /* Pixel sizes are whole numbers, as ImageMagick rounds them. */
        g->w = floor(g->w + 0.5);
        g->h = floor(g->h + 0.5);
        if (((g->flags & IB_GEOM_WIDTH) && g->w < 1) || ((g->flags & IB_GEOM_HEIGHT) && g->h < 1))
            goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "bad geometry '%s': expected W, xH, WxH, WxH> WxH< WxH^ WxH!, P%% or AREA@", text);
    return -1;
}

static unsigned clamp_size(double v)
{
    if (!(v >= 1))
        return 1;
    if (v > GEOM_MAX)
        return (unsigned)GEOM_MAX;
    return (unsigned)v;
}

/* ImageMagick's PerceptibleReciprocal(): the area step divides through it,
 * and its truncation to whole pixels is sensitive to the last bit. */
static double perceptible_reciprocal(double x)
{
    double sign = x < 0 ? -1.0 : 1.0;
    if (sign * x >= IM_EPSILON)
        return 1.0 / x;
    return sign / IM_EPSILON;
}

/* The scale that fits (or, with ^, fills) fw x fh to the asked w x h. */
static double fit_scale(unsigned flags, double w, double h, double fw, double fh)
{
    int has_w = (flags & IB_GEOM_WIDTH) != 0, has_h = (flags & IB_GEOM_HEIGHT) != 0;
    int fill = (flags & IB_GEOM_FILL) != 0;
    double scale;
    if (fw == 0 || fh == 0)
        return 1.0;
    if (has_w && has_h) {
        scale = w / fw;
        if (!fill) {
            if (scale > h / fh)
                scale = h / fh;
        } else if (scale < h / fh) {
            scale = h / fh;
        }
    } else if (has_w) {
        scale = w / fw;
        if (fill && scale < w / fh)
            scale = w / fh;
    } else {
        scale = h / fh;
        if (fill && scale < h / fw)
            scale = h / fw;
    }
    return scale;
}

/* The > and < limits and the @ area, on the size w x h of an image of
 * fw x fh. */
static void limit_size(const ib_geometry_t *g, double fw, double fh, double *w, double *h)
{
    if (g->flags & IB_GEOM_SHRINK) {
        if (fw < *w)
            *w = fw;
        if (fh < *h)
            *h = fh;
    }
    if (g->flags & IB_GEOM_ENLARGE) {
        if (fw > *w)
            *w = fw;
        if (fh > *h)
            *h = fh;
    }
    if (g->flags & IB_GEOM_AREA) {
        /* The area is the first number as written (in WxH@ too), and the
         * sizes are truncated, not rounded, so that they stay within it. */
        double area = g->w + sqrt(IM_EPSILON);
        double k = perceptible_reciprocal(sqrt(fw * fh) * perceptible_reciprocal(sqrt(area)));
        double sx = fw * k, sy = fh * k;
        if (sx < *w || sy < *h) {
            *w = floor(sx);
            *h = floor(sy);
        }
    }
}

int ib_geometry_apply(const ib_geometry_t *g, unsigned in_w, unsigned in_h, unsigned *out_w,
                      unsigned *out_h)
{
    double fw = in_w, fh = in_h;
    int has_w = (g->flags & IB_GEOM_WIDTH) != 0;
    int has_h = (g->flags & IB_GEOM_HEIGHT) != 0;
    /* As GetGeometry() leaves them, because the "already that size" test
     * below depends on it: every number is a whole pixel (an area's too at
     * this stage), a side not given is the image's own, or 0 after an 'x'.
     * So "100^" leaves a 100x50 image alone, where "100x^" makes it 200x100. */
    int has_x = (g->flags & GEOM_SEPARATOR) != 0;
    double w = has_w ? floor(g->w + 0.5) : has_x ? 0 : fw;
    double h = has_h ? floor(g->h + 0.5) : has_x ? 0 : fh;

    if (g->flags & IB_GEOM_PERCENT) {
        double sx = has_w ? g->w : 100.0;
        double sy = has_h ? g->h : sx;
        w = fw = floor(sx * fw / 100.0 + 0.5);
        h = fh = floor(sy * fh / 100.0 + 0.5);
    }
    if ((g->flags & IB_GEOM_EXACT) || (w == fw && h == fh)) {
        if (!has_w)
            w = fw;
        if (!has_h)
            h = fh;
    } else {
        double scale = fit_scale(g->flags, w, h, fw, fh);
        w = fmax(floor(scale * fw + 0.5), 1);
        h = fmax(floor(scale * fh + 0.5), 1);
    }
    limit_size(g, fw, fh, &w, &h);
    *out_w = clamp_size(w);
    *out_h = clamp_size(h);
    if ((*out_w > IB_GEOM_MAX_SIDE || *out_h > IB_GEOM_MAX_SIDE) &&
        (*out_w > in_w || *out_h > in_h)) {
        *out_w = in_w > 0 ? in_w : 1;
        *out_h = in_h > 0 ? in_h : 1;
        return 1;
    }
    return 0;
}
