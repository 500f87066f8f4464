/*
 * imgbatch: the parent process. Parses the command line, forks the worker
 * pool, streams the scan into the queue and turns results into reports.
 *
 * NOTES
 * - The parent never initialises or calls libvips (it forks replacements
 *   for dead workers, and forking a process with libvips' threads is
 *   unsafe). Only workers touch pixels.
 * - The loop never blocks on a full queue: when it is full the parent waits
 *   for results instead, since a worker can only take the next job after
 *   its result has been read.
 * - The run context below is the only mutable state of the parent.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argfile.h"
#include "clock.h"
#include "contactsheet.h"
#include "fileio.h"
#include "htmlreport.h"
#include "job.h"
#include "manifest.h"
#include "options.h"
#include "plan.h"
#include "pool.h"
#include "preload.h"
#include "report.h"
#include "run_error.h"
#include "scan.h"
#include "select.h"
#include "task.h"
#include "watch.h"

typedef struct {
    int used;
    uint64_t seq;
    ib_job_t job;
} inflight_t;

typedef struct {
    ib_plan_t plan;
    ib_job_ctx_t job_ctx;
    ib_pool_t *pool;
    ib_scan_t *scan;
    ib_watch_t *watch; /* --watch: the scan of the inputs, then what lands */
    ib_report_t *report;
    ib_manifest_t *manifest; /* --manifest, else NULL */
    ib_htmlreport_t *html;   /* --report, else NULL */
    ib_sheet_t *sheet;       /* --contact-sheet, else NULL */
    int sheet_state;         /* SHEET_* */
    uint64_t sheet_seq;
    int sheet_failed;
    int report_dirty;  /* rows added since the page was last written */
    int64_t report_ms; /* when it was */
    int argc;          /* the command line, for the report */
    char **argv;
    FILE *list; /* --files-from, when not stdin: closed by main() */
    inflight_t *inflight;
    unsigned n_inflight;
    unsigned cap_inflight;
    ib_scan_item_t item; /* the next image, when has_item */
    int has_item;
    int scan_done;
    int scan_waiting; /* the list on stdin has no whole path yet */
    int interrupted;
    int terminated; /* --watch stopped by SIGTERM: the normal end of a watcher */
    int64_t interrupted_ms;
    int stopped; /* --max-errors reached */
} ib_run_t;

/* A contact sheet is wanted, its job is in the pool, it is answered. */
enum { SHEET_WANTED, SHEET_QUEUED, SHEET_ANSWERED };

/* How often a watcher's --report page is rewritten, at most. */
#define REPORT_EVERY_MS 3000

/* How long images in progress may take to finish after the first Ctrl-C. */
#define GRACE_MS 10000

static inflight_t *find_inflight(ib_run_t *run, uint64_t seq)
{
    for (unsigned i = 0; i < run->cap_inflight; i++)
        if (run->inflight[i].used && run->inflight[i].seq == seq)
            return &run->inflight[i];
    return NULL;
}

static void retire(ib_run_t *run, inflight_t *f)
{
    f->used = 0;
    run->n_inflight--;
}

/* A job's result, to the report and the manifest. */
static void file_done(ib_run_t *run, const ib_job_t *job, const ib_result_t *res, int worker)
{
    ib_report_file(run->report, job, res, worker);
    if (run->manifest != NULL)
        ib_manifest_add(run->manifest, job, res);
    if (run->html != NULL) {
        ib_htmlreport_add(run->html, job, res);
        run->report_dirty = 1;
    }
    if (run->sheet != NULL)
        ib_sheet_add(run->sheet, job, res);
}

/* Whether a file belongs to this --shard (every file, without one). */
static int in_shard(const ib_run_t *run, const char *rel)
{
    return !run->plan.has_shard || ib_shard_of(rel, run->plan.shard.count) == run->plan.shard.index;
}

/* Whether a job for path is in flight (the watcher holds back its new
 * events until it is done). */
static int in_flight(void *ctx, const char *path)
{
    const ib_run_t *run = ctx;
    for (unsigned i = 0; i < run->cap_inflight; i++)
        if (run->inflight[i].used && strcmp(run->inflight[i].job.path, path) == 0)
            return 1;
    return 0;
}

/* Reads scan items until an image is waiting in run->item or the scan ends. */
static void refill(ib_run_t *run)
{
    run->scan_waiting = 0;
    while (!run->has_item && !run->scan_done) {
        int rc = run->watch != NULL ? ib_watch_next(run->watch, &run->item)
                                    : ib_scan_next(run->scan, &run->item);
        if (rc == IB_SCAN_WAITING) {
            /* Not a reason to hold back results: the loop goes on, and
             * the pool wakes it when more of the list comes. */
            run->scan_waiting = 1;
            break;
        }
        if (rc == 0) {
            run->scan_done = 1;
            ib_report_scan_done(run->report);
            break;
        }
        if (run->item.kind == IB_SCAN_IMAGE)
            run->has_item = in_shard(run, run->item.rel);
        else if (run->item.kind == IB_SCAN_IGNORED) {
            /* Each shard counts its own, so the shards add up. */
            if (in_shard(run, run->item.rel)) {
                ib_report_ignored(run->report, run->item.path);
                if (run->html != NULL)
                    ib_htmlreport_ignored(run->html);
            }
        } else if (run->item.kind == IB_SCAN_ERROR) {
            ib_report_scan_error(run->report, run->item.path, run->item.message);
            if (run->html != NULL)
                ib_htmlreport_scan_error(run->html, run->item.path, run->item.message);
        } else
            ib_report_note(run->report, run->item.message);
    }
}

/* Hands scanned images to the pool while there is room. */
static void dispatch(ib_run_t *run)
{
    while (!run->interrupted && !run->stopped) {
        refill(run);
        if (!run->has_item || run->n_inflight == run->cap_inflight)
            return;
        inflight_t *f = NULL;
        for (unsigned i = 0; i < run->cap_inflight && f == NULL; i++)
            if (!run->inflight[i].used)
                f = &run->inflight[i];
        snprintf(f->job.path, sizeof f->job.path, "%s", run->item.path);
        snprintf(f->job.rel, sizeof f->job.rel, "%s", run->item.rel);
        int rc = ib_pool_submit(run->pool, &f->job, sizeof f->job, &f->seq);
        if (rc != 0)
            return;
        f->used = 1;
        run->n_inflight++;
        run->has_item = 0;
        ib_report_queued(run->report);
    }
}

/* A watcher told to end by SIGTERM: the end of its run, not an
 * interruption of it. */
static int watch_ending(const ib_run_t *run)
{
    return run->terminated && run->interrupted == 1;
}

/* Whether the contact sheet's job is still to be handed out: it waits
 * for the last image, and is not made after an interrupt or a stop. A
 * watcher makes it when SIGTERM ends it. */
static int sheet_pending(const ib_run_t *run)
{
    return run->sheet != NULL && run->sheet_state == SHEET_WANTED && !run->stopped &&
           (!run->interrupted || watch_ending(run));
}

/* Hands out no more work: the queued jobs (none started) are dropped, the
 * ones in progress finish. */
static void stop_dispatching(ib_run_t *run)
{
    uint64_t first, end;
    /* The pool stays open while the contact sheet may yet be handed out
     * (a watcher ending on SIGTERM) or is queued; before_wait() closes it
     * once the sheet is answered or no longer wanted. */
    if (sheet_pending(run) || run->sheet_state == SHEET_QUEUED)
        ib_pool_drop(run->pool, &first, &end);
    else
        ib_pool_cancel(run->pool, &first, &end);
    for (uint64_t s = first; s < end; s++) {
        inflight_t *f = find_inflight(run, s);
        if (f != NULL)
            retire(run, f);
    }
    /* A sheet job dropped before it started is wanted again: made if the
     * run still ends as a run (a watcher's SIGTERM), else said not made. */
    if (run->sheet_state == SHEET_QUEUED && run->sheet_seq >= first && run->sheet_seq < end)
        run->sheet_state = SHEET_WANTED;
}

/* --max-errors: once reached, stop handing out work as a first Ctrl-C does. */
static void check_errors(ib_run_t *run)
{
    unsigned max = run->plan.max_errors;
    if (max == 0 || run->interrupted || run->stopped || ib_report_failed(run->report) < max)
        return;
    stop_dispatching(run);
    run->stopped = 1;
    run->scan_done = 1;
    run->has_item = 0;
    if (!run->plan.quiet)
        fprintf(stderr, "imgbatch: stopping after %u failure%s (%s)\n", max, max == 1 ? "" : "s",
                max == 1 ? "--fail-fast" : "--max-errors");
}

/* Why a worker died, for a message about its image. */
static void describe_death(const ib_run_t *run, const ib_pool_event_t *ev, char *buf, size_t len)
{
    if (ev->timed_out)
        snprintf(buf, len, "took longer than %.1f s (--timeout); worker %d was stopped",
                 run->plan.timeout_ms / 1000.0, (int)ev->pid);
    else if (run->interrupted == 2)
        snprintf(buf, len, "worker %d was stopped by the second interrupt", (int)ev->pid);
    else if (ev->signo != 0)
        snprintf(buf, len, "worker %d was killed by signal %d (%s)", (int)ev->pid, ev->signo,
                 strsignal(ev->signo));
    else
        snprintf(buf, len, "worker %d exited with status %d", (int)ev->pid, ev->exit_status);
}

/* The outputs a dead worker left whole on disk, into res; how many. */
static unsigned take_committed(const ib_pool_event_t *ev, ib_result_t *res)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ev->n_outputs && n < IB_MAX_OUTPUTS; i++) {
        const ib_pool_output_t *o = &ev->outputs[i];
        if (!o->committed || o->info_len != sizeof(ib_output_info_t))
            continue;
        memcpy(&res->out[n++], o->info, sizeof(ib_output_info_t));
    }
    res->n_outputs = n;
    return n;
}

/*
 * A worker died holding this job. What it had already put on disk decides
 * the report: every output whole is a job done (with a warning), none is
 * a crash or timeout, and some (of several variants) is a failure that
 * lists them.
 */
static void report_lost(ib_run_t *run, const ib_pool_event_t *ev)
{
    inflight_t *f = find_inflight(run, ev->seq);
    if (f == NULL)
        return;
    ib_result_t res = {.status = IB_STATUS_FAILED, .ms = ev->ms};
    unsigned whole = take_committed(ev, &res);
    unsigned expected = run->plan.n_variants > 0 ? run->plan.n_variants : 1;
    struct stat st;
    if (stat(f->job.path, &st) == 0)
        res.input_bytes = (uint64_t)st.st_size;
    char why[256];
    describe_death(run, ev, why, sizeof why);
    if (whole == expected) {
        res.status = IB_STATUS_OK;
        snprintf(res.message, sizeof res.message, "%.700s: %s after writing its output%s",
                 f->job.path, why, expected > 1 ? "s" : "");
    } else if (whole > 0) {
        res.kind = ev->timed_out ? IB_ERR_TIMEOUT : IB_ERR_CRASH;
        snprintf(res.message, sizeof res.message, "%.700s: %s after writing %u of its %u outputs",
                 f->job.path, why, whole, expected);
    } else if (run->interrupted != 2 || ev->timed_out) {
        res.kind = ev->timed_out ? IB_ERR_TIMEOUT : IB_ERR_CRASH;
        snprintf(res.message, sizeof res.message, "%.700s: %s", f->job.path, why);
    } else {
        /* Killed by our own second Ctrl-C with nothing written: not the
         * image's fault, and it will be redone on the next run. */
        retire(run, f);
        return;
    }
    file_done(run, &f->job, &res, (int)ev->worker);
    retire(run, f);
}

static void interrupt(ib_run_t *run, const ib_pool_event_t *ev)
{
    if (ev->count == 1) {
        /* Stop handing out work; what is running finishes. */
        run->interrupted = 1;
        run->interrupted_ms = ib_now_ms();
        run->terminated = run->watch != NULL && ev->signo == SIGTERM;
        stop_dispatching(run);
        if (!run->plan.quiet)
            fprintf(stderr,
                    "\nimgbatch: %s: finishing the images in progress "
                    "(again to stop at once)\n",
                    run->terminated       ? "stopping"
                    : ev->signo == SIGINT ? "interrupted"
                                          : "terminated");
        return;
    }
    run->interrupted = 2;
    ib_pool_kill(run->pool);
}

/* Starts the pool of workers and the in-flight table. */
static int start_pool(ib_run_t *run)
{
    char err[512];
    ib_preload_modules();
    /* Sized for a large batch; pages nobody touches are never allocated. */
    run->job_ctx.plan = &run->plan;
    run->job_ctx.claims = ib_claims_new(4u << 20);
    if (run->job_ctx.claims == NULL)
        fprintf(stderr,
                "imgbatch: warning: no room for the output claims table (%s): "
                "outputs shared by two inputs will not be detected\n",
                strerror(errno));
    ib_pool_config_t cfg = {
        .ctx = &run->job_ctx,
        .init = ib_job_init,
        .run = ib_task_run,
        .workers = run->plan.jobs,
        .job_size = sizeof(ib_job_t),
        .worker_jobs = run->plan.worker_jobs,
        .timeout_ms = run->plan.timeout_ms,
        .pin = run->plan.pin_workers,
    };
    run->pool = ib_pool_start(&cfg, err, sizeof err);
    if (run->pool == NULL) {
        fprintf(stderr, "imgbatch: %s\n", err);
        return -1;
    }
    run->cap_inflight = 2 * run->plan.jobs + 2;
    run->inflight = calloc(run->cap_inflight, sizeof *run->inflight);
    if (run->inflight == NULL) {
        fprintf(stderr, "imgbatch: out of memory\n");
        return -1;
    }
    return 0;
}

/* Once every image is answered, one worker makes the contact sheet from
 * the outputs on disk: the parent never touches pixels. */
static void submit_sheet(ib_run_t *run)
{
    int last = (run->scan_done && !run->has_item) || watch_ending(run);
    if (!sheet_pending(run) || !last || run->n_inflight > 0)
        return;
    char err[PATH_MAX + 128];
    ib_sheet_job_t *job = malloc(sizeof *job);
    if (job == NULL || ib_sheet_job(run->sheet, job, err, sizeof err) < 0) {
        if (job == NULL || !run->plan.quiet)
            fprintf(stderr, "imgbatch: %s\n", job == NULL ? "out of memory" : err);
        run->sheet_failed = job == NULL || strncmp(err, "no contact sheet", 16) != 0;
        run->sheet_state = SHEET_ANSWERED;
    } else if (ib_pool_submit_kind(run->pool, IB_TASK_SHEET, job, sizeof *job, &run->sheet_seq) ==
               0) {
        run->sheet_state = SHEET_QUEUED;
    } else {
        fprintf(stderr, "imgbatch: contact sheet: the pool took no more work\n");
        run->sheet_failed = 1;
        run->sheet_state = SHEET_ANSWERED;
    }
    free(job);
}

/* The contact sheet's answer, or its worker's death. */
static int sheet_event(ib_run_t *run, const ib_pool_event_t *ev)
{
    if (run->sheet_state != SHEET_QUEUED || ev->seq != run->sheet_seq)
        return 0;
    run->sheet_state = SHEET_ANSWERED;
    if (ev->kind == IB_POOL_RESULT) {
        run->sheet_failed = ib_sheet_done(run->sheet, ev->result, run->plan.quiet) < 0;
        return 1;
    }
    char why[256];
    describe_death(run, ev, why, sizeof why);
    fprintf(stderr, "imgbatch: contact sheet: %s\n", why);
    run->sheet_failed = 1;
    return 1;
}

/* A watcher's report, rewritten at most every REPORT_EVERY_MS while
 * results come in: a page to look at while it runs. */
static void refresh_report(ib_run_t *run)
{
    char err[2 * PATH_MAX + 128];
    int64_t now = ib_now_ms();
    if (run->html == NULL || run->watch == NULL || !run->report_dirty ||
        now - run->report_ms < REPORT_EVERY_MS)
        return;
    if (ib_htmlreport_write(run->html, 1, 0, err, sizeof err) < 0 && !run->plan.quiet)
        fprintf(stderr, "imgbatch: %s\n", err);
    run->report_ms = now;
    run->report_dirty = 0;
}

/* Before each wait: close the queue when nothing more will come, watch
 * standard input while it may bring paths, and stop the images that
 * outlive the grace period after an interrupt. */
static void before_wait(ib_run_t *run)
{
    if (((run->scan_done && !run->has_item) || run->interrupted || run->stopped) &&
        !sheet_pending(run))
        ib_pool_close(run->pool);
    int more_to_read = run->scan_waiting && !run->interrupted && !run->stopped;
    int fd = run->watch != NULL ? ib_watch_fd(run->watch) : ib_scan_list_fd(run->scan);
    ib_pool_watch(run->pool, more_to_read ? fd : -1);
    if (run->watch != NULL && !run->interrupted)
        ib_report_watching(run->report, run->n_inflight,
                           run->n_inflight == 0 && !run->has_item && ib_watch_idle(run->watch));
    /* The sheet's job starts once no image is left in flight. */
    if (run->interrupted == 1 && run->sheet_state != SHEET_QUEUED &&
        ib_now_ms() - run->interrupted_ms > GRACE_MS) {
        if (!run->plan.quiet)
            fprintf(stderr, "imgbatch: images still running after %d s: stopping them\n",
                    GRACE_MS / 1000);
        run->interrupted = 2;
        ib_pool_kill(run->pool);
    }
}

static int run_pool(ib_run_t *run)
{
    if (start_pool(run) < 0)
        return -1;
    int fatal = 0;
    for (;;) {
        dispatch(run);
        submit_sheet(run);
        refresh_report(run);
        before_wait(run);
        /* Waiting with an image in hand means the queue is full: look
         * again soon. Otherwise wake only to redraw the progress line, or
         * when a watched path has settled. */
        int wait_ms = run->has_item && !run->interrupted ? 20 : 100;
        /* An idle watcher: only its folder, a signal or the clock of a
         * waiting path has news, and each of those wakes the wait. */
        if (run->watch != NULL && run->scan_waiting && run->n_inflight == 0)
            wait_ms = 1000;
        int due = run->watch != NULL && run->scan_waiting ? ib_watch_due_ms(run->watch) : -1;
        if (due >= 0 && due < wait_ms)
            wait_ms = due;
        ib_pool_event_t ev;
        ib_pool_next(run->pool, wait_ms, &ev);
        switch (ev.kind) {
        case IB_POOL_RESULT: {
            if (sheet_event(run, &ev))
                break;
            inflight_t *f = find_inflight(run, ev.seq);
            if (f != NULL) {
                file_done(run, &f->job, ev.result, (int)ev.worker);
                retire(run, f);
            }
            check_errors(run);
            break;
        }
        case IB_POOL_LOST:
            if (sheet_event(run, &ev))
                break;
            report_lost(run, &ev);
            check_errors(run);
            break;
        case IB_POOL_INTERRUPT:
            interrupt(run, &ev);
            break;
        case IB_POOL_IDLE:
            ib_report_tick(run->report);
            break;
        case IB_POOL_FATAL:
            fprintf(stderr, "imgbatch: %s\n", ev.message);
            fatal = 1;
            break;
        case IB_POOL_DRAINED:
            return fatal ? -1 : 0;
        }
    }
}

static int prepare_output(ib_run_t *run, ib_scan_opts_t *so)
{
    if (run->plan.in_place)
        return 0;
    char failed[PATH_MAX];
    /* A dry run creates nothing, but an output root that exists is
     * skipped as in a real run, so that it lists the same inputs. */
    if (!run->plan.dry_run && ib_mkdirs(run->plan.output, failed, sizeof failed) < 0) {
        fprintf(stderr, "imgbatch: mkdir(\"%s\") failed: %s\n", failed, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(run->plan.output, &st) == 0) {
        /* An output root inside an input tree is never scanned as input;
         * one that is an input directory itself has the outputs beside
         * their originals, and the scan tells them by their names. */
        so->has_skip = 1;
        so->skip_dev = st.st_dev;
        so->skip_ino = st.st_ino;
    }
    return 0;
}

/* Starts the run's other files before any work: --manifest's temporary
 * file, --report's rows and --contact-sheet's list. One that cannot be
 * written stops the run before it begins. */
static int open_views(ib_run_t *run)
{
    char err[PATH_MAX + 128];
    const ib_plan_t *p = &run->plan;
    if ((p->manifest != NULL && (run->manifest = ib_manifest_open(p, err, sizeof err)) == NULL) ||
        (p->report != NULL &&
         (run->html = ib_htmlreport_open(p, run->argc, run->argv, err, sizeof err)) == NULL) ||
        (p->contact_sheet != NULL && (run->sheet = ib_sheet_open(p, err, sizeof err)) == NULL)) {
        fprintf(stderr, "imgbatch: %s\n", err);
        return -1;
    }
    return 0;
}

/* Writes the report's page with every result in; a run stopped at once
 * (a second interrupt) leaves no new page, as it leaves no manifest. */
static int close_report(ib_run_t *run)
{
    char err[2 * PATH_MAX + 128];
    int rc = 0;
    if (run->html != NULL && run->interrupted != 2 &&
        (rc = ib_htmlreport_write(run->html, 0, run->interrupted && !watch_ending(run), err,
                                  sizeof err)) < 0)
        fprintf(stderr, "imgbatch: %s\n", err);
    return rc;
}

/* Gives the manifest its name once every result is in; a run stopped at
 * once (a second interrupt) leaves no manifest, as it leaves no temp file. */
static int close_manifest(ib_run_t *run)
{
    char err[2 * PATH_MAX + 128];
    if (run->manifest == NULL)
        return 0;
    int rc = ib_manifest_close(run->manifest, run->interrupted != 2, err, sizeof err);
    run->manifest = NULL;
    if (rc < 0)
        fprintf(stderr, "imgbatch: %s\n", err);
    return rc;
}

/* The plan from argv and the machine: 0 to run, 1 after --help or
 * --version, -1 after a usage error. */
static int read_command_line(int argc, char **argv, ib_plan_t *plan)
{
    char err[1024];
    int action = IB_CLI_RUN;
    int rc = ib_cli_parse(argc, argv, plan, &action, err, sizeof err);
    if (rc == 0)
        rc = ib_front_prepare(plan, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "imgbatch: %s (see imgbatch --help)\n", err);
    else if (action == IB_CLI_HELP)
        ib_cli_print_help(stdout);
    else if (action == IB_CLI_VERSION)
        ib_cli_print_version(stdout);
    return rc;
}

/* Where the images come from: the scan of the inputs, or with --watch
 * the watcher (which scans them first), and the report. */
static int open_source(ib_run_t *run, const ib_scan_opts_t *so)
{
    char err[PATH_MAX + 256];
    run->report = ib_report_new(&run->plan);
    if (run->report == NULL) {
        fprintf(stderr, "imgbatch: out of memory\n");
        return -1;
    }
    if (run->plan.watch) {
        ib_watch_config_t cfg = {.scan = so,
                                 .inputs = run->plan.inputs,
                                 .n_inputs = run->plan.n_inputs,
                                 .busy = in_flight,
                                 .ctx = run};
        run->watch = ib_watch_new(&cfg, err, sizeof err);
        if (run->watch == NULL)
            fprintf(stderr, "imgbatch: %s\n", err);
        return run->watch != NULL ? 0 : -1;
    }
    run->scan = ib_scan_new(so, run->plan.inputs, run->plan.n_inputs);
    if (run->scan == NULL)
        fprintf(stderr, "imgbatch: out of memory\n");
    return run->scan != NULL ? 0 : -1;
}

/* Sets up the scan, the output root and the manifest, then runs the
 * batch: its exit status. What it sets up stays in run, for main() to
 * free whichever way it ends. */
static int run_batch(ib_run_t *run)
{
    ib_scan_opts_t so = {
        .hidden = run->plan.hidden,
        .follow_symlinks = run->plan.follow_symlinks,
        .base = run->plan.base,
        .includes = run->plan.includes,
        .n_includes = run->plan.n_includes,
        .excludes = run->plan.excludes,
        .n_excludes = run->plan.n_excludes,
        .has_max_depth = run->plan.max_depth >= 0,
        .max_depth = run->plan.max_depth >= 0 ? (unsigned)run->plan.max_depth : 0,
        .null_separated = run->plan.null_separated,
    };
    if (run->plan.files_from != NULL) {
        so.list =
            strcmp(run->plan.files_from, "-") == 0 ? stdin : fopen(run->plan.files_from, "re");
        run->list = so.list;
        if (so.list == NULL) {
            fprintf(stderr, "imgbatch: open(\"%s\") failed: %s\n", run->plan.files_from,
                    strerror(errno));
            return IB_EXIT_USAGE;
        }
    }
    const char *variants[IB_MAX_VARIANTS];
    for (unsigned i = 0; i < run->plan.n_variants; i++)
        variants[i] = run->plan.variants[i].name;
    so.name_template = run->plan.name_template;
    so.variants = variants;
    so.n_variants = run->plan.n_variants;
    if (prepare_output(run, &so) < 0)
        return IB_EXIT_FAILED;
    if (open_views(run) < 0)
        return IB_EXIT_USAGE;
    if (open_source(run, &so) < 0)
        return IB_EXIT_FAILED;

    int failed = run_pool(run) < 0;
    failed |= close_manifest(run) < 0;
    failed |= close_report(run) < 0;
    failed |= run->sheet_failed;
    if (run->sheet != NULL && run->sheet_state == SHEET_WANTED && !run->plan.quiet)
        fprintf(stderr, "imgbatch: no contact sheet: the run %s before the last image\n",
                run->interrupted ? "was interrupted" : "stopped");
    int interrupted = run->interrupted;
    if (run->terminated && run->interrupted == 1) {
        /* SIGTERM is how a service manager ends a watcher: not an
         * interruption of work it was given. */
        ib_report_stopped(run->report);
        interrupted = 0;
    }
    int status = ib_report_finish(run->report, interrupted);
    if (failed && status == IB_EXIT_OK)
        status = IB_EXIT_FAILED;

    return status;
}

int main(int argc, char **argv)
{
    ib_run_t run;
    memset(&run, 0, sizeof run);
    /* @FILE arguments first: the parser reads only argv. The expanded
     * vector lives as long as the run (the plan points into it). */
    char err[1024], **args;
    int n_args;
    if (ib_argfile_expand(argc, argv, &n_args, &args, err, sizeof err) < 0) {
        fprintf(stderr, "imgbatch: %s (see imgbatch --help)\n", err);
        return IB_EXIT_USAGE;
    }
    /* The words as typed, for --report: parsing reorders args. */
    char **typed = malloc(((size_t)n_args + 1) * sizeof *typed);
    if (typed == NULL) {
        fprintf(stderr, "imgbatch: out of memory\n");
        ib_argfile_free(args);
        return IB_EXIT_FAILED;
    }
    memcpy(typed, args, ((size_t)n_args + 1) * sizeof *typed);
    int rc = read_command_line(n_args, args, &run.plan);
    if (rc != 0) {
        ib_cli_free(&run.plan);
        ib_argfile_free(args);
        free(typed);
        return rc > 0 ? IB_EXIT_OK : IB_EXIT_USAGE;
    }

    run.argc = n_args;
    run.argv = typed;
    int status = run_batch(&run);
    if (run.manifest != NULL) {
        /* Set up but never run: its temporary file goes. */
        char merr[64];
        ib_manifest_close(run.manifest, 0, merr, sizeof merr);
    }
    ib_htmlreport_free(run.html);
    ib_sheet_free(run.sheet);
    ib_pool_free(run.pool);
    ib_scan_free(run.scan);
    ib_watch_free(run.watch);
    ib_report_free(run.report);
    free(run.inflight);
    ib_claims_free(run.job_ctx.claims);
    ib_cli_free(&run.plan);
    ib_argfile_free(args);
    free(typed);
    if (run.list != NULL && run.list != stdin)
        fclose(run.list);
    return status;
}
