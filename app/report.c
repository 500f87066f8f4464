/*
 * Progress, per-file messages, JSON events and the summary. See report.h.
 */
#include "report.h"
#include "run_error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct ib_report {
    const ib_plan_t *plan;
    int live; /* redraw a progress line on stderr */
    int line_shown;
    int scan_done;
    /* --watch: no end to show a bar towards, only a count and whether
     * anything is being done (idle); stopped by SIGTERM. */
    int watching, idle, stopped;
    unsigned in_flight;
    unsigned long queued, ok, skipped, failed, ignored;
    unsigned long outputs; /* written, or with --dry-run to be written */
    uint64_t bytes_in, bytes_out;
    double started, last_draw;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

ib_report_t *ib_report_new(const ib_plan_t *plan)
{
    ib_report_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->plan = plan;
    int tty = isatty(STDERR_FILENO);
    r->live = !plan->quiet &&
              (plan->progress == IB_PROGRESS_ALWAYS || (plan->progress == IB_PROGRESS_AUTO && tty));
    r->started = now_s();
    return r;
}

void ib_report_free(ib_report_t *r)
{
    free(r);
}

static void clear_line(ib_report_t *r)
{
    if (r->line_shown) {
        fputs("\r\033[K", stderr);
        r->line_shown = 0;
    }
}

void ib_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p != '\0') {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20) {
            static const char *named = "\b\f\n\r\t";
            const char *hit = c != 0 ? strchr(named, c) : NULL;
            if (hit != NULL)
                fprintf(f, "\\%c", "bfnrt"[hit - named]);
            else
                fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            /* Pass a well-formed UTF-8 sequence through, replace anything
             * else: JSON text must be UTF-8, file names need not be. */
            int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            if (c >= 0xf5)
                n = 0;
            int ok = n > 0;
            for (int i = 1; ok && i < n; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok && n == 3) {
                ok = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
            } else if (ok && n == 4) {
                ok = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
            }
            if (ok) {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static const char *status_name(int status)
{
    return status == IB_STATUS_OK ? "ok" : status == IB_STATUS_SKIPPED ? "skipped" : "failed";
}

void ib_json_error(FILE *f, const ib_result_t *res)
{
    if (res->status != IB_STATUS_FAILED)
        return;
    fputs(",\"error\":{\"kind\":", f);
    ib_json_string(f, ib_error_kind_name(res->kind));
    fputs(",\"message\":", f);
    ib_json_string(f, res->message);
    fputc('}', f);
}

void ib_json_placeholder(FILE *f, const ib_result_t *res)
{
    /* A failed job may have made them before its encode failed: they
     * describe no output then. */
    if (res->status == IB_STATUS_FAILED || res->placeholder.color[0] == '\0')
        return;
    fputs(",\"color\":", f);
    ib_json_string(f, res->placeholder.color);
    fputs(",\"blurhash\":", f);
    ib_json_string(f, res->placeholder.blurhash);
    fputs(",\"lqip\":", f);
    ib_json_string(f, res->placeholder.lqip);
}

static void json_file(ib_report_t *r, const ib_job_t *job, const ib_result_t *res, int worker)
{
    FILE *f = stdout;
    fputs("{\"event\":\"file\",\"input\":", f);
    ib_json_string(f, job->path);
    fprintf(f, ",\"status\":\"%s\",\"outputs\":[", status_name(res->status));
    for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
        char dest[PATH_MAX];
        const ib_output_info_t *o = &res->out[i];
        if (ib_job_output_path(r->plan, job, o, dest, sizeof dest) < 0)
            dest[0] = '\0';
        fputs(i ? ",{\"path\":" : "{\"path\":", f);
        ib_json_string(f, dest);
        fprintf(f, ",\"width\":%u,\"height\":%u,\"bytes\":%llu,\"format\":", o->width, o->height,
                (unsigned long long)o->bytes);
        ib_json_string(f, o->format);
        if (o->quality > 0)
            fprintf(f, ",\"quality\":%d", o->quality);
        if (o->colors > 0)
            fprintf(f, ",\"colors\":%d", o->colors);
        if (o->kept_input)
            fputs(",\"kept_input\":true", f);
        if (o->variant >= 0 && (unsigned)o->variant < r->plan->n_variants) {
            fputs(",\"variant\":", f);
            ib_json_string(f, r->plan->variants[o->variant].name);
        }
        fputc('}', f);
    }
    fputc(']', f);
    /* --report alone has workers make them for its page, not for events. */
    if (r->plan->placeholders)
        ib_json_placeholder(f, res);
    fprintf(f, ",\"ms\":%u", res->ms);
    if (worker >= 0)
        fprintf(f, ",\"worker\":%d", worker);
    if (res->status != IB_STATUS_FAILED && res->message[0] != '\0') {
        fputs(",\"warnings\":[", f);
        ib_json_string(f, res->message);
        fputc(']', f);
    }
    ib_json_error(f, res);
    fputs("}\n", f);
    fflush(f);
}

void ib_report_file(ib_report_t *r, const ib_job_t *job, const ib_result_t *res, int worker)
{
    const ib_plan_t *p = r->plan;
    r->bytes_in += res->input_bytes;
    if (res->status == IB_STATUS_OK) {
        r->ok++;
        for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
            r->bytes_out += res->out[i].bytes;
            r->outputs++;
        }
    } else if (res->status == IB_STATUS_SKIPPED) {
        r->skipped++;
    } else {
        r->failed++;
    }

    if (p->json)
        json_file(r, job, res, worker);

    if (res->status == IB_STATUS_FAILED) {
        clear_line(r);
        fprintf(stderr, "imgbatch: %s: %s\n", ib_error_kind_name(res->kind), res->message);
    } else if (res->message[0] != '\0' && !p->quiet) {
        clear_line(r);
        fprintf(stderr, "imgbatch: warning: %s\n", res->message);
    }
    if (res->status != IB_STATUS_FAILED && p->dry_run && !p->json) {
        for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
            char dest[PATH_MAX];
            if (ib_job_output_path(p, job, &res->out[i], dest, sizeof dest) == 0)
                printf("%s -> %s (%ux%u %s)\n", job->path, dest, res->out[i].width,
                       res->out[i].height, res->out[i].format);
        }
    } else if (p->verbose && res->status != IB_STATUS_FAILED) {
        clear_line(r);
        for (uint32_t i = 0; i < res->n_outputs && i < IB_MAX_OUTPUTS; i++) {
            char dest[PATH_MAX];
            if (ib_job_output_path(p, job, &res->out[i], dest, sizeof dest) == 0)
                fprintf(stderr, "%s %s -> %s (%ux%u, %llu bytes, %u ms)\n",
                        res->status == IB_STATUS_SKIPPED ? "up to date:" : "done:", job->path, dest,
                        res->out[i].width, res->out[i].height,
                        (unsigned long long)res->out[i].bytes, res->ms);
        }
    }
    ib_report_tick(r);
}

void ib_report_scan_error(ib_report_t *r, const char *path, const char *message)
{
    r->failed++;
    if (r->plan->json) {
        fputs("{\"event\":\"file\",\"input\":", stdout);
        ib_json_string(stdout, path);
        fputs(",\"status\":\"failed\",\"outputs\":[],\"ms\":0,\"error\":{\"kind\":\"read\","
              "\"message\":",
              stdout);
        ib_json_string(stdout, message);
        fputs("}}\n", stdout);
        fflush(stdout);
    }
    clear_line(r);
    fprintf(stderr, "imgbatch: read: %s\n", message);
}

void ib_report_ignored(ib_report_t *r, const char *path)
{
    r->ignored++;
    if (!r->plan->verbose)
        return;
    clear_line(r);
    fprintf(stderr, "imgbatch: ignored: %s: not an image\n", path);
}

void ib_report_note(ib_report_t *r, const char *message)
{
    if (r->plan->quiet)
        return;
    clear_line(r);
    fprintf(stderr, "imgbatch: note: %s\n", message);
}

unsigned long ib_report_failed(const ib_report_t *r)
{
    return r->failed;
}

void ib_report_queued(ib_report_t *r)
{
    r->queued++;
}

void ib_report_scan_done(ib_report_t *r)
{
    r->scan_done = 1;
}

static double rate(const ib_report_t *r, double elapsed)
{
    unsigned long n = r->ok + r->failed;
    return elapsed > 0 ? n / elapsed : 0;
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

/* The running count of a watcher: what it has done, and whether it is at
 * work or idle. */
static void watch_counts(const ib_report_t *r, char *out, size_t len)
{
    char state[48] = "idle";
    if (!r->idle)
        snprintf(state, sizeof state, "%u in progress", r->in_flight);
    snprintf(out, len, "watching: %lu done, %lu skipped, %lu failed; %s", r->ok, r->skipped,
             r->failed, state);
}

void ib_report_watching(ib_report_t *r, unsigned in_flight, int idle)
{
    int fell_idle = idle && (!r->idle || !r->watching);
    r->watching = 1;
    r->in_flight = in_flight;
    r->idle = idle;
    if (fell_idle && r->plan->verbose && !r->live) {
        char counts[160];
        watch_counts(r, counts, sizeof counts);
        fprintf(stderr, "imgbatch: %s\n", counts);
    }
    if (fell_idle)
        r->last_draw = 0; /* show it now */
    ib_report_tick(r);
}

void ib_report_stopped(ib_report_t *r)
{
    r->stopped = 1;
}

void ib_report_tick(ib_report_t *r)
{
    if (!r->live)
        return;
    double t = now_s();
    /* At most ten redraws a second: a terminal is slower than we are. */
    if (t - r->last_draw < 0.1)
        return;
    r->last_draw = t;
    if (r->watching) {
        char counts[160];
        watch_counts(r, counts, sizeof counts);
        fprintf(stderr, "\r\033[K%s", counts);
        fflush(stderr);
        r->line_shown = 1;
        return;
    }
    unsigned long done = r->ok + r->skipped + r->failed;
    double speed = rate(r, t - r->started);
    char total[32], eta[32] = "", tail[160];
    snprintf(total, sizeof total, r->scan_done ? "%lu" : "%lu+", r->queued);
    /* The ETA is only honest once the total is known. */
    if (r->scan_done && speed > 0 && r->queued > done) {
        unsigned long left = (unsigned long)((r->queued - done) / speed + 0.5);
        snprintf(eta, sizeof eta, " ETA %lu:%02lu", left / 60, left % 60);
    }
    snprintf(tail, sizeof tail, " %lu/%s, %lu failed, %.1f img/s%s", done, total, r->failed, speed,
             eta);
    double frac = r->queued > 0 ? (double)done / r->queued : 0;
    int width = terminal_width() - (int)strlen(tail) - 8;
    if (width > 40)
        width = 40;
    char bar[48];
    int filled = width > 0 ? (int)(frac * width) : 0;
    for (int i = 0; i < width && i < (int)sizeof bar - 1; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[width > 0 ? width : 0] = '\0';
    fprintf(stderr, "\r\033[K[%s] %3d%%%s", bar, (int)(frac * 100), tail);
    fflush(stderr);
    r->line_shown = 1;
}

static void print_summary(const ib_report_t *r, int interrupted, double elapsed)
{
    char speed[48] = "";
    /* A rate of nothing processed (all up to date, or no image found) is
     * noise, not a measurement. */
    if (r->ok + r->failed > 0 && !r->plan->dry_run)
        snprintf(speed, sizeof speed, " (%.1f images/s)", rate(r, elapsed));
    char done[64];
    /* A dry run has done nothing: it says what a real run would write. */
    if (r->plan->dry_run)
        snprintf(done, sizeof done, "would write %lu file%s", r->outputs,
                 r->outputs == 1 ? "" : "s");
    else
        snprintf(done, sizeof done, "%lu done", r->ok);
    char ignored[48] = "";
    if (r->ignored > 0)
        snprintf(ignored, sizeof ignored, ", %lu ignored", r->ignored);
    fprintf(stderr, "imgbatch: %s%s, %lu skipped, %lu failed%s in %.1f s%s\n",
            interrupted  ? "interrupted: "
            : r->stopped ? "stopped: "
                         : "",
            done, r->skipped, r->failed, ignored, elapsed, speed);
}

int ib_report_finish(ib_report_t *r, int interrupted)
{
    double elapsed = now_s() - r->started;
    clear_line(r);
    const ib_plan_t *p = r->plan;
    if (p->json) {
        printf("{\"event\":\"summary\",\"ok\":%lu,\"skipped\":%lu,\"failed\":%lu,\"total\":%lu,"
               "\"bytes_in\":%llu,\"bytes_out\":%llu,\"elapsed_s\":%.3f,\"images_per_s\":%.2f,"
               "\"ignored\":%lu,\"interrupted\":%s}\n",
               r->ok, r->skipped, r->failed, r->ok + r->skipped + r->failed,
               (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, elapsed,
               rate(r, elapsed), r->ignored, interrupted ? "true" : "false");
        fflush(stdout);
    }
    if (!p->quiet || r->failed > 0 || interrupted)
        print_summary(r, interrupted, elapsed);
    if (interrupted)
        return IB_EXIT_INTERRUPTED;
    /* A watcher's failures were each reported as they came. */
    if (r->stopped)
        return IB_EXIT_OK;
    return r->failed > 0 ? IB_EXIT_FAILED : IB_EXIT_OK;
}
