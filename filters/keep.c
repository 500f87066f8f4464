/*
 * --keep-smaller: an output that encodes its input again, in the same
 * format and at the same size, yet comes out larger, is replaced by the
 * input's own bytes, when those show the same picture and carry nothing
 * the metadata policy would have dropped. The "optimize a folder" case
 * then never makes a file bigger.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vips/vips.h>

#include "encode.h"
#include "fileio.h"
#include "image.h"

/* Only resizes (at the input's own size they do nothing) and a turn to
 * upright (nothing for an upright input): any other op changes pixels. */
static int chain_keeps_pixels(const ib_chain_t *chain)
{
    for (unsigned i = 0; chain != NULL && i < chain->n; i++)
        if (chain->op[i].kind != IB_OP_RESIZE && chain->op[i].kind != IB_OP_AUTOROTATE)
            return 0;
    return 1;
}

/* Whether out shows the input's picture, stored as the input stores it.
 * HEIF and AVIF share a loader but not a codec, so they are left out. */
static int same_picture(const ib_probe_t *probe, const ib_render_t *r, const char *format,
                        const ib_encoded_t *out)
{
    static const char *const formats[] = {"jpeg", "png", "webp", "gif", "tiff"};
    const ib_header_t *h = ib_probe_header(probe);
    int known = 0;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        known |= strcmp(format, formats[i]) == 0;
    return known && strcmp(format, h->loader) == 0 && h->pages <= 1 && h->orientation <= 1 &&
           out->width == h->width && out->height == h->height && chain_keeps_pixels(r->chain);
}

/* Whether the policy would keep all the metadata the input carries. A
 * name with "[" would be read as load options: such a file is not kept. */
static int metadata_allows(const char *path, const ib_encode_t *enc)
{
    if (enc->metadata == IB_META_KEEP && !enc->strip_gps)
        return 1;
    if (strchr(path, '[') != NULL)
        return 0;
    VipsImage *im = vips_image_new_from_file(path, NULL);
    if (im == NULL) {
        vips_error_clear();
        return 0;
    }
    int ok = ib_encode_policy_keeps_all(im, enc->metadata, enc->strip_gps);
    g_object_unref(im);
    return ok;
}

/* out's bytes become the file's, which must still be size bytes long. */
static int take_input(const char *path, size_t size, ib_encoded_t *out, ib_error_t *err)
{
    size_t len = 0;
    unsigned char *bytes = ib_read_file(path, size + 1, &len);
    if (bytes == NULL || len != size) {
        free(bytes);
        return ib_fail(err, IB_ERR_READ, "%s: changed or unreadable while it was converted", path);
    }
    g_free(out->data);
    out->data = g_malloc(len);
    memcpy(out->data, bytes, len);
    out->len = len;
    out->quality = 0;
    out->palette_bits = 0;
    free(bytes);
    return 0;
}

int ib_image_keep_smaller(const char *path, const ib_probe_t *probe, const ib_render_t *r,
                          const char *format, const ib_encode_t *enc, int never_grow,
                          ib_encoded_t *out, int *forced, ib_error_t *err)
{
    struct stat st;
    *forced = 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || out->len <= (size_t)st.st_size)
        return 0;
    if (!same_picture(probe, r, format, out) || !metadata_allows(path, enc)) {
        if (!never_grow)
            return 0;
        *forced = 1;
    }
    if (take_input(path, (size_t)st.st_size, out, err) < 0)
        return -1;
    /* The file as it is, not the re-encode (a forced keep may differ). */
    out->width = ib_probe_header(probe)->width;
    out->height = ib_probe_header(probe)->height;
    return 1;
}
