/*
 * libFuzzer harness for a worker's image path: ib_image_probe() and then
 * ib_image_render() with a small resize, on arbitrary file contents.
 *
 * NOTES
 * - libvips starts once, in LLVMFuzzerInitialize(), the way a worker
 *   starts it after fork() (ib_image_init(): one thread, no cache).
 * - The code under test opens files by name, so each input goes into a
 *   memfd opened through /proc/self/fd/N. The name has no extension: the
 *   loader is picked from the content, as for any sniffed file.
 * - --max-pixels is 4 Mpixel here, not 268: a header that claims a large
 *   image must be refused as too_large from the header (that refusal is
 *   under test), and a large image that is not refused would only make
 *   the fuzzer slow or run out of memory inside libvips.
 * - A crash inside libvips or a library it loads with (ImageMagick,
 *   poppler, librsvg, ...) shows up here too; the stack says whose it is.
 * - gzip data is passed over: libvips' SVG sniffer inflates all of it
 *   before deciding (a gzip bomb in ../shared/corpus holds it for a
 *   minute). imgbatch meets that with --timeout; here it would only stop
 *   the fuzzer at its first seed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz.h"
#include "common.h"
#include "image.h"
#include "ops.h"

static ib_memfile_t file_in;
static ib_chain_t chain;
static ib_image_ctx_t *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc;
    ib_image_config_t cfg = {.fast_paths = 1};
    ctx = ib_image_init((*argv)[0], &cfg);
    if (ctx == NULL) {
        fprintf(stderr, "fuzz_probe: libvips did not start\n");
        exit(1);
    }
    ib_memfile_open(&file_in, "fuzz_probe");
    if (ib_chain_parse(&chain, "resize=48x48>,sharpen", err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_probe: %s\n", err);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if ((size >= 2 && data[0] == 0x1f && data[1] == 0x8b) ||
        ib_memfile_put(&file_in, data, size) < 0)
        return 0;
    ib_render_t r = {
        .chain = &chain,
        .autorotate = 1,
        .fail_on_warning = 1,
        .max_pixels = 4u << 20,
    };
    ib_error_t err = {0};
    ib_probe_t *probe = ib_image_probe(ctx, file_in.path, &r, &err);
    if (probe == NULL) {
        if (err.kind == IB_ERR_NONE || err.message[0] == '\0')
            abort(); /* a failure must say what and why */
        return 0;
    }
    const ib_header_t *hdr = ib_probe_header(probe);
    if (hdr->width == 0 || hdr->height == 0 || (uint64_t)hdr->width * hdr->height > r.max_pixels)
        abort();

    /* The first byte picks the format, so both fast encoders get turns. */
    ib_encode_t enc = {.compression = -1};
    snprintf(enc.ext, sizeof enc.ext, "%s", size > 0 && (data[0] & 1) ? "jpg" : "png");
    ib_encoded_t out;
    int rendered = ib_image_render(ctx, file_in.path, probe, &r, &enc, NULL, 1, &out, &err);
    if (rendered < 0) {
        ib_image_probe_free(probe);
        if (err.kind == IB_ERR_NONE || err.message[0] == '\0')
            abort();
        return 0;
    }
    /* --dry-run and {w}/{h} in names promise this size from the header. */
    unsigned w, h;
    ib_image_target_size(probe, &r, &w, &h);
    if (out.len == 0 || out.data == NULL || out.width != w || out.height != h) {
        fprintf(stderr, "fuzz_probe: %s image %ux%u gave %ux%u (%zu bytes), promised %ux%u\n",
                hdr->loader, hdr->width, hdr->height, out.width, out.height, out.len, w, h);
        abort();
    }
    ib_image_probe_free(probe);
    ib_encoded_free(&out);
    return 0;
}
