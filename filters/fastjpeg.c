/*
 * The JPEG fast path. See fastjpeg.h.
 *
 * NOTES
 * - Why: libvips' own JPEG path opens the file twice and sets up a
 *   pipeline per image; decoding here into memory saves about a fifth of
 *   a worker's instructions per large JPEG. The final resample (Lanczos)
 *   and everything after stay in libvips.
 * - The shrink is a power of two leaving at least RESAMPLE_MARGIN times
 *   the target, and partial edge blocks are dropped: exactly libvips'
 *   shrink-on-load, so both paths give the same pixels (test_fastpath).
 *   A smaller margin decodes less, but measured below 35 dB PSNR against
 *   vipsthumbnail on detailed photos.
 * - libjpeg reports fatal errors by calling error_exit, which must not
 *   return: it longjmps back here. Nothing allocated by libjpeg leaks,
 *   jpeg_destroy_decompress frees it all.
 */
#include "fastjpeg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "fastpath.h"
#include "fileio.h"

/* How many times the target the decoded image keeps (see NOTES). */
#define RESAMPLE_MARGIN 2.0

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warnings;
} error_mgr_t;

static void on_error(j_common_ptr cinfo)
{
    error_mgr_t *e = (error_mgr_t *)cinfo->err;
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    /* level -1 is a warning about the data (corrupt, truncated). */
    if (level < 0)
        ((error_mgr_t *)cinfo->err)->warnings++;
}

VipsImage *ib_fastjpeg_load(const char *path, unsigned min_w, unsigned min_h, int strict)
{
    size_t len = 0;
    unsigned char *file = ib_read_file(path, IB_FASTPATH_MAX_FILE, &len);
    if (file == NULL)
        return NULL;

    struct jpeg_decompress_struct cinfo;
    error_mgr_t jerr;
    unsigned char *volatile pixels = NULL;
    JOCTET *volatile icc = NULL;
    VipsImage *im = NULL;

    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error;
    jerr.pub.emit_message = on_message;
    jerr.warnings = 0;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(icc);
        free(file);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, file, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff); /* ICC profile */
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK ||
        (cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_GRAYSCALE &&
         cinfo.jpeg_color_space != JCS_RGB)) {
        jpeg_destroy_decompress(&cinfo);
        free(file);
        return NULL;
    }

    /* The largest power-of-two shrink that still leaves the margin: the
     * same block grid as libvips' own shrink-on-load, so both paths
     * resample the same samples. */
    unsigned w = cinfo.image_width, h = cinfo.image_height, shrink = 8;
    while (shrink > 1 && ((double)(w / shrink) < RESAMPLE_MARGIN * min_w ||
                          (double)(h / shrink) < RESAMPLE_MARGIN * min_h))
        shrink /= 2;
    cinfo.scale_num = 1;
    cinfo.scale_denom = shrink;
    int grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);

    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    pixels = malloc(stride * cinfo.output_height);
    if (pixels == NULL)
        longjmp(jerr.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    unsigned icc_len = 0;
    JOCTET *icc_data = NULL;
    if (jpeg_read_icc_profile(&cinfo, &icc_data, &icc_len))
        icc = icc_data;
    jpeg_finish_decompress(&cinfo);

    /* Strict mode fails on warnings: let libvips fail it in its words. */
    if (strict && jerr.warnings > 0)
        longjmp(jerr.jump, 1);

    /* libjpeg rounds a scaled size up, counting a partial block at the
     * edge as a whole pixel; libvips rounds down. Keep the whole ones. */
    unsigned out_w = w / shrink, out_h = h / shrink;
    if (out_w == 0 || out_h == 0 || out_w > cinfo.output_width || out_h > cinfo.output_height)
        longjmp(jerr.jump, 1);
    size_t out_stride = (size_t)out_w * (size_t)cinfo.output_components;
    for (unsigned y = 1; out_stride != stride && y < out_h; y++)
        memmove(pixels + y * out_stride, pixels + y * stride, out_stride);
    /* The image owns the pixels from here, made or not. */
    unsigned char *owned = pixels;
    pixels = NULL;
    im = ib_fastpath_image(owned, out_w, out_h, (unsigned)cinfo.output_components, icc, icc_len);
    if (im == NULL)
        longjmp(jerr.jump, 1);
    free(icc);
    ib_fastpath_trace(path, "jpeg", shrink, shrink);
    jpeg_destroy_decompress(&cinfo);
    free(file);
    return im;
}
