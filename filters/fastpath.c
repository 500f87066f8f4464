/*
 * What the fast decoders share: handing their pixels to libvips.
 */
#include "fastpath.h"

#include <stdlib.h>

static void free_pixels(VipsImage *im, void *pixels)
{
    (void)im;
    free(pixels);
}

VipsImage *ib_fastpath_image(unsigned char *pixels, unsigned width, unsigned height, unsigned bands,
                             const void *icc, size_t icc_len)
{
    VipsImage *im = vips_image_new_from_memory(pixels, (size_t)width * height * bands, (int)width,
                                               (int)height, (int)bands, VIPS_FORMAT_UCHAR);
    if (im == NULL) {
        free(pixels);
        return NULL;
    }
    g_signal_connect(im, "postclose", G_CALLBACK(free_pixels), pixels);
    im->Type = bands <= 2 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
    if (icc != NULL)
        vips_image_set_blob_copy(im, VIPS_META_ICC_NAME, icc, icc_len);
    return im;
}

int ib_fastpath_orientation(VipsImage *im)
{
    int orientation = 1;
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &orientation) != 0)
        orientation = 1;
    return orientation >= 1 && orientation <= 8 ? orientation : 1;
}
