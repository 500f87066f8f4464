/*
 * Independent readers and writers for the integration tests.
 *
 * The tests check what imgbatch wrote without libvips (the library under
 * test): images are decoded with libjpeg-turbo and libpng directly, and the
 * NDJSON events with a small JSON reader of our own. The same file holds
 * the encoders that make the test inputs, so no other tool is needed.
 *
 * Functions return 0 / -1; on -1, err holds the file, the call and the
 * cause. Decoders insist on a complete, warning-free decode: an output that
 * a lenient reader would patch up with grey rows is a failure here.
 */
#ifndef IB_TESTS_DECODE_H
#define IB_TESTS_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* 8 bits per sample, rows top first, no padding; channels is 3 (RGB) or 4
 * (RGBA). */
typedef struct {
    unsigned width;
    unsigned height;
    unsigned channels;
    unsigned char *pixels;
} ib_test_image_t;

/* Allocates a zeroed image; -1 on overflow or out of memory. */
int ib_test_image_alloc(ib_test_image_t *img, unsigned width, unsigned height, unsigned channels);
void ib_test_image_free(ib_test_image_t *img);
unsigned char *ib_test_pixel(const ib_test_image_t *img, unsigned x, unsigned y);
/* Fills every pixel with one colour (channels values from rgba). */
void ib_test_image_fill(ib_test_image_t *img, const unsigned char rgba[4]);

/* Decoders: any colour type or depth comes back as 8-bit RGB or RGBA. */
int ib_test_decode_jpeg(const char *path, ib_test_image_t *img, char *err, size_t errlen);
int ib_test_decode_png(const char *path, ib_test_image_t *img, char *err, size_t errlen);
/* Picks the decoder from the file's signature. */
int ib_test_decode(const char *path, ib_test_image_t *img, char *err, size_t errlen);

/* Encoders for test inputs. */
int ib_test_write_png(const char *path, const ib_test_image_t *img, char *err, size_t errlen);
/* A 16-bit greyscale PNG; samples are width * height values, rows top first. */
int ib_test_write_png_gray16(const char *path, unsigned width, unsigned height,
                             const uint16_t *samples, char *err, size_t errlen);
/* An RGB JPEG (img->channels must be 3); orientation 1-8 adds an APP1 EXIF
 * segment carrying that Orientation tag, 0 writes none. */
int ib_test_write_jpeg(const char *path, const ib_test_image_t *img, int quality, int orientation,
                       char *err, size_t errlen);

/* One line of imgbatch --json. Strings are unescaped UTF-8 owned by the
 * event; fields absent from the line are NULL or -1 (has_outputs 0). */
#define IB_TEST_MAX_OUTPUTS 32

typedef struct {
    char *path;
    long long width;
    long long height;
    long long bytes;
    char *format;
} ib_test_output_t;

typedef struct {
    char *event;
    char *input;
    char *status;
    int has_outputs; /* an "outputs" array, maybe empty */
    unsigned n_outputs;
    ib_test_output_t outputs[IB_TEST_MAX_OUTPUTS];
    long long ms;
    long long worker;
    char *error_kind;
    char *error_message;
    /* summary events */
    long long ok;
    long long skipped;
    long long failed;
    long long ignored;
    long long total;
} ib_test_event_t;

/* Parses the len bytes of one line (a trailing newline is allowed); -1
 * unless they are strict RFC 8259 JSON holding an object: UTF-8 checked,
 * no NUL byte, no key given twice in any object. */
int ib_test_event_parse(const char *line, size_t len, ib_test_event_t *ev, char *err,
                        size_t errlen);
void ib_test_event_free(ib_test_event_t *ev);

/* Any JSON document (the --manifest file, an event's fields the event
 * reader does not keep), by the same strict reader, as a tree. */
enum {
    IB_TEST_JSON_NULL,
    IB_TEST_JSON_BOOL,
    IB_TEST_JSON_NUMBER,
    IB_TEST_JSON_STRING,
    IB_TEST_JSON_ARRAY,
    IB_TEST_JSON_OBJECT
};

typedef struct ib_test_json {
    int type;
    double number; /* a number's value; 1 or 0 for true or false */
    char *string;
    size_t n;    /* the items of an array or members of an object */
    char **keys; /* an object's, one per item */
    struct ib_test_json *items;
} ib_test_json_t;

/* Parses the len bytes of text; -1 (with v empty) unless they are one
 * strict RFC 8259 value, as for events. */
int ib_test_json_parse(const char *text, size_t len, ib_test_json_t *v, char *err, size_t errlen);
/* An object's member, or NULL. */
const ib_test_json_t *ib_test_json_get(const ib_test_json_t *object, const char *key);
void ib_test_json_free(ib_test_json_t *v);

#endif
