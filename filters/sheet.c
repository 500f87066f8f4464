/*
 * Contact sheets (sheet.h).
 *
 * NOTES
 * - Each tile is made and kept in memory before the next is begun, so a
 *   sheet of thousands of tiles holds no more than one input file open
 *   (a lazy grid would open them all at once, past the fd limit). The
 *   sheet costs its own size in memory: the caller bounds it.
 * - Every tile is 8-bit sRGB with three bands, flattened on the sheet's
 *   grey, so arrayjoin sees one kind of image.
 * - Labels go through Pango markup, so names are escaped first
 *   (ib_markup_escape: the bundled libvips does not export GLib's).
 */
#include "sheet.h"

#include <string.h>
#include <vips/vips.h>

#include "ops_vips.h"

static const double sheet_grey[3] = {40, 40, 40};
static const double failed_red[3] = {150, 30, 30};
static const double label_ink[3] = {235, 235, 235};

unsigned ib_sheet_label_height(unsigned tile_h)
{
    if (tile_h < 48)
        return 0;
    unsigned h = tile_h / 10;
    return h < 14 ? 14 : h > 32 ? 32 : h;
}

static VipsArrayDouble *colour(const double c[3])
{
    return vips_array_double_new(c, 3);
}

/* text in ink on a w x h field of paper, at x (or centred when x < 0);
 * what does not fit is cut off on the right. NULL on error. */
static VipsImage *text_field(const char *text, const char *font, int px, int w, int h, int x,
                             const double paper[3], const double ink[3])
{
    VipsObject *scope = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 4);
    char *escaped = ib_markup_escape(text);
    char *desc = g_strdup_printf("%s %dpx", font != NULL ? font : "sans", px);
    double a[3], b[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (ink[i] - paper[i]) / 255.0;
        b[i] = paper[i];
    }
    VipsArrayDouble *bg = colour(paper);
    VipsImage *out = NULL;
    int ok = vips_text(&t[0], escaped, "font", desc, "dpi", 72, NULL) == 0;
    if (ok && t[0]->Xsize > w - (x > 0 ? x : 0))
        ok = vips_extract_area(t[0], &t[1], 0, 0, w - (x > 0 ? x : 0), t[0]->Ysize, NULL) == 0;
    else if (ok)
        ok = vips_copy(t[0], &t[1], NULL) == 0;
    if (ok)
        ok = vips_linear(t[1], &t[2], a, b, 3, "uchar", TRUE, NULL) == 0;
    if (ok) {
        int left = x >= 0 ? x : (w - t[2]->Xsize) / 2;
        int top = (h - t[2]->Ysize) / 2;
        ok = vips_embed(t[2], &out, left, top > 0 ? top : 0, w, h, "extend", VIPS_EXTEND_BACKGROUND,
                        "background", bg, NULL) == 0;
    }
    vips_area_unref(VIPS_AREA(bg));
    g_free(desc);
    g_free(escaped);
    g_object_unref(scope);
    return ok ? out : NULL;
}

/* The image at path fitted in w x h and centred on the sheet's grey;
 * NULL if it cannot be read. */
static VipsImage *thumbnail_field(const char *path, int w, int h)
{
    VipsObject *scope = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 5);
    VipsArrayDouble *bg = colour(sheet_grey);
    VipsImage *out = NULL;
    /* A margin keeps neighbouring pictures apart. */
    int margin = w >= 64 && h >= 64 ? 4 : 0;
    int ok = vips_thumbnail(path, &t[0], w - 2 * margin, "height", h - 2 * margin, NULL) == 0;
    if (ok && vips_image_hasalpha(t[0]))
        ok = vips_flatten(t[0], &t[1], "background", bg, NULL) == 0;
    else if (ok)
        ok = vips_copy(t[0], &t[1], NULL) == 0;
    if (ok)
        ok = vips_colourspace(t[1], &t[2], VIPS_INTERPRETATION_sRGB, NULL) == 0;
    if (ok)
        ok = vips_cast_uchar(t[2], &t[3], NULL) == 0;
    if (ok && t[3]->Bands > 3)
        ok = vips_extract_band(t[3], &t[4], 0, "n", 3, NULL) == 0;
    else if (ok)
        ok = vips_copy(t[3], &t[4], NULL) == 0;
    if (ok)
        ok = vips_gravity(t[4], &out, VIPS_COMPASS_DIRECTION_CENTRE, w, h, "extend",
                          VIPS_EXTEND_BACKGROUND, "background", bg, NULL) == 0;
    vips_area_unref(VIPS_AREA(bg));
    g_object_unref(scope);
    return ok ? out : NULL;
}

/* A label Pango can set from any file name: bytes that are not UTF-8
 * (an old Latin-1 archive) become U+FFFD, control characters '?'. A name
 * that would not set would otherwise cost the whole sheet. g_free() it. */
static char *printable(const char *name)
{
    char *s = g_utf8_make_valid(name, -1);
    for (char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

/* One tile, in memory: the picture (or a red field saying why there is
 * none) above its label. */
static VipsImage *make_tile(const ib_sheet_tile_t *tile, const ib_sheet_opts_t *o)
{
    int w = (int)o->tile_w, lh = (int)ib_sheet_label_height(o->tile_h);
    int ph = (int)o->tile_h - lh;
    VipsImage *pic = tile->path != NULL ? thumbnail_field(tile->path, w, ph) : NULL;
    if (pic == NULL) {
        vips_error_clear();
        int px = w < ph ? w / 5 : ph / 5;
        pic = text_field(tile->path != NULL ? "unreadable" : "failed", o->font, px, w, ph, -1,
                         failed_red, label_ink);
    }
    VipsImage *label = NULL, *joined = NULL, *out = NULL;
    if (pic != NULL && lh > 0) {
        char *text = printable(tile->label);
        label = text_field(text, o->font, lh * 7 / 10, w, lh, 4, sheet_grey, label_ink);
        g_free(text);
        if (label != NULL && vips_join(pic, label, &joined, VIPS_DIRECTION_VERTICAL, NULL) != 0)
            joined = NULL;
    } else if (pic != NULL) {
        joined = pic;
        g_object_ref(joined);
    }
    if (joined != NULL)
        out = vips_image_copy_memory(joined);
    VIPS_UNREF(joined);
    VIPS_UNREF(label);
    VIPS_UNREF(pic);
    return out;
}

/* The sheet's bytes in dest's format; g_free() them. */
static int encode(VipsImage *sheet, const char *dest, void **buf, size_t *len)
{
    const char *dot = strrchr(dest, '.');
    char suffix[32];
    int jpeg = g_ascii_strcasecmp(dot, ".jpg") == 0 || g_ascii_strcasecmp(dot, ".jpeg") == 0;
    g_snprintf(suffix, sizeof suffix, "%s%s", jpeg ? ".jpg" : dot, jpeg ? "[Q=85]" : "");
    return vips_image_write_to_buffer(sheet, suffix, buf, len, NULL);
}

int ib_sheet_render(const ib_sheet_tile_t *tiles, size_t n, const ib_sheet_opts_t *opts,
                    const char *dest, const ib_output_opts_t *wo, ib_error_t *err)
{
    VipsImage **made = g_new0(VipsImage *, n);
    VipsImage *sheet = NULL;
    void *buf = NULL;
    size_t len = 0, i;
    for (i = 0; i < n; i++)
        if ((made[i] = make_tile(&tiles[i], opts)) == NULL)
            break;
    VipsArrayDouble *bg = colour(sheet_grey);
    int ok = i == n && n > 0 &&
             vips_arrayjoin(made, &sheet, (int)n, "across", (int)opts->columns, "background", bg,
                            NULL) == 0 &&
             encode(sheet, dest, &buf, &len) == 0;
    vips_area_unref(VIPS_AREA(bg));
    int rc = ok ? 0
                : ib_fail(err, IB_ERR_INTERNAL, "contact sheet %s: %s", dest,
                          n == 0 ? "no tiles" : vips_error_buffer());
    vips_error_clear();
    VIPS_UNREF(sheet);
    for (i = 0; i < n; i++)
        VIPS_UNREF(made[i]);
    g_free(made);
    if (rc == 0)
        rc = ib_output_write(dest, buf, len, wo, err);
    g_free(buf);
    return rc;
}
