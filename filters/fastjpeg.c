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
 * - The probe (ib_fastjpeg_probe) answers exactly as libvips' loader
 *   would, or declines and lets libvips answer (test_probe compares the
 *   two on every corpus JPEG). The bytes it read belong to the caller's
 *   probe, which hands them to the decode: a small file is read once.
 * - The file is in memory, but libjpeg gets it 4096 bytes at a time, as
 *   libvips' loader reads it. libjpeg-turbo's Huffman decoder takes a
 *   fast path while its buffer holds enough bytes, and that path decodes
 *   a bad code as zero without a warning; the slow one warns. Handed the
 *   whole file at once, the fast path ran everywhere, and strict mode
 *   passed corrupt files that libvips fails (fuzz_fastjpeg found it:
 *   tests/fuzz/regress/fastjpeg-strict-bad-huffman). In pieces of the
 *   same size, libjpeg takes the same paths, so gives the same warnings,
 *   as under libvips, at no measurable cost.
 */
#include "fastjpeg.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

#include "fastpath.h"
#include "fileio.h"

/* How many times the target the decoded image keeps (see NOTES). */
#define RESAMPLE_MARGIN 2.0

/* The bytes libvips' JPEG loader reads at a time (see NOTES). */
#define LIBVIPS_READ_SIZE 4096

/* The probe reads this much: the whole of most small JPEGs, and the
 * header of nearly any other (EXIF is at most 64 KiB). */
#define PROBE_BYTES ((size_t)128 << 10)

/* A file's first bytes, read by the probe, and the file as it was then. */
struct ib_fastjpeg_bytes {
    unsigned char *buf;
    size_t len;
    struct stat st;
};

void ib_fastjpeg_bytes_free(ib_fastjpeg_bytes_t *b)
{
    if (b != NULL)
        free(b->buf);
    free(b);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * The whole file in a buffer to free(): the probe's bytes (taken over)
 * and the rest read after them, or a fresh read. A file the probe read
 * whole is the snapshot it probed. A file changed since its first bytes
 * were read is read afresh. NULL if it cannot be had. Not inlined, which
 * keeps -Wclobbered quiet about the caller's setjmp.
 */
__attribute__((noinline)) static unsigned char *whole_file(const char *path, ib_fastjpeg_bytes_t *b,
                                                           size_t *len)
{
    if (b == NULL)
        return ib_read_file(path, IB_FASTPATH_MAX_FILE, len);
    unsigned char *buf = b->buf;
    size_t have = b->len, size = (size_t)b->st.st_size;
    struct stat then = b->st, now;
    b->buf = NULL;
    ib_fastjpeg_bytes_free(b);
    if (have < size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int same = fd >= 0 && fstat(fd, &now) == 0 && same_file(&now, &then);
        unsigned char *grown = same ? realloc(buf, size) : NULL;
        if (grown != NULL)
            buf = grown;
        ssize_t got = grown != NULL && lseek(fd, (off_t)have, SEEK_SET) == (off_t)have
                          ? ib_full_read(fd, buf + have, size - have)
                          : -1;
        if (fd >= 0)
            close(fd);
        if (got != (ssize_t)(size - have)) {
            free(buf);
            return ib_read_file(path, IB_FASTPATH_MAX_FILE, len);
        }
    }
    *len = size;
    return buf;
}

/* A source over a file in memory that gives it out in pieces (see NOTES). */
typedef struct {
    struct jpeg_source_mgr pub;
    const unsigned char *file;
    size_t len, at;
} pieces_t;

static void src_noop(j_decompress_ptr cinfo)
{
    (void)cinfo;
}

/* The next piece; at the end, as jpeg_mem_src does, a warning and an EOI. */
static boolean fill_piece(j_decompress_ptr cinfo)
{
    static const JOCTET eoi[2] = {0xff, JPEG_EOI};
    pieces_t *src = (pieces_t *)cinfo->src;
    if (src->at >= src->len) {
        WARNMS(cinfo, JWRN_JPEG_EOF);
        src->pub.next_input_byte = eoi;
        src->pub.bytes_in_buffer = 2;
        return TRUE;
    }
    size_t n = src->len - src->at < LIBVIPS_READ_SIZE ? src->len - src->at : LIBVIPS_READ_SIZE;
    src->pub.next_input_byte = src->file + src->at;
    src->pub.bytes_in_buffer = n;
    src->at += n;
    return TRUE;
}

static void skip_pieces(j_decompress_ptr cinfo, long n)
{
    struct jpeg_source_mgr *src = cinfo->src;
    if (n <= 0)
        return;
    while ((size_t)n > src->bytes_in_buffer) {
        n -= (long)src->bytes_in_buffer;
        fill_piece(cinfo);
    }
    src->next_input_byte += n;
    src->bytes_in_buffer -= (size_t)n;
}

static void read_in_pieces(j_decompress_ptr cinfo, pieces_t *src, const unsigned char *file,
                           size_t len)
{
    *src = (pieces_t){.pub = {.init_source = src_noop,
                              .fill_input_buffer = fill_piece,
                              .skip_input_data = skip_pieces,
                              .resync_to_restart = jpeg_resync_to_restart,
                              .term_source = src_noop},
                      .file = file,
                      .len = len};
    cinfo->src = &src->pub;
}

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

/* libjpeg's error manager, set to longjmp on errors and count warnings. */
static struct jpeg_error_mgr *errors_to(error_mgr_t *e)
{
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    e->pub.emit_message = on_message;
    e->warnings = 0;
    return &e->pub;
}

/* The largest power-of-two shrink that still leaves the margin: the same
 * block grid as libvips' own shrink-on-load, so both paths resample the
 * same samples. */
static unsigned pick_shrink(unsigned w, unsigned h, unsigned min_w, unsigned min_h)
{
    unsigned shrink = 8;
    while (shrink > 1 && ((double)(w / shrink) < RESAMPLE_MARGIN * min_w ||
                          (double)(h / shrink) < RESAMPLE_MARGIN * min_h))
        shrink /= 2;
    return shrink;
}

/* Starts the decode at 1/shrink, as 8-bit grey or RGB. -1 when the
 * decoder does not scale this file (lossless JPEG in libjpeg-turbo 3):
 * the crop of the partial blocks would then keep a corner. */
static int start_scaled(j_decompress_ptr cinfo, unsigned shrink)
{
    unsigned w = cinfo->image_width, h = cinfo->image_height;
    cinfo->scale_num = 1;
    cinfo->scale_denom = shrink;
    cinfo->out_color_space = cinfo->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    cinfo->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(cinfo);
    return cinfo->output_width == (w + shrink - 1) / shrink &&
                   cinfo->output_height == (h + shrink - 1) / shrink
               ? 0
               : -1;
}

static void read_rows(j_decompress_ptr cinfo, unsigned char *pixels, size_t stride)
{
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = pixels + (size_t)cinfo->output_scanline * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
}

/* libjpeg rounds a scaled size up, counting a partial block at the edge
 * as a whole pixel; libvips rounds down. Rows of stride bytes keep their
 * first out_stride, packed. */
static void keep_whole_pixels(unsigned char *pixels, size_t stride, size_t out_stride,
                              unsigned out_h)
{
    for (unsigned y = 1; out_stride != stride && y < out_h; y++)
        memmove(pixels + y * out_stride, pixels + y * stride, out_stride);
}

VipsImage *ib_fastjpeg_load(const char *path, ib_fastjpeg_bytes_t **bytes, unsigned min_w,
                            unsigned min_h, int strict, ib_fastpath_spare_t *spare,
                            unsigned *shrunk)
{
    size_t len = 0;
    unsigned char *file = whole_file(path, bytes != NULL ? *bytes : NULL, &len);
    if (bytes != NULL)
        *bytes = NULL;
    if (file == NULL)
        return NULL;

    struct jpeg_decompress_struct cinfo;
    error_mgr_t jerr;
    unsigned char *volatile pixels = NULL;
    JOCTET *volatile icc = NULL;
    VipsImage *im = NULL;

    cinfo.err = errors_to(&jerr);
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(icc);
        free(file);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    pieces_t src;
    read_in_pieces(&cinfo, &src, file, len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff); /* ICC profile */
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK ||
        (cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_GRAYSCALE &&
         cinfo.jpeg_color_space != JCS_RGB))
        longjmp(jerr.jump, 1);
    unsigned w = cinfo.image_width, h = cinfo.image_height;
    unsigned shrink = pick_shrink(w, h, min_w, min_h);
    if (start_scaled(&cinfo, shrink) < 0)
        longjmp(jerr.jump, 1);
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    size_t cap;
    pixels = ib_fastpath_alloc(spare, stride * cinfo.output_height, &cap);
    if (pixels == NULL)
        longjmp(jerr.jump, 1);
    read_rows(&cinfo, pixels, stride);
    unsigned icc_len = 0;
    JOCTET *icc_data = NULL;
    if (jpeg_read_icc_profile(&cinfo, &icc_data, &icc_len))
        icc = icc_data;
    jpeg_finish_decompress(&cinfo);

    /* Strict mode fails on warnings: let libvips fail it in its words. */
    if (strict && jerr.warnings > 0)
        longjmp(jerr.jump, 1);

    unsigned out_w = w / shrink, out_h = h / shrink;
    if (out_w == 0 || out_h == 0 || out_w > cinfo.output_width || out_h > cinfo.output_height)
        longjmp(jerr.jump, 1);
    keep_whole_pixels(pixels, stride, (size_t)out_w * (size_t)cinfo.output_components, out_h);
    /* The image owns the pixels from here, made or not. */
    unsigned char *owned = pixels;
    pixels = NULL;
    im = ib_fastpath_image(owned, cap, spare, out_w, out_h, (unsigned)cinfo.output_components, icc,
                           icc_len);
    if (im == NULL)
        longjmp(jerr.jump, 1);
    free(icc);
    if (shrunk != NULL)
        *shrunk = shrink;
    jpeg_destroy_decompress(&cinfo);
    free(file);
    return im;
}

/* The IFD0 tags the probe reads, and TIFF's types for them. */
enum { TAG_ORIENTATION = 0x0112, TAG_XRES = 0x011a, TAG_YRES = 0x011b, TAG_RES_UNIT = 0x0128 };
enum { TYPE_SHORT = 3, TYPE_RATIONAL = 5 };
enum { SEEN_ORIENTATION = 1, SEEN_XRES = 2, SEEN_YRES = 4, SEEN_UNIT = 8 };

static unsigned get16(const unsigned char *p, int big)
{
    return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t get32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/*
 * Orientation and resolution from the first IFD of an EXIF block (after
 * "Exif\0\0"), where libvips' loader takes them. -1 for any block off the
 * common shape, which libvips is left to read in its own way: odd types,
 * repeated or out-of-range tags, offsets past the end, and a resolution
 * not given whole (XResolution, YResolution and ResolutionUnit): what
 * libvips makes of a missing unit or a zero denominator differs between
 * its versions, and declining keeps every version's answer.
 */
static int read_exif(const unsigned char *p, size_t n, ib_fastjpeg_header_t *hdr)
{
    if (n < 8)
        return -1;
    int big = p[0] == 'M';
    if (!(memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
        return -1;
    uint32_t ifd = get32(p + 4, big);
    if (ifd < 8 || ifd > n - 2)
        return -1;
    unsigned count = get16(p + ifd, big);
    if ((size_t)count * 12 > n - ifd - 2)
        return -1;
    double res[2] = {0, 0};
    int unit = 0, seen = 0;
    for (unsigned i = 0; i < count; i++) {
        const unsigned char *e = p + ifd + 2 + (size_t)i * 12;
        unsigned tag = get16(e, big), type = get16(e + 2, big);
        uint32_t items = get32(e + 4, big);
        int bit = tag == TAG_ORIENTATION ? SEEN_ORIENTATION
                  : tag == TAG_XRES      ? SEEN_XRES
                  : tag == TAG_YRES      ? SEEN_YRES
                  : tag == TAG_RES_UNIT  ? SEEN_UNIT
                                         : 0;
        if (bit == 0)
            continue;
        if (seen & bit)
            return -1;
        seen |= bit;
        if (bit == SEEN_ORIENTATION || bit == SEEN_UNIT) {
            /* SHORT, one value, held in the entry. */
            unsigned v = get16(e + 8, big);
            int orientation = bit == SEEN_ORIENTATION;
            if (type != TYPE_SHORT || items != 1 || v < 1 || v > (orientation ? 8u : 3u))
                return -1;
            if (orientation)
                hdr->orientation = (int)v;
            else
                unit = (int)v;
            continue;
        }
        /* RATIONAL, one value, at an offset. */
        uint32_t at = get32(e + 8, big);
        if (type != TYPE_RATIONAL || items != 1 || at < 8 || at > n - 8)
            return -1;
        uint32_t num = get32(p + at, big), den = get32(p + at + 4, big);
        if (den == 0 || num == 0)
            return -1;
        res[bit == SEEN_XRES ? 0 : 1] = (double)num / den;
    }
    if ((seen & (SEEN_XRES | SEEN_YRES | SEEN_UNIT)) != (SEEN_XRES | SEEN_YRES | SEEN_UNIT))
        return -1;
    double per_mm = unit == 2 ? 25.4 : unit == 3 ? 10.0 : 1.0;
    hdr->xres = res[0] / per_mm;
    hdr->yres = res[1] / per_mm;
    return 0;
}

/* A source over bytes held in memory that suspends at their end, so that
 * a header longer than the bytes read is told from a damaged one. */
static boolean fill_suspend(j_decompress_ptr cinfo)
{
    (void)cinfo;
    return FALSE;
}

static void src_skip(j_decompress_ptr cinfo, long n)
{
    struct jpeg_source_mgr *src = cinfo->src;
    if (n <= 0)
        return;
    if ((size_t)n > src->bytes_in_buffer)
        n = (long)src->bytes_in_buffer; /* the next fill suspends */
    src->next_input_byte += n;
    src->bytes_in_buffer -= (size_t)n;
}

/* 1: read; 0: the header goes past the bytes held; -1: not for us. */
static int parse_header(const unsigned char *buf, size_t len, ib_fastjpeg_header_t *hdr)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_source_mgr src = {.next_input_byte = buf,
                                  .bytes_in_buffer = len,
                                  .init_source = src_noop,
                                  .fill_input_buffer = fill_suspend,
                                  .skip_input_data = src_skip,
                                  .resync_to_restart = jpeg_resync_to_restart,
                                  .term_source = src_noop};
    error_mgr_t jerr;
    cinfo.err = errors_to(&jerr);
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.src = &src;
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    int rc = jpeg_read_header(&cinfo, TRUE);
    if (rc == JPEG_SUSPENDED) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    rc = -1;
    /* Any warning, strict or not, leaves the file to libvips, which may
     * stop at too many of them. */
    if ((cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_GRAYSCALE ||
         cinfo.jpeg_color_space == JCS_RGB) &&
        cinfo.data_precision == 8 && jerr.warnings == 0) {
        hdr->width = cinfo.image_width;
        hdr->height = cinfo.image_height;
        hdr->orientation = 1;
        /* JFIF's density as libvips' loader reads it, in the same
         * arithmetic: in inches or cm, or (unit 0) a pixel aspect ratio
         * applied to 72 dpi; an EXIF resolution then wins. */
        hdr->xres = hdr->yres = 72.0 / 25.4;
        int ok = 1;
        if (cinfo.saw_JFIF_marker && cinfo.X_density != 1 && cinfo.Y_density != 1) {
            if (cinfo.density_unit == 0 && cinfo.Y_density > 0) {
                hdr->yres = hdr->xres * cinfo.X_density / cinfo.Y_density;
            } else if (cinfo.density_unit == 1 || cinfo.density_unit == 2) {
                double per_mm = cinfo.density_unit == 1 ? 25.4 : 10.0;
                hdr->xres = cinfo.X_density / per_mm;
                hdr->yres = cinfo.Y_density / per_mm;
            } else {
                ok = 0;
            }
        }
        /* libvips takes the first APP1 that starts "Exif" as the EXIF;
         * one that is not "Exif\0\0" and a TIFF header is left to it. */
        for (jpeg_saved_marker_ptr m = cinfo.marker_list; ok && m != NULL; m = m->next)
            if (m->data_length > 4 && memcmp(m->data, "Exif", 4) == 0) {
                ok = m->data_length >= 14 && memcmp(m->data + 4, "\0\0", 2) == 0 &&
                     read_exif(m->data + 6, m->data_length - 6, hdr) == 0;
                break;
            }
        rc = ok ? 1 : -1;
    }
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

int ib_fastjpeg_probe(int fd, ib_fastjpeg_header_t *hdr, ib_fastjpeg_bytes_t **bytes)
{
    struct stat st;
    *bytes = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (unsigned long long)st.st_size > IB_FASTPATH_MAX_FILE)
        return -1;
    size_t size = (size_t)st.st_size;
    size_t want = size < PROBE_BYTES ? size : PROBE_BYTES;
    unsigned char *buf = malloc(want);
    int rc = -1;
    for (size_t have = 0; buf != NULL;) {
        /* A file cut short since the fstat is left to libvips. */
        if (lseek(fd, (off_t)have, SEEK_SET) != (off_t)have ||
            ib_read_upto(fd, buf + have, want - have) != (ssize_t)(want - have))
            break;
        have = want;
        int r = parse_header(buf, have, hdr);
        if (r != 0 || have == size) {
            rc = r > 0 ? 0 : -1;
            break;
        }
        /* A header longer than the bytes read: read twice as many, so
         * that a file whose header never ends costs a few reads, not a
         * read of the whole file before libvips reads it again. */
        want = want > size / 2 ? size : want * 2;
        unsigned char *grown = realloc(buf, want);
        if (grown == NULL)
            break;
        buf = grown;
    }
    ib_fastjpeg_bytes_t *b = rc == 0 ? malloc(sizeof *b) : NULL;
    if (b == NULL) {
        free(buf);
        return rc;
    }
    b->buf = buf;
    b->len = want;
    b->st = st;
    *bytes = b;
    return 0;
}
