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

/* Formats known by fixed bytes at a fixed place, in the order tried. */
static const struct {
    size_t at, len;
    const char *magic;
    const char *format;
} magics[] = {
    {0, 3, "\xff\xd8\xff", "jpeg"},
    {0, 8, "\x89PNG\r\n\x1a\n", "png"},
    {0, 6, "GIF87a", "gif"},
    {0, 6, "GIF89a", "gif"},
    {0, 4, "II*\0", "tiff"},
    {0, 4, "MM\0*", "tiff"},
    {0, 4, "II+\0", "tiff"},
    {0, 4, "MM\0+", "tiff"},
    {0, 12, "\0\0\0\x0cjP  \r\n\x87\n", "jp2k"},
    {0, 4, "\xff\x4f\xff\x51", "jp2k"},
    {0, 2, "\xff\x0a", "jxl"},
    {0, 12, "\0\0\0\x0cJXL \r\n\x87\n", "jxl"},
    {0, 3, "Pf\n", "pfm"},
    {0, 3, "PF\n", "pfm"},
    {0, 4, "%PDF", "pdf"},
    {0, 10, "#?RADIANCE", "rad"},
    {0, 6, "#?RGBE", "rad"},
    {0, 4, "\x76\x2f\x31\x01", "exr"},
    {0, 9, "SIMPLE  =", "fits"},
    {0, 10, "MATLAB 5.0", "mat"},
    {0, 4, "\x08\xf2\xa6\xb6", "vips"},
    {0, 4, "\xb6\xa6\xf2\x08", "vips"},
    {128, 4, "DICM", "dicom"},
    {0, 2, "\x01\xda", "sgi"},
    {0, 4, "8BPS", "psd"},
};

/* The containers: RIFF holding WebP, ISO media holding HEIF or AVIF. */
static const char *sniff_container(const unsigned char *b, size_t n)
{
    if (has(b, n, 0, "RIFF", 4) && has(b, n, 8, "WEBP", 4))
        return "webp";
    if (has(b, n, 4, "ftyp", 4)) {
        static const char *brands[] = {"heic", "heix", "hevc", "heim", "heis",
                                       "mif1", "msf1", "avif", "avis"};
        for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
            if (has(b, n, 8, brands[i], 4))
                return "heif";
    }
    return NULL;
}

const char *ib_sniff_magic(const unsigned char *b, size_t n)
{
    const char *container = sniff_container(b, n);
    if (container != NULL)
        return container;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (has(b, n, magics[i].at, magics[i].magic, magics[i].len))
            return magics[i].format;
    /* Two-byte magics that text can begin with: BMP needs its whole file
     * header, PNM a format digit. */
    if (has(b, n, 0, "BM", 2) && n >= 14)
        return "bmp";
    if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
        return "pnm";
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
