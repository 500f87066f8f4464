/*
 * Command-line integration tests: imgbatch as scripts and shells use it.
 * Runs the built binary ($IMGBATCH) on small PNGs written here and checks
 * that --json is valid JSON line by line whatever the file names are,
 * --dry-run writes nothing, NUL-separated lists and globs pick the right
 * files, every usage error exits 2 with one line naming the bad value,
 * shards (by hand, from Slurm and from Kubernetes) split the inputs
 * exactly, a re-run with an option that changes the output redoes it, the
 * progress line is drawn on a terminal only, --version says what it
 * should, and `meson install` puts the binary, the man page and the
 * completion in place. The option lists of --help, the man page and the
 * completion are test_docs.c's.
 *
 * NOTES
 * - The JSON reader here is strict RFC 8259 (and refuses invalid UTF-8,
 *   lone surrogates and repeated keys); it has a test of its own so that
 *   it can be seen to fail.
 * - Children get this process's environment without the job-array
 *   variables (SLURM_*, JOB_COMPLETION_INDEX), so the suite behaves the
 *   same inside a Slurm job; the shard tests add their own. Each child
 *   is started by ib_test_cli_run() (tests/harness.c) in a process group
 *   of its own, which a timeout kills whole.
 * - Checks that need an outside tool (script(1) for a terminal, meson)
 *   skip loudly when it is missing.
 * - The progress line is being reworked: only '\r' redraws on a terminal,
 *   and none off it, are asserted.
 */
#include <png.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

extern char **environ;

#define RUN_TIMEOUT_S 60
#define MAX_ARGS 64

typedef ib_test_spawn_t run_opts_t;
typedef ib_test_run_t run_t;
typedef ib_test_cli_t cli_t;
typedef ib_test_strs_t strs_t;

/* Every entry under dir, relative to it. With stamp, each entry also
 * carries its type, size and modification time, so two snapshots differ
 * when anything was written. */
static void list_tree(const char *dir, const char *rel, int stamp, strs_t *out)
{
    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL)
        fail_msg("opendir(\"%s\") failed: %s", path, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX], full[PATH_MAX], entry[PATH_MAX + 96];
        ib_test_path_fmt(sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        ib_test_path_fmt(full, "%s/%s", dir, sub);
        struct stat st;
        if (lstat(full, &st) < 0)
            fail_msg("lstat(\"%s\") failed: %s", full, strerror(errno));
        if (stamp) {
            snprintf(entry, sizeof entry, "%s|%o|%lld|%lld.%09ld", sub, (unsigned)st.st_mode,
                     (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
            ib_test_strs_add(out, entry);
        } else if (!S_ISDIR(st.st_mode)) {
            ib_test_strs_add(out, sub);
        }
        if (S_ISDIR(st.st_mode))
            list_tree(dir, sub, stamp, out);
    }
    closedir(d);
}

/* ---- test images ---- */

static void fill_rows(png_structp png, unsigned char *row, unsigned w, unsigned h, unsigned seed)
{
    for (unsigned y = 0; y < h; y++) {
        for (unsigned x = 0; x < 3 * w; x++)
            row[x] = (unsigned char)(x * 7 + y * 13 + (x * y) % 251 + seed * 31);
        png_write_row(png, row);
    }
}

/* An RGB PNG of w x h, busy enough that filters have work to do. */
static void make_png(const char *path, unsigned w, unsigned h, unsigned seed)
{
    ib_test_mkdirs_for(path);
    FILE *f = fopen(path, "wbe");
    if (f == NULL)
        fail_msg("fopen(\"%s\") failed: %s", path, strerror(errno));
    unsigned char *row = malloc(3 * (size_t)w);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (row == NULL || info == NULL || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(f);
        fail_msg("writing \"%s\" with libpng failed", path);
    }
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    fill_rows(png, row, w, h, seed);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0)
        fail_msg("fclose(\"%s\") failed: %s", path, strerror(errno));
}

/* Small PNGs (8x6) at root/rel for each rel. */
static void make_tree(const char *root, const char *const *rels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/%s", root, rels[i]);
        make_png(path, 8, 6, (unsigned)i);
    }
}

/* ---- running things ---- */

#define run_ib ib_test_cli_run
#define run_free ib_test_run_free

/* Runs imgbatch with a NULL-terminated argument list (argv[0] added). */
static void run_ib_argv(cli_t *t, run_t *r, const run_opts_t *o, const char *const *args)
{
    ib_test_args_t a;
    ib_test_args_start(&a, t->bin);
    ib_test_args_addv(&a, args);
    ib_test_cli_run_prog(t, r, o, t->bin, (const char *const *)a.v);
}

/* ---- a strict JSON reader ---- */

typedef enum { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } jtype_t;

typedef struct jval {
    jtype_t type;
    double number;
    char *string; /* J_STRING: UTF-8, NUL-terminated; len excludes the NUL */
    size_t len;
    size_t n;           /* J_ARRAY, J_OBJECT: members */
    struct jval *keys;  /* J_OBJECT: J_STRING keys */
    struct jval *items; /* J_ARRAY items, J_OBJECT values */
} jval_t;

typedef struct {
    const char *start, *p, *end;
    unsigned depth;
    char err[160];
} jparse_t;

static void jval_free(jval_t *v)
{
    if (v->string != NULL)
        test_free(v->string);
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys != NULL)
            jval_free(&v->keys[i]);
        jval_free(&v->items[i]);
    }
    if (v->keys != NULL)
        test_free(v->keys);
    if (v->items != NULL)
        test_free(v->items);
    memset(v, 0, sizeof *v);
}

static int jfail(jparse_t *j, const char *what)
{
    snprintf(j->err, sizeof j->err, "%s at byte %td", what, j->p - j->start);
    return -1;
}

static void skip_ws(jparse_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static int hex4(jparse_t *j, unsigned *cp)
{
    if (j->end - j->p < 4)
        return jfail(j, "short \\u escape");
    *cp = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return jfail(j, "bad \\u escape");
        *cp = *cp * 16 + (unsigned)d;
    }
    j->p += 4;
    return 0;
}

typedef struct {
    char *buf;
    size_t n, cap;
} jbuf_t;

static void jbuf_put(jbuf_t *b, const void *data, size_t n)
{
    while (b->n + n + 1 > b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        b->buf = test_realloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->n, data, n);
    b->n += n;
    b->buf[b->n] = '\0';
}

static void jbuf_put_cp(jbuf_t *b, unsigned cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (unsigned char)(0xc0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (unsigned char)(0xe0 | cp >> 12), u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (unsigned char)(0xf0 | cp >> 18), u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (unsigned char)(0x80 | (cp & 0x3f)),
        n = 4;
    jbuf_put(b, u, n);
}

static int parse_escape(jparse_t *j, jbuf_t *b)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (j->p == j->end)
        return jfail(j, "unterminated string");
    char c = *j->p++;
    const char *hit = c != '\0' ? strchr(from, c) : NULL;
    if (hit != NULL) {
        jbuf_put(b, &to[hit - from], 1);
        return 0;
    }
    if (c != 'u')
        return jfail(j, "bad escape");
    unsigned cp, lo;
    if (hex4(j, &cp) < 0)
        return -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jfail(j, "lone low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
            return jfail(j, "lone high surrogate");
        j->p += 2;
        if (hex4(j, &lo) < 0)
            return -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return jfail(j, "high surrogate without a low one");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    jbuf_put_cp(b, cp);
    return 0;
}

static int parse_string(jparse_t *j, jval_t *v)
{
    jbuf_t b = {0};
    jbuf_put(&b, "", 0);
    j->p++; /* the opening quote */
    for (;;) {
        if (j->p == j->end) {
            test_free(b.buf);
            return jfail(j, "unterminated string");
        }
        unsigned char c = (unsigned char)*j->p;
        int rc = 0;
        if (c == '"') {
            j->p++;
            break;
        } else if (c < 0x20) {
            rc = jfail(j, "raw control character in a string");
        } else if (c == '\\') {
            j->p++;
            rc = parse_escape(j, &b);
        } else if (c < 0x80) {
            jbuf_put(&b, j->p++, 1);
        } else {
            size_t n = utf8_len((const unsigned char *)j->p, (const unsigned char *)j->end);
            if (n == 0) {
                rc = jfail(j, "invalid UTF-8");
            } else {
                jbuf_put(&b, j->p, n);
                j->p += n;
            }
        }
        if (rc < 0) {
            test_free(b.buf);
            return -1;
        }
    }
    v->type = J_STRING;
    v->string = b.buf;
    v->len = b.n;
    return 0;
}

static int is_digit(const jparse_t *j)
{
    return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

static int parse_number(jparse_t *j, jval_t *v)
{
    const char *s = j->p;
    if (*j->p == '-')
        j->p++;
    if (!is_digit(j))
        return jfail(j, "bad number");
    if (*j->p == '0')
        j->p++;
    else
        while (is_digit(j))
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!is_digit(j))
            return jfail(j, "no digits after '.'");
        while (is_digit(j))
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!is_digit(j))
            return jfail(j, "no digits in the exponent");
        while (is_digit(j))
            j->p++;
    }
    char num[512];
    if ((size_t)(j->p - s) >= sizeof num)
        return jfail(j, "number too long");
    memcpy(num, s, (size_t)(j->p - s));
    num[j->p - s] = '\0';
    v->type = J_NUMBER;
    v->number = strtod(num, NULL);
    return 0;
}

static int parse_value(jparse_t *j, jval_t *v);

static void grow(jval_t *v, size_t *cap, int with_keys)
{
    if (v->n < *cap)
        return;
    size_t old = *cap;
    *cap = old ? 2 * old : 4;
    v->items = test_realloc(v->items, *cap * sizeof *v->items);
    memset(v->items + old, 0, (*cap - old) * sizeof *v->items);
    if (with_keys) {
        v->keys = test_realloc(v->keys, *cap * sizeof *v->keys);
        memset(v->keys + old, 0, (*cap - old) * sizeof *v->keys);
    }
}

static int parse_array(jparse_t *j, jval_t *v)
{
    size_t cap = 0;
    v->type = J_ARRAY;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        grow(v, &cap, 0);
        if (parse_value(j, &v->items[v->n]) < 0)
            goto failed;
        v->n++;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        jfail(j, "expected ',' or ']'");
        goto failed;
    }
failed:
    jval_free(v);
    return -1;
}

static int parse_object(jparse_t *j, jval_t *v)
{
    size_t cap = 0;
    v->type = J_OBJECT;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        grow(v, &cap, 1);
        jval_t *key = &v->keys[v->n];
        skip_ws(j);
        if (j->p == j->end || *j->p != '"') {
            jfail(j, "expected a key");
            goto failed;
        }
        if (parse_string(j, key) < 0)
            goto failed;
        for (size_t i = 0; i < v->n; i++)
            if (v->keys[i].len == key->len &&
                memcmp(v->keys[i].string, key->string, key->len) == 0) {
                jfail(j, "repeated key");
                jval_free(key);
                goto failed;
            }
        skip_ws(j);
        if (j->p == j->end || *j->p != ':') {
            jfail(j, "expected ':'");
            jval_free(key);
            goto failed;
        }
        j->p++;
        if (parse_value(j, &v->items[v->n]) < 0) {
            jval_free(key);
            goto failed;
        }
        v->n++;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 0;
        }
        jfail(j, "expected ',' or '}'");
        goto failed;
    }
failed:
    jval_free(v);
    return -1;
}

static int parse_literal(jparse_t *j, jval_t *v, const char *word, jtype_t type)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return jfail(j, "unexpected character");
    j->p += n;
    v->type = type;
    return 0;
}

static int parse_value(jparse_t *j, jval_t *v)
{
    memset(v, 0, sizeof *v);
    skip_ws(j);
    if (j->p == j->end)
        return jfail(j, "unexpected end");
    if (++j->depth > 64)
        return jfail(j, "nested too deeply");
    int rc;
    switch (*j->p) {
    case '{':
        rc = parse_object(j, v);
        break;
    case '[':
        rc = parse_array(j, v);
        break;
    case '"':
        rc = parse_string(j, v);
        break;
    case 't':
        rc = parse_literal(j, v, "true", J_TRUE);
        break;
    case 'f':
        rc = parse_literal(j, v, "false", J_FALSE);
        break;
    case 'n':
        rc = parse_literal(j, v, "null", J_NULL);
        break;
    default:
        rc = (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) ? parse_number(j, v)
                                                              : jfail(j, "unexpected character");
    }
    j->depth--;
    return rc;
}

/* One JSON text, exactly: a value with nothing but whitespace around it. */
static int json_parse(const char *text, size_t len, jval_t *v, char *err, size_t errlen)
{
    jparse_t j = {.start = text, .p = text, .end = text + len};
    memset(v, 0, sizeof *v);
    if (parse_value(&j, v) < 0) {
        snprintf(err, errlen, "%s", j.err);
        return -1;
    }
    skip_ws(&j);
    if (j.p != j.end) {
        jfail(&j, "trailing characters");
        snprintf(err, errlen, "%s", j.err);
        jval_free(v);
        return -1;
    }
    return 0;
}

static const jval_t *jget(const jval_t *obj, const char *key)
{
    if (obj == NULL || obj->type != J_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i].string, key) == 0)
            return &obj->items[i];
    return NULL;
}

static const char *jstr(const jval_t *obj, const char *key)
{
    const jval_t *v = jget(obj, key);
    return v != NULL && v->type == J_STRING ? v->string : NULL;
}

static int jnum(const jval_t *obj, const char *key, double *out)
{
    const jval_t *v = jget(obj, key);
    if (v == NULL || v->type != J_NUMBER)
        return -1;
    *out = v->number;
    return 0;
}

/* ---- --json output ---- */

typedef struct {
    jval_t *v; /* one object per line */
    size_t n;
} events_t;

/* Parses stdout line by line; fails unless every line is one JSON object
 * with an "event" and the output ends with a newline. */
static void events_load(const run_t *r, events_t *e)
{
    memset(e, 0, sizeof *e);
    if (r->out_len == 0 || r->out_text[r->out_len - 1] != '\n') {
        ib_test_run_show(r, "imgbatch");
        fail_msg("--json output is empty or does not end with a newline");
    }
    size_t lines = 0;
    for (size_t i = 0; i < r->out_len; i++)
        lines += r->out_text[i] == '\n';
    e->v = test_calloc(lines, sizeof *e->v);
    const char *p = r->out_text, *end = r->out_text + r->out_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        char err[200];
        jval_t *v = &e->v[e->n];
        if (json_parse(p, (size_t)(nl - p), v, err, sizeof err) < 0) {
            ib_test_run_show(r, "imgbatch");
            fail_msg("line %zu of --json is not valid JSON (%s): %.*s", e->n + 1, err,
                     (int)(nl - p), p);
        }
        e->n++;
        if (v->type != J_OBJECT || jstr(v, "event") == NULL)
            fail_msg("line %zu of --json is not an object with an \"event\": %.*s", e->n,
                     (int)(nl - p), p);
        p = nl + 1;
    }
}

static void events_free(events_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        jval_free(&e->v[i]);
    if (e->v != NULL)
        test_free(e->v);
    memset(e, 0, sizeof *e);
}

static int is_event(const jval_t *v, const char *kind)
{
    const char *k = jstr(v, "event");
    return k != NULL && strcmp(k, kind) == 0;
}

typedef struct {
    size_t files, ok, skipped, failed;
} tally_t;

/* Checks that the summary comes last and that its counts are those of the
 * file events before it; returns those counts. */
static tally_t expect_summary_adds_up(const events_t *e)
{
    tally_t t = {0};
    assert_true(e->n >= 1);
    for (size_t i = 0; i + 1 < e->n; i++) {
        const jval_t *v = &e->v[i];
        if (is_event(v, "summary"))
            fail_msg("a summary before the last line (line %zu)", i + 1);
        if (!is_event(v, "file"))
            continue;
        const char *status = jstr(v, "status");
        const jval_t *outputs = jget(v, "outputs");
        double ms;
        if (jstr(v, "input") == NULL || status == NULL || outputs == NULL ||
            outputs->type != J_ARRAY || jnum(v, "ms", &ms) < 0)
            fail_msg("file event %zu lacks input, status, outputs or ms", i + 1);
        t.files++;
        if (strcmp(status, "ok") == 0)
            t.ok++;
        else if (strcmp(status, "skipped") == 0)
            t.skipped++;
        else if (strcmp(status, "failed") == 0)
            t.failed++;
        else
            fail_msg("file event %zu has status \"%s\"", i + 1, status);
    }
    const jval_t *s = &e->v[e->n - 1];
    if (!is_event(s, "summary"))
        fail_msg("the last line is not the summary");
    double ok, skipped, failed, total;
    if (jnum(s, "ok", &ok) < 0 || jnum(s, "skipped", &skipped) < 0 ||
        jnum(s, "failed", &failed) < 0 || jnum(s, "total", &total) < 0)
        fail_msg("the summary lacks ok, skipped, failed or total");
    assert_int_equal((size_t)ok, t.ok);
    assert_int_equal((size_t)skipped, t.skipped);
    assert_int_equal((size_t)failed, t.failed);
    assert_int_equal((size_t)total, t.files);
    assert_int_equal(t.ok + t.skipped + t.failed, t.files);
    return t;
}

/* The inputs of the file events, with prefix (and a '/') taken off. */
static void event_inputs(const events_t *e, const char *prefix, strs_t *out)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < e->n; i++) {
        const char *in = is_event(&e->v[i], "file") ? jstr(&e->v[i], "input") : NULL;
        if (in == NULL)
            continue;
        if (strncmp(in, prefix, n) != 0 || in[n] != '/')
            fail_msg("input \"%s\" is not under \"%s\"", in, prefix);
        ib_test_strs_add(out, in + n + 1);
    }
}

/* ---- fixtures ---- */

#define work_dir ib_test_cli_dir

/* ---- the JSON reader itself ---- */

static void json_reader_is_strict(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -0.5e+3, 0, 1E9, true, false, null, \"\"]} ",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
    };
    static const char *const bad[] = {
        "",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{'a':1}",
        "{\"a\" 1}",
        "{a:1}",
        "\"\x01\"",
        "\"a\nb\"",
        "\"\\u12\"",
        "\"\\x41\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\xff\"",
        "\"\xc3\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "\"abc",
        "tru",
        "nul",
        "True",
        "{\"a\":1,\"a\":2}",
        "[",
        "{\"a\":[}",
    };
    char err[200];
    jval_t v;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (json_parse(good[i], strlen(good[i]), &v, err, sizeof err) < 0)
            fail_msg("valid JSON refused (%s): %s", err, good[i]);
        jval_free(&v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (json_parse(bad[i], strlen(bad[i]), &v, err, sizeof err) == 0)
            fail_msg("invalid JSON accepted: %s", bad[i]);
    /* A NUL byte inside the line is not JSON either. */
    assert_int_equal(json_parse("{}\0", 3, &v, err, sizeof err), -1);

    static const char escaped[] = "\"a\\u00e9\\ud83d\\ude00\"";
    assert_int_equal(json_parse(escaped, strlen(escaped), &v, err, sizeof err), 0);
    assert_string_equal(v.string, "a\xc3\xa9\xf0\x9f\x98\x80");
    jval_free(&v);
}

/* ---- --json with awkward file names ---- */

typedef struct {
    const char *raw; /* the name on disk */
    int valid_utf8;  /* then the JSON input must give it back exactly */
} odd_name_t;

/* Each starts with a tag of its own, so events can be matched to names
 * even where invalid bytes were replaced. */
static const odd_name_t odd_names[] = {
    {"n01 plain.png", 1},
    {"n02 with  spaces .png", 1},
    {"n03 \"quoted\" 'single'.png", 1},
    {"n04 back\\slash\\.png", 1},
    {"n05 new\nline.png", 1},
    {"n06 tab\tcr\rff\f.png", 1},
    {"n07 ctl\x01\x1f\x7f.png", 1},
    {"n08 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.png", 1},
    {"n09 bad\xff\xfe.png", 0},
    {"n10 cut\xc3.png", 0},
    {"n11 surrogate\xed\xa0\x80.png", 0},
    {"n12 overlong\xc0\xaf.png", 0},
    {"n13 latin1 \xe9t\xe9.png", 0},
    {"sub dir/n14 {braces} [brackets] <angle>.png", 1},
    {"sub dir/n15 json \\u0041 \\n.png", 1},
};
#define N_ODD (sizeof odd_names / sizeof odd_names[0])

/* The event whose input holds the tag of odd_names[i]. */
static const jval_t *event_for_tag(const events_t *e, size_t i)
{
    char tag[8];
    snprintf(tag, sizeof tag, "n%02zu ", i + 1);
    const jval_t *hit = NULL;
    for (size_t k = 0; k < e->n; k++) {
        const char *in = is_event(&e->v[k], "file") ? jstr(&e->v[k], "input") : NULL;
        if (in == NULL || strstr(in, tag) == NULL)
            continue;
        if (hit != NULL)
            fail_msg("two file events for %s", odd_names[i].raw);
        hit = &e->v[k];
    }
    if (hit == NULL)
        fail_msg("no file event for \"%s\"", odd_names[i].raw);
    return hit;
}

static void json_is_valid_whatever_the_names(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    work_dir(t, "names", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    const char *rels[N_ODD];
    for (size_t i = 0; i < N_ODD; i++)
        rels[i] = odd_names[i].raw;
    make_tree(in, rels, N_ODD);
    /* One input that fails, so every status count is tried. */
    ib_test_path_fmt(path, "%s/n16 broken \"x\".png", in);
    ib_test_write_file(path, "\x89PNG\r\n\x1a\n not really", 20);

    for (int pass = 0; pass < 2; pass++) {
        run_t r;
        events_t e;
        run_ib(t, &r, NULL, "--json", "-j", "2", "-o", out, in, NULL);
        ib_test_expect_exit(&r, 1, "a batch with one broken file");
        events_load(&r, &e);
        /* One line per input and the summary: no name split a line. */
        assert_int_equal(e.n, N_ODD + 2);
        tally_t n = expect_summary_adds_up(&e);
        assert_int_equal(n.files, N_ODD + 1);
        assert_int_equal(n.failed, 1);
        /* The second run finds everything up to date. */
        assert_int_equal(pass == 0 ? n.ok : n.skipped, N_ODD);

        for (size_t i = 0; i < N_ODD; i++) {
            const jval_t *ev = event_for_tag(&e, i);
            const char *input = jstr(ev, "input");
            char want[PATH_MAX];
            ib_test_path_fmt(want, "%s/%s", in, odd_names[i].raw);
            if (odd_names[i].valid_utf8)
                assert_string_equal(input, want);
            else if (strstr(input, "\xef\xbf\xbd") == NULL)
                fail_msg("invalid UTF-8 in \"%s\" is not shown as U+FFFD: \"%s\"", odd_names[i].raw,
                         input);
            const jval_t *outputs = jget(ev, "outputs");
            assert_int_equal(outputs->n, 1);
            const jval_t *o = &outputs->items[0];
            double w = 0, h = 0;
            assert_int_equal(jnum(o, "width", &w), 0);
            assert_int_equal(jnum(o, "height", &h), 0);
            assert_true(w == 8 && h == 6);
            ib_test_path_fmt(want, "%s/%s", out, odd_names[i].raw);
            if (odd_names[i].valid_utf8)
                assert_string_equal(jstr(o, "path"), want);
            /* On disk the name is mirrored byte for byte. */
            if (!ib_test_exists(want))
                fail_msg("output \"%s\" is missing", want);
        }
        const jval_t *broken = event_for_tag(&e, N_ODD);
        const jval_t *error = jget(broken, "error");
        assert_string_equal(jstr(broken, "status"), "failed");
        assert_non_null(jstr(error, "kind"));
        assert_non_null(strstr(jstr(error, "message"), "n16 broken"));
        events_free(&e);
        run_free(&r);
    }
}

/* ---- --dry-run ---- */

static void dry_run_writes_nothing(void **state)
{
    cli_t *t = *state;
    static const char *const rels[] = {"a.png", "sub/b.png", "sub/deeper/c.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], cwd[PATH_MAX];
    work_dir(t, "dry", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_path_fmt(cwd, "%s/cwd", dir);
    make_tree(in, rels, 3);
    if (mkdir(cwd, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed", cwd);
    strs_t before = {0}, after = {0};
    list_tree(dir, "", 1, &before);

    run_opts_t here = {.cwd = cwd};
    run_t r;
    run_ib(t, &r, &here, "--dry-run", "-s", "4x", "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "--dry-run");
    /* The summary says what would be written, not that anything was done. */
    if (strstr(r.err_text, "would write 3 files") == NULL || strstr(r.err_text, " done") != NULL) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("--dry-run's summary should say \"would write 3 files\", not \"done\"");
    }
    /* One line per output, naming it and its size. */
    size_t lines = 0;
    for (const char *p = r.out_text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 3);
    for (size_t i = 0; i < 3; i++) {
        char want_out[PATH_MAX];
        ib_test_path_fmt(want_out, "%s/%s", out, rels[i]);
        const char *at = strstr(r.out_text, want_out);
        const char *eol = at != NULL ? strchr(at, '\n') : NULL;
        const char *size = at != NULL ? strstr(at, "4x3") : NULL;
        if (at == NULL || size == NULL || size > eol) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--dry-run does not show %s at 4x3", want_out);
        }
    }
    run_free(&r);

    /* The same as JSON, and with no -o at all. */
    run_ib(t, &r, &here, "--dry-run", "--json", "-F", "webp", "--variant", "sm:2x", "--variant",
           "lg:6x", in, NULL);
    ib_test_expect_exit(&r, 0, "--dry-run --json without -o");
    events_t e;
    events_load(&r, &e);
    tally_t n = expect_summary_adds_up(&e);
    assert_int_equal(n.ok, 3);
    for (size_t i = 0; i + 1 < e.n; i++) {
        const jval_t *outputs = jget(&e.v[i], "outputs");
        assert_int_equal(outputs->n, 2);
        double w0 = 0, w1 = 0;
        assert_int_equal(jnum(&outputs->items[0], "width", &w0), 0);
        assert_int_equal(jnum(&outputs->items[1], "width", &w1), 0);
        assert_true(w0 == 2 && w1 == 6);
        assert_string_equal(jstr(&outputs->items[0], "format"), "webp");
    }
    events_free(&e);
    run_free(&r);

    list_tree(dir, "", 1, &after);
    ib_test_expect_same_set(&after, &before, "the disk after --dry-run");
    assert_false(ib_test_exists(out));
    ib_test_strs_free(&before);
    ib_test_strs_free(&after);
}

/* ---- lists on stdin ---- */

static void nul_separated_stdin_list(void **state)
{
    cli_t *t = *state;
    static const char *const rels[] = {"new\nline.png", "with space.png", "sub/deep.png",
                                       "sub/second\nline\n.png", "not listed.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    work_dir(t, "list", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    make_tree(in, rels, 5);

    /* The first four, NUL-terminated as find -print0 writes them, but the
     * last one without its NUL. */
    char list[4 * PATH_MAX];
    size_t len = 0;
    for (size_t i = 0; i < 4; i++) {
        char p[PATH_MAX];
        ib_test_path_fmt(p, "%s/%s", in, rels[i]);
        memcpy(list + len, p, strlen(p) + 1);
        len += strlen(p) + 1;
    }
    len--;

    static const char *const how[][3] = {{"--files-from", "-", "-0"}, {"-0", "-", NULL}};
    for (size_t k = 0; k < 2; k++) {
        ib_test_path_fmt(out, "%s/out%zu", dir, k);
        run_opts_t o = {.in_data = list, .in_len = len};
        const char *args[] = {"--json",  "--base",  in,        "-o", out,
                              how[k][0], how[k][1], how[k][2], NULL};
        run_t r;
        events_t e;
        run_ib_argv(t, &r, &o, args);
        ib_test_expect_exit(&r, 0, "a NUL-separated list on stdin");
        events_load(&r, &e);
        tally_t n = expect_summary_adds_up(&e);
        assert_int_equal(n.ok, 4);
        strs_t got = {0}, want = {0}, files = {0};
        event_inputs(&e, in, &got);
        for (size_t i = 0; i < 4; i++)
            ib_test_strs_add(&want, rels[i]);
        ib_test_expect_same_set(&got, &want, "inputs read from a NUL-separated list");
        list_tree(out, "", 0, &files);
        ib_test_expect_same_set(&files, &want, "outputs of a NUL-separated list (--base)");
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
        ib_test_strs_free(&files);
        events_free(&e);
        run_free(&r);
    }
}

/* ---- --include / --exclude ---- */

static const char *const glob_tree[] = {
    "a1.png",           "a2.png",     "a10.png",           "b1.png",
    "c1.png",           "sub/a3.png", "sub/deep/b2.png",   "skip/y.png",
    "skip/inner/z.png", "deep/w.png", "deep/er/est/v.png",
};
#define N_GLOB (sizeof glob_tree / sizeof glob_tree[0])

typedef struct {
    const char *args[5];
    const char *want; /* space-separated; "*" for the whole tree */
} glob_case_t;

static const glob_case_t glob_cases[] = {
    {{NULL}, "*"},
    {{"--include", "*.png"}, "*"},
    {{"--include", "a?.png"}, "a1.png a2.png sub/a3.png"},
    {{"--include", "[ab]1.png"}, "a1.png b1.png"},
    {{"--include", "[!a]1.png"}, "b1.png c1.png"},
    {{"--include", "[a-b]?.png"}, "a1.png a2.png b1.png sub/a3.png sub/deep/b2.png"},
    {{"--include", "a[0-9][0-9].png"}, "a10.png"},
    {{"--include", "sub/*"}, "sub/a3.png"},
    {{"--include", "deep/**/*.png"}, "deep/w.png deep/er/est/v.png"},
    {{"--include", "**/deep/*.png"}, "deep/w.png sub/deep/b2.png"},
    {{"--include", "**/*.png"}, "*"},
    {{"--include", "a*", "--include", "b*"},
     "a1.png a2.png a10.png b1.png sub/a3.png sub/deep/b2.png"},
    /* A directory that matches is pruned: y.png itself does not match. */
    {{"--exclude", "skip"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "skip/inner"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png skip/y.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "**/inner"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png skip/y.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--exclude", "deep"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png skip/y.png skip/inner/z.png"},
    /* --exclude wins over --include. */
    {{"--include", "*.png", "--exclude", "skip"},
     "a1.png a2.png a10.png b1.png c1.png sub/a3.png sub/deep/b2.png deep/w.png "
     "deep/er/est/v.png"},
    {{"--include", "*1.png", "--exclude", "a*"}, "b1.png c1.png"},
};

static void include_exclude_globs(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], notes[PATH_MAX];
    work_dir(t, "globs", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    make_tree(in, glob_tree, N_GLOB);
    ib_test_path_fmt(notes, "%s/notes.txt", in);
    ib_test_write_file(notes, "not an image\n", 13);

    for (size_t c = 0; c < sizeof glob_cases / sizeof glob_cases[0]; c++) {
        const glob_case_t *g = &glob_cases[c];
        const char *args[12] = {"--dry-run", "--json", "-j", "1"};
        size_t n = 4;
        for (size_t i = 0; i < 5 && g->args[i] != NULL; i++)
            args[n++] = g->args[i];
        args[n++] = in;
        args[n] = NULL;
        run_t r;
        events_t e;
        run_ib_argv(t, &r, NULL, args);
        ib_test_expect_exit(&r, 0, "a glob run");
        events_load(&r, &e);
        expect_summary_adds_up(&e);
        strs_t got = {0}, want = {0};
        event_inputs(&e, in, &got);
        if (strcmp(g->want, "*") == 0)
            for (size_t i = 0; i < N_GLOB; i++)
                ib_test_strs_add(&want, glob_tree[i]);
        else
            ib_test_strs_split(g->want, &want);
        char what[256];
        snprintf(what, sizeof what, "%s %s %s %s", g->args[0] ? g->args[0] : "(no globs)",
                 g->args[1] ? g->args[1] : "", g->args[2] ? g->args[2] : "",
                 g->args[3] ? g->args[3] : "");
        ib_test_expect_same_set(&got, &want, what);
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
        events_free(&e);
        run_free(&r);
    }
}

/* ---- usage errors ---- */

typedef struct {
    /* "IN" is replaced by a real input directory; "-o OUT" is added unless
     * the case has a -o of its own. */
    const char *args[6];
    const char *needs[3]; /* what the message must name */
    const char *env[4];
} usage_case_t;

static const usage_case_t usage_cases[] = {
    {{"--no-such-option", "IN"}, {"--no-such-option"}},
    {{"-Z", "IN"}, {"-Z"}},
    {{"-s", "banana", "IN"}, {"banana"}},
    {{"-f", "nosuchop", "IN"}, {"nosuchop"}},
    {{"-f", "blur=banana", "IN"}, {"banana", "blur"}},
    {{"-j", "0", "IN"}, {"-j", "'0'"}},
    {{"IN", "no-such-input.png"}, {"no-such-input.png"}},
    {{"--shard", "0/3", "IN"}, {"0/3"}},
    {{"--shard", "4/3", "IN"}, {"4/3"}},
    {{"--shard", "auto", "IN"}, {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"}},
    {{"--shard", "auto", "IN"}, {"auto/N"}, {"JOB_COMPLETION_INDEX=1"}},
    {{"--shard", "auto/3", "IN"}, {"JOB_COMPLETION_INDEX", "3"}, {"JOB_COMPLETION_INDEX=3"}},
    {{"--shard", "auto", "IN"},
     {"9"},
     {"SLURM_ARRAY_TASK_ID=9", "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=4"}},
    {{"--quality", "0", "IN"}, {"--quality", "'0'"}},
    {{"--if-exists", "nope", "IN"}, {"nope"}},
    {{"-F", "bmp", "IN"}, {"bmp"}},
    {{"--progress", "sometimes", "IN"}, {"sometimes"}},
    {{"--name", "{nope}", "IN"}, {"{nope}"}},
    {{"--variant", "bad", "IN"}, {"bad"}},
    {{"--timeout", "0", "IN"}, {"--timeout"}},
    {{"--files-from", "no-such-list"}, {"no-such-list"}},
    {{"--json=yes", "IN"}, {"--json"}},
    {{"-o", "-", "IN"}, {"-o -", "directory"}},
    {{"-o", "IN", "IN"}, {"--in-place", "--name"}},
    {{"-o", "IN", "-F", "webp", "IN"}, {"--in-place"}},
    {{"--name", "{stem}.jpg", "-F", "png", "IN"}, {"{stem}.jpg", "png"}},
    {{"--name", "{dir}/{stem}.TIF", "-F", "jpeg", "IN"}, {".TIF", "jpeg"}},
    {{NULL}, {"INPUT"}},
};

static void usage_errors_exit_2_and_write_nothing(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], cwd[PATH_MAX];
    work_dir(t, "usage", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_path_fmt(cwd, "%s/cwd", dir);
    static const char *const rels[] = {"a.png", "sub/b.png"};
    make_tree(in, rels, 2);
    if (mkdir(cwd, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed", cwd);
    strs_t before = {0}, after = {0};
    list_tree(dir, "", 1, &before);

    int failures = 0;
    for (size_t c = 0; c < sizeof usage_cases / sizeof usage_cases[0]; c++) {
        const usage_case_t *u = &usage_cases[c];
        const char *args[12];
        size_t n = 0;
        char shown[512] = "imgbatch";
        int own_output = 0;
        for (size_t i = 0; i < 6 && u->args[i] != NULL; i++) {
            args[n++] = strcmp(u->args[i], "IN") == 0 ? in : u->args[i];
            own_output |= strcmp(u->args[i], "-o") == 0;
            strncat(shown, " ", sizeof shown - strlen(shown) - 1);
            strncat(shown, u->args[i], sizeof shown - strlen(shown) - 1);
        }
        if (!own_output) {
            args[n++] = "-o";
            args[n++] = out;
        }
        args[n] = NULL;
        run_opts_t o = {.cwd = cwd, .env_add = u->env};
        run_t r;
        run_ib_argv(t, &r, &o, args);
        const char *nl = strchr(r.err_text, '\n');
        const char *why = NULL;
        if (r.status != 2)
            why = "exit status is not 2";
        else if (r.out_len != 0)
            why = "something on stdout";
        else if (nl == NULL || nl[1] != '\0')
            why = "stderr is not exactly one line";
        for (size_t i = 0; why == NULL && i < 3 && u->needs[i] != NULL; i++)
            if (strstr(r.err_text, u->needs[i]) == NULL)
                why = "the message does not name the offending value";
        if (why != NULL) {
            print_error("FAILED: %s (env %s): %s; wanted it to name '%s'\n", shown,
                        u->env[0] ? u->env[0] : "-", why, u->needs[0]);
            ib_test_run_show(&r, "imgbatch");
            failures++;
        }
        run_free(&r);
    }
    list_tree(dir, "", 1, &after);
    ib_test_expect_same_set(&after, &before, "the disk after usage errors");
    ib_test_strs_free(&before);
    ib_test_strs_free(&after);
    if (failures > 0)
        fail_msg("%d usage error case(s) misbehaved (see above)", failures);
}

/* ---- --shard ---- */

#define N_SHARD_FILES 30

static void make_shard_tree(const cli_t *t, char *in)
{
    char dir[PATH_MAX];
    work_dir(t, "shard", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    for (unsigned i = 0; i < N_SHARD_FILES; i++) {
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/d%u/f%02u.png", in, i % 3, i);
        make_png(path, 8, 6, i);
    }
}

/* The inputs a --dry-run with these extra arguments and environment takes. */
static void shard_inputs(cli_t *t, const char *in, const char *shard, const char *const *env,
                         strs_t *out)
{
    run_opts_t o = {.env_add = env};
    run_t r;
    events_t e;
    run_ib(t, &r, &o, "--dry-run", "--json", "-j", "1", "--shard", shard, in, NULL);
    ib_test_expect_exit(&r, 0, shard);
    events_load(&r, &e);
    expect_summary_adds_up(&e);
    event_inputs(&e, in, out);
    events_free(&e);
    run_free(&r);
}

static void shards_split_the_inputs_exactly(void **state)
{
    cli_t *t = *state;
    char in[PATH_MAX];
    make_shard_tree(t, in);
    strs_t all = {0};
    list_tree(in, "", 0, &all);
    assert_int_equal(all.n, N_SHARD_FILES);

    for (unsigned n = 1; n <= 5; n++) {
        strs_t union_ = {0};
        for (unsigned k = 1; k <= n; k++) {
            char shard[32], out[PATH_MAX];
            snprintf(shard, sizeof shard, "%u/%u", k, n);
            ib_test_path_fmt(out, "%s/shard/out-%u-%u", t->root, n, k);
            run_t r;
            run_ib(t, &r, NULL, "-q", "-j", "2", "--shard", shard, "-o", out, in, NULL);
            ib_test_expect_exit(&r, 0, shard);
            run_free(&r);
            strs_t mine = {0};
            if (ib_test_exists(out))
                list_tree(out, "", 0, &mine);
            /* With more than one shard, no shard may take everything. */
            if (n > 1 && mine.n == N_SHARD_FILES)
                fail_msg("--shard %s took all %d inputs", shard, N_SHARD_FILES);
            for (size_t i = 0; i < mine.n; i++)
                ib_test_strs_add(&union_, mine.v[i]);
            ib_test_strs_free(&mine);
        }
        for (size_t i = 0; i < all.n; i++) {
            size_t c = ib_test_strs_count(&union_, all.v[i]);
            if (c != 1)
                fail_msg("with N=%u, %s was written by %zu shards", n, all.v[i], c);
        }
        assert_int_equal(union_.n, all.n);
        ib_test_strs_free(&union_);
    }
    ib_test_strs_free(&all);
}

static void shard_auto_reads_job_arrays(void **state)
{
    cli_t *t = *state;
    char in[PATH_MAX];
    make_shard_tree(t, in);

    /* sbatch --array=5-8: tasks 5..8 are shards 1/4..4/4. */
    for (unsigned id = 5; id <= 8; id++) {
        char id_var[64], shard[16];
        snprintf(id_var, sizeof id_var, "SLURM_ARRAY_TASK_ID=%u", id);
        snprintf(shard, sizeof shard, "%u/4", id - 4);
        const char *env[] = {id_var, "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=4",
                             "SLURM_ARRAY_TASK_MAX=8", NULL};
        static const char *const modes[] = {"auto", "auto/4"};
        strs_t want = {0};
        shard_inputs(t, in, shard, NULL, &want);
        for (size_t m = 0; m < 2; m++) {
            strs_t got = {0}, copy = {0};
            shard_inputs(t, in, modes[m], env, &got);
            for (size_t i = 0; i < want.n; i++)
                ib_test_strs_add(&copy, want.v[i]);
            char what[128];
            snprintf(what, sizeof what, "--shard %s in Slurm task %u of 5-8 (as --shard %s)",
                     modes[m], id, shard);
            ib_test_expect_same_set(&got, &copy, what);
            ib_test_strs_free(&got);
            ib_test_strs_free(&copy);
        }
        ib_test_strs_free(&want);
    }

    /* A Kubernetes Indexed Job with 3 completions: indexes 0..2. */
    for (unsigned i = 0; i < 3; i++) {
        char var[64], shard[16];
        snprintf(var, sizeof var, "JOB_COMPLETION_INDEX=%u", i);
        snprintf(shard, sizeof shard, "%u/3", i + 1);
        const char *env[] = {var, NULL};
        strs_t got = {0}, want = {0};
        shard_inputs(t, in, "auto/3", env, &got);
        shard_inputs(t, in, shard, NULL, &want);
        char what[128];
        snprintf(what, sizeof what, "--shard auto/3 with %s (as --shard %s)", var, shard);
        ib_test_expect_same_set(&got, &want, what);
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
    }
}

/* ---- re-running with other options ---- */

/* Runs imgbatch on in with the extra options (NULL-terminated, at most 4)
 * and returns how many inputs it did and how many it found up to date. */
static tally_t rerun(cli_t *t, const char *in, const char *out, const char *const *extra)
{
    const char *args[12] = {"--json", "-j", "1", "-o", out};
    size_t n = 5;
    for (size_t i = 0; extra[i] != NULL && i < 4; i++)
        args[n++] = extra[i];
    args[n++] = in;
    args[n] = NULL;
    run_t r;
    events_t e;
    run_ib_argv(t, &r, NULL, args);
    ib_test_expect_exit(&r, 0, "a re-run");
    events_load(&r, &e);
    tally_t tally = expect_summary_adds_up(&e);
    events_free(&e);
    run_free(&r);
    return tally;
}

/* DESIGN.md: an output is up to date only if it was made with the same
 * recipe, "a fingerprint of everything that shapes the output". */
static void options_that_shape_the_output_redo_it(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    work_dir(t, "recipe", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    static const char *const rels[] = {"a.png"};
    make_tree(in, rels, 1);

    /* Each step differs from the one before it in one option. */
    static const char *const steps[][4] = {
        {NULL},
        {"--interlace", NULL},
        {"--compression", "0", NULL},
        {"--strip", NULL},
        {"--keep-metadata", NULL},
        {"-F", "webp", NULL},
        {"-F", "webp", "--lossless", NULL},
    };
    int failures = 0;
    char shown[128] = "", before[128] = "";
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        tally_t first = rerun(t, in, out, steps[i]);
        tally_t again = rerun(t, in, out, steps[i]);
        memcpy(before, shown, sizeof before);
        shown[0] = '\0';
        for (size_t k = 0; k < 4 && steps[i][k] != NULL; k++) {
            strncat(shown, " ", sizeof shown - strlen(shown) - 1);
            strncat(shown, steps[i][k], sizeof shown - strlen(shown) - 1);
        }
        /* The same command twice: the second finds the work done. */
        if (again.skipped != 1) {
            print_error("FAILED: imgbatch%s run twice: the second run redid the image\n", shown);
            failures++;
        }
        if (i > 0 && first.ok != 1) {
            print_error("FAILED: imgbatch%s after imgbatch%s: the image was skipped as up to "
                        "date\n",
                        shown, before);
            failures++;
        }
    }
    if (failures > 0)
        fail_msg("%d re-run(s) misjudged what is up to date (see above)", failures);
}

/* ---- progress ---- */

/* A carriage return that is not part of a CRLF: a redraw. */
static int has_redraw(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
            return 1;
    return 0;
}

/* Appends s to a shell command line, single-quoted. */
static void sh_quote(char *cmd, size_t cap, const char *s)
{
    size_t n = strlen(cmd);
    if (n + 3 >= cap)
        fail_msg("command too long");
    cmd[n++] = ' ';
    cmd[n++] = '\'';
    for (; *s != '\0'; s++) {
        if (n + 6 >= cap)
            fail_msg("command too long");
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    cmd[n++] = '\'';
    cmd[n] = '\0';
}

static void progress_redraws_on_a_terminal_only(void **state)
{
    cli_t *t = *state;
    char script[PATH_MAX], dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    if (ib_test_find_program("script", script) < 0)
        ib_test_skip_loudly(NULL,
                            "script(1) from util-linux is not installed: no terminal to test the "
                            "progress line on");
    work_dir(t, "progress", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    /* About a second of work, so that a progress line that waits a little
     * before it shows itself still gets drawn. */
    for (unsigned i = 0; i < 16; i++) {
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/p%02u.png", in, i);
        make_png(path, 600, 600, i);
    }

    static const char *const whens[] = {"auto", "never"};
    for (size_t w = 0; w < 2; w++) {
        char cmd[4 * PATH_MAX] = "exec";
        sh_quote(cmd, sizeof cmd, t->bin);
        const char *args[] = {"--progress",  whens[w],    "-j", "1", "-f", "blur=3",
                              "--if-exists", "overwrite", "-o", out, in,   NULL};
        for (size_t i = 0; args[i] != NULL; i++)
            sh_quote(cmd, sizeof cmd, args[i]);
        strncat(cmd, " >/dev/null", sizeof cmd - strlen(cmd) - 1);
        const char *argv[] = {"script", "-qec", cmd, "/dev/null", NULL};
        run_t r;
        ib_test_cli_run_prog(t, &r, NULL, script, argv);
        ib_test_expect_exit(&r, 0, "imgbatch under script(1)");
        if (w == 0 && !has_redraw(r.out_text, r.out_len)) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--progress auto on a terminal: no '\\r' redraw");
        }
        if (w == 1 && has_redraw(r.out_text, r.out_len)) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--progress never on a terminal: a '\\r' redraw");
        }
        run_free(&r);
    }

    /* Redirected: auto draws nothing, always draws anyway. */
    for (size_t w = 0; w < 2; w++) {
        run_t r;
        run_ib(t, &r, NULL, "--progress", w == 0 ? "auto" : "always", "-j", "1", "-f", "blur=3",
               "--if-exists", "overwrite", "-o", out, in, NULL);
        ib_test_expect_exit(&r, 0, "imgbatch with stderr in a file");
        int cr = memchr(r.err_text, '\r', r.err_len) != NULL;
        if (w == 0 && cr) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--progress auto with stderr in a file: '\\r' in it");
        }
        if (w == 1 && !cr) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--progress always with stderr in a file: no '\\r' redraw");
        }
        run_free(&r);
    }
}

/* ---- --version, --help, man page, completion ---- */

static int is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether text holds word as a whole word followed by " N.N". */
static int word_has_version(const char *text, const char *word)
{
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        const char *v = p + strlen(word);
        if (p != text && p[-1] != ' ' && p[-1] != '\n')
            continue;
        if (*v++ != ' ' || !is_digit_char(*v))
            continue;
        while (is_digit_char(*v))
            v++;
        if (v[0] == '.' && is_digit_char(v[1]))
            return 1;
    }
    return 0;
}

static void version_names_the_libraries(void **state)
{
    cli_t *t = *state;
    run_t r;
    run_ib(t, &r, NULL, "--version", NULL);
    ib_test_expect_exit(&r, 0, "--version");
    assert_int_equal(r.err_len, 0);
    static const char *const words[] = {"imgbatch", "libvips", "libjpeg-turbo", "libpng",
                                        "libdeflate"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!word_has_version(r.out_text, words[i])) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("--version does not give a version of %s", words[i]);
        }
    /* imgbatch's own is the project's version. */
    if (t->source_root != NULL) {
        char path[PATH_MAX], want[64] = "";
        ib_test_path_fmt(path, "%s/meson.build", t->source_root);
        char *build = ib_test_slurp(path, NULL);
        /* project(..., version : 'X', ...), not meson_version. */
        const char *v = build;
        while ((v = strstr(v, "version : '")) != NULL && v > build && v[-1] == '_')
            v++;
        if (v != NULL)
            snprintf(want, sizeof want, "imgbatch %.*s\n", (int)strcspn(v + 11, "'"), v + 11);
        test_free(build);
        if (want[0] == '\0' || strncmp(r.out_text, want, strlen(want)) != 0)
            fail_msg("--version starts \"%.40s\", wanted \"%s\"", r.out_text, want);
    }
    run_free(&r);
}

/* ---- meson install ---- */

/* Finds the one installed file that ends with suffix; prefix gets the
 * part of its path before the suffix. */
static void find_installed(const strs_t *files, const char *suffix, char *prefix)
{
    size_t sn = strlen(suffix), hits = 0;
    for (size_t i = 0; i < files->n; i++) {
        size_t n = strlen(files->v[i]);
        if (n >= sn && strcmp(files->v[i] + n - sn, suffix) == 0 &&
            (n == sn || files->v[i][n - sn - 1] == '/')) {
            snprintf(prefix, PATH_MAX, "%.*s", (int)(n - sn), files->v[i]);
            hits++;
        }
    }
    if (hits != 1) {
        ib_test_strs_print("installed", files);
        fail_msg("%zu installed files end with %s, wanted 1", hits, suffix);
    }
}

static void meson_install_puts_everything_in_place(void **state)
{
    cli_t *t = *state;
    char meson[PATH_MAX], build[PATH_MAX], dest[PATH_MAX];
    if (ib_test_find_program("meson", meson) < 0)
        ib_test_skip_loudly(NULL, "meson is not on PATH: install not tried");
    /* $IMGBATCH is <build>/app/imgbatch. */
    ib_test_path_fmt(build, "%s", t->bin);
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(build, '/');
        if (slash == NULL)
            fail_msg("cannot find the build directory from %s", t->bin);
        *slash = '\0';
    }
    ib_test_path_fmt(dest, "%s/meson-private", build);
    if (!ib_test_exists(dest))
        ib_test_skip_loudly(NULL, "%s is not a meson build directory: install not tried", build);
    work_dir(t, "destdir", dest);
    const char *argv[] = {"meson", "install",      "-C",      build, "--destdir",
                          dest,    "--no-rebuild", "--quiet", NULL};
    run_t r;
    ib_test_cli_run_prog(t, &r, NULL, meson, argv);
    ib_test_expect_exit(&r, 0, "meson install --destdir");
    run_free(&r);

    strs_t files = {0};
    list_tree(dest, "", 0, &files);
    char bin[PATH_MAX], man[PATH_MAX], completion[PATH_MAX];
    find_installed(&files, "bin/imgbatch", bin);
    find_installed(&files, "share/man/man1/imgbatch.1", man);
    find_installed(&files, "share/bash-completion/completions/imgbatch", completion);
    /* All under one prefix. */
    assert_string_equal(bin, man);
    assert_string_equal(bin, completion);

    char path[PATH_MAX];
    ib_test_path_fmt(path, "%s/%sbin/imgbatch", dest, bin);
    assert_int_equal(access(path, X_OK), 0);
    /* The page from the sources, the completion as the build made it. */
    char src[2][PATH_MAX] = {"", ""};
    if (t->source_root != NULL)
        ib_test_path_fmt(src[0], "%s/app/imgbatch.1", t->source_root);
    if (getenv("IB_BASH_COMPLETION") != NULL)
        ib_test_path_fmt(src[1], "%s", getenv("IB_BASH_COMPLETION"));
    static const char *const installed[] = {"share/man/man1/imgbatch.1",
                                            "share/bash-completion/completions/imgbatch"};
    for (size_t i = 0; i < 2; i++) {
        if (src[i][0] == '\0')
            continue;
        size_t a_len, b_len;
        ib_test_path_fmt(path, "%s/%s%s", dest, bin, installed[i]);
        char *a = ib_test_slurp(src[i], &a_len), *b = ib_test_slurp(path, &b_len);
        if (a_len != b_len || memcmp(a, b, a_len) != 0)
            fail_msg("installed %s differs from %s", path, src[i]);
        test_free(a);
        test_free(b);
    }
    ib_test_strs_free(&files);
}

/* ---- what a new user meets first ---- */

/* The "kind" of the one file event of a run, or NULL. */
static const char *only_error_kind(const events_t *e)
{
    const char *kind = NULL;
    size_t files = 0;
    for (size_t i = 0; i < e->n; i++)
        if (is_event(&e->v[i], "file")) {
            files++;
            kind = jstr(jget(&e->v[i], "error"), "kind");
        }
    return files == 1 ? kind : NULL;
}

/* A text file named on the command line is not a damaged image: no decoder
 * could read it, so it is "unsupported", not "decode". A .png of garbage
 * is still "decode". */
static void non_image_named_is_unsupported(void **state)
{
    cli_t *t = *state;
    static const struct {
        const char *name, *kind;
    } cases[] = {{"notes.txt", "unsupported"}, {"broken.png", "decode"}};
    char dir[PATH_MAX], file[PATH_MAX], out[PATH_MAX];
    work_dir(t, "named-non-image", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ib_test_path_fmt(file, "%s/%s", dir, cases[i].name);
        ib_test_write_file(file, "not an image at all\n", 20);
        run_t r;
        events_t e;
        run_ib(t, &r, NULL, "--json", "-o", out, file, NULL);
        ib_test_expect_exit(&r, 1, cases[i].name);
        events_load(&r, &e);
        const char *kind = only_error_kind(&e);
        if (kind == NULL || strcmp(kind, cases[i].kind) != 0) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("%s failed as %s, wanted %s", cases[i].name, kind ? kind : "(nothing)",
                     cases[i].kind);
        }
        if (strstr(r.err_text, cases[i].name) == NULL)
            fail_msg("the message does not name %s", cases[i].name);
        events_free(&e);
        run_free(&r);
    }
}

/* With nothing processed, the summary line has no images/s rate: a rate
 * of nothing means nothing. */
static void no_rate_without_images(void **state)
{
    cli_t *t = *state;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX];
    work_dir(t, "no-rate", dir);
    ib_test_path_fmt(in, "%s/empty", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    if (mkdir(in, 0777) < 0)
        fail_msg("mkdir(\"%s\") failed: %s", in, strerror(errno));
    run_t r;
    run_ib(t, &r, NULL, "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a folder with no images");
    if (strstr(r.err_text, "0 done") == NULL || strstr(r.err_text, "images/s") != NULL) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("the summary of no images should say 0 done and give no rate");
    }
    run_free(&r);
}

/* A non-image inside a folder is counted as ignored (summary line and
 * JSON summary), and -v names it; a hidden one is not looked at. */
static void non_images_in_folders_are_counted(void **state)
{
    cli_t *t = *state;
    static const char *const rels[] = {"a.png", "sub/b.png"};
    static const char *const others[] = {"notes.txt", "sub/data.bin", ".hidden.txt"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    work_dir(t, "ignored", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    make_tree(in, rels, 2);
    for (size_t i = 0; i < 3; i++) {
        ib_test_path_fmt(path, "%s/%s", in, others[i]);
        ib_test_write_file(path, "plain text\n", 11);
    }
    run_t r;
    events_t e;
    run_ib(t, &r, NULL, "-v", "--json", "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a folder with non-images");
    events_load(&r, &e);
    tally_t n = expect_summary_adds_up(&e);
    double ignored = -1;
    jnum(&e.v[e.n - 1], "ignored", &ignored);
    if (n.ok != 2 || ignored != 2 || strstr(r.err_text, ", 2 ignored") == NULL) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("wanted 2 done and 2 ignored in the JSON summary and the summary line");
    }
    for (size_t i = 0; i < 3; i++) {
        ib_test_path_fmt(path, "%s/%s", in, others[i]);
        if ((strstr(r.err_text, path) != NULL) != (i < 2)) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("-v should name each ignored file, and no hidden one: %s", path);
        }
    }
    events_free(&e);
    run_free(&r);
    /* Without -v the count alone. */
    run_ib(t, &r, NULL, "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, "a re-run");
    ib_test_path_fmt(path, "%s/notes.txt", in);
    if (strstr(r.err_text, path) != NULL || strstr(r.err_text, ", 2 ignored") == NULL) {
        ib_test_run_show(&r, "imgbatch");
        fail_msg("without -v, only the count of ignored files");
    }
    run_free(&r);
}

/* The inputs of a run's file events, relative to root. */
static void inputs_under(const run_t *r, const char *root, strs_t *got)
{
    events_t e;
    events_load(r, &e);
    expect_summary_adds_up(&e);
    event_inputs(&e, root, got);
    events_free(&e);
}

/* -o the input folder with a --name that makes new names: the thumbnails
 * go beside their originals, and later runs never take them for inputs
 * (nor count them as ignored), whether up to date or redone. */
static void outputs_beside_their_originals(void **state)
{
    cli_t *t = *state;
    static const char *const rels[] = {"a.png", "sub/b.png"};
    char dir[PATH_MAX], in[PATH_MAX], notes[PATH_MAX];
    work_dir(t, "beside", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    make_tree(in, rels, 2);
    ib_test_path_fmt(notes, "%s/notes.txt", in);
    ib_test_write_file(notes, "plain text\n", 11);
    static const char *const modes[] = {"update", "update", "overwrite"};
    for (size_t pass = 0; pass < 3; pass++) {
        run_t r;
        run_ib(t, &r, NULL, "--json", "-s", "4x", "--name", "{dir}/{stem}-small.{ext}",
               "--if-exists", modes[pass], "-o", in, in, NULL);
        ib_test_expect_exit(&r, 0, "outputs beside the inputs");
        strs_t got = {0}, want = {0};
        inputs_under(&r, in, &got);
        ib_test_strs_add(&want, "a.png");
        ib_test_strs_add(&want, "sub/b.png");
        ib_test_expect_same_set(&got, &want, "the inputs of a run beside its outputs");
        if (strstr(r.out_text, "\"ignored\":1,") == NULL) {
            ib_test_run_show(&r, "imgbatch");
            fail_msg("pass %zu: only notes.txt is ignored, not the outputs", pass + 1);
        }
        ib_test_strs_free(&got);
        ib_test_strs_free(&want);
        run_free(&r);
    }
    strs_t files = {0}, want = {0};
    list_tree(in, "", 0, &files);
    static const char *const all[] = {"a.png", "a-small.png", "sub/b.png", "sub/b-small.png",
                                      "notes.txt"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ib_test_strs_add(&want, all[i]);
    ib_test_expect_same_set(&files, &want, "the input folder after three runs");
    ib_test_strs_free(&files);
    ib_test_strs_free(&want);
}

/* Waits until file holds text, for at most timeout_s seconds. */
static int wait_for_text(const char *file, const char *text, double timeout_s)
{
    double deadline = ib_test_now() + timeout_s;
    do {
        char *got = ib_test_try_slurp(file, NULL);
        int found = got != NULL && strstr(got, text) != NULL;
        if (got != NULL)
            test_free(got);
        if (found)
            return 1;
        usleep(50 * 1000);
    } while (ib_test_now() < deadline);
    return 0;
}

static void write_line(int fd, const char *path)
{
    char line[PATH_MAX + 1];
    int n = snprintf(line, sizeof line, "%s\n", path);
    if (write(fd, line, (size_t)n) != n)
        fail_msg("write() to the pipe failed: %s", strerror(errno));
}

/* Paths on a pipe that stays open (inotifywait -m | imgbatch -): each
 * result comes while stdin is idle, not when the next path arrives. */
static void stdin_results_flow_while_it_is_idle(void **state)
{
    cli_t *t = *state;
    static const char *const rels[] = {"a.png", "b.png"};
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], fifo[PATH_MAX], path[PATH_MAX];
    char outlog[PATH_MAX], errlog[PATH_MAX], err[PATH_MAX + 64];
    work_dir(t, "stdin-idle", dir);
    ib_test_path_fmt(in, "%s/in", dir);
    ib_test_path_fmt(out, "%s/out", dir);
    ib_test_path_fmt(fifo, "%s/paths", dir);
    ib_test_path_fmt(outlog, "%s/stdout", dir);
    ib_test_path_fmt(errlog, "%s/stderr", dir);
    make_tree(in, rels, 2);
    if (mkfifo(fifo, 0600) < 0)
        fail_msg("mkfifo(\"%s\") failed: %s", fifo, strerror(errno));
    /* Open for writing without waiting for the reader: read and write. */
    int w = open(fifo, O_RDWR | O_CLOEXEC);
    if (w < 0)
        fail_msg("open(\"%s\") failed: %s", fifo, strerror(errno));
    const char *argv[] = {t->bin, "-", "--json", "-j", "1", "-o", out, NULL};
    ib_test_spawn_t how = {.in = fifo,
                           .out = outlog,
                           .err = errlog,
                           .env_unset = ib_test_job_variables,
                           .own_group = 1};
    pid_t pid = ib_test_spawn(t->bin, (char *const *)argv, &how, err, sizeof err);
    if (pid < 0)
        fail_msg("%s", err);
    ib_test_path_fmt(path, "%s/a.png", in);
    write_line(w, path);
    int flowed = wait_for_text(outlog, "a.png\",\"status\":\"ok\"", 20);
    ib_test_path_fmt(path, "%s/b.png", in);
    write_line(w, path);
    close(w);
    int status = ib_test_wait(pid, RUN_TIMEOUT_S, "imgbatch");
    if (!flowed)
        fail_msg("a.png's result did not come while stdin was idle (20 s)");
    assert_int_equal(status, 0);
    assert_true(wait_for_text(outlog, "b.png\",\"status\":\"ok\"", 0));
    assert_true(wait_for_text(outlog, "\"event\":\"summary\",\"ok\":2,", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_reader_is_strict),
        cmocka_unit_test(json_is_valid_whatever_the_names),
        cmocka_unit_test(dry_run_writes_nothing),
        cmocka_unit_test(nul_separated_stdin_list),
        cmocka_unit_test(include_exclude_globs),
        cmocka_unit_test(usage_errors_exit_2_and_write_nothing),
        cmocka_unit_test(shards_split_the_inputs_exactly),
        cmocka_unit_test(shard_auto_reads_job_arrays),
        cmocka_unit_test(options_that_shape_the_output_redo_it),
        cmocka_unit_test(progress_redraws_on_a_terminal_only),
        cmocka_unit_test(version_names_the_libraries),
        cmocka_unit_test(meson_install_puts_everything_in_place),
        cmocka_unit_test(non_image_named_is_unsupported),
        cmocka_unit_test(no_rate_without_images),
        cmocka_unit_test(non_images_in_folders_are_counted),
        cmocka_unit_test(outputs_beside_their_originals),
        cmocka_unit_test(stdin_results_flow_while_it_is_idle),
    };
    return ib_test_run_suite(tests, ib_test_cli_group_setup, ib_test_cli_group_teardown);
}
