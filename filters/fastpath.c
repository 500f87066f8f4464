/*
 * What the fast decoders share: handing their pixels to libvips, and the
 * decode buffer a worker keeps between images.
 */
#include "fastpath.h"

#include <stdlib.h>

struct ib_fastpath_spare {
    /* An image may be closed on one of libvips' threads. */
    GMutex lock;
    unsigned char *buf;
    size_t cap;
    uint64_t budget;
};

ib_fastpath_spare_t *ib_fastpath_spare_new(uint64_t budget)
{
    ib_fastpath_spare_t *spare = calloc(1, sizeof *spare);
    if (spare == NULL)
        return NULL;
    g_mutex_init(&spare->lock);
    spare->budget = budget;
    return spare;
}

void ib_fastpath_spare_free(ib_fastpath_spare_t *spare)
{
    if (spare == NULL)
        return;
    free(spare->buf);
    g_mutex_clear(&spare->lock);
    free(spare);
}

/* The kept buffer, taken out of spare; *cap its size. */
static unsigned char *take(ib_fastpath_spare_t *spare, size_t *cap)
{
    g_mutex_lock(&spare->lock);
    unsigned char *buf = spare->buf;
    *cap = spare->cap;
    spare->buf = NULL;
    spare->cap = 0;
    g_mutex_unlock(&spare->lock);
    return buf;
}

unsigned char *ib_fastpath_alloc(ib_fastpath_spare_t *spare, size_t len, size_t *cap)
{
    *cap = 0;
    unsigned char *buf = spare != NULL ? take(spare, cap) : NULL;
    if (buf != NULL && *cap >= len)
        return buf;
    /* Freed first: the new buffer may need the room under RLIMIT_AS. */
    free(buf);
    buf = malloc(len);
    *cap = buf != NULL ? len : 0;
    return buf;
}

void ib_fastpath_spare_drop(ib_fastpath_spare_t *spare)
{
    size_t cap;
    if (spare != NULL)
        free(take(spare, &cap));
}

size_t ib_fastpath_spare_held(const ib_fastpath_spare_t *spare)
{
    return spare != NULL ? spare->cap : 0;
}

/* Back to the spare, unless one is kept already or it is too large. */
static void give_back(ib_fastpath_spare_t *spare, unsigned char *buf, size_t cap)
{
    if (spare != NULL && (spare->budget == 0 || cap <= spare->budget / 4)) {
        g_mutex_lock(&spare->lock);
        int kept = spare->buf == NULL;
        if (kept) {
            spare->buf = buf;
            spare->cap = cap;
        }
        g_mutex_unlock(&spare->lock);
        if (kept)
            return;
    }
    free(buf);
}

typedef struct {
    ib_fastpath_spare_t *spare;
    unsigned char *pixels;
    size_t cap;
} owned_t;

static void release_pixels(VipsImage *im, void *data)
{
    (void)im;
    owned_t *own = data;
    give_back(own->spare, own->pixels, own->cap);
    free(own);
}

VipsImage *ib_fastpath_image(unsigned char *pixels, size_t cap, ib_fastpath_spare_t *spare,
                             unsigned width, unsigned height, unsigned bands, const void *icc,
                             size_t icc_len)
{
    owned_t *own = malloc(sizeof *own);
    VipsImage *im = NULL;
    if (own != NULL)
        im = vips_image_new_from_memory(pixels, (size_t)width * height * bands, (int)width,
                                        (int)height, (int)bands, VIPS_FORMAT_UCHAR);
    if (im == NULL) {
        free(own);
        give_back(spare, pixels, cap);
        return NULL;
    }
    *own = (owned_t){.spare = spare, .pixels = pixels, .cap = cap};
    g_signal_connect(im, "postclose", G_CALLBACK(release_pixels), own);
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
