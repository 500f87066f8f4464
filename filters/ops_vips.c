/*
 * The op chain on libvips images. Every op keeps an alpha band out of its
 * arithmetic (brightness, negate and friends change colour, not coverage)
 * and casts back to the input's band format, so a chain never turns an
 * 8-bit image into floats the encoder has to guess about.
 */
#include "ops_vips.h"

#include <math.h>

/* A colour op: takes colour bands only, returns a new reference or NULL. */
typedef VipsImage *(*colour_fn)(VipsImage *colour, const ib_op_t *op);

static double max_value(const VipsImage *im)
{
    return im->BandFmt == VIPS_FORMAT_USHORT ? 65535.0 : 255.0;
}

static VipsImage *cast_like(VipsImage *im, const VipsImage *like)
{
    VipsImage *out;
    if (im->BandFmt == like->BandFmt) {
        g_object_ref(im);
        return im;
    }
    if (vips_cast(im, &out, like->BandFmt, "shift", FALSE, NULL))
        return NULL;
    return out;
}

/* Runs fn on the colour bands, then puts the alpha band back. */
static VipsImage *on_colour(VipsImage *in, const ib_op_t *op, colour_fn fn)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 5);
    VipsImage *result = NULL;
    int alpha = vips_image_hasalpha(in);
    VipsImage *colour = in;
    if (alpha) {
        if (vips_extract_band(in, &t[0], 0, "n", in->Bands - 1, NULL) ||
            vips_extract_band(in, &t[1], in->Bands - 1, NULL))
            goto done;
        colour = t[0];
    }
    t[2] = fn(colour, op);
    if (t[2] == NULL)
        goto done;
    t[3] = cast_like(t[2], colour);
    if (t[3] == NULL)
        goto done;
    if (!alpha) {
        result = t[3];
        g_object_ref(result);
        goto done;
    }
    VipsImage *bands[2] = {t[3], t[1]};
    if (t[3]->Bands == 1 && t[3]->Type != VIPS_INTERPRETATION_B_W &&
        t[3]->Type != VIPS_INTERPRETATION_GREY16)
        t[3]->Type = VIPS_INTERPRETATION_B_W;
    if (vips_bandjoin(bands, &t[4], 2, NULL))
        goto done;
    result = t[4];
    g_object_ref(result);
done:
    g_object_unref(base);
    return result;
}

static VipsImage *do_linear(VipsImage *in, double a, double b)
{
    VipsImage *out;
    return vips_linear1(in, &out, a, b, NULL) ? NULL : out;
}

static VipsImage *do_brightness(VipsImage *in, const ib_op_t *op)
{
    return do_linear(in, op->v[0], 0);
}

static VipsImage *do_contrast(VipsImage *in, const ib_op_t *op)
{
    double mid = (max_value(in) + 1) / 2;
    return do_linear(in, op->v[0], mid * (1 - op->v[0]));
}

static VipsImage *do_negate(VipsImage *in, const ib_op_t *op)
{
    (void)op;
    return do_linear(in, -1, max_value(in));
}

static VipsImage *do_gamma(VipsImage *in, const ib_op_t *op)
{
    VipsImage *out;
    /* vips_gamma raises to 1/exponent, as ImageMagick's -gamma does. */
    return vips_gamma(in, &out, "exponent", op->v[0], NULL) ? NULL : out;
}

static VipsImage *to_srgb(VipsImage *in)
{
    VipsImage *out;
    VipsInterpretation want =
        in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB;
    return vips_colourspace(in, &out, want, NULL) ? NULL : out;
}

static VipsImage *do_sepia(VipsImage *in, const ib_op_t *op)
{
    (void)op;
    static const double m[9] = {0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131};
    VipsImage *rgb = to_srgb(in);
    if (rgb == NULL)
        return NULL;
    VipsImage *matrix = vips_image_new_matrix_from_array(3, 3, m, 9);
    /* Float out; on_colour's cast back to 8 or 16 bits clips, not wraps. */
    VipsImage *out;
    if (vips_recomb(rgb, &out, matrix, NULL) != 0)
        out = NULL;
    g_object_unref(matrix);
    g_object_unref(rgb);
    return out;
}

static VipsImage *do_modulate(VipsImage *in, const ib_op_t *op)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 4);
    VipsImage *out = NULL;
    /* ImageMagick: hue 100 is no change, 0 and 200 are half a turn. */
    double a[3] = {op->v[0] / 100.0, op->v[1] / 100.0, 1.0};
    double b[3] = {0, 0, (op->v[2] - 100.0) * 180.0 / 100.0};
    if (vips_colourspace(in, &t[0], VIPS_INTERPRETATION_LCH, NULL) == 0 &&
        vips_linear(t[0], &t[1], a, b, 3, NULL) == 0) {
        t[1]->Type = VIPS_INTERPRETATION_LCH;
        VipsInterpretation back = in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_RGB16
                                                                    : VIPS_INTERPRETATION_sRGB;
        if (in->Bands < 3 && op->v[1] == 0)
            back = in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
                                                     : VIPS_INTERPRETATION_B_W;
        if (vips_colourspace(t[1], &t[2], back, NULL) == 0) {
            out = t[2];
            g_object_ref(out);
        }
    }
    g_object_unref(base);
    return out;
}

static VipsImage *do_grayscale(VipsImage *in, const ib_op_t *op)
{
    (void)op;
    VipsImage *out;
    VipsInterpretation want =
        in->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    return vips_colourspace(in, &out, want, NULL) ? NULL : out;
}

static VipsImage *do_normalize(VipsImage *in, const ib_op_t *op)
{
    (void)op;
    /* Stretch so that 1% of pixels are black and 1% white, measured on the
     * luminance so the colours keep their balance. */
    VipsImage *grey = do_grayscale(in, op);
    if (grey == NULL)
        return NULL;
    VipsImage *one;
    int lo = 0, hi = 0;
    int rc = vips_extract_band(grey, &one, 0, NULL);
    g_object_unref(grey);
    if (rc != 0)
        return NULL;
    rc = vips_percent(one, 1.0, &lo, NULL) || vips_percent(one, 99.0, &hi, NULL);
    g_object_unref(one);
    if (rc != 0)
        return NULL;
    if (hi <= lo)
        return do_linear(in, 1, 0);
    /* Values pushed past black or white are clipped by on_colour's cast. */
    double scale = max_value(in) / (hi - lo);
    return do_linear(in, scale, -lo * scale);
}

static VipsImage *do_threshold(VipsImage *in, const ib_op_t *op)
{
    VipsImage *grey = do_grayscale(in, op);
    if (grey == NULL)
        return NULL;
    double level = op->v[0] * max_value(grey) / 255.0;
    int deep = grey->BandFmt == VIPS_FORMAT_USHORT;
    VipsImage *out = NULL, *mask;
    if (vips_moreeq_const1(grey, &mask, level, NULL) == 0) {
        /* The mask is 0/255 uchar; 16-bit stays 16-bit. */
        out = do_linear(mask, max_value(grey) / 255.0, 0);
        g_object_unref(mask);
    }
    g_object_unref(grey);
    if (out != NULL)
        out->Type = deep ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    return out;
}

/* The colour as pixel values for this image's bands and depth. */
static VipsArrayDouble *background(const VipsImage *im, const ib_op_t *op, int transparent_default)
{
    ib_color_t c =
        op->has_color ? op->color : (ib_color_t){255, 255, 255, transparent_default ? 0 : 255};
    double k = max_value(im) / 255.0;
    double v[4];
    int n = 0;
    int alpha = vips_image_hasalpha((VipsImage *)im);
    int colour_bands = im->Bands - alpha;
    if (colour_bands >= 3) {
        v[n++] = c.r * k, v[n++] = c.g * k, v[n++] = c.b * k;
        for (int i = 3; i < colour_bands && n < 3; i++)
            v[n++] = 0;
    } else {
        v[n++] = (0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b) * k;
    }
    if (alpha)
        v[n++] = c.a * k;
    return vips_array_double_new(v, n);
}

static int apply_resize(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    unsigned w, h;
    ib_geometry_apply(&op->geom, (unsigned)in->Xsize, (unsigned)in->Ysize, &w, &h);
    if ((int)w == in->Xsize && (int)h == in->Ysize)
        return vips_copy(in, out, NULL);
    return vips_thumbnail_image(in, out, (int)w, "height", (int)h, "size", VIPS_SIZE_FORCE,
                                "no_rotate", TRUE, NULL);
}

static int apply_crop(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    long x, y;
    unsigned w, h;
    if (op->gravity == IB_GRAVITY_ATTENTION || op->gravity == IB_GRAVITY_ENTROPY) {
        ib_crop_window(op, (unsigned)in->Xsize, (unsigned)in->Ysize, &x, &y, &w, &h);
        VipsInteresting how = op->gravity == IB_GRAVITY_ATTENTION ? VIPS_INTERESTING_ATTENTION
                                                                  : VIPS_INTERESTING_ENTROPY;
        return vips_smartcrop(in, out, (int)w, (int)h, "interesting", how, NULL);
    }
    if (ib_crop_window(op, (unsigned)in->Xsize, (unsigned)in->Ysize, &x, &y, &w, &h) < 0) {
        vips_error("crop", "the crop window %ux%u%+ld%+ld lies outside the %dx%d image", op->w,
                   op->h, op->x, op->y, in->Xsize, in->Ysize);
        return -1;
    }
    return vips_extract_area(in, out, (int)x, (int)y, (int)w, (int)h, NULL);
}

/* Right angles turn the pixels exactly; other angles resample. */
static int apply_rotate(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    double a = fmod(op->v[0], 360.0);
    if (a < 0)
        a += 360.0;
    if (a == 0)
        return vips_copy(in, out, NULL);
    if (a == 90)
        return vips_rot(in, out, VIPS_ANGLE_D90, NULL);
    if (a == 180)
        return vips_rot(in, out, VIPS_ANGLE_D180, NULL);
    if (a == 270)
        return vips_rot(in, out, VIPS_ANGLE_D270, NULL);
    VipsArrayDouble *bg = background(in, op, 1);
    int rc = vips_rotate(in, out, a, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

static int apply_pad(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    unsigned w, h;
    ib_pad_size(op, (unsigned)in->Xsize, (unsigned)in->Ysize, &w, &h);
    VipsArrayDouble *bg = background(in, op, 0);
    int rc = vips_gravity(in, out, VIPS_COMPASS_DIRECTION_CENTRE, (int)w, (int)h, "extend",
                          VIPS_EXTEND_BACKGROUND, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

static int apply_flatten(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    if (!vips_image_hasalpha(in))
        return vips_copy(in, out, NULL);
    VipsArrayDouble *bg = background(in, op, 0);
    /* flatten wants the colour bands only */
    VipsArrayDouble *colour = vips_array_double_new(VIPS_ARRAY_ADDR(bg, 0), VIPS_AREA(bg)->n - 1);
    int rc = vips_flatten(in, out, "background", colour, "max_alpha", max_value(in), NULL);
    vips_area_unref(VIPS_AREA(colour));
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

/* The ops that work on the colour bands alone (on_colour). */
static colour_fn colour_op(ib_op_kind_t kind)
{
    static const struct {
        ib_op_kind_t kind;
        colour_fn fn;
    } ops[] = {
        {IB_OP_BRIGHTNESS, do_brightness}, {IB_OP_CONTRAST, do_contrast},
        {IB_OP_GAMMA, do_gamma},           {IB_OP_MODULATE, do_modulate},
        {IB_OP_SEPIA, do_sepia},           {IB_OP_NEGATE, do_negate},
        {IB_OP_NORMALIZE, do_normalize},   {IB_OP_THRESHOLD, do_threshold},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i].kind == kind)
            return ops[i].fn;
    return NULL;
}

static int apply_one(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    switch (op->kind) {
    case IB_OP_RESIZE:
        return apply_resize(in, op, out);
    case IB_OP_CROP:
        return apply_crop(in, op, out);
    case IB_OP_ROTATE:
        return apply_rotate(in, op, out);
    case IB_OP_AUTOROTATE:
        return vips_autorot(in, out, NULL);
    case IB_OP_FLIP:
        return vips_flip(in, out, VIPS_DIRECTION_VERTICAL, NULL);
    case IB_OP_FLOP:
        return vips_flip(in, out, VIPS_DIRECTION_HORIZONTAL, NULL);
    case IB_OP_GRAYSCALE:
        return (*out = do_grayscale(in, op)) ? 0 : -1;
    case IB_OP_BLUR:
        return vips_gaussblur(in, out, op->v[0], NULL);
    case IB_OP_SHARPEN:
        return vips_sharpen(in, out, "sigma", op->v[0], NULL);
    case IB_OP_BRIGHTNESS:
    case IB_OP_CONTRAST:
    case IB_OP_GAMMA:
    case IB_OP_MODULATE:
    case IB_OP_SEPIA:
    case IB_OP_NEGATE:
    case IB_OP_NORMALIZE:
    case IB_OP_THRESHOLD:
        return (*out = on_colour(in, op, colour_op(op->kind))) ? 0 : -1;
    case IB_OP_PAD:
        return apply_pad(in, op, out);
    case IB_OP_FLATTEN:
        return apply_flatten(in, op, out);
    }
    vips_error("filter", "unknown op %d", (int)op->kind);
    return -1;
}

VipsImage *ib_chain_apply(VipsImage *in, const ib_chain_t *chain, unsigned first)
{
    g_object_ref(in);
    for (unsigned i = first; i < chain->n; i++) {
        const ib_op_t *op = &chain->op[i];
        VipsImage *next = NULL;
        /* Ops that need the whole image at once (rotations, smart crops,
         * a normalize's two passes) would fail on a sequential load. */
        int random = op->kind == IB_OP_ROTATE || op->kind == IB_OP_AUTOROTATE ||
                     op->kind == IB_OP_NORMALIZE || op->kind == IB_OP_FLIP ||
                     (op->kind == IB_OP_CROP && op->gravity >= IB_GRAVITY_ATTENTION);
        if (random) {
            VipsImage *mem = vips_image_copy_memory(in);
            g_object_unref(in);
            if (mem == NULL)
                return NULL;
            in = mem;
        }
        int rc = apply_one(in, op, &next);
        g_object_unref(in);
        if (rc != 0)
            return NULL;
        in = next;
    }
    return in;
}
