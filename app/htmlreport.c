/*
 * The --report page (htmlreport.h).
 *
 * NOTES
 * - Rows go to two unlinked temporary files beside the page as results
 *   arrive, failures in one and the rest in the other, so the parent's
 *   memory does not grow with the batch and failures can come first
 *   without sorting. The page is the header, then both files copied, then
 *   the filter script; it is written to .NAME.XXXXXX.tmp, synced and
 *   renamed, so a browser never sees half a page, and can be rewritten at
 *   any time from the rows so far.
 * - Every name and message passes through ib_html_text(): a file called
 *   <script>.png is text on the page, never markup. Links are
 *   percent-encoded.
 * - Thumbnails: an output under the page's folder is linked by relative
 *   path (it works from file://); otherwise the input's LQIP, made by the
 *   worker, is inlined. Images are lazy and carry their width and height,
 *   and the table's layout is fixed, so 10,000 rows load without layout
 *   thrash.
 */
#include "htmlreport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aside.h"
#include "clock.h"
#include "manifest.h"
#include "run_error.h"

/* Thumbnails fit in a box this many CSS pixels a side. */
#define THUMB_BOX 96
/* Shown per input; a --variant and -F batch can make 32. */
#define THUMBS_SHOWN 4

struct ib_htmlreport {
    const ib_plan_t *plan;
    FILE *failed_rows, *other_rows;
    unsigned long done, skipped, failed, ignored;
    uint64_t done_in, done_out; /* bytes of the inputs done and their outputs */
    time_t started;
    int64_t started_ms;
    char *command;
    char path[PATH_MAX];
    char dir[PATH_MAX]; /* the page's folder, absolute and lexical */
    char cwd[PATH_MAX];
};

/* ---- paths ---- */

/* path made absolute against cwd, with "." and ".." resolved as a browser
 * resolves a URL: by the words alone. 0, or -1 if it does not fit. */
static int lexical_absolute(const char *cwd, const char *path, char *out, size_t cap)
{
    char joined[2 * PATH_MAX + 2];
    snprintf(joined, sizeof joined, "%s/%s", path[0] == '/' ? "" : cwd, path);
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(joined, "/", &save); w != NULL;
         w = strtok_r(NULL, "/", &save)) {
        if (strcmp(w, ".") == 0)
            continue;
        if (strcmp(w, "..") == 0) {
            while (n > 0 && out[--n] != '/')
                ;
            continue;
        }
        size_t len = strlen(w);
        if (n + len + 2 > cap)
            return -1;
        out[n++] = '/';
        memcpy(out + n, w, len);
        n += len;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* The folder of file, absolute and lexical. */
static int folder_of(const char *cwd, const char *file, char *out, size_t cap)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(file, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - file + 1), file);
    return lexical_absolute(cwd, dir, out, cap);
}

/* path relative to dir if it is under it (both absolute), else NULL. */
static const char *under(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return path + 1;
    if (strncmp(path, dir, n) == 0 && path[n] == '/')
        return path + n + 1;
    return NULL;
}

int ib_htmlreport_links_outputs(const ib_plan_t *plan)
{
    char cwd[PATH_MAX], dir[PATH_MAX], abs[PATH_MAX], page[PATH_MAX];
    if (plan->report == NULL || getcwd(cwd, sizeof cwd) == NULL ||
        ib_manifest_path(plan->report, plan, page, sizeof page) < 0 ||
        folder_of(cwd, page, dir, sizeof dir) < 0)
        return 0;
    if (!plan->in_place)
        return lexical_absolute(cwd, plan->output != NULL ? plan->output : ".", abs, sizeof abs) ==
                   0 &&
               (under(dir, abs) != NULL || strcmp(dir, abs) == 0);
    /* In place, the outputs are the inputs: all must be under the folder. */
    if (plan->files_from != NULL || plan->n_inputs == 0)
        return 0;
    for (int i = 0; i < plan->n_inputs; i++)
        if (lexical_absolute(cwd, plan->inputs[i], abs, sizeof abs) < 0 ||
            (under(dir, abs) == NULL && strcmp(dir, abs) != 0))
            return 0;
    return 1;
}

/* ---- text ---- */

/* The length of the well-formed UTF-8 sequence at p, or 0. */
static int utf8_length(const unsigned char *p)
{
    unsigned char c = p[0];
    int n = c < 0x80                ? 1
            : c >= 0xc2 && c < 0xe0 ? 2
            : c >= 0xe0 && c < 0xf0 ? 3
            : c >= 0xf0 && c < 0xf5 ? 4
                                    : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) ||
        (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))))
        return 0;
    return n;
}

void ib_html_text(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        const char *named = *p == '&'    ? "&amp;"
                            : *p == '<'  ? "&lt;"
                            : *p == '>'  ? "&gt;"
                            : *p == '"'  ? "&quot;"
                            : *p == '\'' ? "&#39;"
                                         : NULL;
        int n = utf8_length(p);
        if (named != NULL) {
            fputs(named, f);
            p++;
        } else if (n == 0 || (*p < 0x20 && *p != '\t') || *p == 0x7f) {
            fputs("\xef\xbf\xbd", f);
            p++;
        } else {
            fwrite(p, 1, (size_t)n, f);
            p += n;
        }
    }
}

/* A relative path as a URL: every byte but unreserved ones and '/'
 * percent-encoded, so '#', '?', '%' and quotes in names stay names. */
static void put_url(FILE *f, const char *rel)
{
    static const char keep[] = "-._~/";
    for (const unsigned char *p = (const unsigned char *)rel; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr(keep, *p) != NULL)
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* "12.3 MB" */
static void human_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/* The command line, each word quoted for a POSIX shell where it needs it. */
static char *quote_command(int argc, char **argv)
{
    size_t cap = 1;
    for (int i = 0; i < argc; i++)
        cap += 4 * strlen(argv[i]) + 3;
    char *out = malloc(cap), *o = out;
    if (out == NULL)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = a[0] != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_./=:,+@%{}") == strlen(a);
        if (i > 0)
            *o++ = ' ';
        if (!plain)
            *o++ = '\'';
        for (; *a != '\0'; a++) {
            if (*a == '\'' && !plain)
                o += sprintf(o, "'\\''");
            else
                *o++ = *a;
        }
        if (!plain)
            *o++ = '\'';
    }
    *o = '\0';
    return out;
}

/* ---- open ---- */

/* An unlinked temporary file in dir: it cannot outlive the run. */
static FILE *row_file(const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s/.imgbatch-report.XXXXXX", dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--report: open(\"%s\") failed: %s", tmp, strerror(errno));
        return NULL;
    }
    unlink(tmp);
    FILE *f = fdopen(fd, "w+");
    if (f == NULL) {
        snprintf(err, errlen, "--report: fdopen failed: %s", strerror(errno));
        close(fd);
    }
    return f;
}

ib_htmlreport_t *ib_htmlreport_open(const ib_plan_t *plan, int argc, char **argv, char *err,
                                    size_t errlen)
{
    ib_htmlreport_t *h = calloc(1, sizeof *h);
    if (h == NULL || getcwd(h->cwd, sizeof h->cwd) == NULL) {
        snprintf(err, errlen, "--report: %s", h == NULL ? "out of memory" : strerror(errno));
        free(h);
        return NULL;
    }
    h->plan = plan;
    h->started = time(NULL);
    h->started_ms = ib_now_ms();
    if (ib_manifest_path(plan->report, plan, h->path, sizeof h->path) < 0 ||
        folder_of(h->cwd, h->path, h->dir, sizeof h->dir) < 0) {
        snprintf(err, errlen, "--report %s: path too long", plan->report);
        free(h);
        return NULL;
    }
    h->command = quote_command(argc, argv);
    if (h->command != NULL)
        h->failed_rows = row_file(h->dir, err, errlen);
    if (h->failed_rows != NULL)
        h->other_rows = row_file(h->dir, err, errlen);
    if (h->other_rows != NULL)
        return h;
    if (h->command == NULL)
        snprintf(err, errlen, "out of memory");
    ib_htmlreport_free(h);
    return NULL;
}

void ib_htmlreport_free(ib_htmlreport_t *h)
{
    if (h == NULL)
        return;
    if (h->failed_rows != NULL)
        fclose(h->failed_rows);
    if (h->other_rows != NULL)
        fclose(h->other_rows);
    free(h->command);
    free(h);
}

/* ---- rows ---- */

static int web_format(const char *format)
{
    static const char *const shown[] = {"jpeg", "jpg", "png", "webp", "gif", "avif"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        if (strcmp(format, shown[i]) == 0)
            return 1;
    return 0;
}

/* <img> of a w x h picture fitted in the thumbnail box, src to follow. */
static void open_img(FILE *f, unsigned w, unsigned h)
{
    double k = w > 0 && h > 0 ? (double)THUMB_BOX / (w > h ? w : h) : 1;
    if (k > 1)
        k = 1;
    unsigned dw = w > 0 ? (unsigned)(w * k + 0.5) : THUMB_BOX;
    unsigned dh = h > 0 ? (unsigned)(h * k + 0.5) : THUMB_BOX;
    fprintf(f,
            "<img loading=\"lazy\" decoding=\"async\" alt=\"\" width=\"%u\" height=\"%u\" src=\"",
            dw ? dw : 1, dh ? dh : 1);
}

/* The outputs' thumbnails: linked where the page can reach them, else the
 * input's inline copy, else a word saying why there is none. */
static void put_thumbs(FILE *f, const ib_htmlreport_t *h, const ib_job_t *job,
                       const ib_result_t *res)
{
    unsigned shown = 0;
    for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS && shown < THUMBS_SHOWN; i++) {
        const ib_output_info_t *o = &res->out[i];
        char dest[PATH_MAX], abs[PATH_MAX];
        const char *rel = NULL;
        if (ib_job_output_path(h->plan, job, o, dest, sizeof dest) == 0 &&
            lexical_absolute(h->cwd, dest, abs, sizeof abs) == 0)
            rel = under(h->dir, abs);
        if (rel == NULL || !web_format(o->format))
            continue;
        fputs("<a href=\"", f);
        put_url(f, rel);
        fputs("\">", f);
        open_img(f, o->width, o->height);
        put_url(f, rel);
        fputs("\"></a>", f);
        shown++;
    }
    if (shown == 0 && res->placeholder.lqip[0] != '\0' && res->status != IB_STATUS_FAILED) {
        unsigned w = res->n_outputs > 0 ? res->out[0].width : res->src_width;
        unsigned ht = res->n_outputs > 0 ? res->out[0].height : res->src_height;
        open_img(f, w, ht);
        ib_html_text(f, res->placeholder.lqip);
        fputs("\" class=\"lqip\">", f);
        shown++;
    }
    if (shown == 0)
        fprintf(f, "<span class=\"none\">%s</span>",
                res->status == IB_STATUS_FAILED ? "failed" : "no preview");
}

/* The input's format, as its name says. */
static void put_input(FILE *f, const ib_job_t *job, const ib_result_t *res)
{
    const char *slash = strrchr(job->path, '/');
    const char *dot = strrchr(slash != NULL ? slash : job->path, '.');
    char size[32];
    human_bytes(res->input_bytes, size, sizeof size);
    if (res->src_width > 0)
        fprintf(f, "%u&times;%u ", res->src_width, res->src_height);
    if (dot != NULL && dot[1] != '\0') {
        ib_html_text(f, dot + 1);
        fputc(' ', f);
    }
    fputs(size, f);
}

static void put_outputs(FILE *f, const ib_plan_t *plan, const ib_result_t *res)
{
    for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
        const ib_output_info_t *o = &res->out[i];
        char size[32];
        human_bytes(o->bytes, size, sizeof size);
        fputs(i ? "<br>" : "", f);
        if (o->variant >= 0 && (unsigned)o->variant < plan->n_variants) {
            ib_html_text(f, plan->variants[o->variant].name);
            fputs(": ", f);
        }
        fprintf(f, "%u&times;%u ", o->width, o->height);
        ib_html_text(f, o->format);
        fprintf(f, " %s", size);
    }
}

static const char *status_word(int status)
{
    return status == IB_STATUS_OK ? "ok" : status == IB_STATUS_SKIPPED ? "skipped" : "failed";
}

/* One row: thumbnails, name (and why it failed), status, input, outputs, time. */
static void put_row(FILE *f, const ib_htmlreport_t *h, const ib_job_t *job, const ib_result_t *res)
{
    const char *st = status_word(res->status);
    fprintf(f, "<tr data-s=\"%s\"><td class=\"th\">", st);
    put_thumbs(f, h, job, res);
    fputs("</td><td class=\"nm\"><span>", f);
    ib_html_text(f, job->path);
    fputs("</span>", f);
    if (res->status == IB_STATUS_FAILED) {
        fputs("<div class=\"why\"><b>", f);
        ib_html_text(f, ib_error_kind_name(res->kind));
        fputs("</b> ", f);
        ib_html_text(f, res->message);
        fputs("</div>", f);
    } else if (res->message[0] != '\0') {
        fputs("<div class=\"warn\">", f);
        ib_html_text(f, res->message);
        fputs("</div>", f);
    }
    fprintf(f, "</td><td class=\"st %s\">%s</td><td>", st, st);
    put_input(f, job, res);
    fputs("</td><td>", f);
    put_outputs(f, h->plan, res);
    fprintf(f, "</td><td class=\"ms\">%u&nbsp;ms</td></tr>\n", res->ms);
}

void ib_htmlreport_add(ib_htmlreport_t *h, const ib_job_t *job, const ib_result_t *res)
{
    if (res->status == IB_STATUS_OK) {
        h->done++;
        h->done_in += res->input_bytes;
        for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++)
            h->done_out += res->out[i].bytes;
    } else if (res->status == IB_STATUS_SKIPPED) {
        h->skipped++;
    } else {
        h->failed++;
    }
    put_row(res->status == IB_STATUS_FAILED ? h->failed_rows : h->other_rows, h, job, res);
}

void ib_htmlreport_scan_error(ib_htmlreport_t *h, const char *path, const char *message)
{
    ib_job_t *job = calloc(1, sizeof *job);
    ib_result_t *res = calloc(1, sizeof *res);
    if (job != NULL && res != NULL) {
        snprintf(job->path, sizeof job->path, "%s", path);
        res->status = IB_STATUS_FAILED;
        res->kind = IB_ERR_READ;
        snprintf(res->message, sizeof res->message, "%s", message);
        ib_htmlreport_add(h, job, res);
    }
    free(job);
    free(res);
}

void ib_htmlreport_ignored(ib_htmlreport_t *h)
{
    h->ignored++;
}

/* ---- the page ---- */

static const char style[] =
    "<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}\n"
    "h1{font-size:1.4em;margin:.2em 0}\n"
    "code{background:#eee;padding:.2em .4em;word-break:break-all}\n"
    ".counts span{display:inline-block;margin-right:1.2em}\n"
    ".bar{position:sticky;top:0;background:#fafafa;padding:.5em 0;z-index:1}\n"
    "table{border-collapse:collapse;table-layout:fixed;width:100%}\n"
    "col.th{width:212px}col.st{width:6em}col.in{width:14em}col.out{width:16em}"
    "col.ms{width:6em}\n"
    "td,th{border-bottom:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left;"
    "overflow-wrap:anywhere}\n"
    "tbody tr{content-visibility:auto;contain-intrinsic-size:auto 106px}\n"
    "td.th img{margin-right:4px;background:#ddd;vertical-align:top}\n"
    "img.lqip{image-rendering:auto;filter:blur(1px)}\n"
    ".why{color:#a00}.warn{color:#864}.none{color:#888}\n"
    "td.failed{color:#a00;font-weight:bold}td.skipped{color:#666}td.ok{color:#070}\n"
    "td.ms{text-align:right}\n"
    "</style>\n";

/* Plain script, no network: narrows the rows by a word of their name or
 * status, and by status. Names are read once, not on every key. A
 * fragment (report.html#failed) fills the box, so a link can point at
 * the failures. */
static const char script[] =
    "<script>\n"
    "(function(){\n"
    "var rows=document.getElementById('files').tBodies[0].rows,text=[],i;\n"
    "for(i=0;i<rows.length;i++)text.push((rows[i].cells[1].firstChild.textContent+' '+\n"
    "  rows[i].getAttribute('data-s')).toLowerCase());\n"
    "var q=document.getElementById('q'),st=document.getElementById('st'),\n"
    "  shown=document.getElementById('shown');\n"
    "function apply(){var t=q.value.toLowerCase(),s=st.value,n=0;\n"
    "  for(var i=0;i<rows.length;i++){var ok=(!s||rows[i].getAttribute('data-s')===s)&&\n"
    "    text[i].indexOf(t)>=0;rows[i].hidden=!ok;if(ok)n++;}\n"
    "  shown.textContent=n+' of '+rows.length+' shown';}\n"
    "if(location.hash.length>1)q.value=decodeURIComponent(location.hash.slice(1));\n"
    "q.addEventListener('input',apply);st.addEventListener('change',apply);apply();\n"
    "})();\n"
    "</script>\n";

/* "2024-05-01 12:00:00 +0200" */
static void local_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
        snprintf(buf, cap, "%lld", (long long)t);
}

static void put_header(FILE *f, const ib_htmlreport_t *h, int running, int interrupted)
{
    char when[64], in[32], out[32];
    local_time(h->started, when, sizeof when);
    human_bytes(h->done_in, in, sizeof in);
    human_bytes(h->done_out, out, sizeof out);
    double took = (double)(ib_now_ms() - h->started_ms) / 1000.0;
    fputs(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width\">\n<title>imgbatch report</title>\n",
        f);
    fputs(style, f);
    fputs("</head><body>\n<h1>imgbatch report</h1>\n<p><code>", f);
    ib_html_text(f, h->command);
    fprintf(f, "</code></p>\n<p>Started %s, %s %.1f s%s.</p>\n", when,
            running ? "running for" : "took", took,
            interrupted ? ", <b>interrupted</b>"
            : running   ? " (still running)"
                        : "");
    fprintf(f,
            "<p class=\"counts\"><span id=\"n-done\">%lu done</span>"
            "<span id=\"n-skipped\">%lu skipped</span><span id=\"n-failed\">%lu failed</span>"
            "<span id=\"n-ignored\">%lu ignored</span></p>\n",
            h->done, h->skipped, h->failed, h->ignored);
    fprintf(f, "<p id=\"bytes\">Done files: %s in, %s out", in, out);
    if (h->done_in > 0) {
        double change = ((double)h->done_out - (double)h->done_in) / (double)h->done_in;
        fprintf(f, ", %.1f%% %s", 100.0 * (change < 0 ? -change : change),
                change <= 0 ? "saved" : "larger");
    }
    fputs(".</p>\n<div class=\"bar\"><input id=\"q\" type=\"search\" placeholder=\"filter by name "
          "or status\" autofocus> <select id=\"st\"><option value=\"\">all</option>"
          "<option>failed</option><option>ok</option><option>skipped</option></select> "
          "<span id=\"shown\"></span></div>\n"
          "<table id=\"files\"><colgroup><col class=\"th\"><col><col class=\"st\"><col "
          "class=\"in\"><col class=\"out\"><col class=\"ms\"></colgroup>\n"
          "<thead><tr><th>thumbnails</th><th>file</th><th>status</th><th>input</th>"
          "<th>outputs</th><th>time</th></tr></thead>\n<tbody>\n",
          f);
}

/* Appends everything written to rows so far; its own position stays. */
static int copy_rows(FILE *page, FILE *rows)
{
    if (fflush(rows) != 0)
        return -1;
    char buf[65536];
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(fileno(rows), buf, sizeof buf, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (fwrite(buf, 1, (size_t)n, page) != (size_t)n)
            return -1;
        at += n;
    }
}

int ib_htmlreport_write(ib_htmlreport_t *h, int running, int interrupted, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 16]; /* h->path's temporary name always fits */
    ib_aside_name(h->path, ".tmp", tmp, sizeof tmp);
    FILE *f = ib_aside_open(tmp, "--report", err, errlen);
    if (f == NULL)
        return -1;
    put_header(f, h, running, interrupted);
    int rc = copy_rows(f, h->failed_rows) | copy_rows(f, h->other_rows);
    fputs("</tbody></table>\n", f);
    fputs(script, f);
    fputs("</body></html>\n", f);
    if (rc < 0) {
        snprintf(err, errlen, "--report: write(\"%s\") failed: %s", tmp, strerror(errno));
        ib_aside_close(f, tmp, h->path, 0, "--report", err, errlen);
        return -1;
    }
    return ib_aside_close(f, tmp, h->path, 1, "--report", err, errlen);
}
