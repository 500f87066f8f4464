/*
 * Op chain parsing and sizes. See ops.h.
 *
 * Meanings follow ImageMagick where it has the same operator: rotate is
 * clockwise, flip mirrors top to bottom and flop left to right, crop with a
 * gravity places the window as -gravity G -crop WxH+0+0 does (centred as
 * W/2 - w/2 in whole pixels, ImageMagick's GravityAdjustGeometry(): not
 * (W - w)/2, which differs by one when W is even and w odd), modulate takes
 * percentages with hue 100 meaning no change.
 */
#include "ops.h"

#include "clock.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *gravity_names[] = {
    [IB_GRAVITY_CENTER] = "center",       [IB_GRAVITY_NORTH] = "north",
    [IB_GRAVITY_SOUTH] = "south",         [IB_GRAVITY_EAST] = "east",
    [IB_GRAVITY_WEST] = "west",           [IB_GRAVITY_NORTHEAST] = "northeast",
    [IB_GRAVITY_NORTHWEST] = "northwest", [IB_GRAVITY_SOUTHEAST] = "southeast",
    [IB_GRAVITY_SOUTHWEST] = "southwest", [IB_GRAVITY_ATTENTION] = "attention",
    [IB_GRAVITY_ENTROPY] = "entropy",
};

typedef struct {
    const char *name;
    unsigned char r, g, b, a;
} named_color_t;

static const named_color_t colors[] = {
    {"white", 255, 255, 255, 255}, {"black", 0, 0, 0, 255},      {"red", 255, 0, 0, 255},
    {"green", 0, 128, 0, 255},     {"lime", 0, 255, 0, 255},     {"blue", 0, 0, 255, 255},
    {"yellow", 255, 255, 0, 255},  {"cyan", 0, 255, 255, 255},   {"magenta", 255, 0, 255, 255},
    {"gray", 128, 128, 128, 255},  {"grey", 128, 128, 128, 255}, {"silver", 192, 192, 192, 255},
    {"orange", 255, 165, 0, 255},  {"purple", 128, 0, 128, 255}, {"brown", 165, 42, 42, 255},
    {"pink", 255, 192, 203, 255},  {"navy", 0, 0, 128, 255},     {"teal", 0, 128, 128, 255},
    {"transparent", 0, 0, 0, 0},   {"none", 0, 0, 0, 0},
};

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ib_color_parse(const char *text, ib_color_t *c)
{
    if (text[0] == '#') {
        size_t n = strlen(text + 1);
        int d[8];
        if (n != 3 && n != 6 && n != 8)
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((d[i] = hex((unsigned char)text[1 + i])) < 0)
                return -1;
        if (n == 3) {
            *c = (ib_color_t){d[0] * 17, d[1] * 17, d[2] * 17, 255};
            return 0;
        }
        *c = (ib_color_t){d[0] * 16 + d[1], d[2] * 16 + d[3], d[4] * 16 + d[5],
                          n == 8 ? d[6] * 16 + d[7] : 255};
        return 0;
    }
    for (size_t i = 0; i < sizeof colors / sizeof colors[0]; i++)
        if (strcasecmp(text, colors[i].name) == 0) {
            *c = (ib_color_t){colors[i].r, colors[i].g, colors[i].b, colors[i].a};
            return 0;
        }
    return -1;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s != '\0' && end != s && *end == '\0' && errno == 0 && isfinite(*v) ? 0 : -1;
}

/* "WxH" with whole positive numbers; rest points after it. */
static int parse_wxh(const char *s, unsigned *w, unsigned *h, const char **rest)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long a = strtoul(s, &end, 10);
    if (*end != 'x' && *end != 'X')
        return -1;
    s = end + 1;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long b = strtoul(s, &end, 10);
    if (a == 0 || b == 0 || a > 1000000 || b > 1000000)
        return -1;
    *w = (unsigned)a;
    *h = (unsigned)b;
    *rest = end;
    return 0;
}

/* Far past any image (libvips' largest has 10 million pixels a side), and
 * far enough from LONG_MAX that the crop window's sums cannot overflow. */
#define CROP_OFFSET_MAX 1000000000L

/* "+X+Y" (either sign); the whole string. */
static int parse_offset(const char *s, long *x, long *y)
{
    char *end;
    if (*s != '+' && *s != '-')
        return -1;
    *x = strtol(s, &end, 10);
    if (end == s + 1 || (*end != '+' && *end != '-'))
        return -1;
    s = end;
    *y = strtol(s, &end, 10);
    if (*x > CROP_OFFSET_MAX || *x < -CROP_OFFSET_MAX || *y > CROP_OFFSET_MAX ||
        *y < -CROP_OFFSET_MAX)
        return -1;
    return end != s + 1 && *end == '\0' ? 0 : -1;
}

static int bad(char *err, size_t errlen, const char *item, const char *want, const char *arg)
{
    snprintf(err, errlen, "bad filter '%s': %s, not '%s'", item, want, arg);
    return -1;
}

static int parse_color_suffix(const char *s, ib_op_t *op)
{
    if (*s == '\0')
        return 0;
    if (*s != ':' || ib_color_parse(s + 1, &op->color) < 0)
        return -1;
    op->has_color = 1;
    return 0;
}

/* One parser per op: 0, or -1 with a message in err. item is the whole
 * "name=args" for messages; arg is NULL when there is no '='. */
typedef struct {
    const char *item;
    const char *arg;
    char *err;
    size_t errlen;
} op_text_t;

#define BAD(t, want, what) bad((t)->err, (t)->errlen, (t)->item, want, what)
#define COLOUR_WANTED "the colour is #rrggbb, #rrggbbaa or a name"

static int parse_resize(const op_text_t *t, ib_op_t *op)
{
    char gerr[256];
    if (ib_geometry_parse(t->arg, &op->geom, gerr, sizeof gerr) < 0)
        return BAD(t, "resize wants a geometry like 800x600>", t->arg);
    return 0;
}

static int parse_gravity(const char *name, ib_gravity_t *g)
{
    for (int i = IB_GRAVITY_CENTER; i <= IB_GRAVITY_ENTROPY; i++)
        if (strcasecmp(name, gravity_names[i]) == 0 ||
            (i == IB_GRAVITY_CENTER && strcasecmp(name, "centre") == 0)) {
            *g = (ib_gravity_t)i;
            return 0;
        }
    return -1;
}

static int parse_crop(const op_text_t *t, ib_op_t *op)
{
    const char *rest, *want = "crop wants WxH, WxH+X+Y or WxH:GRAVITY";
    if (parse_wxh(t->arg, &op->w, &op->h, &rest) < 0)
        return BAD(t, want, t->arg);
    if (*rest == '\0') {
        op->gravity = IB_GRAVITY_CENTER;
    } else if (*rest == ':') {
        if (parse_gravity(rest + 1, &op->gravity) < 0)
            return BAD(t,
                       "crop gravity is center, north, south, east, west, northeast, "
                       "northwest, southeast, southwest, attention or entropy",
                       rest + 1);
    } else if (parse_offset(rest, &op->x, &op->y) < 0) {
        return BAD(t, want, t->arg);
    }
    return 0;
}

static int parse_rotate(const op_text_t *t, ib_op_t *op)
{
    char num[64];
    const char *colon = strchr(t->arg, ':');
    snprintf(num, sizeof num, "%.*s", colon ? (int)(colon - t->arg) : (int)strlen(t->arg), t->arg);
    if (parse_double(num, &op->v[0]) < 0 || fabs(op->v[0]) > 3600)
        return BAD(t, "rotate wants degrees (clockwise)", num);
    if (colon != NULL && parse_color_suffix(colon, op) < 0)
        return BAD(t, COLOUR_WANTED, colon + 1);
    return 0;
}

/* A number in (min, max], or [min, max] when min_ok; what the message wants. */
static int parse_number(const op_text_t *t, ib_op_t *op, double min, int min_ok, double max,
                        const char *want)
{
    double v;
    if (parse_double(t->arg, &v) < 0 || v < min || (!min_ok && v == min) || v > max)
        return BAD(t, want, t->arg);
    op->v[0] = v;
    return 0;
}

static int parse_blur(const op_text_t *t, ib_op_t *op)
{
    return parse_number(t, op, 0, 0, 1000, "blur wants a sigma above 0");
}

static int parse_sharpen(const op_text_t *t, ib_op_t *op)
{
    op->v[0] = 1.0;
    if (t->arg == NULL)
        return 0;
    return parse_number(t, op, 0, 0, 100, "sharpen wants a sigma above 0");
}

static int parse_factor(const op_text_t *t, ib_op_t *op)
{
    return parse_number(t, op, 0, 1, 100, "it wants a factor (1 keeps the image)");
}

static int parse_gamma(const op_text_t *t, ib_op_t *op)
{
    return parse_number(t, op, 0, 0, 100, "gamma wants a number above 0");
}

/* B[:S[:H]], percentages; missing or empty parts keep the image. Split by
 * hand: strtok would skip an empty part and shift the ones after it
 * ("100::50" is hue 50, not saturation 50). */
static int parse_modulate(const op_text_t *t, ib_op_t *op)
{
    const char *want = "modulate wants B:S:H in percent (100 keeps)";
    double parts[3] = {100, 100, 100};
    const char *p = t->arg;
    for (int n = 0;; n++) {
        size_t len = strcspn(p, ":");
        char tok[64];
        if (n == 3 || len >= sizeof tok)
            return BAD(t, want, t->arg);
        snprintf(tok, sizeof tok, "%.*s", (int)len, p);
        if (len > 0 && (parse_double(tok, &parts[n]) < 0 || parts[n] < 0 || parts[n] > 1000))
            return BAD(t, want, tok);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    memcpy(op->v, parts, sizeof parts);
    return 0;
}

static int parse_threshold(const op_text_t *t, ib_op_t *op)
{
    char num[64];
    double v;
    size_t n = strlen(t->arg);
    int percent = n > 0 && t->arg[n - 1] == '%';
    snprintf(num, sizeof num, "%.*s", (int)(percent ? n - 1 : n), t->arg);
    if (parse_double(num, &v) < 0 || v < 0 || v > (percent ? 100 : 255))
        return BAD(t, "threshold wants a level 0-255 or 0%-100%", t->arg);
    op->v[0] = percent ? v * 255.0 / 100.0 : v;
    return 0;
}

/*
 * Splits an op's argument at the colons that are neither escaped nor in
 * braces, into at
 * most max parts of IB_OP_STR_MAX bytes, with "\:", "\," and "\\"
 * unescaped. How many parts, or -1 when there are more than max or one is
 * too long.
 */
static int split_args(const char *arg, char (*parts)[IB_OP_STR_MAX], int max)
{
    int n = 0, field = 0;
    size_t len = 0;
    for (const char *p = arg;; p++) {
        /* A colon inside a text's {date:FORMAT} is the field's own. */
        if (*p == '{')
            field = 1;
        else if (*p == '}')
            field = 0;
        if (*p == '\0' || (*p == ':' && !field)) {
            parts[n][len] = '\0';
            n++;
            if (*p == '\0')
                return n;
            if (n == max)
                return -1;
            len = 0;
            continue;
        }
        if (*p == '\\' && (p[1] == ':' || p[1] == ',' || p[1] == '\\'))
            p++;
        if (len + 1 >= IB_OP_STR_MAX)
            return -1;
        parts[n][len++] = *p;
    }
}

/* The gravities that place a box: crop's, less the smart ones. */
#define PLACE_WANTED                                                                               \
    "the gravity is center, north, south, east, west, northeast, northwest, southeast or "         \
    "southwest"

static int parse_place_gravity(const char *name, ib_gravity_t *g)
{
    return parse_gravity(name, g) < 0 || *g >= IB_GRAVITY_ATTENTION ? -1 : 0;
}

/* A whole number from min to max. */
static int parse_whole(const char *s, long min, long max, long *v)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    *v = strtol(s, &end, 10);
    return *end == '\0' && errno == 0 && *v >= min && *v <= max ? 0 : -1;
}

/* WxH[:COLOUR[:GRAVITY]]; an empty colour keeps the default. */
static int parse_pad(const op_text_t *t, ib_op_t *op)
{
    char parts[3][IB_OP_STR_MAX];
    const char *rest;
    int n = split_args(t->arg, parts, 3);
    if (n < 0 || parse_wxh(parts[0], &op->w, &op->h, &rest) < 0 || *rest != '\0')
        return BAD(t, "pad wants WxH[:COLOUR[:GRAVITY]]", t->arg);
    /* "WxH::north" keeps the colour; a bare trailing colon is a slip. */
    if (n == 2 || (n > 2 && parts[1][0] != '\0')) {
        if (ib_color_parse(parts[1], &op->color) < 0)
            return BAD(t, COLOUR_WANTED, parts[1]);
        op->has_color = 1;
    }
    op->gravity = IB_GRAVITY_CENTER;
    if (n > 2 && parse_place_gravity(parts[2], &op->gravity) < 0)
        return BAD(t, PLACE_WANTED, parts[2]);
    return 0;
}

/* N[:COLOUR]: N pixels on every side. */
static int parse_border(const op_text_t *t, ib_op_t *op)
{
    char parts[2][IB_OP_STR_MAX];
    long n;
    int k = split_args(t->arg, parts, 2);
    if (k < 0 || parse_whole(parts[0], 1, 100000, &n) < 0)
        return BAD(t, "border wants N[:COLOUR], N pixels from 1 to 100000", t->arg);
    op->w = (unsigned)n;
    if (k > 1) {
        if (ib_color_parse(parts[1], &op->color) < 0)
            return BAD(t, COLOUR_WANTED, parts[1]);
        op->has_color = 1;
    }
    return 0;
}

/* The default trim threshold, sharp's: differences from the background
 * up to 10 (of 255) still count as background, for JPEG noise. */
#define TRIM_DEFAULT 10

static int parse_trim(const op_text_t *t, ib_op_t *op)
{
    op->v[0] = TRIM_DEFAULT;
    if (t->arg == NULL)
        return 0;
    return parse_number(t, op, 0, 1, 255, "trim wants a threshold from 0 to 255");
}

/* FILE[:GRAVITY[:MARGIN[:OPACITY[:WIDTH%]]]]; empty parts keep defaults. */
static int parse_overlay(const op_text_t *t, ib_op_t *op)
{
    char parts[5][IB_OP_STR_MAX];
    int n = split_args(t->arg, parts, 5);
    long margin = 0;
    if (n < 0 || parts[0][0] == '\0')
        return BAD(t, "overlay wants FILE[:GRAVITY[:MARGIN[:OPACITY[:WIDTH%]]]]", t->arg);
    snprintf(op->str, sizeof op->str, "%s", parts[0]);
    op->gravity = IB_GRAVITY_SOUTHEAST;
    op->v[1] = 1.0;
    if (n > 1 && parts[1][0] != '\0' && parse_place_gravity(parts[1], &op->gravity) < 0)
        return BAD(t, PLACE_WANTED, parts[1]);
    if (n > 2 && parts[2][0] != '\0' && parse_whole(parts[2], 0, 100000, &margin) < 0)
        return BAD(t, "overlay's margin is whole pixels from 0 to 100000", parts[2]);
    op->v[0] = (double)margin;
    if (n > 3 && parts[3][0] != '\0' &&
        (parse_double(parts[3], &op->v[1]) < 0 || op->v[1] < 0 || op->v[1] > 1))
        return BAD(t, "overlay's opacity is a number from 0 to 1", parts[3]);
    if (n > 4 && parts[4][0] != '\0') {
        size_t len = strlen(parts[4]);
        if (parts[4][len - 1] != '%')
            return BAD(t, "overlay's width is a share of the image's, like 20%", parts[4]);
        parts[4][len - 1] = '\0';
        if (parse_double(parts[4], &op->v[2]) < 0 || op->v[2] <= 0 || op->v[2] > 100)
            return BAD(t, "overlay's width is a share of the image's, above 0% and up to 100%",
                       t->arg);
    }
    return 0;
}

/* Whether a text template's fields are all known: {stem} {ext} {w} {h}
 * {date} {date:FORMAT}. */
static int text_fields_ok(const char *s, const char **bad_field)
{
    static const char *const known[] = {"{stem}", "{ext}", "{w}", "{h}", "{date}"};
    for (const char *p = strchr(s, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        size_t n = end != NULL ? (size_t)(end - p + 1) : 0;
        int ok = end != NULL && strncmp(p, "{date:", 6) == 0 && n > 7;
        for (size_t i = 0; !ok && end != NULL && i < sizeof known / sizeof known[0]; i++)
            ok = strlen(known[i]) == n && strncmp(p, known[i], n) == 0;
        if (!ok) {
            *bad_field = p;
            return 0;
        }
    }
    return 1;
}

/* STRING[:GRAVITY[:SIZE[:COLOUR]]]; empty parts keep defaults. */
static int parse_text(const op_text_t *t, ib_op_t *op)
{
    char parts[4][IB_OP_STR_MAX];
    int n = split_args(t->arg, parts, 4);
    long size = 24;
    const char *field;
    if (n < 0 || parts[0][0] == '\0')
        return BAD(t, "text wants STRING[:GRAVITY[:SIZE[:COLOUR]]] (\\: for a colon)", t->arg);
    if (!text_fields_ok(parts[0], &field))
        return BAD(t, "text's fields are {stem} {ext} {w} {h} {date} {date:FORMAT}", field);
    snprintf(op->str, sizeof op->str, "%s", parts[0]);
    op->gravity = IB_GRAVITY_SOUTHEAST;
    if (n > 1 && parts[1][0] != '\0' && parse_place_gravity(parts[1], &op->gravity) < 0)
        return BAD(t, PLACE_WANTED, parts[1]);
    if (n > 2 && parts[2][0] != '\0' && parse_whole(parts[2], 1, 10000, &size) < 0)
        return BAD(t, "text's size is whole pixels from 1 to 10000", parts[2]);
    op->v[0] = (double)size;
    op->color = (ib_color_t){255, 255, 255, 255};
    op->has_color = 1;
    if (n > 3 && parts[3][0] != '\0' && ib_color_parse(parts[3], &op->color) < 0)
        return BAD(t, COLOUR_WANTED, parts[3]);
    return 0;
}

static int parse_flatten(const op_text_t *t, ib_op_t *op)
{
    if (t->arg == NULL)
        return 0;
    if (ib_color_parse(t->arg, &op->color) < 0)
        return BAD(t, COLOUR_WANTED, t->arg);
    op->has_color = 1;
    return 0;
}

enum { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

typedef struct {
    const char *name;
    ib_op_kind_t kind;
    int arg;
    int (*parse)(const op_text_t *t, ib_op_t *op);
} op_spec_t;

/* Every op, with the argument it takes and its parser; aliases follow
 * the name they stand for. */
static const op_spec_t op_specs[] = {
    {"resize", IB_OP_RESIZE, ARG_REQUIRED, parse_resize},
    {"crop", IB_OP_CROP, ARG_REQUIRED, parse_crop},
    {"rotate", IB_OP_ROTATE, ARG_REQUIRED, parse_rotate},
    {"autorotate", IB_OP_AUTOROTATE, ARG_NONE, NULL},
    {"flip", IB_OP_FLIP, ARG_NONE, NULL},
    {"flop", IB_OP_FLOP, ARG_NONE, NULL},
    {"grayscale", IB_OP_GRAYSCALE, ARG_NONE, NULL},
    {"greyscale", IB_OP_GRAYSCALE, ARG_NONE, NULL},
    {"blur", IB_OP_BLUR, ARG_REQUIRED, parse_blur},
    {"sharpen", IB_OP_SHARPEN, ARG_OPTIONAL, parse_sharpen},
    {"brightness", IB_OP_BRIGHTNESS, ARG_REQUIRED, parse_factor},
    {"contrast", IB_OP_CONTRAST, ARG_REQUIRED, parse_factor},
    {"gamma", IB_OP_GAMMA, ARG_REQUIRED, parse_gamma},
    {"modulate", IB_OP_MODULATE, ARG_REQUIRED, parse_modulate},
    {"sepia", IB_OP_SEPIA, ARG_NONE, NULL},
    {"negate", IB_OP_NEGATE, ARG_NONE, NULL},
    {"normalize", IB_OP_NORMALIZE, ARG_NONE, NULL},
    {"normalise", IB_OP_NORMALIZE, ARG_NONE, NULL},
    {"threshold", IB_OP_THRESHOLD, ARG_REQUIRED, parse_threshold},
    {"pad", IB_OP_PAD, ARG_REQUIRED, parse_pad},
    {"flatten", IB_OP_FLATTEN, ARG_OPTIONAL, parse_flatten},
    {"trim", IB_OP_TRIM, ARG_OPTIONAL, parse_trim},
    {"border", IB_OP_BORDER, ARG_REQUIRED, parse_border},
    {"overlay", IB_OP_OVERLAY, ARG_REQUIRED, parse_overlay},
    {"text", IB_OP_TEXT, ARG_REQUIRED, parse_text},
};

#define N_OP_SPECS (sizeof op_specs / sizeof op_specs[0])

/* "unknown filter" with the list of known names (aliases left out). */
static int unknown_op(const char *item, size_t nlen, char *err, size_t errlen)
{
    char known[512] = "";
    for (size_t i = 0; i < N_OP_SPECS; i++)
        if (i == 0 || op_specs[i].kind != op_specs[i - 1].kind) {
            strncat(known, i ? " " : "", sizeof known - strlen(known) - 1);
            strncat(known, op_specs[i].name, sizeof known - strlen(known) - 1);
        }
    snprintf(err, errlen, "unknown filter '%.*s' (known: %s)", (int)nlen, item, known);
    return -1;
}

/* Parses one "name[=args]" item into op. */
static int parse_op(const char *item, ib_op_t *op, char *err, size_t errlen)
{
    const char *eq = strchr(item, '=');
    size_t nlen = eq != NULL ? (size_t)(eq - item) : strlen(item);
    op_text_t t = {.item = item, .arg = eq != NULL ? eq + 1 : NULL, .err = err, .errlen = errlen};
    const op_spec_t *spec = NULL;
    for (size_t i = 0; i < N_OP_SPECS && spec == NULL; i++)
        if (strlen(op_specs[i].name) == nlen && strncasecmp(item, op_specs[i].name, nlen) == 0)
            spec = &op_specs[i];
    if (spec == NULL)
        return unknown_op(item, nlen, err, errlen);
    memset(op, 0, sizeof *op);
    op->kind = spec->kind;
    if (spec->arg == ARG_NONE && t.arg != NULL)
        return BAD(&t, "it takes no argument", t.arg);
    if (spec->arg == ARG_REQUIRED && (t.arg == NULL || *t.arg == '\0'))
        return BAD(&t, "it needs an argument (name=value)", t.arg ? t.arg : "");
    return spec->parse != NULL ? spec->parse(&t, op) : 0;
}

/* The next op of a chain at *p: up to a comma that is not escaped ("\,"
 * stays in the item for the op's own parser); NULL at the end. */
static char *next_item(char **p)
{
    char *item = *p;
    if (*item == '\0')
        return NULL;
    char *q = item;
    while (*q != '\0' && *q != ',')
        q += q[0] == '\\' && q[1] != '\0' ? 2 : 1;
    *p = *q == ',' ? q + 1 : q;
    *q = '\0';
    return item;
}

int ib_chain_parse(ib_chain_t *chain, const char *text, char *err, size_t errlen)
{
    char buf[4096];
    if (strlen(text) >= sizeof buf) {
        snprintf(err, errlen, "filter chain too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", text);
    char *at = buf;
    int any = 0;
    for (char *item; (item = next_item(&at)) != NULL;) {
        while (isspace((unsigned char)*item))
            item++;
        size_t n = strlen(item);
        while (n > 0 && isspace((unsigned char)item[n - 1]))
            item[--n] = '\0';
        if (n == 0)
            continue;
        if (chain->n == IB_MAX_OPS) {
            snprintf(err, errlen, "too many filters (at most %d)", IB_MAX_OPS);
            return -1;
        }
        if (parse_op(item, &chain->op[chain->n], err, errlen) < 0)
            return -1;
        chain->n++;
        any = 1;
    }
    if (!any) {
        snprintf(err, errlen, "empty filter chain '%s'", text);
        return -1;
    }
    return 0;
}

void ib_gravity_place(ib_gravity_t g, unsigned w, unsigned h, unsigned bw, unsigned bh,
                      unsigned margin, long *x, long *y)
{
    long W = w, H = h, m = margin;
    long left = m, right = W - (long)bw - m, top = m, bottom = H - (long)bh - m;
    long cx = (W - (long)bw) / 2, cy = (H - (long)bh) / 2;
    switch (g) {
    case IB_GRAVITY_NORTHWEST:
        *x = left, *y = top;
        break;
    case IB_GRAVITY_NORTH:
        *x = cx, *y = top;
        break;
    case IB_GRAVITY_NORTHEAST:
        *x = right, *y = top;
        break;
    case IB_GRAVITY_WEST:
        *x = left, *y = cy;
        break;
    case IB_GRAVITY_EAST:
        *x = right, *y = cy;
        break;
    case IB_GRAVITY_SOUTHWEST:
        *x = left, *y = bottom;
        break;
    case IB_GRAVITY_SOUTH:
        *x = cx, *y = bottom;
        break;
    case IB_GRAVITY_SOUTHEAST:
        *x = right, *y = bottom;
        break;
    default:
        *x = cx, *y = cy;
        break;
    }
}

int ib_chain_size_from_pixels(const ib_chain_t *chain)
{
    for (unsigned i = 0; i < chain->n; i++)
        if (chain->op[i].kind == IB_OP_TRIM)
            return 1;
    return 0;
}

int ib_crop_window(const ib_op_t *op, unsigned w, unsigned h, long *x, long *y, unsigned *cw,
                   unsigned *ch)
{
    long cx = op->x, cy = op->y;
    long W = w, H = h, ww = op->w, hh = op->h;
    switch (op->gravity) {
    case IB_GRAVITY_NONE:
        break;
    case IB_GRAVITY_NORTHWEST:
        cx = cy = 0;
        break;
    case IB_GRAVITY_NORTH:
        cx = W / 2 - ww / 2, cy = 0;
        break;
    case IB_GRAVITY_NORTHEAST:
        cx = W - ww, cy = 0;
        break;
    case IB_GRAVITY_WEST:
        cx = 0, cy = H / 2 - hh / 2;
        break;
    case IB_GRAVITY_CENTER:
        cx = W / 2 - ww / 2, cy = H / 2 - hh / 2;
        break;
    case IB_GRAVITY_EAST:
        cx = W - ww, cy = H / 2 - hh / 2;
        break;
    case IB_GRAVITY_SOUTHWEST:
        cx = 0, cy = H - hh;
        break;
    case IB_GRAVITY_SOUTH:
        cx = W / 2 - ww / 2, cy = H - hh;
        break;
    case IB_GRAVITY_SOUTHEAST:
        cx = W - ww, cy = H - hh;
        break;
    case IB_GRAVITY_ATTENTION:
    case IB_GRAVITY_ENTROPY:
        *x = *y = 0;
        *cw = ww < W ? (unsigned)ww : w;
        *ch = hh < H ? (unsigned)hh : h;
        return 0;
    }
    /* Clip to the image, as ImageMagick's -crop does. */
    long x0 = cx < 0 ? 0 : cx, y0 = cy < 0 ? 0 : cy;
    long x1 = cx + ww > W ? W : cx + ww, y1 = cy + hh > H ? H : cy + hh;
    if (x1 <= x0 || y1 <= y0)
        return -1;
    *x = x0;
    *y = y0;
    *cw = (unsigned)(x1 - x0);
    *ch = (unsigned)(y1 - y0);
    return 0;
}

void ib_pad_size(const ib_op_t *op, unsigned w, unsigned h, unsigned *pw, unsigned *ph)
{
    *pw = op->w > w ? op->w : w;
    *ph = op->h > h ? op->h : h;
}

/* A side as unsigned: a chain of turns and pads can outgrow it, and a
 * double out of an unsigned's range has no defined conversion. */
static unsigned side(double v)
{
    return v < (double)UINT_MAX ? (unsigned)v : UINT_MAX;
}

static void rotated_size(double deg, unsigned w, unsigned h, unsigned *rw, unsigned *rh)
{
    double a = fmod(deg, 360.0);
    if (a < 0)
        a += 360.0;
    if (a == 0 || a == 180) {
        *rw = w, *rh = h;
        return;
    }
    if (a == 90 || a == 270) {
        *rw = h, *rh = w;
        return;
    }
    /* The size libvips' rotate gives (transform.c rounds the turned
     * bounding box to the nearest pixel): this size is promised to
     * --dry-run and to {w}/{h} in names before any pixel is seen. */
    double r = a * M_PI / 180.0;
    double c = fabs(cos(r)), s = fabs(sin(r));
    *rw = side(rint(w * c + h * s));
    *rh = side(rint(w * s + h * c));
}

int ib_chain_size(const ib_chain_t *chain, unsigned w, unsigned h, int orientation, unsigned *out_w,
                  unsigned *out_h)
{
    int refused = 0;
    for (unsigned i = 0; i < chain->n; i++) {
        const ib_op_t *op = &chain->op[i];
        long x, y;
        unsigned a, b;
        switch (op->kind) {
        case IB_OP_RESIZE:
            refused |= ib_geometry_apply(&op->geom, w, h, &a, &b);
            w = a, h = b;
            break;
        case IB_OP_CROP:
            if (ib_crop_window(op, w, h, &x, &y, &a, &b) == 0)
                w = a, h = b;
            break;
        case IB_OP_ROTATE:
            rotated_size(op->v[0], w, h, &a, &b);
            w = a, h = b;
            break;
        case IB_OP_PAD:
            ib_pad_size(op, w, h, &a, &b);
            w = a, h = b;
            break;
        case IB_OP_BORDER:
            w = side((double)w + 2.0 * op->w), h = side((double)h + 2.0 * op->w);
            break;
        case IB_OP_AUTOROTATE:
            /* Orientations 5-8 turn the image a quarter. */
            if (orientation >= 5)
                a = w, w = h, h = a;
            orientation = 1;
            break;
        default:
            break;
        }
    }
    *out_w = w;
    *out_h = h;
    return refused;
}

/* Appends n bytes of s at out[*o]; -1 when they do not fit. */
static int put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n + 1 > cap)
        return -1;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int ib_text_expand(const char *tmpl, const ib_text_vars_t *v, char *out, size_t cap)
{
    size_t o = 0;
    char val[512];
    if (cap == 0)
        return -1;
    out[0] = '\0';
    for (const char *p = tmpl; *p != '\0'; p++) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        size_t n = end != NULL ? (size_t)(end - p + 1) : 0;
        const char *s = NULL;
        if (n == 6 && strncmp(p, "{stem}", 6) == 0)
            s = v->stem;
        else if (n == 5 && strncmp(p, "{ext}", 5) == 0)
            s = v->ext;
        else if (n == 3 && (p[1] == 'w' || p[1] == 'h'))
            snprintf(val, sizeof val, "%u", p[1] == 'w' ? v->w : v->h), s = val;
        else if (n >= 6 && strncmp(p, "{date", 5) == 0 && (p[5] == '}' || p[5] == ':')) {
            char fmt[256];
            snprintf(fmt, sizeof fmt, "%.*s", p[5] == ':' ? (int)(n - 7) : 0, p + 6);
            if (ib_date_format(v->date, fmt, val, sizeof val) < 0)
                val[0] = '\0';
            s = val;
        }
        if (s == NULL) {
            if (put(out, cap, &o, p, 1) < 0)
                return -1;
            continue;
        }
        if (put(out, cap, &o, s, strlen(s)) < 0)
            return -1;
        p = end;
    }
    return 0;
}
