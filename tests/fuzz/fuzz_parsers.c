/*
 * libFuzzer harness for the pure parsers that see what users type and the
 * first bytes of every scanned file: ib_sniff_magic(), the -s geometry,
 * the -f op chain and its colours, and the sizes they give. No libvips.
 *
 * NOTES
 * - Input layout: bytes 0-5 are an image size (two 24-bit numbers, plus
 *   one, as a probe can report them); the rest, as a C string, is handed
 *   to every text parser. The sniffer sees the whole input.
 * - Besides the sanitizers, the harness checks what the headers promise:
 *   a geometry never gives a 0 side, a crop window lies inside the image,
 *   a pad is never smaller than the image. A broken promise aborts.
 * - The text is copied into a buffer of exactly its length plus the NUL,
 *   so AddressSanitizer sees any read past its end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "geometry.h"
#include "ops.h"
#include "sniff.h"

static void broken(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_parsers: %s (input text '%s')\n", what, text);
    abort();
}

static void check_geometry(const char *text, unsigned w, unsigned h)
{
    ib_geometry_t g;
    char err[256];
    unsigned ow, oh;
    if (ib_geometry_parse(text, &g, err, sizeof err) < 0) {
        if (err[0] == '\0')
            broken("geometry refused without a message", text);
        return;
    }
    /* this size, and the extremes a probe can report */
    const unsigned sizes[][2] = {{w, h}, {1, 1}, {10000000, 1}, {1, 10000000}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ib_geometry_apply(&g, sizes[i][0], sizes[i][1], &ow, &oh);
        if (ow == 0 || oh == 0)
            broken("geometry gave a 0 side", text);
    }
}

static void check_op(const ib_op_t *op, unsigned w, unsigned h, const char *text)
{
    long x, y;
    unsigned cw, ch, pw, ph;
    if (op->kind == IB_OP_CROP && ib_crop_window(op, w, h, &x, &y, &cw, &ch) == 0) {
        if (cw == 0 || ch == 0 || x < 0 || y < 0 || (unsigned long)x + cw > w ||
            (unsigned long)y + ch > h)
            broken("crop window outside the image", text);
    }
    if (op->kind == IB_OP_PAD) {
        ib_pad_size(op, w, h, &pw, &ph);
        if (pw < w || ph < h)
            broken("pad smaller than the image", text);
    }
}

static void check_chain(const char *text, unsigned w, unsigned h)
{
    ib_chain_t chain = {.n = 0};
    char err[256];
    unsigned ow, oh;
    if (ib_chain_parse(&chain, text, err, sizeof err) < 0) {
        if (err[0] == '\0')
            broken("chain refused without a message", text);
        return;
    }
    if (chain.n == 0 || chain.n > IB_MAX_OPS)
        broken("chain accepted with no ops or too many", text);
    for (unsigned i = 0; i < chain.n; i++)
        check_op(&chain.op[i], w, h, text);
    /* every EXIF orientation a probe can report */
    for (int o = 1; o <= 8; o++) {
        ib_chain_size(&chain, w, h, o, &ow, &oh);
        ib_chain_size(&chain, 10000000, 10000000, o, &ow, &oh);
    }
    /* Appending to a chain that is not empty, as -s then -f do. */
    ib_chain_parse(&chain, text, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ib_sniff_magic(data, size);
    if (size < 6)
        return 0;
    unsigned w = 1 + (data[0] | (unsigned)data[1] << 8 | (unsigned)data[2] << 16);
    unsigned h = 1 + (data[3] | (unsigned)data[4] << 8 | (unsigned)data[5] << 16);
    size_t n = size - 6;
    char *text = malloc(n + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 6, n);
    text[n] = '\0';

    ib_color_t c;
    ib_color_parse(text, &c);
    ib_sniff_image_name(text);
    check_geometry(text, w, h);
    check_chain(text, w, h);
    free(text);
    return 0;
}
