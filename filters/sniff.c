/*
 * Magic numbers of the formats libvips loads (directly or through its
 * ImageMagick fallback), and their usual extensions.
 */
#include "sniff.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static int has(const unsigned char *buf, size_t n, size_t at, const char *magic, size_t len)
{
    return n >= at + len && memcmp(buf + at, magic, len) == 0;
}

const char *ib_sniff_magic(const unsigned char *b, size_t n)
{
    if (has(b, n, 0, "\xff\xd8\xff", 3))
        return "jpeg";
    if (has(b, n, 0, "\x89PNG\r\n\x1a\n", 8))
        return "png";
    if (has(b, n, 0, "GIF87a", 6) || has(b, n, 0, "GIF89a", 6))
        return "gif";
    if (has(b, n, 0, "RIFF", 4) && has(b, n, 8, "WEBP", 4))
        return "webp";
    if (has(b, n, 0, "II*\0", 4) || has(b, n, 0, "MM\0*", 4) || has(b, n, 0, "II+\0", 4) ||
        has(b, n, 0, "MM\0+", 4))
        return "tiff";
    if (has(b, n, 4, "ftyp", 4)) {
        static const char *brands[] = {"heic", "heix", "hevc", "heim", "heis",
                                       "mif1", "msf1", "avif", "avis"};
        for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
            if (has(b, n, 8, brands[i], 4))
                return "heif";
    }
    if (has(b, n, 0, "\0\0\0\x0cjP  \r\n\x87\n", 12) || has(b, n, 0, "\xff\x4f\xff\x51", 4))
        return "jp2k";
    if (has(b, n, 0, "\xff\x0a", 2) || has(b, n, 0, "\0\0\0\x0cJXL \r\n\x87\n", 12))
        return "jxl";
    if (has(b, n, 0, "BM", 2) && n >= 14)
        return "bmp";
    if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
        return "pnm";
    if (has(b, n, 0, "Pf\n", 3) || has(b, n, 0, "PF\n", 3))
        return "pfm";
    if (has(b, n, 0, "%PDF", 4))
        return "pdf";
    if (has(b, n, 0, "#?RADIANCE", 10) || has(b, n, 0, "#?RGBE", 6))
        return "rad";
    if (has(b, n, 0, "\x76\x2f\x31\x01", 4))
        return "exr";
    if (has(b, n, 0, "SIMPLE  =", 9))
        return "fits";
    if (has(b, n, 0, "MATLAB 5.0", 10))
        return "mat";
    if (has(b, n, 0, "\x08\xf2\xa6\xb6", 4) || has(b, n, 0, "\xb6\xa6\xf2\x08", 4))
        return "vips";
    if (has(b, n, 128, "DICM", 4))
        return "dicom";
    if (has(b, n, 0, "\x01\xda", 2))
        return "sgi";
    if (has(b, n, 0, "8BPS", 4))
        return "psd";
    return NULL;
}

/* Whether name ends in suffix (case aside) with something before it. */
static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcasecmp(name + n - k, suffix) == 0;
}

int ib_sniff_image_name(const char *name)
{
    /* libvips' svgload takes gzip-compressed SVG under this double
     * extension as well as .svgz; its bytes are gzip's, so only the name
     * can tell it from any other .gz. */
    if (ends_with(name, ".svg.gz")) {
        const char *base = strrchr(name, '/');
        return (base != NULL ? base + 1 : name)[0] != '.';
    }
    static const char *exts[] = {
        "jpg",  "jpeg", "jpe", "jfif", "png",  "gif", "webp", "tif",  "tiff", "heic",
        "heif", "avif", "jp2", "j2k",  "jpx",  "jxl", "bmp",  "ppm",  "pgm",  "pbm",
        "pnm",  "pfm",  "pdf", "svg",  "svgz", "hdr", "exr",  "fits", "fit",  "mat",
        "v",    "vips", "tga", "ico",  "cur",  "sgi", "rgb",  "psd",  "dcm",  "nii",
    };
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0')
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The profile description: 'desc' (ICC v2, ASCII) or 'mluc' (v4, the first
 * record, UTF-16BE reduced to its ASCII bytes). */
static void icc_description(const unsigned char *icc, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    if (len < 132 || cap == 0)
        return;
    uint32_t tags = be32(icc + 128);
    for (uint32_t i = 0; i < tags && 132 + 12 * (size_t)(i + 1) <= len; i++) {
        const unsigned char *t = icc + 132 + 12 * (size_t)i;
        uint32_t off = be32(t + 4), size = be32(t + 8);
        if (memcmp(t, "desc", 4) != 0 || off > len || size > len - off || size < 12)
            continue;
        const unsigned char *d = icc + off;
        size_t n = 0;
        if (memcmp(d, "desc", 4) == 0) {
            uint32_t count = be32(d + 8);
            for (uint32_t k = 0; k < count && 12 + k < size && n + 1 < cap && d[12 + k]; k++)
                out[n++] = (char)d[12 + k];
        } else if (memcmp(d, "mluc", 4) == 0 && size >= 28) {
            uint32_t rlen = be32(d + 20), roff = be32(d + 24);
            for (uint32_t k = 0; k + 1 < rlen && roff + k + 1 < size && n + 1 < cap; k += 2)
                if (d[roff + k] == 0 && d[roff + k + 1] != 0)
                    out[n++] = (char)d[roff + k + 1];
        }
        out[n] = '\0';
        return;
    }
}

int ib_icc_is_srgb(const unsigned char *icc, size_t len)
{
    char desc[64];
    icc_description(icc, len, desc, sizeof desc);
    return strncasecmp(desc, "sRGB", 4) == 0;
}
