/*
 * The pixel pipeline, on libvips: probe a file's header, then load (with
 * shrink-on-load when resizing), resize, encode to memory. Used only in
 * workers: the caller must have called ib_image_init() in this process.
 */
#ifndef IB_FILTERS_IMAGE_H
#define IB_FILTERS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "geometry.h"
#include "ops.h"

/* What a file's header says, as displayed. */
typedef struct {
    unsigned width; /* as displayed: after EXIF orientation */
    unsigned height;
    int orientation; /* EXIF 1-8 */
    int has_alpha;
    int pages;         /* frames of an animation or pages of a document */
    int bits;          /* 8 or 16 (or 32 for float images) per sample */
    char loader[32];   /* libvips loader nickname without "load", e.g. "jpeg" */
    double xres, yres; /* pixels per mm as stored, as libvips' loader reads them */
    /* Wall-clock capture date (clock.h), when the render asked for it:
     * EXIF DateTimeOriginal, else DateTime, else the file's mtime. */
    int64_t date;
} ib_header_t;

/* A probed file: its header, and what the render keeps from reading it. */
typedef struct ib_probe ib_probe_t;

/* What a worker keeps from one image to the next (see image.c, NOTES). */
typedef struct ib_image_ctx ib_image_ctx_t;

/* How a worker renders, decided by the front end. */
typedef struct {
    uint64_t max_memory; /* the bytes an image may use (--max-memory); 0: no limit */
    int fast_paths;      /* the JPEG and PNG fast paths; 0: every file through libvips */
    int debug;           /* a line on stderr for each file that took a fast path */
} ib_image_config_t;

/* Web placeholders of an image (filters/placeholder.c): what a page shows
 * while the image loads. Plain data, so a worker's result can carry it. */
typedef struct {
    char color[8];     /* "#rrggbb", lower-case */
    char blurhash[64]; /* 4x3 components, 3x4 for a portrait image: 28 characters */
    char lqip[1600];   /* "data:image/webp;base64,..." (or image/jpeg) */
} ib_placeholder_t;

typedef struct {
    const ib_chain_t *chain; /* the ops, in order; a leading resize shrinks on load */
    int autorotate;
    int fail_on_warning;
    uint64_t max_pixels; /* 0: no limit */
    const char *font;    /* for text ops (--font); NULL: sans */
    int want_date;       /* the probe reads the capture date ({date}) */
    /* When not NULL, ib_image_render() also fills it from the chain's
     * result, before any variant's resize (the first frame of an
     * animation). */
    ib_placeholder_t *placeholder;
} ib_render_t;

typedef enum {
    IB_META_DEFAULT, /* strip EXIF, XMP and IPTC; keep the ICC profile */
    IB_META_KEEP,    /* keep EXIF and XMP too (orientation reset to 1) */
    IB_META_STRIP,   /* strip everything, ICC profile included */
} ib_metadata_t;

/* JPEG (and AVIF/HEIF) chroma subsampling: the encoder's choice, always
 * 4:2:0, or never (4:4:4). */
typedef enum { IB_SUBSAMPLE_AUTO, IB_SUBSAMPLE_ON, IB_SUBSAMPLE_OFF } ib_subsample_t;

typedef struct {
    char ext[16];    /* the output's extension, which also picks the saver */
    int quality;     /* 0: the format's default */
    int interlace;   /* progressive JPEG, Adam7 PNG */
    int lossless;    /* WebP, AVIF/HEIF, JPEG XL */
    int compression; /* PNG zlib level 0-9; -1: the default */
    ib_metadata_t metadata;
    int palette;      /* PNG and GIF: an 8-bit (or smaller) palette */
    int palette_bits; /* 1, 2, 4 or 8: at most 2^bits colours; 0: 8 */
    double dither;    /* palette dithering 0-1; < 0: the default */
    int effort;       /* WebP, AVIF/HEIF, JPEG XL CPU effort; < 0: the default */
    ib_subsample_t subsample;
    /* At most this many bytes (0: no limit): the highest quality up to
     * .quality (100 when 0) whose output fits, or for a palette the most
     * colours that fit; else the output fails (IB_ERR_BUDGET). */
    uint64_t max_bytes;
    int strip_gps; /* with IB_META_KEEP: the GPS IFD goes, the rest stays */
} ib_encode_t;

typedef struct {
    void *data;
    size_t len;
    unsigned width;
    unsigned height;
    int quality;      /* the quality the encoder was given; 0 for none */
    int palette_bits; /* the palette's depth; 0 without one */
} ib_encoded_t;

/* Whether --max-bytes can be met for this format: by quality (JPEG,
 * WebP, AVIF/HEIF, JPEG XL, JPEG 2000), by palette size (PNG and GIF
 * with a palette), or not at all. */
int ib_image_has_budget(const char *ext, int palette);

/* Once per worker process, after fork(): starts libvips single-threaded,
 * and makes the worker's context, which the probe and render calls take.
 * NULL on failure. */
ib_image_ctx_t *ib_image_init(const char *prog, const ib_image_config_t *cfg);
void ib_image_ctx_free(ib_image_ctx_t *ctx);

/* Warnings the codecs gave while the last image was read, as one line
 * naming path, in buf ("" if none); clears them. */
void ib_image_take_warnings(const char *path, char *buf, size_t len);

/* Reads the header: libvips' loader's, or for a common JPEG its first
 * bytes (128 KiB, or more for a longer header), which the probe keeps for
 * the render. NULL on failure; else free with ib_image_probe_free(). */
ib_probe_t *ib_image_probe(ib_image_ctx_t *ctx, const char *path, const ib_render_t *r,
                           ib_error_t *err);
const ib_header_t *ib_probe_header(const ib_probe_t *probe);
void ib_image_probe_free(ib_probe_t *probe);

/* Whether the input is an animation: several frames of a GIF or WebP. */
int ib_image_is_animation(const ib_probe_t *probe);

/* Whether output with this extension keeps every frame of an animation. */
int ib_image_animates(const char *ext);

/* Whether libvips here can write files with this extension (e.g. "webp"). */
int ib_image_can_save(ib_image_ctx_t *ctx, const char *ext);

/* The extension to write when the output format is "same as input":
 * the input's own when it can be written, else "png". */
void ib_image_same_ext(ib_image_ctx_t *ctx, const char *input_name, char *ext, size_t len);

/* The size the output gets from this probe and recipe; 1 when a resize
 * was refused as too large (see IB_GEOM_MAX_SIDE). */
int ib_image_target_size(const ib_probe_t *probe, const ib_render_t *r, unsigned *w, unsigned *h);

typedef struct {
    unsigned width;
    unsigned height;
} ib_size_t;

/*
 * Decodes once, runs the chain, then encodes n outputs, output i as
 * enc[i] says: with sizes == NULL the chain's result as it is, else the
 * chain's result resized to sizes[i] (variants). The decode is sized for
 * the largest output and for enc[0]'s format. out[i].data is freed by
 * ib_encoded_free.
 */
int ib_image_render(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe, const ib_render_t *r,
                    const ib_encode_t *enc, const ib_size_t *sizes, unsigned n, ib_encoded_t *out,
                    ib_error_t *err);
void ib_encoded_free(ib_encoded_t *out);

/*
 * --keep-smaller (keep.c), for output out of the input at path, encoded
 * as enc says in format (e.g. "jpeg"): when out is larger than the input,
 * is in the input's format at its size, the chain changed no pixel and
 * the metadata policy would drop none of the input's, out's bytes become
 * the input's, and 1 is returned. With never_grow (the output replaces
 * its input), a larger out always becomes the input's bytes, and *forced
 * says when that kept what the options would have changed. 0 leaves out
 * as it is; -1 (err filled) when the input cannot be read again.
 */
int ib_image_keep_smaller(const char *path, const ib_probe_t *probe, const ib_render_t *r,
                          const char *format, const ib_encode_t *enc, int never_grow,
                          ib_encoded_t *out, int *forced, ib_error_t *err);

/*
 * Only r->placeholder (which must not be NULL), for an input whose outputs
 * are already up to date: decodes the image (shrunk on load where the chain
 * allows) and encodes nothing. 0, or -1 with err filled.
 */
int ib_image_placeholder(ib_image_ctx_t *ctx, const char *path, ib_probe_t *probe,
                         const ib_render_t *r, ib_error_t *err);

/* The quality a lossy format gets when none is asked for; 0 for others. */
int ib_image_default_quality(const char *ext);

/* How a format keeps every pixel: IB_LOSSLESS_ALWAYS (PNG, TIFF),
 * IB_LOSSLESS_MODE (WebP, AVIF/HEIF, JPEG XL, JPEG 2000: with --lossless),
 * or 0 (JPEG, GIF: never). */
enum { IB_LOSSLESS_MODE = 1, IB_LOSSLESS_ALWAYS = 2 };
int ib_image_lossless(const char *ext);

#endif
