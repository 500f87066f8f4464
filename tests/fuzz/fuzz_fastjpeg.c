/*
 * libFuzzer harness for the JPEG fast path (filters/fastjpeg.c), in a
 * worker's order: ib_fastjpeg_probe() reads the header from the file's
 * descriptor, then ib_fastjpeg_load() decodes with the bytes the probe
 * read, DCT-scaled to a size the input picks.
 *
 * NOTES
 * - The input is a JPEG file as it is, so any JPEG is a seed. A hash of
 *   it picks the target size (from no shrink to 1/8), strict or lenient,
 *   and whether zeros follow it past what the probe reads (see padded),
 *   so each input always gets the same.
 * - The file goes into a memfd opened through /proc/self/fd/N, as in
 *   fuzz_probe: the code under test reads by descriptor and by name.
 * - Differential, both against libvips on the same bytes: the probe must
 *   give libvips' header (size, orientation, resolution), as it promises;
 *   a decode must give libvips' pixels at the same shrink-on-load, and in
 *   strict mode must not succeed where libvips fails. Besides, the size
 *   must be the one the shrink rule gives. A mismatch aborts.
 * - Images over 4 Mpixel are passed over after the probe, as --max-pixels
 *   would in a worker here: the decode's time grows with the size the
 *   header claims, not with the input's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vips/vips.h>

#include "fastjpeg.h"
#include "fastpath.h"
#include "fileio.h"
#include "fuzz.h"
#include "common.h"

#define MAX_PIXELS (4u << 20)

/* More than the probe reads of a file (fastjpeg.c, PROBE_BYTES). */
#define PAD_PAST_PROBE ((size_t)129 << 10)

static ib_memfile_t file_in;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    ib_fuzz_start_vips((*argv)[0]);
    ib_memfile_open(&file_in, "fuzz_fastjpeg");
    return 0;
}

static uint32_t fnv1a(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return h;
}

static void broken(const char *what, const ib_fastjpeg_header_t *hdr)
{
    fprintf(stderr, "fuzz_fastjpeg: %s (%ux%u, orientation %d)\n", what, hdr->width, hdr->height,
            hdr->orientation);
    abort();
}

/* libvips' header of the same bytes against the probe's. */
static void check_header(const uint8_t *data, size_t size, const ib_fastjpeg_header_t *hdr)
{
    VipsImage *im = NULL;
    if (vips_jpegload_buffer((void *)data, size, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL) !=
        0) {
        vips_error_clear();
        return; /* the render would fail in libvips' words */
    }
    int orientation = ib_fastpath_orientation(im);
    int same = (unsigned)im->Xsize == hdr->width && (unsigned)im->Ysize == hdr->height &&
               orientation == hdr->orientation && fabs(im->Xres - hdr->xres) < 1e-6 &&
               fabs(im->Yres - hdr->yres) < 1e-6;
    g_object_unref(im);
    if (!same)
        broken("the probe's header is not libvips'", hdr);
}

/* The shrink fastjpeg.c must pick: a power of two, at most 8, leaving
 * twice the target on both axes. */
static unsigned expected_shrink(const ib_fastjpeg_header_t *hdr, unsigned min_w, unsigned min_h)
{
    unsigned s = 8;
    while (s > 1 && (hdr->width / s < 2 * min_w || hdr->height / s < 2 * min_h))
        s /= 2;
    return s;
}

/* libvips' own shrink-on-load of the same bytes against the fast decode. */
static void check_pixels(const uint8_t *data, size_t size, VipsImage *fast, unsigned shrink,
                         int strict, const ib_fastjpeg_header_t *hdr)
{
    VipsImage *im = NULL;
    if (vips_jpegload_buffer((void *)data, size, &im, "shrink", (int)shrink, "fail_on",
                             strict ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_NONE, NULL) != 0)
        im = NULL;
    size_t fast_len = 0, vips_len = 0;
    void *a = vips_image_write_to_memory(fast, &fast_len);
    void *b = im != NULL ? vips_image_write_to_memory(im, &vips_len) : NULL;
    int same = b != NULL && im->Xsize == fast->Xsize && im->Ysize == fast->Ysize &&
               im->Bands == fast->Bands && fast_len == vips_len && memcmp(a, b, fast_len) == 0;
    g_free(a);
    g_free(b);
    if (im != NULL)
        g_object_unref(im);
    vips_error_clear();
    if (!same && (strict || b != NULL))
        broken(b != NULL ? "pixels differ from libvips'" : "decoded what libvips refuses", hdr);
}

/* The decode at the size and mode h picks, checked; uses up bytes. */
static void decode(const uint8_t *file, size_t len, uint32_t h, const ib_fastjpeg_header_t *hdr,
                   ib_fastjpeg_bytes_t *bytes)
{
    unsigned min_w = hdr->width >> (1 + h % 5), min_h = hdr->height >> (1 + h % 5);
    int strict = (h >> 8) & 1;
    VipsImage *im = ib_fastjpeg_load(file_in.path, &bytes, min_w, min_h, strict, NULL, NULL);
    ib_fastjpeg_bytes_free(bytes); /* the load used them up, or not */
    if (im == NULL)
        return;
    unsigned s = expected_shrink(hdr, min_w, min_h);
    if ((unsigned)im->Xsize != hdr->width / s || (unsigned)im->Ysize != hdr->height / s ||
        (im->Bands != 1 && im->Bands != 3))
        broken("the decoded size is not the shrink rule's", hdr);
    check_pixels(file, len, im, s, strict, hdr);
    g_object_unref(im);
}

/*
 * A quarter of the inputs get zeros after them, past the 128 KiB the
 * probe reads, so that the load reads the rest of the file after the
 * probe's bytes (fastjpeg.c, whole_file). NULL: the input as it is.
 */
static uint8_t *padded(const uint8_t *data, size_t size, uint32_t h, size_t *len)
{
    if ((h >> 9) % 4 != 0)
        return NULL;
    *len = size + PAD_PAST_PROBE + (h >> 12) % 4096;
    uint8_t *file = calloc(*len, 1);
    if (file == NULL)
        abort();
    memcpy(file, data, size);
    return file;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t h = fnv1a(data, size);
    size_t len = size;
    uint8_t *pad = padded(data, size, h, &len);
    const uint8_t *file = pad != NULL ? pad : data;
    ib_fastjpeg_header_t hdr;
    ib_fastjpeg_bytes_t *bytes = NULL;
    if (size > 0 && ib_memfile_put(&file_in, file, len) == 0 &&
        ib_fastjpeg_probe(file_in.fd, &hdr, &bytes) == 0) {
        if (bytes == NULL || hdr.width == 0 || hdr.height == 0)
            broken("a probe passed without its bytes or a size", &hdr);
        check_header(file, len, &hdr);
        if ((uint64_t)hdr.width * hdr.height <= MAX_PIXELS)
            decode(file, len, h, &hdr, bytes);
        else
            ib_fastjpeg_bytes_free(bytes);
    }
    free(pad);
    vips_error_clear();
    return 0;
}
