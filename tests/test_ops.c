/*
 * Unit tests for filters/ops.c: the -f chain parser (what it accepts, what
 * each op keeps of its arguments, and the exact message a user sees for a
 * bad chain), the size a chain gives, the crop window of every gravity and
 * the colour parser. Pure functions, no libvips.
 *
 * Expected crop offsets for the compass gravities are what ImageMagick
 * 6.9.11-60 printed for
 *   convert -size 64x48 xc: -gravity G -crop 21x15+0+0 -format '%X%Y' info:
 * (it centres with W/2 - w/2 in whole pixels, so an even image and an odd
 * window put the extra pixel before the window, not after it).
 * Rotated sizes are libvips' (vips rotate): the bounding box of the turned
 * image rounded to the nearest pixel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <string.h>

#include "ops.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Parses text into a fresh chain and fails the test, with the parser's
 * message, if it is refused. */
static void parse_ok(ib_chain_t *chain, const char *text)
{
    char err[512] = "";
    memset(chain, 0, sizeof *chain);
    if (ib_chain_parse(chain, text, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", text, err);
}

/* The one op of a one-op chain. */
static const ib_op_t *one_op(ib_chain_t *chain, const char *text)
{
    parse_ok(chain, text);
    if (chain->n != 1)
        fail_msg("'%s' gave %u ops, expected 1", text, chain->n);
    return &chain->op[0];
}

static void expect_color(const ib_color_t *c, double r, double g, double b, double a)
{
    if (c->r != r || c->g != g || c->b != b || c->a != a)
        fail_msg("colour (%g,%g,%g,%g), expected (%g,%g,%g,%g)", c->r, c->g, c->b, c->a, r, g, b,
                 a);
}

/* ---- valid chains ---- */

/* Ops that take no argument, and their alternative spellings. */
static void parse_ops_without_arguments(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        ib_op_kind_t kind;
    } cases[] = {
        {"autorotate", IB_OP_AUTOROTATE},
        {"flip", IB_OP_FLIP},
        {"flop", IB_OP_FLOP},
        {"grayscale", IB_OP_GRAYSCALE},
        {"greyscale", IB_OP_GRAYSCALE},
        {"sepia", IB_OP_SEPIA},
        {"negate", IB_OP_NEGATE},
        {"normalize", IB_OP_NORMALIZE},
        {"normalise", IB_OP_NORMALIZE},
        {"FLIP", IB_OP_FLIP},
        {"  negate  ", IB_OP_NEGATE},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        const ib_op_t *op = one_op(&chain, cases[i].text);
        if (op->kind != cases[i].kind)
            fail_msg("'%s' parsed as op %d, expected %d", cases[i].text, (int)op->kind,
                     (int)cases[i].kind);
        assert_int_equal(op->has_color, 0);
    }
}

/* geometry.c keeps bits of its own above these. */
#define PUBLIC_FLAGS 0xffu

static void parse_resize(void **state)
{
    (void)state;
    ib_chain_t chain;
    const ib_op_t *op = one_op(&chain, "resize=800x600>");
    assert_int_equal(op->kind, IB_OP_RESIZE);
    assert_true(op->geom.w == 800 && op->geom.h == 600);
    assert_int_equal(op->geom.flags & PUBLIC_FLAGS,
                     IB_GEOM_WIDTH | IB_GEOM_HEIGHT | IB_GEOM_SHRINK);

    op = one_op(&chain, "resize=50%");
    assert_true(op->geom.flags & IB_GEOM_PERCENT);
    op = one_op(&chain, "resize=x120");
    assert_int_equal(op->geom.flags & PUBLIC_FLAGS, IB_GEOM_HEIGHT);
    assert_true(op->geom.h == 120);
    op = one_op(&chain, "resize=100x100^");
    assert_true(op->geom.flags & IB_GEOM_FILL);
    op = one_op(&chain, "resize=100x100!");
    assert_true(op->geom.flags & IB_GEOM_EXACT);
}

static void parse_crop(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned w, h;
        long x, y;
        ib_gravity_t gravity;
    } cases[] = {
        {"crop=100x50", 100, 50, 0, 0, IB_GRAVITY_CENTER},
        {"crop=100x50+10+20", 100, 50, 10, 20, IB_GRAVITY_NONE},
        {"crop=100x50-10-20", 100, 50, -10, -20, IB_GRAVITY_NONE},
        {"crop=100x50+0-7", 100, 50, 0, -7, IB_GRAVITY_NONE},
        {"crop=100x50-3+0", 100, 50, -3, 0, IB_GRAVITY_NONE},
        {"crop=3X4+1+2", 3, 4, 1, 2, IB_GRAVITY_NONE},
        {"crop=10x10:center", 10, 10, 0, 0, IB_GRAVITY_CENTER},
        {"crop=10x10:centre", 10, 10, 0, 0, IB_GRAVITY_CENTER},
        {"crop=10x10:north", 10, 10, 0, 0, IB_GRAVITY_NORTH},
        {"crop=10x10:south", 10, 10, 0, 0, IB_GRAVITY_SOUTH},
        {"crop=10x10:east", 10, 10, 0, 0, IB_GRAVITY_EAST},
        {"crop=10x10:west", 10, 10, 0, 0, IB_GRAVITY_WEST},
        {"crop=10x10:northeast", 10, 10, 0, 0, IB_GRAVITY_NORTHEAST},
        {"crop=10x10:northwest", 10, 10, 0, 0, IB_GRAVITY_NORTHWEST},
        {"crop=10x10:southeast", 10, 10, 0, 0, IB_GRAVITY_SOUTHEAST},
        {"crop=10x10:southwest", 10, 10, 0, 0, IB_GRAVITY_SOUTHWEST},
        {"crop=10x10:attention", 10, 10, 0, 0, IB_GRAVITY_ATTENTION},
        {"crop=10x10:entropy", 10, 10, 0, 0, IB_GRAVITY_ENTROPY},
        {"crop=10x10:NorthEast", 10, 10, 0, 0, IB_GRAVITY_NORTHEAST},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        const ib_op_t *op = one_op(&chain, cases[i].text);
        if (op->kind != IB_OP_CROP || op->w != cases[i].w || op->h != cases[i].h ||
            op->x != cases[i].x || op->y != cases[i].y || op->gravity != cases[i].gravity)
            fail_msg("'%s': kind %d %ux%u%+ld%+ld gravity %d, expected crop %ux%u%+ld%+ld "
                     "gravity %d",
                     cases[i].text, (int)op->kind, op->w, op->h, op->x, op->y, (int)op->gravity,
                     cases[i].w, cases[i].h, cases[i].x, cases[i].y, (int)cases[i].gravity);
    }
}

static void parse_rotate(void **state)
{
    (void)state;
    ib_chain_t chain;
    const ib_op_t *op = one_op(&chain, "rotate=90");
    assert_int_equal(op->kind, IB_OP_ROTATE);
    assert_true(op->v[0] == 90);
    assert_int_equal(op->has_color, 0);

    op = one_op(&chain, "rotate=-12.5");
    assert_true(op->v[0] == -12.5);

    op = one_op(&chain, "rotate=30:#ff000080");
    assert_true(op->v[0] == 30);
    assert_int_equal(op->has_color, 1);
    expect_color(&op->color, 255, 0, 0, 128);

    op = one_op(&chain, "rotate=45:navy");
    assert_int_equal(op->has_color, 1);
    expect_color(&op->color, 0, 0, 128, 255);
}

/* Sigmas, factors and levels keep their value; sharpen defaults to 1. */
static void parse_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        ib_op_kind_t kind;
        double v0;
    } cases[] = {
        {"blur=2", IB_OP_BLUR, 2},
        {"blur=0.3", IB_OP_BLUR, 0.3},
        {"sharpen", IB_OP_SHARPEN, 1},
        {"sharpen=2.5", IB_OP_SHARPEN, 2.5},
        {"brightness=1.5", IB_OP_BRIGHTNESS, 1.5},
        {"brightness=0", IB_OP_BRIGHTNESS, 0},
        {"contrast=0.5", IB_OP_CONTRAST, 0.5},
        {"gamma=2.2", IB_OP_GAMMA, 2.2},
        {"threshold=128", IB_OP_THRESHOLD, 128},
        {"threshold=0", IB_OP_THRESHOLD, 0},
        {"threshold=255", IB_OP_THRESHOLD, 255},
        {"threshold=50%", IB_OP_THRESHOLD, 127.5},
        {"threshold=100%", IB_OP_THRESHOLD, 255},
        {"threshold=0%", IB_OP_THRESHOLD, 0},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        const ib_op_t *op = one_op(&chain, cases[i].text);
        if (op->kind != cases[i].kind || op->v[0] != cases[i].v0)
            fail_msg("'%s': op %d value %g, expected op %d value %g", cases[i].text, (int)op->kind,
                     op->v[0], (int)cases[i].kind, cases[i].v0);
    }
}

/* B, B:S and B:S:H; missing parts keep the image (100). */
static void parse_modulate(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double b, s, h;
    } cases[] = {
        {"modulate=120", 120, 100, 100},
        {"modulate=120:50", 120, 50, 100},
        {"modulate=120:50:200", 120, 50, 200},
        {"modulate=100:0", 100, 0, 100},
        {"modulate=80.5:0:0", 80.5, 0, 0},
        /* An empty part keeps the image; it must not shift the next one. */
        {"modulate=100::50", 100, 100, 50},
        {"modulate=:0", 100, 0, 100},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        const ib_op_t *op = one_op(&chain, cases[i].text);
        if (op->kind != IB_OP_MODULATE || op->v[0] != cases[i].b || op->v[1] != cases[i].s ||
            op->v[2] != cases[i].h)
            fail_msg("'%s': B:S:H %g:%g:%g, expected %g:%g:%g", cases[i].text, op->v[0], op->v[1],
                     op->v[2], cases[i].b, cases[i].s, cases[i].h);
    }
}

static void parse_pad_and_flatten(void **state)
{
    (void)state;
    ib_chain_t chain;
    const ib_op_t *op = one_op(&chain, "pad=300x200");
    assert_int_equal(op->kind, IB_OP_PAD);
    assert_int_equal(op->w, 300);
    assert_int_equal(op->h, 200);
    assert_int_equal(op->has_color, 0);

    op = one_op(&chain, "pad=300x200:#0f0");
    assert_int_equal(op->has_color, 1);
    expect_color(&op->color, 0, 255, 0, 255);

    op = one_op(&chain, "pad=7x9:#12345678");
    assert_int_equal(op->w, 7);
    assert_int_equal(op->h, 9);
    expect_color(&op->color, 0x12, 0x34, 0x56, 0x78);

    op = one_op(&chain, "pad=10x10:transparent");
    expect_color(&op->color, 0, 0, 0, 0);

    op = one_op(&chain, "flatten");
    assert_int_equal(op->kind, IB_OP_FLATTEN);
    assert_int_equal(op->has_color, 0);

    op = one_op(&chain, "flatten=#00ff00");
    assert_int_equal(op->has_color, 1);
    expect_color(&op->color, 0, 255, 0, 255);

    op = one_op(&chain, "flatten=Black");
    expect_color(&op->color, 0, 0, 0, 255);
}

/* Ops come out in the order given, across items and across calls (one
 * call per -f option). */
static void parse_appends_in_order(void **state)
{
    (void)state;
    ib_chain_t chain;
    char err[256];
    parse_ok(&chain, "resize=800x600>, sharpen ,grayscale");
    assert_int_equal(chain.n, 3);
    assert_int_equal(ib_chain_parse(&chain, "flip", err, sizeof err), 0);
    assert_int_equal(ib_chain_parse(&chain, "crop=10x10:north,,negate,", err, sizeof err), 0);
    static const ib_op_kind_t want[] = {IB_OP_RESIZE, IB_OP_SHARPEN, IB_OP_GRAYSCALE,
                                        IB_OP_FLIP,   IB_OP_CROP,    IB_OP_NEGATE};
    assert_int_equal(chain.n, N_ELEMS(want));
    for (size_t i = 0; i < N_ELEMS(want); i++)
        assert_int_equal(chain.op[i].kind, want[i]);
    assert_int_equal(chain.op[4].gravity, IB_GRAVITY_NORTH);
}

/* ---- refused chains: the whole message ---- */

#define GRAVITIES                                                                                  \
    "crop gravity is center, north, south, east, west, northeast, northwest, southeast, "          \
    "southwest, attention or entropy"
#define COLOUR "the colour is #rrggbb, #rrggbbaa or a name"

#define PLACE                                                                                      \
    "the gravity is center, north, south, east, west, northeast, northwest, southeast or "         \
    "southwest"

/* A chain and the one message it must be refused with. */
typedef struct {
    const char *text;
    const char *message;
} refusal_t;

/* How many of the chains are not refused with exactly their message, or
 * (with none_kept) keep ops; each one printed. */
static size_t wrong_refusals(const refusal_t *cases, size_t n, int none_kept)
{
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        ib_chain_t chain = {.n = 0};
        char err[512] = "";
        const char *want = cases[i].message;
        int rc = ib_chain_parse(&chain, cases[i].text, err, sizeof err);
        if (rc != -1)
            print_message("'%s' accepted (%u ops), expected: %s\n", cases[i].text, chain.n, want);
        else if (strcmp(err, want) != 0)
            print_message("'%s':\n  got:      %s\n  expected: %s\n", cases[i].text, err, want);
        else if (none_kept && chain.n != 0)
            print_message("'%s' refused, but %u ops kept\n", cases[i].text, chain.n);
        else
            continue;
        wrong++;
    }
    return wrong;
}

static void parse_refuses_with_exact_messages(void **state)
{
    (void)state;
    static const refusal_t cases[] = {
        {"bogus", "unknown filter 'bogus' (known: resize crop rotate autorotate flip flop "
                  "grayscale blur sharpen brightness contrast gamma modulate sepia negate "
                  "normalize threshold pad flatten trim border overlay text)"},
        {"flip,blurr=2", "unknown filter 'blurr' (known: resize crop rotate autorotate flip flop "
                         "grayscale blur sharpen brightness contrast gamma modulate sepia negate "
                         "normalize threshold pad flatten trim border overlay text)"},
        {"blur", "bad filter 'blur': it needs an argument (name=value), not ''"},
        {"blur=", "bad filter 'blur=': it needs an argument (name=value), not ''"},
        {"resize", "bad filter 'resize': it needs an argument (name=value), not ''"},
        {"crop", "bad filter 'crop': it needs an argument (name=value), not ''"},
        {"rotate", "bad filter 'rotate': it needs an argument (name=value), not ''"},
        {"pad", "bad filter 'pad': it needs an argument (name=value), not ''"},
        {"threshold=", "bad filter 'threshold=': it needs an argument (name=value), not ''"},
        {"modulate", "bad filter 'modulate': it needs an argument (name=value), not ''"},
        {"flip=1", "bad filter 'flip=1': it takes no argument, not '1'"},
        {"negate=yes", "bad filter 'negate=yes': it takes no argument, not 'yes'"},
        {"grayscale=", "bad filter 'grayscale=': it takes no argument, not ''"},
        {"blur=banana", "bad filter 'blur=banana': blur wants a sigma above 0, not 'banana'"},
        {"blur=0", "bad filter 'blur=0': blur wants a sigma above 0, not '0'"},
        {"blur=-2", "bad filter 'blur=-2': blur wants a sigma above 0, not '-2'"},
        {"blur=2px", "bad filter 'blur=2px': blur wants a sigma above 0, not '2px'"},
        {"blur=nan", "bad filter 'blur=nan': blur wants a sigma above 0, not 'nan'"},
        {"sharpen=-1", "bad filter 'sharpen=-1': sharpen wants a sigma above 0, not '-1'"},
        {"sharpen=0", "bad filter 'sharpen=0': sharpen wants a sigma above 0, not '0'"},
        {"brightness=-1",
         "bad filter 'brightness=-1': it wants a factor (1 keeps the image), not '-1'"},
        {"contrast=x", "bad filter 'contrast=x': it wants a factor (1 keeps the image), not 'x'"},
        {"gamma=0", "bad filter 'gamma=0': gamma wants a number above 0, not '0'"},
        {"resize=abc", "bad filter 'resize=abc': resize wants a geometry like 800x600>, not 'abc'"},
        {"resize=0x0", "bad filter 'resize=0x0': resize wants a geometry like 800x600>, not '0x0'"},
        {"crop=0x10", "bad filter 'crop=0x10': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '0x10'"},
        {"crop=10", "bad filter 'crop=10': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '10'"},
        {"crop=10x", "bad filter 'crop=10x': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '10x'"},
        {"crop=-10x10",
         "bad filter 'crop=-10x10': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '-10x10'"},
        {"crop=10x10+5",
         "bad filter 'crop=10x10+5': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '10x10+5'"},
        {"crop=10x10+5+",
         "bad filter 'crop=10x10+5+': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not '10x10+5+'"},
        {"crop=10x10+5+5x",
         "bad filter 'crop=10x10+5+5x': crop wants WxH, WxH+X+Y or WxH:GRAVITY, not "
         "'10x10+5+5x'"},
        {"crop=10x10:middle", "bad filter 'crop=10x10:middle': " GRAVITIES ", not 'middle'"},
        {"crop=10x10:", "bad filter 'crop=10x10:': " GRAVITIES ", not ''"},
        {"pad=10", "bad filter 'pad=10': pad wants WxH[:COLOUR[:GRAVITY]], not '10'"},
        {"pad=0x10", "bad filter 'pad=0x10': pad wants WxH[:COLOUR[:GRAVITY]], not '0x10'"},
        {"pad=10x10:#12345", "bad filter 'pad=10x10:#12345': " COLOUR ", not '#12345'"},
        {"pad=10x10:mauve", "bad filter 'pad=10x10:mauve': " COLOUR ", not 'mauve'"},
        {"pad=10x10:", "bad filter 'pad=10x10:': " COLOUR ", not ''"},
        {"pad=10x10:red:middle", "bad filter 'pad=10x10:red:middle': " PLACE ", not 'middle'"},
        {"pad=10x10:red:entropy", "bad filter 'pad=10x10:red:entropy': " PLACE ", not 'entropy'"},
        {"pad=10x10:red:north:x",
         "bad filter 'pad=10x10:red:north:x': pad wants WxH[:COLOUR[:GRAVITY]], not "
         "'10x10:red:north:x'"},
        {"trim=300", "bad filter 'trim=300': trim wants a threshold from 0 to 255, not '300'"},
        {"trim=x", "bad filter 'trim=x': trim wants a threshold from 0 to 255, not 'x'"},
        {"border", "bad filter 'border': it needs an argument (name=value), not ''"},
        {"border=0",
         "bad filter 'border=0': border wants N[:COLOUR], N pixels from 1 to 100000, not '0'"},
        {"border=2.5",
         "bad filter 'border=2.5': border wants N[:COLOUR], N pixels from 1 to 100000, not "
         "'2.5'"},
        {"border=5:mauve", "bad filter 'border=5:mauve': " COLOUR ", not 'mauve'"},
        {"overlay", "bad filter 'overlay': it needs an argument (name=value), not ''"},
        {"overlay=:north",
         "bad filter 'overlay=:north': overlay wants FILE[:GRAVITY[:MARGIN[:OPACITY[:WIDTH%]]]], "
         "not ':north'"},
        {"overlay=w.png:up", "bad filter 'overlay=w.png:up': " PLACE ", not 'up'"},
        {"overlay=w.png:north:-3",
         "bad filter 'overlay=w.png:north:-3': overlay's margin is whole pixels from 0 to "
         "100000, not '-3'"},
        {"overlay=w.png:north:3:1.5",
         "bad filter 'overlay=w.png:north:3:1.5': overlay's opacity is a number from 0 to 1, "
         "not '1.5'"},
        {"overlay=w.png:north:3:0.5:20",
         "bad filter 'overlay=w.png:north:3:0.5:20': overlay's width is a share of the "
         "image's, like 20%, not '20'"},
        {"overlay=w.png:north:3:0.5:0%",
         "bad filter 'overlay=w.png:north:3:0.5:0%': overlay's width is a share of the "
         "image's, above 0% and up to 100%, not 'w.png:north:3:0.5:0%'"},
        {"overlay=a:b:c:d:e:f", "bad filter 'overlay=a:b:c:d:e:f': overlay wants "
                                "FILE[:GRAVITY[:MARGIN[:OPACITY[:WIDTH%]]]], not 'a:b:c:d:e:f'"},
        {"text=hi {name}",
         "bad filter 'text=hi {name}': text's fields are {stem} {ext} {w} {h} {date} "
         "{date:FORMAT}, not '{name}'"},
        {"text=hi:top", "bad filter 'text=hi:top': " PLACE ", not 'top'"},
        {"text=hi:north:0",
         "bad filter 'text=hi:north:0': text's size is whole pixels from 1 to 10000, not '0'"},
        {"text=hi:north:12:mauve", "bad filter 'text=hi:north:12:mauve': " COLOUR ", not 'mauve'"},
        {"rotate=abc", "bad filter 'rotate=abc': rotate wants degrees (clockwise), not 'abc'"},
        {"rotate=45:#zzzzzz", "bad filter 'rotate=45:#zzzzzz': " COLOUR ", not '#zzzzzz'"},
        {"rotate=:red", "bad filter 'rotate=:red': rotate wants degrees (clockwise), not ''"},
        {"flatten=#12", "bad filter 'flatten=#12': " COLOUR ", not '#12'"},
        {"modulate=a:b", "bad filter 'modulate=a:b': modulate wants B:S:H in percent (100 keeps), "
                         "not 'a'"},
        {"modulate=1:2:3:4", "bad filter 'modulate=1:2:3:4': modulate wants B:S:H in percent (100 "
                             "keeps), not '1:2:3:4'"},
        {"threshold=300",
         "bad filter 'threshold=300': threshold wants a level 0-255 or 0%-100%, not '300'"},
        {"threshold=101%",
         "bad filter 'threshold=101%': threshold wants a level 0-255 or 0%-100%, not '101%'"},
        {"threshold=%",
         "bad filter 'threshold=%': threshold wants a level 0-255 or 0%-100%, not '%'"},
    };
    size_t wrong = wrong_refusals(cases, N_ELEMS(cases), 0);
    if (wrong > 0)
        fail_msg("%zu of %zu bad chains not refused with the expected message", wrong,
                 N_ELEMS(cases));
}

/* The ops of the edits: what each keeps of its arguments and its
 * defaults, and the escapes that put a comma or colon in a value. */
static void parse_edit_ops(void **state)
{
    (void)state;
    ib_chain_t chain;
    const ib_op_t *op = one_op(&chain, "trim");
    assert_int_equal(op->kind, IB_OP_TRIM);
    assert_true(op->v[0] == 10);
    assert_true(one_op(&chain, "trim=0")->v[0] == 0);
    op = one_op(&chain, "border=7");
    assert_int_equal(op->kind, IB_OP_BORDER);
    assert_int_equal(op->w, 7);
    assert_false(op->has_color);
    op = one_op(&chain, "border=3:#102030");
    assert_true(op->has_color);
    expect_color(&op->color, 0x10, 0x20, 0x30, 255);
    op = one_op(&chain, "pad=80x60");
    assert_int_equal(op->gravity, IB_GRAVITY_CENTER);
    op = one_op(&chain, "pad=80x60::northwest");
    assert_int_equal(op->gravity, IB_GRAVITY_NORTHWEST);
    assert_false(op->has_color);
    op = one_op(&chain, "pad=80x60:red:South");
    assert_int_equal(op->gravity, IB_GRAVITY_SOUTH);
    expect_color(&op->color, 255, 0, 0, 255);

    op = one_op(&chain, "overlay=logo.png");
    assert_int_equal(op->kind, IB_OP_OVERLAY);
    assert_string_equal(op->str, "logo.png");
    assert_int_equal(op->gravity, IB_GRAVITY_SOUTHEAST);
    assert_true(op->v[0] == 0 && op->v[1] == 1 && op->v[2] == 0);
    op = one_op(&chain, "overlay=a\\:b\\,c.png:north:12:0.25:30%");
    assert_string_equal(op->str, "a:b,c.png");
    assert_int_equal(op->gravity, IB_GRAVITY_NORTH);
    assert_true(op->v[0] == 12 && op->v[1] == 0.25 && op->v[2] == 30);
    op = one_op(&chain, "overlay=x.png:::0.5");
    assert_int_equal(op->gravity, IB_GRAVITY_SOUTHEAST);
    assert_true(op->v[0] == 0 && op->v[1] == 0.5);

    op = one_op(&chain, "text=Hi");
    assert_int_equal(op->kind, IB_OP_TEXT);
    assert_string_equal(op->str, "Hi");
    assert_int_equal(op->gravity, IB_GRAVITY_SOUTHEAST);
    assert_true(op->v[0] == 24);
    expect_color(&op->color, 255, 255, 255, 255);
    op = one_op(&chain, "text=Shot\\: {stem}\\, {date:%H:%M}:northwest:40:#ff000080");
    assert_string_equal(op->str, "Shot: {stem}, {date:%H:%M}");
    assert_int_equal(op->gravity, IB_GRAVITY_NORTHWEST);
    assert_true(op->v[0] == 40);
    expect_color(&op->color, 255, 0, 0, 128);
    /* An escaped comma keeps the op whole; a plain one starts the next. */
    parse_ok(&chain, "text=a\\,b,flip");
    assert_int_equal(chain.n, 2);
    assert_string_equal(chain.op[0].str, "a,b");
    assert_int_equal(chain.op[1].kind, IB_OP_FLIP);
}

/* Fields of a text op, filled in. */
static void text_fields_expand(void **state)
{
    (void)state;
    char out[256];
    /* 2021-03-04 05:06:07 as wall-clock seconds */
    ib_text_vars_t v = {.stem = "IMG_1", .ext = "jpg", .w = 640, .h = 480, .date = 1614834367};
    assert_int_equal(
        ib_text_expand("{stem}.{ext} {w}x{h} {date} {date:%H.%M} {x}", &v, out, sizeof out), 0);
    assert_string_equal(out, "IMG_1.jpg 640x480 2021-03-04 05.06 {x}");
    assert_int_equal(ib_text_expand("{stem}{stem}", &v, out, 8), -1);
}

/* Sizes after border, and the place of a box at each gravity. */
static void border_size_and_places(void **state)
{
    (void)state;
    ib_chain_t chain;
    unsigned w, h;
    parse_ok(&chain, "border=5,trim");
    ib_chain_size(&chain, 64, 48, 1, &w, &h);
    assert_int_equal(w, 74);
    assert_int_equal(h, 58);
    assert_true(ib_chain_size_from_pixels(&chain));
    parse_ok(&chain, "border=5");
    assert_false(ib_chain_size_from_pixels(&chain));
    static const struct {
        ib_gravity_t g;
        long x, y;
    } cases[] = {
        {IB_GRAVITY_NORTHWEST, 3, 3},  {IB_GRAVITY_NORTH, 40, 3},   {IB_GRAVITY_NORTHEAST, 77, 3},
        {IB_GRAVITY_WEST, 3, 35},      {IB_GRAVITY_CENTER, 40, 35}, {IB_GRAVITY_EAST, 77, 35},
        {IB_GRAVITY_SOUTHWEST, 3, 67}, {IB_GRAVITY_SOUTH, 40, 67},  {IB_GRAVITY_SOUTHEAST, 77, 67},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        long x, y;
        ib_gravity_place(cases[i].g, 100, 80, 20, 10, 3, &x, &y);
        if (x != cases[i].x || y != cases[i].y)
            fail_msg("gravity %d: (%ld,%ld), expected (%ld,%ld)", (int)cases[i].g, x, y, cases[i].x,
                     cases[i].y);
    }
}

/* At most IB_MAX_OPS ops, counted over every -f option together. */
static void parse_refuses_too_many_ops(void **state)
{
    (void)state;
    char text[IB_MAX_OPS * 8 + 16] = "", err[256] = "";
    ib_chain_t chain = {.n = 0};
    for (int i = 0; i < IB_MAX_OPS; i++)
        strcat(text, i ? ",flip" : "flip");
    assert_int_equal(ib_chain_parse(&chain, text, err, sizeof err), 0);
    assert_int_equal(chain.n, IB_MAX_OPS);
    assert_int_equal(ib_chain_parse(&chain, "flop", err, sizeof err), -1);
    assert_string_equal(err, "too many filters (at most 32)");

    memset(&chain, 0, sizeof chain);
    strcat(text, ",negate");
    assert_int_equal(ib_chain_parse(&chain, text, err, sizeof err), -1);
    assert_string_equal(err, "too many filters (at most 32)");

    memset(&chain, 0, sizeof chain);
    assert_int_equal(ib_chain_parse(&chain, "flip,flop,negate", err, sizeof err), 0);
    for (int i = 3; i < IB_MAX_OPS; i++)
        assert_int_equal(ib_chain_parse(&chain, "sepia", err, sizeof err), 0);
    assert_int_equal(ib_chain_parse(&chain, "sepia", err, sizeof err), -1);
    assert_string_equal(err, "too many filters (at most 32)");
}

static void parse_refuses_empty_chains(void **state)
{
    (void)state;
    static const refusal_t cases[] = {
        {"", "empty filter chain ''"},
        {",", "empty filter chain ','"},
        {" , ,", "empty filter chain ' , ,'"},
        {"   ", "empty filter chain '   '"},
    };
    assert_int_equal(wrong_refusals(cases, N_ELEMS(cases), 1), 0);

    char huge[5000];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ib_chain_t chain = {.n = 0};
    char err[256] = "";
    assert_int_equal(ib_chain_parse(&chain, huge, err, sizeof err), -1);
    assert_string_equal(err, "filter chain too long");
}

/* A message longer than the caller's buffer is cut, never overrun. */
static void parse_error_fits_the_buffer(void **state)
{
    (void)state;
    char err[32];
    ib_chain_t chain = {.n = 0};
    memset(err, '#', sizeof err);
    assert_int_equal(ib_chain_parse(&chain, "bogus", err, 10), -1);
    assert_int_equal(strlen(err), 9);
    assert_memory_equal(err, "unknown f", 9);
    assert_int_equal(err[10], '#');
}

/* ---- colours ---- */

static void color_parse_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double r, g, b, a;
    } good[] = {
        {"#000", 0, 0, 0, 255},        {"#fff", 255, 255, 255, 255},
        {"#f80", 255, 136, 0, 255},    {"#1a2B3c", 0x1a, 0x2b, 0x3c, 255},
        {"#FF000080", 255, 0, 0, 128}, {"#00000000", 0, 0, 0, 0},
        {"white", 255, 255, 255, 255}, {"black", 0, 0, 0, 255},
        {"red", 255, 0, 0, 255},       {"green", 0, 128, 0, 255},
        {"lime", 0, 255, 0, 255},      {"Blue", 0, 0, 255, 255},
        {"GREY", 128, 128, 128, 255},  {"gray", 128, 128, 128, 255},
        {"orange", 255, 165, 0, 255},  {"transparent", 0, 0, 0, 0},
        {"none", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        ib_color_t c = {-1, -1, -1, -1};
        if (ib_color_parse(good[i].text, &c) != 0)
            fail_msg("'%s' refused", good[i].text);
        if (c.r != good[i].r || c.g != good[i].g || c.b != good[i].b || c.a != good[i].a)
            fail_msg("'%s' gave (%g,%g,%g,%g), expected (%g,%g,%g,%g)", good[i].text, c.r, c.g, c.b,
                     c.a, good[i].r, good[i].g, good[i].b, good[i].a);
    }

    static const char *const bad[] = {"",         "#",       "#ff",      "#ffff",     "#fffff",
                                      "#fffffff", "#gggggg", "#12345g",  "ff0000",    "redd",
                                      "# fff",    "#fff ",   "#1234567", "#fffffffff"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        ib_color_t c;
        if (ib_color_parse(bad[i], &c) != -1)
            fail_msg("'%s' accepted as (%g,%g,%g,%g)", bad[i], c.r, c.g, c.b, c.a);
    }
}

/* ---- sizes ---- */

static void chain_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *chain;
        unsigned in_w, in_h, out_w, out_h;
        int refused;
    } cases[] = {
        {"flip,negate,blur=3", 640, 480, 640, 480, 0},
        {"resize=50%", 640, 480, 320, 240, 0},
        {"resize=320x320", 640, 480, 320, 240, 0},
        {"resize=50%,crop=10x10+0+0", 100, 80, 10, 10, 0},
        {"rotate=90", 100, 80, 80, 100, 0},
        {"rotate=-90", 100, 80, 80, 100, 0},
        {"rotate=270", 100, 80, 80, 100, 0},
        {"rotate=450", 100, 80, 80, 100, 0},
        {"rotate=180", 100, 80, 100, 80, 0},
        {"rotate=-360", 100, 80, 100, 80, 0},
        {"rotate=90,rotate=90", 100, 80, 100, 80, 0},
        /* libvips: the turned bounding box to the nearest pixel */
        {"rotate=30", 64, 48, 79, 74, 0},
        {"rotate=45", 100, 100, 141, 141, 0},
        {"rotate=10", 37, 91, 52, 96, 0},
        {"rotate=200", 200, 10, 191, 78, 0},
        {"rotate=-30", 64, 48, 79, 74, 0},
        {"pad=200x50", 100, 80, 200, 80, 0},
        {"pad=50x50", 100, 80, 100, 80, 0},
        {"pad=300x300:red", 100, 80, 300, 300, 0},
        {"crop=500x20:center", 100, 80, 100, 20, 0},
        {"crop=50x50-10-10", 100, 80, 40, 40, 0},
        {"crop=50x50+80+70", 100, 80, 20, 10, 0},
        {"crop=30x30:attention", 100, 80, 30, 30, 0},
        {"crop=300x30:entropy", 100, 80, 100, 30, 0},
        {"resize=100x100,rotate=90,pad=120x120,crop=50x60:north", 200, 100, 50, 60, 0},
        {"crop=60x40+0+0,rotate=90,resize=200%", 100, 100, 80, 120, 0},
        {"pad=120x100,resize=60x", 100, 80, 60, 50, 0},
        {"resize=20000x", 100, 100, 100, 100, 1},
        {"resize=20000x,crop=10x10", 100, 100, 10, 10, 1},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        unsigned w = 0, h = 0;
        parse_ok(&chain, cases[i].chain);
        int refused = ib_chain_size(&chain, cases[i].in_w, cases[i].in_h, 1, &w, &h);
        if (w != cases[i].out_w || h != cases[i].out_h || refused != cases[i].refused)
            fail_msg("%ux%u through '%s': %ux%u (refused %d), expected %ux%u (refused %d)",
                     cases[i].in_w, cases[i].in_h, cases[i].chain, w, h, refused, cases[i].out_w,
                     cases[i].out_h, cases[i].refused);
    }
}

/* ---- crop windows ---- */

/* Which test a window case belongs to. */
enum { WINDOW_GRAVITY, WINDOW_CLIPPING, WINDOW_SMART };

typedef struct {
    int topic;
    const char *crop;
    unsigned w, h; /* the image */
    int rc;
    long x, y;
    unsigned cw, ch;
} window_case_t;

static const window_case_t window_cases[] = {
    /* Each compass gravity where ImageMagick puts it (see the file
     * header), on even and odd images. */
    {WINDOW_GRAVITY, "crop=21x15:northwest", 64, 48, 0, 0, 0, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:north", 64, 48, 0, 22, 0, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:northeast", 64, 48, 0, 43, 0, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:west", 64, 48, 0, 0, 17, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:center", 64, 48, 0, 22, 17, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15", 64, 48, 0, 22, 17, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:east", 64, 48, 0, 43, 17, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:southwest", 64, 48, 0, 0, 33, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:south", 64, 48, 0, 22, 33, 21, 15},
    {WINDOW_GRAVITY, "crop=21x15:southeast", 64, 48, 0, 43, 33, 21, 15},
    /* convert -size 63x47 / 63x48 xc: -gravity center -crop ... */
    {WINDOW_GRAVITY, "crop=21x15:center", 63, 47, 0, 21, 16, 21, 15},
    {WINDOW_GRAVITY, "crop=20x14:center", 63, 47, 0, 21, 16, 20, 14},
    {WINDOW_GRAVITY, "crop=20x14:center", 64, 48, 0, 22, 17, 20, 14},
    {WINDOW_GRAVITY, "crop=21x15:center", 63, 48, 0, 21, 17, 21, 15},
    {WINDOW_GRAVITY, "crop=64x48:center", 64, 48, 0, 0, 0, 64, 48},
    /* Windows reaching past an edge are cut to the image, as -crop does;
     * windows that miss it are refused. */
    {WINDOW_CLIPPING, "crop=30x30+50+40", 64, 48, 0, 50, 40, 14, 8},
    {WINDOW_CLIPPING, "crop=30x30-10-20", 64, 48, 0, 0, 0, 20, 10},
    {WINDOW_CLIPPING, "crop=100x10:northeast", 64, 48, 0, 0, 0, 64, 10},
    {WINDOW_CLIPPING, "crop=10x100:southwest", 64, 48, 0, 0, 0, 10, 48},
    {WINDOW_CLIPPING, "crop=100x100:center", 64, 48, 0, 0, 0, 64, 48},
    {WINDOW_CLIPPING, "crop=101x101:south", 64, 48, 0, 0, 0, 64, 48},
    {WINDOW_CLIPPING, "crop=1x1+63+47", 64, 48, 0, 63, 47, 1, 1},
    {WINDOW_CLIPPING, "crop=10x10+64+0", 64, 48, -1, 0, 0, 0, 0},
    {WINDOW_CLIPPING, "crop=10x10+0+48", 64, 48, -1, 0, 0, 0, 0},
    {WINDOW_CLIPPING, "crop=10x10-10+0", 64, 48, -1, 0, 0, 0, 0},
    {WINDOW_CLIPPING, "crop=10x10+0-10", 64, 48, -1, 0, 0, 0, 0},
    {WINDOW_CLIPPING, "crop=10x10+1000+1000", 64, 48, -1, 0, 0, 0, 0},
    /* The smart crops know only their size beforehand. */
    {WINDOW_SMART, "crop=21x15:attention", 64, 48, 0, 0, 0, 21, 15},
    {WINDOW_SMART, "crop=21x15:entropy", 64, 48, 0, 0, 0, 21, 15},
    {WINDOW_SMART, "crop=100x15:attention", 64, 48, 0, 0, 0, 64, 15},
    {WINDOW_SMART, "crop=21x100:entropy", 64, 48, 0, 0, 0, 21, 48},
};

/* The window of each case of the topic. */
static void check_windows(int topic)
{
    for (size_t i = 0; i < N_ELEMS(window_cases); i++) {
        const window_case_t *c = &window_cases[i];
        ib_chain_t chain;
        long x = -99, y = -99;
        unsigned cw = 0, ch = 0;
        if (c->topic != topic)
            continue;
        int rc = ib_crop_window(one_op(&chain, c->crop), c->w, c->h, &x, &y, &cw, &ch);
        if (rc != c->rc)
            fail_msg("'%s' on %ux%u: returned %d, expected %d", c->crop, c->w, c->h, rc, c->rc);
        if (rc == 0 && (x != c->x || y != c->y || cw != c->cw || ch != c->ch))
            fail_msg("'%s' on %ux%u: window %ux%u%+ld%+ld, expected %ux%u%+ld%+ld", c->crop, c->w,
                     c->h, cw, ch, x, y, c->cw, c->ch, c->x, c->y);
    }
}

static void crop_window_gravities(void **state)
{
    (void)state;
    check_windows(WINDOW_GRAVITY);
}

static void crop_window_clipping(void **state)
{
    (void)state;
    check_windows(WINDOW_CLIPPING);
}

static void crop_window_smart(void **state)
{
    (void)state;
    check_windows(WINDOW_SMART);
}

/* The canvas of each pad on a 64x48 image. */
static void pad_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *pad;
        unsigned pw, ph;
    } cases[] = {
        {"pad=100x100", 100, 100}, {"pad=10x100", 64, 100}, {"pad=100x10", 100, 48},
        {"pad=1x1", 64, 48},       {"pad=64x48", 64, 48},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ib_chain_t chain;
        unsigned pw, ph;
        ib_pad_size(one_op(&chain, cases[i].pad), 64, 48, &pw, &ph);
        if (pw != cases[i].pw || ph != cases[i].ph)
            fail_msg("'%s' on 64x48: %ux%u, expected %ux%u", cases[i].pad, pw, ph, cases[i].pw,
                     cases[i].ph);
    }
}

/* An autorotate op turns the size when the orientation is a quarter turn. */
static void autorotate_turns_the_size(void **state)
{
    (void)state;
    ib_chain_t chain = {.n = 0};
    char err[256];
    unsigned w, h;
    assert_int_equal(ib_chain_parse(&chain, "autorotate,crop=100x50+0+0", err, sizeof err), 0);
    for (int o = 1; o <= 8; o++) {
        ib_chain_size(&chain, 600, 450, o, &w, &h);
        assert_int_equal(w, 100);
        assert_int_equal(h, 50);
    }
    chain.n = 1;
    ib_chain_size(&chain, 600, 450, 6, &w, &h);
    assert_int_equal(w, 450);
    assert_int_equal(h, 600);
    ib_chain_size(&chain, 600, 450, 3, &w, &h);
    assert_int_equal(w, 600);
    assert_int_equal(h, 450);
    /* Once upright (orientation 1), a second autorotate changes nothing. */
    ib_chain_t twice = {.n = 0};
    assert_int_equal(ib_chain_parse(&twice, "autorotate,autorotate", err, sizeof err), 0);
    ib_chain_size(&twice, 600, 450, 8, &w, &h);
    assert_int_equal(w, 450);
    assert_int_equal(h, 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(autorotate_turns_the_size),
        cmocka_unit_test(parse_ops_without_arguments),
        cmocka_unit_test(parse_resize),
        cmocka_unit_test(parse_crop),
        cmocka_unit_test(parse_rotate),
        cmocka_unit_test(parse_numbers),
        cmocka_unit_test(parse_modulate),
        cmocka_unit_test(parse_pad_and_flatten),
        cmocka_unit_test(parse_appends_in_order),
        cmocka_unit_test(parse_refuses_with_exact_messages),
        cmocka_unit_test(parse_refuses_too_many_ops),
        cmocka_unit_test(parse_refuses_empty_chains),
        cmocka_unit_test(parse_error_fits_the_buffer),
        cmocka_unit_test(color_parse_forms),
        cmocka_unit_test(chain_sizes),
        cmocka_unit_test(crop_window_gravities),
        cmocka_unit_test(crop_window_clipping),
        cmocka_unit_test(crop_window_smart),
        cmocka_unit_test(pad_sizes),
        cmocka_unit_test(parse_edit_ops),
        cmocka_unit_test(text_fields_expand),
        cmocka_unit_test(border_size_and_places),
    };
    return ib_test_run_suite(tests, NULL, NULL);
}
