/*
 * Independent readers and writers for the integration tests. See decode.h.
 *
 * NOTES
 * - libjpeg and libpng report errors by longjmp(). Each codec call runs in
 *   a small function that holds the setjmp() and nothing else that changes
 *   afterwards; everything it allocates lives in a context owned by its
 *   caller, which frees it on every path. That keeps clear of the rule that
 *   locals changed after setjmp() are indeterminate after the longjmp().
 * - Decoders treat a codec warning (corrupt data, premature end, a bad
 *   ancillary CRC) as a failure: the tests want to know that imgbatch wrote
 *   a whole, clean file, not that some reader can make pixels of it.
 */
#include "decode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs FILE declared first. */
#include <jpeglib.h>
#include <png.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Opens an image to decode, img emptied first: a failed decode leaves it
 * so. */
static FILE *open_to_decode(const char *path, ib_test_image_t *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        fail(err, errlen, "fopen(\"%s\") failed: %s", path, strerror(errno));
    return f;
}

/* How a decode by codec ends: a warning fails it as an error does, and a
 * failed one leaves img empty. */
static int decoded(int rc, int warnings, const char *message, ib_test_image_t *img,
                   const char *codec, const char *path, char *err, size_t errlen)
{
    if (rc == 0 && warnings == 0)
        return 0;
    ib_test_image_free(img);
    return fail(err, errlen, "%s decoding \"%s\" failed: %s", codec, path, message);
}

int ib_test_image_alloc(ib_test_image_t *img, unsigned width, unsigned height, unsigned channels)
{
    memset(img, 0, sizeof *img);
    if (width == 0 || height == 0 || (channels != 3 && channels != 4))
        return -1;
    size_t row = (size_t)width * channels;
    if (row / channels != width || (size_t)height > SIZE_MAX / row)
        return -1;
    img->pixels = calloc(height, row);
    if (img->pixels == NULL)
        return -1;
    img->width = width;
    img->height = height;
    img->channels = channels;
    return 0;
}

void ib_test_image_free(ib_test_image_t *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

unsigned char *ib_test_pixel(const ib_test_image_t *img, unsigned x, unsigned y)
{
    return img->pixels + ((size_t)y * img->width + x) * img->channels;
}

void ib_test_image_fill(ib_test_image_t *img, const unsigned char rgba[4])
{
    for (unsigned y = 0; y < img->height; y++)
        for (unsigned x = 0; x < img->width; x++)
            memcpy(ib_test_pixel(img, x, y), rgba, img->channels);
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char message[JMSG_LENGTH_MAX];
    int warnings;
} jpeg_err_t;

static void jpeg_error_exit(j_common_ptr cinfo)
{
    jpeg_err_t *e = (jpeg_err_t *)cinfo->err;
    e->pub.format_message(cinfo, e->message);
    longjmp(e->jmp, 1);
}

/* Level -1 is a warning (corrupt data); keep the first one's text. Trace
 * messages (levels above 0) are ignored. */
static void jpeg_emit(j_common_ptr cinfo, int level)
{
    jpeg_err_t *e = (jpeg_err_t *)cinfo->err;
    if (level >= 0)
        return;
    if (e->warnings++ == 0)
        e->pub.format_message(cinfo, e->message);
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_t jerr;
    FILE *f;
    ib_test_image_t *img;
} jpeg_read_t;

static int jpeg_read_body(jpeg_read_t *c)
{
    if (setjmp(c->jerr.jmp))
        return -1;
    jpeg_create_decompress(&c->cinfo);
    jpeg_stdio_src(&c->cinfo, c->f);
    jpeg_read_header(&c->cinfo, TRUE);
    /* libjpeg-turbo converts greyscale and YCbCr to RGB; CMYK it cannot,
     * and imgbatch writes sRGB anyway. */
    c->cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c->cinfo);
    if (c->cinfo.output_components != 3 ||
        ib_test_image_alloc(c->img, c->cinfo.output_width, c->cinfo.output_height, 3) < 0) {
        snprintf(c->jerr.message, sizeof c->jerr.message, "cannot hold %ux%u with %d components",
                 c->cinfo.output_width, c->cinfo.output_height, c->cinfo.output_components);
        return -1;
    }
    while (c->cinfo.output_scanline < c->cinfo.output_height) {
        JSAMPROW row = ib_test_pixel(c->img, 0, c->cinfo.output_scanline);
        jpeg_read_scanlines(&c->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&c->cinfo);
    return 0;
}

int ib_test_decode_jpeg(const char *path, ib_test_image_t *img, char *err, size_t errlen)
{
    jpeg_read_t c = {.img = img, .f = open_to_decode(path, img, err, errlen)};
    if (c.f == NULL)
        return -1;
    c.cinfo.err = jpeg_std_error(&c.jerr.pub);
    c.jerr.pub.error_exit = jpeg_error_exit;
    c.jerr.pub.emit_message = jpeg_emit;
    int rc = jpeg_read_body(&c);
    jpeg_destroy_decompress(&c.cinfo);
    fclose(c.f);
    return decoded(rc, c.jerr.warnings, c.jerr.message, img, "libjpeg", path, err, errlen);
}

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_err_t jerr;
    FILE *f;
    const ib_test_image_t *img;
    int quality;
    int orientation;
} jpeg_write_t;

/* "Exif\0\0", a big-endian TIFF header, and IFD0 with the one entry
 * Orientation (0x0112, SHORT, count 1). */
static size_t exif_orientation(unsigned char *b, int orientation)
{
    static const unsigned char head[] = {'E', 'x', 'i', 'f', 0,    0,    'M', 'M', 0, 42, 0, 0,
                                         0,   8,   0,   1,   0x01, 0x12, 0,   3,   0, 0,  0, 1};
    memcpy(b, head, sizeof head);
    size_t n = sizeof head;
    b[n++] = 0; /* the SHORT value, left-justified in the 4-byte field */
    b[n++] = (unsigned char)orientation;
    b[n++] = 0;
    b[n++] = 0;
    memset(b + n, 0, 4); /* no next IFD */
    return n + 4;
}

static int jpeg_write_body(jpeg_write_t *c)
{
    if (setjmp(c->jerr.jmp))
        return -1;
    jpeg_create_compress(&c->cinfo);
    jpeg_stdio_dest(&c->cinfo, c->f);
    c->cinfo.image_width = c->img->width;
    c->cinfo.image_height = c->img->height;
    c->cinfo.input_components = 3;
    c->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c->cinfo);
    jpeg_set_quality(&c->cinfo, c->quality, TRUE);
    jpeg_start_compress(&c->cinfo, TRUE);
    if (c->orientation > 0) {
        unsigned char exif[64];
        size_t n = exif_orientation(exif, c->orientation);
        jpeg_write_marker(&c->cinfo, JPEG_APP0 + 1, exif, (unsigned)n);
    }
    while (c->cinfo.next_scanline < c->cinfo.image_height) {
        JSAMPROW row = ib_test_pixel(c->img, 0, c->cinfo.next_scanline);
        jpeg_write_scanlines(&c->cinfo, &row, 1);
    }
    jpeg_finish_compress(&c->cinfo);
    return 0;
}

int ib_test_write_jpeg(const char *path, const ib_test_image_t *img, int quality, int orientation,
                       char *err, size_t errlen)
{
    if (img->channels != 3 || orientation < 0 || orientation > 8)
        return fail(err, errlen, "write_jpeg(\"%s\"): wants RGB and orientation 0-8", path);
    jpeg_write_t c;
    memset(&c, 0, sizeof c);
    c.img = img;
    c.quality = quality;
    c.orientation = orientation;
    c.f = fopen(path, "wbe");
    if (c.f == NULL)
        return fail(err, errlen, "fopen(\"%s\") failed: %s", path, strerror(errno));
    c.cinfo.err = jpeg_std_error(&c.jerr.pub);
    c.jerr.pub.error_exit = jpeg_error_exit;
    int rc = jpeg_write_body(&c);
    jpeg_destroy_compress(&c.cinfo);
    if (fclose(c.f) != 0 && rc == 0) {
        snprintf(c.jerr.message, sizeof c.jerr.message, "fclose: %s", strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        return fail(err, errlen, "libjpeg encoding \"%s\" failed: %s", path, c.jerr.message);
    return 0;
}

/* ---- PNG ---- */

typedef struct {
    png_structp png;
    png_infop info;
    FILE *f;
    char message[256];
    int warnings;
    ib_test_image_t *img;
    png_bytep *rows;
    const ib_test_image_t *src;
    unsigned width, height;
    const uint16_t *gray16;
    unsigned char *row16;
} png_ctx_t;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx_t *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    png_ctx_t *c = png_get_error_ptr(png);
    if (c->warnings++ == 0)
        snprintf(c->message, sizeof c->message, "%s", msg);
}

static int png_read_body(png_ctx_t *c)
{
    if (setjmp(png_jmpbuf(c->png)))
        return -1;
    png_init_io(c->png, c->f);
#if defined(PNG_SET_OPTION_SUPPORTED) && defined(PNG_SKIP_sRGB_CHECK_PROFILE)
    /* imgbatch keeps the input's ICC profile; libpng's warning about old,
     * known-wrong sRGB profiles is about that metadata, not the pixels. */
    png_set_option(c->png, PNG_SKIP_sRGB_CHECK_PROFILE, PNG_OPTION_ON);
#endif
    png_read_info(c->png, c->info);
    /* Everything to 8-bit RGB(A): palette and low depths expanded, tRNS
     * made alpha, 16 bits cut to 8, grey widened to RGB. */
    png_set_expand(c->png);
    png_set_strip_16(c->png);
    png_set_gray_to_rgb(c->png);
    png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    unsigned w = png_get_image_width(c->png, c->info);
    unsigned h = png_get_image_height(c->png, c->info);
    unsigned ch = png_get_channels(c->png, c->info);
    if (png_get_bit_depth(c->png, c->info) != 8 || ib_test_image_alloc(c->img, w, h, ch) < 0 ||
        png_get_rowbytes(c->png, c->info) != (size_t)w * ch) {
        snprintf(c->message, sizeof c->message, "cannot hold %ux%u with %u channels", w, h, ch);
        return -1;
    }
    c->rows = malloc(h * sizeof *c->rows);
    if (c->rows == NULL) {
        snprintf(c->message, sizeof c->message, "out of memory");
        return -1;
    }
    for (unsigned y = 0; y < h; y++)
        c->rows[y] = ib_test_pixel(c->img, 0, y);
    png_read_image(c->png, c->rows);
    /* Reads on to IEND, so trailing chunks and their CRCs are checked too. */
    png_read_end(c->png, NULL);
    return 0;
}

int ib_test_decode_png(const char *path, ib_test_image_t *img, char *err, size_t errlen)
{
    png_ctx_t c = {.img = img, .f = open_to_decode(path, img, err, errlen)};
    if (c.f == NULL)
        return -1;
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_error, png_on_warning);
    c.info = c.png != NULL ? png_create_info_struct(c.png) : NULL;
    int rc = c.info != NULL ? png_read_body(&c) : -1;
    if (c.info == NULL)
        snprintf(c.message, sizeof c.message, "out of memory");
    png_destroy_read_struct(&c.png, &c.info, NULL);
    free(c.rows);
    fclose(c.f);
    return decoded(rc, c.warnings, c.message, img, "libpng", path, err, errlen);
}

int ib_test_decode(const char *path, ib_test_image_t *img, char *err, size_t errlen)
{
    unsigned char sig[8] = {0};
    FILE *f = open_to_decode(path, img, err, errlen);
    if (f == NULL)
        return -1;
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    if (n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff)
        return ib_test_decode_jpeg(path, img, err, errlen);
    if (n == 8 && png_sig_cmp(sig, 0, 8) == 0)
        return ib_test_decode_png(path, img, err, errlen);
    return fail(err, errlen, "\"%s\" is neither JPEG nor PNG (%zu bytes of signature read)", path,
                n);
}

static void write_png_rows(png_ctx_t *c)
{
    if (c->gray16 == NULL) {
        for (unsigned y = 0; y < c->height; y++)
            png_write_row(c->png, ib_test_pixel(c->src, 0, y));
        return;
    }
    /* PNG stores 16-bit samples big-endian, whatever the host. */
    for (unsigned y = 0; y < c->height; y++) {
        for (unsigned x = 0; x < c->width; x++) {
            uint16_t v = c->gray16[(size_t)y * c->width + x];
            c->row16[2 * x] = (unsigned char)(v >> 8);
            c->row16[2 * x + 1] = (unsigned char)(v & 0xff);
        }
        png_write_row(c->png, c->row16);
    }
}

static int png_write_body(png_ctx_t *c, int color_type, int depth)
{
    if (setjmp(png_jmpbuf(c->png)))
        return -1;
    png_init_io(c->png, c->f);
    png_set_IHDR(c->png, c->info, c->width, c->height, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Test inputs are made in bulk; speed matters more than size. */
    png_set_compression_level(c->png, 1);
    png_write_info(c->png, c->info);
    write_png_rows(c);
    png_write_end(c->png, NULL);
    return 0;
}

static int png_write_file(png_ctx_t *c, const char *path, int color_type, int depth, char *err,
                          size_t errlen)
{
    c->f = fopen(path, "wbe");
    if (c->f == NULL)
        return fail(err, errlen, "fopen(\"%s\") failed: %s", path, strerror(errno));
    c->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    c->info = c->png != NULL ? png_create_info_struct(c->png) : NULL;
    int rc = c->info != NULL ? png_write_body(c, color_type, depth) : -1;
    if (c->info == NULL)
        snprintf(c->message, sizeof c->message, "out of memory");
    png_destroy_write_struct(&c->png, &c->info);
    if (fclose(c->f) != 0 && rc == 0) {
        snprintf(c->message, sizeof c->message, "fclose: %s", strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        return fail(err, errlen, "libpng encoding \"%s\" failed: %s", path, c->message);
    return 0;
}

int ib_test_write_png(const char *path, const ib_test_image_t *img, char *err, size_t errlen)
{
    png_ctx_t c;
    memset(&c, 0, sizeof c);
    c.src = img;
    c.width = img->width;
    c.height = img->height;
    int type = img->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB;
    return png_write_file(&c, path, type, 8, err, errlen);
}

int ib_test_write_png_gray16(const char *path, unsigned width, unsigned height,
                             const uint16_t *samples, char *err, size_t errlen)
{
    png_ctx_t c;
    memset(&c, 0, sizeof c);
    c.width = width;
    c.height = height;
    c.gray16 = samples;
    c.row16 = malloc((size_t)width * 2);
    if (c.row16 == NULL)
        return fail(err, errlen, "write_png_gray16(\"%s\"): out of memory", path);
    int rc = png_write_file(&c, path, PNG_COLOR_TYPE_GRAY, 16, err, errlen);
    free(c.row16);
    return rc;
}

/* ---- JSON events ----
 *
 * A strict reader of RFC 8259 text: UTF-8 checked (no overlong forms, no
 * surrogates), control characters refused, \u escapes with surrogate
 * pairs decoded, and a key given twice in one object refused (RFC 8259
 * only says such an object is not interoperable: readers disagree on which
 * value counts, so imgbatch must never write one). It keeps only the
 * fields the tests look at and walks past the rest. */

typedef struct {
    const unsigned char *s; /* NUL-terminated */
    size_t i;
    char *err;
    size_t errlen;
} json_t;

#define JSON_MAX_DEPTH 32

static int json_fail(json_t *j, const char *what)
{
    return fail(j->err, j->errlen, "bad JSON at byte %zu: %s", j->i, what);
}

static void json_ws(json_t *j)
{
    while (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')
        j->i++;
}

static int json_expect(json_t *j, char c)
{
    json_ws(j);
    if (j->s[j->i] != (unsigned char)c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return json_fail(j, what);
    }
    j->i++;
    return 0;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xe0 && p[1] < 0xa0) || (n == 3 && c == 0xed && p[1] >= 0xa0) ||
        (n == 4 && c == 0xf0 && p[1] < 0x90) || (n == 4 && c == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

/* The escape at j->i (its backslash) decoded into buf at *o. */
static int json_escape(json_t *j, unsigned char *buf, size_t *o)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned char e = j->s[j->i + 1];
    const char *simple = e != '\0' ? strchr(from, e) : NULL;
    if (simple != NULL) {
        buf[(*o)++] = (unsigned char)to[simple - from];
        j->i += 2;
        return 0;
    }
    unsigned cp, lo;
    if (e != 'u' || hex4(j->s + j->i + 2, &cp) < 0)
        return json_fail(j, "bad escape");
    j->i += 6;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return json_fail(j, "lone low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->s[j->i] != '\\' || j->s[j->i + 1] != 'u' || hex4(j->s + j->i + 2, &lo) < 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return json_fail(j, "high surrogate without its low half");
        j->i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    *o += put_utf8(buf + *o, cp);
    return 0;
}

/* One character of a string (or one escape) into buf at *o. */
static int json_char(json_t *j, unsigned char *buf, size_t *o)
{
    unsigned char c = j->s[j->i];
    if (c == '\0' || c < 0x20)
        return json_fail(j, c == '\0' ? "unterminated string" : "control character in string");
    if (c == '\\')
        return json_escape(j, buf, o);
    size_t n = c < 0x80 ? 1 : utf8_len(j->s + j->i);
    if (n == 0)
        return json_fail(j, "invalid UTF-8 in string");
    memcpy(buf + *o, j->s + j->i, n);
    *o += n;
    j->i += n;
    return 0;
}

/* A string; *out (when out is not NULL) gets a malloc'ed, unescaped copy. */
static int json_string(json_t *j, char **out)
{
    if (json_expect(j, '"') < 0)
        return -1;
    /* The unescaped text is never longer than the escaped one. */
    size_t end = j->i;
    while (j->s[end] != '\0' && j->s[end] != '"')
        end += j->s[end] == '\\' && j->s[end + 1] != '\0' ? 2 : 1;
    unsigned char *buf = malloc(end - j->i + 1);
    if (buf == NULL)
        return json_fail(j, "out of memory");
    size_t o = 0;
    while (j->s[j->i] != '"')
        if (json_char(j, buf, &o) < 0) {
            free(buf);
            return -1;
        }
    j->i++;
    buf[o] = '\0';
    if (out == NULL)
        free(buf);
    else
        *out = (char *)buf;
    return 0;
}

static size_t json_digits(const unsigned char *s, size_t i)
{
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* A number; *out and *real (each when not NULL) get its value. */
static int json_number_as(json_t *j, long long *out, double *real)
{
    json_ws(j);
    const unsigned char *s = j->s;
    size_t start = j->i, i = j->i + (s[j->i] == '-');
    int integral = 1;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        i = json_digits(s, i);
    else
        return json_fail(j, "expected a value");
    if (s[i] == '.') {
        integral = 0;
        if (json_digits(s, i + 1) == i + 1)
            return json_fail(j, "digits must follow '.'");
        i = json_digits(s, i + 1);
    }
    if (s[i] == 'e' || s[i] == 'E') {
        integral = 0;
        i += 1 + (s[i + 1] == '+' || s[i + 1] == '-');
        if (json_digits(s, i) == i)
            return json_fail(j, "digits must follow the exponent");
        i = json_digits(s, i);
    }
    const char *text = (const char *)s + start;
    if (out != NULL)
        *out = integral ? strtoll(text, NULL, 10) : (long long)strtod(text, NULL);
    if (real != NULL)
        *real = strtod(text, NULL);
    j->i = i;
    return 0;
}

static int json_number(json_t *j, long long *out)
{
    return json_number_as(j, out, NULL);
}

/* The items of an array (open '[') or the members of an object (open
 * '{'): item() reads one, up to the ',' or the close. */
static int json_list(json_t *j, char open, int (*item)(json_t *j, void *arg), void *arg)
{
    char close = open == '{' ? '}' : ']';
    if (json_expect(j, open) < 0)
        return -1;
    json_ws(j);
    if (j->s[j->i] == (unsigned char)close) {
        j->i++;
        return 0;
    }
    for (;;) {
        if (item(j, arg) < 0)
            return -1;
        json_ws(j);
        if (j->s[j->i] != ',')
            return json_expect(j, close);
        j->i++;
    }
}

/* Walks an object, calling on_key with each key; on_key must consume the
 * value. */
typedef int (*json_key_fn)(json_t *j, const char *key, void *arg);

typedef struct {
    json_key_fn on_key;
    void *arg;
    char **keys; /* those seen so far, to refuse one given twice */
    size_t n_keys;
} json_object_t;

static int json_member(json_t *j, void *arg)
{
    json_object_t *o = arg;
    char *key = NULL;
    if (json_string(j, &key) < 0)
        return -1;
    for (size_t i = 0; i < o->n_keys; i++)
        if (strcmp(o->keys[i], key) == 0) {
            free(key);
            return json_fail(j, "a key given twice");
        }
    char **keys = realloc(o->keys, (o->n_keys + 1) * sizeof *keys);
    if (keys == NULL) {
        free(key);
        return json_fail(j, "out of memory");
    }
    o->keys = keys;
    o->keys[o->n_keys++] = key;
    return json_expect(j, ':') < 0 ? -1 : o->on_key(j, key, o->arg);
}

static int json_object(json_t *j, json_key_fn on_key, void *arg)
{
    json_object_t o = {on_key, arg, NULL, 0};
    int rc = json_list(j, '{', json_member, &o);
    for (size_t i = 0; i < o.n_keys; i++)
        free(o.keys[i]);
    free(o.keys);
    return rc;
}

static int json_skip(json_t *j, int depth);

/* true, false or null at j: moves past it and returns 1, 0 or 2, or -1
 * (not moving) when none of them is there. */
static int json_word(json_t *j)
{
    static const char *words[] = {"false", "true", "null"};
    const char *s = (const char *)j->s + j->i;
    for (int k = 0; k < 3; k++)
        if (strncmp(s, words[k], strlen(words[k])) == 0) {
            j->i += strlen(words[k]);
            return k;
        }
    return -1;
}

static int skip_item(json_t *j, void *depth)
{
    return json_skip(j, *(int *)depth + 1);
}

static int skip_member(json_t *j, const char *key, void *depth)
{
    (void)key;
    return skip_item(j, depth);
}

/* Any value, checked and left behind. */
static int json_skip(json_t *j, int depth)
{
    json_ws(j);
    if (depth > JSON_MAX_DEPTH)
        return json_fail(j, "nested too deeply");
    const char *s = (const char *)j->s + j->i;
    switch (*s) {
    case '{':
        return json_object(j, skip_member, &depth);
    case '[':
        return json_list(j, '[', skip_item, &depth);
    case '"':
        return json_string(j, NULL);
    }
    return json_word(j) >= 0 ? 0 : json_number(j, NULL);
}

static int on_output_key(json_t *j, const char *key, void *arg)
{
    ib_test_output_t *o = arg;
    if (strcmp(key, "path") == 0)
        return json_string(j, &o->path);
    if (strcmp(key, "format") == 0)
        return json_string(j, &o->format);
    if (strcmp(key, "width") == 0)
        return json_number(j, &o->width);
    if (strcmp(key, "height") == 0)
        return json_number(j, &o->height);
    if (strcmp(key, "bytes") == 0)
        return json_number(j, &o->bytes);
    return json_skip(j, 2);
}

static int json_output(json_t *j, void *arg)
{
    ib_test_event_t *ev = arg;
    if (ev->n_outputs == IB_TEST_MAX_OUTPUTS)
        return json_fail(j, "more outputs than the reader keeps");
    ib_test_output_t *o = &ev->outputs[ev->n_outputs++];
    o->width = o->height = o->bytes = -1;
    return json_object(j, on_output_key, o);
}

static int on_error_key(json_t *j, const char *key, void *arg)
{
    ib_test_event_t *ev = arg;
    char **slot = strcmp(key, "kind") == 0      ? &ev->error_kind
                  : strcmp(key, "message") == 0 ? &ev->error_message
                                                : NULL;
    return slot != NULL ? json_string(j, slot) : json_skip(j, 2);
}

static int on_event_key(json_t *j, const char *key, void *arg)
{
    ib_test_event_t *ev = arg;
    static const struct {
        const char *name;
        size_t offset;
    } strings[] =
        {
            {"event", offsetof(ib_test_event_t, event)},
            {"input", offsetof(ib_test_event_t, input)},
            {"status", offsetof(ib_test_event_t, status)},
        },
      numbers[] = {
          {"ms", offsetof(ib_test_event_t, ms)},
          {"worker", offsetof(ib_test_event_t, worker)},
          {"ok", offsetof(ib_test_event_t, ok)},
          {"skipped", offsetof(ib_test_event_t, skipped)},
          {"failed", offsetof(ib_test_event_t, failed)},
          {"ignored", offsetof(ib_test_event_t, ignored)},
          {"total", offsetof(ib_test_event_t, total)},
      };
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
        if (strcmp(key, strings[k].name) == 0)
            return json_string(j, (char **)((char *)ev + strings[k].offset));
    for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
        if (strcmp(key, numbers[k].name) == 0)
            return json_number(j, (long long *)((char *)ev + numbers[k].offset));
    if (strcmp(key, "outputs") == 0) {
        ev->has_outputs = 1;
        return json_list(j, '[', json_output, ev);
    }
    if (strcmp(key, "error") == 0)
        return json_object(j, on_error_key, ev);
    return json_skip(j, 1);
}

/* Reads the len bytes at text as one JSON value with read(); -1 on bad
 * JSON or text after the value. */
static int json_document(const char *text, size_t len, int (*read)(json_t *j, void *arg), void *arg,
                         char *err, size_t errlen)
{
    /* The reader stops at a NUL, which JSON text never holds. */
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL)
        return fail(err, errlen, "bad JSON at byte %zu: a NUL byte", (size_t)(nul - text));
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return fail(err, errlen, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    json_t j = {.s = (const unsigned char *)copy, .err = err, .errlen = errlen};
    int rc = read(&j, arg);
    if (rc == 0) {
        json_ws(&j);
        if (j.s[j.i] != '\0')
            rc = json_fail(&j, "text after the value");
    }
    free(copy);
    return rc;
}

static int read_event(json_t *j, void *ev)
{
    return json_object(j, on_event_key, ev);
}

int ib_test_event_parse(const char *line, size_t len, ib_test_event_t *ev, char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    ev->ms = ev->worker = ev->ok = ev->skipped = ev->failed = ev->ignored = ev->total = -1;
    int rc = json_document(line, len, read_event, ev, err, errlen);
    if (rc < 0)
        ib_test_event_free(ev);
    return rc;
}

void ib_test_event_free(ib_test_event_t *ev)
{
    free(ev->event);
    free(ev->input);
    free(ev->status);
    free(ev->error_kind);
    free(ev->error_message);
    for (unsigned k = 0; k < ev->n_outputs; k++) {
        free(ev->outputs[k].path);
        free(ev->outputs[k].format);
    }
    memset(ev, 0, sizeof *ev);
}

/* ---- any JSON document, as a tree ---- */

typedef struct {
    ib_test_json_t *v;
    int depth;
} json_tree_t;

static int json_value(json_t *j, ib_test_json_t *v, int depth);

/* One more slot in v->items (and v->keys for an object). */
static ib_test_json_t *json_add(json_t *j, ib_test_json_t *v, char *key)
{
    ib_test_json_t *items = realloc(v->items, (v->n + 1) * sizeof *items);
    if (items != NULL)
        v->items = items;
    char **keys = key != NULL ? realloc(v->keys, (v->n + 1) * sizeof *keys) : NULL;
    if (keys != NULL)
        v->keys = keys;
    if (items == NULL || (key != NULL && keys == NULL)) {
        json_fail(j, "out of memory");
        return NULL;
    }
    if (key != NULL)
        v->keys[v->n] = key;
    memset(&v->items[v->n], 0, sizeof *v->items);
    return &v->items[v->n++];
}

static int tree_item(json_t *j, void *arg)
{
    json_tree_t *t = arg;
    ib_test_json_t *slot = json_add(j, t->v, NULL);
    return slot != NULL ? json_value(j, slot, t->depth + 1) : -1;
}

static int tree_member(json_t *j, const char *key, void *arg)
{
    json_tree_t *t = arg;
    char *copy = strdup(key);
    ib_test_json_t *slot = copy != NULL ? json_add(j, t->v, copy) : NULL;
    if (slot == NULL) {
        free(copy);
        return copy != NULL ? -1 : json_fail(j, "out of memory");
    }
    return json_value(j, slot, t->depth + 1);
}

static int json_value(json_t *j, ib_test_json_t *v, int depth)
{
    json_ws(j);
    if (depth > JSON_MAX_DEPTH)
        return json_fail(j, "nested too deeply");
    json_tree_t t = {v, depth};
    switch (j->s[j->i]) {
    case '{':
        v->type = IB_TEST_JSON_OBJECT;
        return json_object(j, tree_member, &t);
    case '[':
        v->type = IB_TEST_JSON_ARRAY;
        return json_list(j, '[', tree_item, &t);
    case '"':
        v->type = IB_TEST_JSON_STRING;
        return json_string(j, &v->string);
    }
    int word = json_word(j);
    if (word == 2)
        v->type = IB_TEST_JSON_NULL;
    else if (word >= 0)
        v->type = IB_TEST_JSON_BOOL, v->number = word;
    else
        v->type = IB_TEST_JSON_NUMBER;
    return word >= 0 ? 0 : json_number_as(j, NULL, &v->number);
}

static int read_tree(json_t *j, void *v)
{
    return json_value(j, v, 0);
}

int ib_test_json_parse(const char *text, size_t len, ib_test_json_t *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    int rc = json_document(text, len, read_tree, v, err, errlen);
    if (rc < 0)
        ib_test_json_free(v);
    return rc;
}

const ib_test_json_t *ib_test_json_get(const ib_test_json_t *object, const char *key)
{
    for (size_t i = 0; object->type == IB_TEST_JSON_OBJECT && i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0)
            return &object->items[i];
    return NULL;
}

void ib_test_json_free(ib_test_json_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        ib_test_json_free(&v->items[i]);
        if (v->keys != NULL)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}
