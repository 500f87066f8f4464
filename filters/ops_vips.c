/*
 * The op chain on libvips images. Every op keeps an alpha band out of its
 * arithmetic (brightness, negate and friends change colour, not coverage)
 * and casts back to the input's band format, so a chain never turns an
 * 8-bit image into floats the encoder has to guess about.
 */
#include "ops_vips.h"

#include <math.h>
#include <string.h>

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

/* The colour (or grey) space that keeps in's depth: 16 bits stay 16. */
static VipsInterpretation space_of_depth(const VipsImage *in, int grey)
{
    int deep = in->BandFmt == VIPS_FORMAT_USHORT;
    if (grey)
        return deep ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    return deep ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB;
}

static VipsImage *to_space_of_depth(VipsImage *in, int grey)
{
    VipsImage *out;
    return vips_colourspace(in, &out, space_of_depth(in, grey), NULL) ? NULL : out;
}

static VipsImage *do_sepia(VipsImage *in, const ib_op_t *op)
{
    (void)op;
    static const double m[9] = {0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131};
    VipsImage *rgb = to_space_of_depth(in, 0);
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
        VipsInterpretation back = space_of_depth(in, in->Bands < 3 && op->v[1] == 0);
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
    return to_space_of_depth(in, 1);
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

static VipsCompassDirection compass(ib_gravity_t g)
{
    static const VipsCompassDirection dirs[] = {
        [IB_GRAVITY_NORTH] = VIPS_COMPASS_DIRECTION_NORTH,
        [IB_GRAVITY_SOUTH] = VIPS_COMPASS_DIRECTION_SOUTH,
        [IB_GRAVITY_EAST] = VIPS_COMPASS_DIRECTION_EAST,
        [IB_GRAVITY_WEST] = VIPS_COMPASS_DIRECTION_WEST,
        [IB_GRAVITY_NORTHEAST] = VIPS_COMPASS_DIRECTION_NORTH_EAST,
        [IB_GRAVITY_NORTHWEST] = VIPS_COMPASS_DIRECTION_NORTH_WEST,
        [IB_GRAVITY_SOUTHEAST] = VIPS_COMPASS_DIRECTION_SOUTH_EAST,
        [IB_GRAVITY_SOUTHWEST] = VIPS_COMPASS_DIRECTION_SOUTH_WEST,
    };
    return g > IB_GRAVITY_CENTER && g <= IB_GRAVITY_SOUTHWEST ? dirs[g]
                                                              : VIPS_COMPASS_DIRECTION_CENTRE;
}

static int apply_pad(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    unsigned w, h;
    ib_pad_size(op, (unsigned)in->Xsize, (unsigned)in->Ysize, &w, &h);
    VipsArrayDouble *bg = background(in, op, 0);
    int rc = vips_gravity(in, out, compass(op->gravity), (int)w, (int)h, "extend",
                          VIPS_EXTEND_BACKGROUND, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

/* Black by default, as sharp's extend. */
static int apply_border(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    ib_op_t o = *op;
    if (!o.has_color)
        o.color = (ib_color_t){0, 0, 0, 255}, o.has_color = 1;
    VipsArrayDouble *bg = background(in, &o, 0);
    int n = (int)op->w;
    int rc = vips_embed(in, out, n, n, in->Xsize + 2 * n, in->Ysize + 2 * n, "extend",
                        VIPS_EXTEND_BACKGROUND, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

/* The background is the top-left pixel, as ImageMagick's -trim and
 * sharp's trim() take it. */
static int apply_trim(VipsImage *in, const ib_op_t *op, VipsImage **out)
{
    double *corner;
    int n, left, top, width, height;
    VipsImage *flat = NULL;
    /* Transparent margins are trimmed too: on black, as sharp does. */
    if (vips_image_hasalpha(in) && vips_flatten(in, &flat, NULL) != 0)
        return -1;
    VipsImage *look = flat != NULL ? flat : in;
    int rc = vips_getpoint(look, &corner, &n, 0, 0, NULL);
    if (rc == 0) {
        VipsArrayDouble *bg = vips_array_double_new(corner, n);
        rc = vips_find_trim(look, &left, &top, &width, &height, "threshold",
                            op->v[0] * max_value(in) / 255.0, "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        g_free(corner);
    }
    if (flat != NULL)
        g_object_unref(flat);
    if (rc != 0)
        return -1;
    if (width <= 0 || height <= 0) {
        /* A warning: it reaches the file's event, the image goes on. */
        vips_error("trim", "the whole %dx%d image is border: left as it is", in->Xsize, in->Ysize);
        return vips_copy(in, out, NULL);
    }
    return vips_extract_area(in, out, left, top, width, height, NULL);
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

/* ---- overlay and text: a picture with alpha laid on the image ---- */

typedef struct {
    const ib_op_t *op; /* the op it was made for */
    VipsImage *image;  /* 8-bit sRGB with alpha, opacity applied, in memory */
    VipsImage *scaled; /* image at the width last asked for, or NULL */
    int scaled_w;
} overlay_entry_t;

struct ib_ops_cache {
    overlay_entry_t overlay[IB_MAX_OPS];
};

ib_ops_cache_t *ib_ops_cache_new(void)
{
    return g_new0(ib_ops_cache_t, 1);
}

static void entry_clear(overlay_entry_t *e)
{
    if (e->image != NULL)
        g_object_unref(e->image);
    if (e->scaled != NULL)
        g_object_unref(e->scaled);
    memset(e, 0, sizeof *e);
}

void ib_ops_cache_free(ib_ops_cache_t *cache)
{
    if (cache == NULL)
        return;
    for (int i = 0; i < IB_MAX_OPS; i++)
        entry_clear(&cache->overlay[i]);
    g_free(cache);
}

/* The alpha band times the opacity, back in 8 bits. */
static VipsImage *fade(VipsImage *in, double opacity)
{
    double a[4] = {1, 1, 1, opacity}, b[4] = {0, 0, 0, 0};
    VipsImage *lin, *out;
    if (opacity >= 1) {
        g_object_ref(in);
        return in;
    }
    if (vips_linear(in, &lin, a, b, 4, NULL) != 0)
        return NULL;
    int rc = vips_cast(lin, &out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(lin);
    return rc == 0 ? out : NULL;
}

/* The overlay file as 8-bit sRGB with alpha, upright, faded, in memory. */
static VipsImage *load_overlay(const ib_op_t *op)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 5);
    VipsImage *out = NULL;
    t[0] = vips_image_new_from_file(op->str, "access", VIPS_ACCESS_RANDOM, NULL);
    if (t[0] != NULL && vips_autorot(t[0], &t[1], NULL) == 0 &&
        vips_colourspace(t[1], &t[2], VIPS_INTERPRETATION_sRGB, NULL) == 0 &&
        (vips_image_hasalpha(t[2]) ? vips_copy(t[2], &t[3], NULL)
                                   : vips_addalpha(t[2], &t[3], NULL)) == 0 &&
        vips_cast(t[3], &t[4], VIPS_FORMAT_UCHAR, NULL) == 0) {
        VipsImage *faded = fade(t[4], op->v[1]);
        if (faded != NULL) {
            out = vips_image_copy_memory(faded);
            g_object_unref(faded);
        }
    }
    if (out == NULL)
        vips_error("overlay", "cannot read the overlay %s", op->str);
    g_object_unref(base);
    return out;
}

/* The overlay image of op index i at width w (0: its own), borrowed from
 * the cache: decoded once per worker, scaled once per width. */
static VipsImage *overlay_for(ib_ops_cache_t *cache, const ib_op_t *op, unsigned i, int w)
{
    overlay_entry_t *e = &cache->overlay[i];
    if (e->op != op || e->image == NULL) {
        entry_clear(e);
        if ((e->image = load_overlay(op)) == NULL)
            return NULL;
        e->op = op;
    }
    if (w <= 0 || w == e->image->Xsize)
        return e->image;
    if (e->scaled != NULL && e->scaled_w == w)
        return e->scaled;
    /* Scaled with premultiplied alpha, so clear pixels lend no colour. */
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 4);
    double scale = (double)w / e->image->Xsize;
    VipsImage *scaled = NULL;
    if (vips_premultiply(e->image, &t[0], NULL) == 0 &&
        vips_resize(t[0], &t[1], scale, NULL) == 0 && vips_unpremultiply(t[1], &t[2], NULL) == 0 &&
        vips_cast(t[2], &t[3], VIPS_FORMAT_UCHAR, NULL) == 0)
        scaled = vips_image_copy_memory(t[3]);
    g_object_unref(base);
    if (scaled == NULL)
        return NULL;
    if (e->scaled != NULL)
        g_object_unref(e->scaled);
    e->scaled = scaled;
    e->scaled_w = w;
    return scaled;
}

/* patch (composited, with alpha, in sRGB) back into like's bands and
 * format. New reference or NULL. */
static VipsImage *match_patch(VipsImage *patch, VipsImage *like)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 3);
    VipsImage *out = NULL, *cur = patch;
    int alpha = vips_image_hasalpha(like);
    if (!alpha) {
        /* Over an opaque image the result is opaque: the alpha goes. */
        if (vips_extract_band(cur, &t[0], 0, "n", cur->Bands - 1, NULL) != 0)
            goto done;
        cur = t[0];
    }
    if (like->Bands - alpha < 3 && vips_colourspace(cur, &t[1], space_of_depth(like, 1), NULL) == 0)
        cur = t[1];
    else if (like->Bands - alpha < 3)
        goto done;
    if (vips_cast(cur, &t[2], like->BandFmt, NULL) == 0 && t[2]->Bands == like->Bands) {
        out = t[2];
        g_object_ref(out);
    } else if (t[2] != NULL) {
        vips_error("overlay", "cannot lay a %d-band picture on a %d-band image", t[2]->Bands,
                   like->Bands);
    }
done:
    g_object_unref(base);
    return out;
}

/*
 * Lays pic (8-bit sRGB with alpha) on in at the gravity, margin pixels in
 * from the edges. Only the area under it is composited, then put back:
 * compositing the whole image would cost a watermark run a second pass
 * over every pixel.
 */
static int place(VipsImage *in, VipsImage *pic, ib_gravity_t g, unsigned margin, VipsImage **out)
{
    long x, y;
    ib_gravity_place(g, (unsigned)in->Xsize, (unsigned)in->Ysize, (unsigned)pic->Xsize,
                     (unsigned)pic->Ysize, margin, &x, &y);
    long x0 = x > 0 ? x : 0, y0 = y > 0 ? y : 0;
    long x1 = x + pic->Xsize < in->Xsize ? x + pic->Xsize : in->Xsize;
    long y1 = y + pic->Ysize < in->Ysize ? y + pic->Ysize : in->Ysize;
    if (x1 <= x0 || y1 <= y0)
        return vips_copy(in, out, NULL);
    int w = (int)(x1 - x0), h = (int)(y1 - y0);
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 5);
    int rc = -1;
    int deep = in->BandFmt == VIPS_FORMAT_USHORT;
    if (vips_extract_area(pic, &t[0], (int)(x0 - x), (int)(y0 - y), w, h, NULL) == 0 &&
        vips_extract_area(in, &t[1], (int)x0, (int)y0, w, h, NULL) == 0 &&
        (!deep || vips_colourspace(t[0], &t[2], VIPS_INTERPRETATION_RGB16, NULL) == 0) &&
        vips_composite2(t[1], deep ? t[2] : t[0], &t[3], VIPS_BLEND_MODE_OVER, "compositing_space",
                        deep ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB, NULL) == 0 &&
        (t[4] = match_patch(t[3], in)) != NULL)
        rc = vips_insert(in, t[4], out, (int)x0, (int)y0, NULL);
    g_object_unref(base);
    return rc;
}

static int apply_overlay(VipsImage *in, const ib_op_t *op, unsigned i, ib_ops_env_t *env,
                         VipsImage **out)
{
    int w = 0;
    if (op->v[2] > 0) {
        w = (int)(in->Xsize * op->v[2] / 100.0 + 0.5);
        w = w > 0 ? w : 1;
    }
    VipsImage *pic = overlay_for(env->cache, op, i, w);
    if (pic == NULL)
        return -1;
    return place(in, pic, op->gravity, (unsigned)op->v[0], out);
}

/* Written here because the bundled libvips (sharp's build) links GLib in
 * without exporting g_markup_escape_text(). */
char *ib_markup_escape(const char *text)
{
    static const char special[] = "&<>'\"";
    static const char *const entity[] = {"&amp;", "&lt;", "&gt;", "&#39;", "&quot;"};
    GString *out = g_string_sized_new(strlen(text) + 16);
    for (const char *p = text; *p != '\0'; p++) {
        const char *hit = strchr(special, *p);
        if (hit != NULL)
            g_string_append(out, entity[hit - special]);
        else
            g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

/* The text as a one-band mask, in Pango's markup with the text escaped. */
static VipsImage *text_mask(const char *text, const char *font, int size)
{
    char *escaped = ib_markup_escape(text);
    char *desc = g_strdup_printf("%s %dpx", font != NULL ? font : "sans", size);
    VipsImage *mask;
    if (vips_text(&mask, escaped, "font", desc, "dpi", 72, NULL) != 0)
        mask = NULL;
    g_free(desc);
    g_free(escaped);
    return mask;
}

/* The text rendered to fit in avail_w x avail_h: smaller type when it is
 * too long, and scaled down when even that is not enough. */
static VipsImage *fitted_mask(const char *text, const char *font, int size, int avail_w,
                              int avail_h)
{
    VipsImage *mask = text_mask(text, font, size);
    if (mask == NULL)
        return NULL;
    double k = 1.0;
    if (mask->Xsize > avail_w)
        k = (double)avail_w / mask->Xsize;
    if (mask->Ysize * k > avail_h)
        k = (double)avail_h / mask->Ysize;
    if (k < 1.0 && (int)(size * k) >= 1) {
        g_object_unref(mask);
        if ((mask = text_mask(text, font, (int)(size * k))) == NULL)
            return NULL;
    }
    if (mask->Xsize > avail_w || mask->Ysize > avail_h) {
        double s = VIPS_MIN((double)avail_w / mask->Xsize, (double)avail_h / mask->Ysize);
        VipsImage *small;
        int rc = vips_resize(mask, &small, s, NULL);
        g_object_unref(mask);
        mask = rc == 0 ? small : NULL;
    }
    return mask;
}

/* The text in its colour, with the mask as its alpha. */
static VipsImage *coloured_text(VipsImage *mask, const ib_color_t *c)
{
    VipsImage *base = vips_image_new();
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 4);
    double rgb[3] = {c->r, c->g, c->b};
    VipsImage *out = NULL;
    t[0] = vips_image_new_from_image(mask, rgb, 3);
    if (t[0] != NULL && vips_linear1(mask, &t[1], c->a / 255.0, 0, NULL) == 0 &&
        vips_cast(t[1], &t[2], VIPS_FORMAT_UCHAR, NULL) == 0 &&
        vips_bandjoin2(t[0], t[2], &t[3], NULL) == 0) {
        t[3]->Type = VIPS_INTERPRETATION_sRGB;
        out = vips_image_copy_memory(t[3]);
    }
    g_object_unref(base);
    return out;
}

static int apply_text(VipsImage *in, const ib_op_t *op, ib_ops_env_t *env, VipsImage **out)
{
    char text[4 * IB_OP_STR_MAX];
    env->text.w = (unsigned)in->Xsize;
    env->text.h = (unsigned)in->Ysize;
    if (ib_text_expand(op->str, &env->text, text, sizeof text) < 0) {
        vips_error("text", "the text '%s' is too long once filled in", op->str);
        return -1;
    }
    if (text[0] == '\0')
        return vips_copy(in, out, NULL);
    /* A little room from the edges, less on a small image. */
    int size = (int)op->v[0];
    int margin = VIPS_MIN(size / 4, VIPS_MIN(in->Xsize, in->Ysize) / 20);
    VipsImage *mask =
        fitted_mask(text, env->font, size, in->Xsize - 2 * margin, in->Ysize - 2 * margin);
    if (mask == NULL)
        return -1;
    VipsImage *pic = coloured_text(mask, &op->color);
    g_object_unref(mask);
    if (pic == NULL)
        return -1;
    int rc = place(in, pic, op->gravity, (unsigned)margin, out);
    g_object_unref(pic);
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

static int apply_one(VipsImage *in, const ib_op_t *op, unsigned i, ib_ops_env_t *env,
                     VipsImage **out)
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
    case IB_OP_TRIM:
        return apply_trim(in, op, out);
    case IB_OP_BORDER:
        return apply_border(in, op, out);
    case IB_OP_OVERLAY:
        return apply_overlay(in, op, i, env, out);
    case IB_OP_TEXT:
        return apply_text(in, op, env, out);
    }
    vips_error("filter", "unknown op %d", (int)op->kind);
    return -1;
}

VipsImage *ib_chain_apply(VipsImage *in, const ib_chain_t *chain, unsigned first, ib_ops_env_t *env)
{
    g_object_ref(in);
    for (unsigned i = first; i < chain->n; i++) {
        const ib_op_t *op = &chain->op[i];
        VipsImage *next = NULL;
        /* Ops that need the whole image at once (rotations, smart crops,
         * a normalize's two passes, a trim's search before its crop, and
         * an overlay or text, whose patch is read apart from the rows
         * around it) would fail on a sequential load. */
        int random = op->kind == IB_OP_ROTATE || op->kind == IB_OP_AUTOROTATE ||
                     op->kind == IB_OP_NORMALIZE || op->kind == IB_OP_FLIP ||
                     op->kind == IB_OP_TRIM || op->kind == IB_OP_OVERLAY ||
                     op->kind == IB_OP_TEXT ||
                     (op->kind == IB_OP_CROP && op->gravity >= IB_GRAVITY_ATTENTION);
        if (random) {
            VipsImage *mem = vips_image_copy_memory(in);
            g_object_unref(in);
            if (mem == NULL)
                return NULL;
            in = mem;
        }
        int rc = apply_one(in, op, i, env, &next);
        g_object_unref(in);
        if (rc != 0)
            return NULL;
        in = next;
    }
    return in;
}
