/*
 * Hot folders: the built imgbatch ($IMGBATCH) with --watch on a temporary
 * folder converts what is renamed in, written slowly, made in new nested
 * folders or moved in as a whole tree, and stops on SIGTERM with its
 * summary. Every wait is for a condition (an output on disk, a line in a
 * capture file), with an upper bound that only a failure reaches.
 *
 * The latency from a file landing to its output and the parent's memory
 * around a burst are measured and printed, and held to bounds loose
 * enough for a loaded machine under the sanitizers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* How long a condition may take before the test fails: reached only when
 * something is wrong, so it can be generous. */
#define GIVE_UP_S 300

typedef struct {
    ib_test_run_t run;
    char dir[PATH_MAX], in[PATH_MAX], out[PATH_MAX], stage[PATH_MAX];
} watcher_t;

/* A test's folders: dir/in (watched, made), dir/out, dir/stage (made; the
 * same filesystem, so a rename from it is atomic). */
static void make_folders(ib_test_cli_t *t, const char *name, watcher_t *w)
{
    memset(w, 0, sizeof *w);
    ib_test_cli_in_out(t, name, w->dir, w->in, w->out);
    ib_test_path_join(w->stage, w->dir, "stage");
    ib_test_mkdir(w->in);
    ib_test_mkdir(w->stage);
}

/* Starts prefix... imgbatch --watch --json -v -o out in extra..., and
 * waits until it says it is idle: the first scan is over and every
 * directory is watched. */
static void start_watcher(ib_test_cli_t *t, watcher_t *w, const char *const *prefix,
                          const char *const *extra)
{
    ib_test_args_t a;
    ib_test_args_start(&a, prefix != NULL ? prefix[0] : t->bin);
    if (prefix != NULL) {
        ib_test_args_addv(&a, prefix + 1);
        ib_test_args_add(&a, t->bin, NULL);
    }
    ib_test_args_add(&a, "--watch", "--json", "-v", "-o", w->out, w->in, NULL);
    if (extra != NULL)
        ib_test_args_addv(&a, extra);
    ib_test_spawn_t how = {.env_unset = ib_test_job_variables, .own_group = 1};
    ib_test_cli_files(t, &w->run);
    ib_test_run_start(&w->run, a.v, &how);
    if (!ib_test_wait_for_text(w->run.err, "; idle", GIVE_UP_S)) {
        ib_test_run_abandon(&w->run);
        ib_test_run_read(&w->run);
        ib_test_run_show(&w->run, "imgbatch --watch");
        fail_msg("imgbatch --watch did not fall idle after its first scan");
    }
}

/* Sends signo and waits for the watcher to end with want; its capture
 * files are read. */
static void stop_watcher(watcher_t *w, int signo, int want)
{
    if (kill(w->run.pid, signo) < 0)
        fail_msg("kill(%d) failed: %s", (int)w->run.pid, strerror(errno));
    ib_test_run_finish(&w->run, GIVE_UP_S);
    ib_test_run_read(&w->run);
    ib_test_expect_exit(&w->run, want, "imgbatch --watch, stopped");
}

/* Waits until path exists; the seconds it took, or fails. */
static double wait_for_file(watcher_t *w, const char *path)
{
    struct timespec tick = {0, 2 * 1000 * 1000};
    double start = ib_test_now();
    while (!ib_test_exists(path)) {
        if (ib_test_now() - start > GIVE_UP_S) {
            ib_test_run_abandon(&w->run);
            ib_test_run_read(&w->run);
            ib_test_run_show(&w->run, "imgbatch --watch");
            fail_msg("%s did not appear within %d s", path, GIVE_UP_S);
        }
        nanosleep(&tick, NULL);
    }
    return ib_test_now() - start;
}

/* How many times text is in file. */
static size_t count_in_file(const char *file, const char *text)
{
    char *s = ib_test_try_slurp(file, NULL);
    size_t n = 0;
    for (const char *p = s != NULL ? strstr(s, text) : NULL; p != NULL; p = strstr(p + 1, text))
        n++;
    if (s != NULL)
        test_free(s);
    return n;
}

/* Makes a w x h image in the stage (a JPEG for a name ending ".jpg",
 * else a PNG) and renames it to dest: it lands whole, at once. */
static void land_sized(watcher_t *w, const char *name, const char *dest, unsigned width,
                       unsigned height, unsigned seed)
{
    char staged[PATH_MAX];
    ib_test_path_join(staged, w->stage, name);
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".jpg") == 0)
        ib_test_make_jpeg(staged, width, height, IB_TEST_FILL_BUSY, seed);
    else
        ib_test_make_png(staged, width, height, IB_TEST_FILL_BUSY, seed);
    if (rename(staged, dest) < 0)
        fail_msg("rename(\"%s\", \"%s\") failed: %s", staged, dest, strerror(errno));
}

/* The same, 64x48. */
static void land(watcher_t *w, const char *name, const char *dest, unsigned seed)
{
    land_sized(w, name, dest, 64, 48, seed);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Files renamed in are converted within about a second: the time from
 * each rename to its output is measured, one file at a time. */
static void renamed_in_converted_quickly(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    make_folders(t, "renamed", &w);
    start_watcher(t, &w, NULL, (const char *const[]){"-s", "32", NULL});
    enum { N = 12 };
    double took[N];
    for (unsigned i = 0; i < N; i++) {
        char name[32], dest[PATH_MAX], output[PATH_MAX];
        snprintf(name, sizeof name, "f%02u.png", i);
        ib_test_path_join(dest, w.in, name);
        ib_test_path_join(output, w.out, name);
        land(&w, name, dest, i);
        took[i] = wait_for_file(&w, output);
    }
    stop_watcher(&w, SIGTERM, 0);
    qsort(took, N, sizeof took[0], cmp_double);
    double median = (took[N / 2 - 1] + took[N / 2]) / 2, worst = took[N - 1];
    fprintf(stderr, "watch: from rename to output, %d files: median %.0f ms, worst %.0f ms\n", N,
            median * 1000, worst * 1000);
    /* About a second, allowing for a loaded machine and the sanitizers. */
    if (median > 1.5 || worst > 5.0)
        fail_msg("too slow: median %.2f s (at most 1.5), worst %.2f s (at most 5)", median, worst);
    ib_test_events_t e;
    ib_test_events_load(&w.run, &e);
    ib_test_tally_t n = ib_test_events_tally(&e);
    assert_int_equal(n.ok, N);
    ib_test_events_free(&e);
    ib_test_run_free(&w.run);
}

/* Writes data to path in two halves, a second apart, through one open
 * descriptor: the watcher sees a file half-written for that second. */
static void write_in_halves(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("open(\"%s\") failed: %s", path, strerror(errno));
    size_t half = len / 2;
    if (write(fd, data, half) != (ssize_t)half)
        fail_msg("write(\"%s\") failed: %s", path, strerror(errno));
    /* The slow writer is the point of the test, not a wait for a race. */
    struct timespec gap = {1, 0};
    nanosleep(&gap, NULL);
    if (write(fd, data + half, len - half) != (ssize_t)(len - half))
        fail_msg("write(\"%s\") failed: %s", path, strerror(errno));
    if (close(fd) < 0)
        fail_msg("close(\"%s\") failed: %s", path, strerror(errno));
}

/* A file written in two halves a second apart is converted once, whole.
 * With one worker, results come in the order the paths settled, so a
 * file landed after it and converted shows that no second event for it
 * is on its way. */
static void slow_writer_converted_once_whole(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    make_folders(t, "halves", &w);
    start_watcher(t, &w, NULL, (const char *const[]){"-j", "1", "-s", "100", NULL});
    char staged[PATH_MAX], dest[PATH_MAX], output[PATH_MAX], after[PATH_MAX];
    ib_test_path_join(staged, w.stage, "photo.jpg");
    ib_test_make_jpeg(staged, 400, 300, IB_TEST_FILL_NOISE, 7);
    size_t len;
    char *data = ib_test_slurp(staged, &len);
    ib_test_path_join(dest, w.in, "photo.jpg");
    write_in_halves(dest, data, len);
    test_free(data);
    ib_test_path_join(output, w.out, "photo.jpg");
    wait_for_file(&w, output);
    ib_test_path_join(dest, w.in, "after.png");
    ib_test_path_join(after, w.out, "after.png");
    land(&w, "after.png", dest, 1);
    wait_for_file(&w, after);
    stop_watcher(&w, SIGTERM, 0);

    ib_test_events_t e;
    ib_test_events_load(&w.run, &e);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "ok");
    ib_test_expect_size(output, 100, 75);
    ib_test_events_free(&e);
    ib_test_run_free(&w.run);
}

/* A folder made after the start, nested three deep, is watched: a file
 * that was in it before the watcher saw it, and one that lands later. */
static void new_nested_folder(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    make_folders(t, "nested", &w);
    start_watcher(t, &w, NULL, (const char *const[]){"-s", "32", NULL});
    char deep[PATH_MAX], path[PATH_MAX], output[PATH_MAX];
    ib_test_path_join(deep, w.in, "a/b/c");
    ib_test_mkdir(deep);
    ib_test_path_join(path, deep, "first.png");
    ib_test_make_png(path, 64, 48, IB_TEST_FILL_BUSY, 1);
    ib_test_path_join(output, w.out, "a/b/c/first.png");
    wait_for_file(&w, output);
    /* Now c is watched for certain: this one comes by its own event. */
    ib_test_path_join(path, deep, "second.png");
    land(&w, "second.png", path, 2);
    ib_test_path_join(output, w.out, "a/b/c/second.png");
    wait_for_file(&w, output);
    stop_watcher(&w, SIGTERM, 0);
    ib_test_strs_t got = {0}, want = {0};
    ib_test_run_inputs(&w.run, w.in, &got);
    ib_test_strs_split("a/b/c/first.png a/b/c/second.png", &want);
    ib_test_expect_same_set(&got, &want, "inputs of a new nested folder");
    ib_test_strs_free(&got);
    ib_test_strs_free(&want);
    ib_test_run_free(&w.run);
}

/* An input replaced by another of the same stem (photo.png deleted,
 * photo.jpg added) takes over the output both make, photo.png: the
 * first input is gone, so it is no collision. */
static void replaced_input_takes_over_its_output(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    make_folders(t, "replaced", &w);
    start_watcher(t, &w, NULL, (const char *const[]){"-F", "png", NULL});
    char png[PATH_MAX], jpg[PATH_MAX], output[PATH_MAX];
    ib_test_path_join(png, w.in, "photo.png");
    ib_test_path_join(jpg, w.in, "photo.jpg");
    ib_test_path_join(output, w.out, "photo.png");
    land(&w, "photo.png", png, 4);
    wait_for_file(&w, output);
    if (unlink(png) < 0)
        fail_msg("unlink(\"%s\") failed: %s", png, strerror(errno));
    land_sized(&w, "photo.jpg", jpg, 80, 60, 5);
    if (!ib_test_wait_for_text(w.run.out, "photo.jpg", GIVE_UP_S))
        fail_msg("no event for photo.jpg within %d s", GIVE_UP_S);
    stop_watcher(&w, SIGTERM, 0);
    ib_test_events_t e;
    ib_test_events_load(&w.run, &e);
    ib_test_expect_event(ib_test_event_for(&e, "photo.jpg"), "ok");
    ib_test_events_free(&e);
    ib_test_expect_size(output, 80, 60);
    ib_test_run_free(&w.run);
}

/* VmRSS and VmHWM of pid, in KiB. */
static void read_memory(pid_t pid, long *rss, long *hwm)
{
    char path[64], *text;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    text = ib_test_slurp(path, NULL);
    const char *r = strstr(text, "VmRSS:"), *h = strstr(text, "VmHWM:");
    if (r == NULL || h == NULL)
        fail_msg("%s has no VmRSS or VmHWM", path);
    *rss = strtol(r + 6, NULL, 10);
    *hwm = strtol(h + 6, NULL, 10);
    test_free(text);
}

#define BURST 1500

/* The relative paths of the burst's tree: 15 folders of 100. */
static void burst_rels(char **rels)
{
    for (unsigned i = 0; i < BURST; i++) {
        rels[i] = test_malloc(32);
        snprintf(rels[i], 32, "tree/d%02u/f%04u.png", i / 100, i);
    }
}

/* A tree of 1,500 files moved in at once: all converted, through the
 * bounded queue, while the parent's memory stays flat. */
static void burst_tree_moved_in(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    make_folders(t, "burst", &w);
    char *rels[BURST];
    burst_rels(rels);
    ib_test_make_pngs(w.stage, (const char *const *)rels, BURST);
    start_watcher(t, &w, NULL, NULL);
    long rss0, hwm0, rss1, hwm1;
    read_memory(w.run.pid, &rss0, &hwm0);

    char from[PATH_MAX], to[PATH_MAX];
    ib_test_path_join(from, w.stage, "tree");
    ib_test_path_join(to, w.in, "tree");
    double start = ib_test_now();
    if (rename(from, to) < 0)
        fail_msg("rename(\"%s\", \"%s\") failed: %s", from, to, strerror(errno));
    struct timespec tick = {0, 50 * 1000 * 1000};
    while (count_in_file(w.run.out, "\"status\":\"ok\"") < BURST) {
        if (ib_test_now() - start > GIVE_UP_S) {
            ib_test_run_abandon(&w.run);
            ib_test_run_read(&w.run);
            fail_msg("%zu of %d files converted within %d s",
                     count_in_file(w.run.out, "\"status\":\"ok\""), BURST, GIVE_UP_S);
        }
        nanosleep(&tick, NULL);
    }
    double took = ib_test_now() - start;
    read_memory(w.run.pid, &rss1, &hwm1);
    stop_watcher(&w, SIGTERM, 0);
    fprintf(stderr,
            "watch: %d files moved in, converted in %.1f s; parent VmRSS %ld -> %ld KiB, "
            "VmHWM %ld -> %ld KiB\n",
            BURST, took, rss0, rss1, hwm0, hwm1);
    /* Flat: a per-file cost of even a path (4 KiB) would be 6 MiB. */
    if (rss1 - rss0 > 2048 || hwm1 - hwm0 > 2048)
        fail_msg("the parent grew by %ld KiB (VmRSS) and %ld KiB (VmHWM) over the burst",
                 rss1 - rss0, hwm1 - hwm0);

    ib_test_strs_t got = {0}, want = {0};
    ib_test_run_inputs(&w.run, w.in, &got);
    for (unsigned i = 0; i < BURST; i++) {
        ib_test_strs_add(&want, rels[i]);
        test_free(rels[i]);
    }
    ib_test_expect_same_set(&got, &want, "inputs of a tree moved in");
    ib_test_listing_t l;
    ib_test_list_outputs(w.out, &l);
    assert_int_equal(l.n, BURST);
    ib_test_listing_free(&l);
    ib_test_strs_free(&got);
    ib_test_strs_free(&want);
    ib_test_run_free(&w.run);
}

/* SIGTERM (a service manager's stop) ends with the summary and 0; SIGINT
 * the same way with 130. */
static void sigterm_ends_with_summary(void **state)
{
    ib_test_cli_t *t = *state;
    static const int signals[] = {SIGTERM, SIGINT}, status[] = {0, 130};
    for (unsigned k = 0; k < 2; k++) {
        watcher_t w;
        char name[32], dest[PATH_MAX], output[PATH_MAX];
        snprintf(name, sizeof name, "signal%u", k);
        make_folders(t, name, &w);
        start_watcher(t, &w, NULL, NULL);
        ib_test_path_join(dest, w.in, "one.png");
        ib_test_path_join(output, w.out, "one.png");
        land(&w, "one.png", dest, 3);
        wait_for_file(&w, output);
        stop_watcher(&w, signals[k], status[k]);
        const char *said = k == 0 ? "imgbatch: stopped: 1 done, 0 skipped, 0 failed"
                                  : "imgbatch: interrupted: 1 done, 0 skipped, 0 failed";
        if (strstr(w.run.err_text, said) == NULL) {
            ib_test_run_show(&w.run, "imgbatch --watch");
            fail_msg("no summary '%s'", said);
        }
        ib_test_events_t e;
        ib_test_events_load(&w.run, &e);
        assert_true(e.has_summary);
        assert_int_equal(ib_test_events_tally(&e).ok, 1);
        ib_test_events_free(&e);
        ib_test_run_free(&w.run);
    }
}

/* With --report, the page is there while the watcher runs (saying so),
 * and final when SIGTERM ends it; with --contact-sheet, the sheet of
 * every file converted is made then. */
static void report_and_sheet_of_a_watcher(void **state)
{
    ib_test_cli_t *t = *state;
    watcher_t w;
    char report[PATH_MAX], sheet[PATH_MAX], dest[PATH_MAX], output[PATH_MAX];
    make_folders(t, "views", &w);
    ib_test_path_join(report, w.dir, "report.html");
    ib_test_path_join(sheet, w.dir, "sheet.png");
    start_watcher(t, &w, NULL,
                  (const char *const[]){"--report", report, "--contact-sheet", sheet, "--tile",
                                        "50x50", "--columns", "2", NULL});
    static const char *const names[] = {"first.png", "second.png"};
    for (unsigned i = 0; i < 2; i++) {
        ib_test_path_join(dest, w.in, names[i]);
        ib_test_path_join(output, w.out, names[i]);
        land(&w, names[i], dest, i + 1);
        wait_for_file(&w, output);
    }
    wait_for_file(&w, report);
    /* Rewritten every few seconds: the page with both files comes. */
    for (double start = ib_test_now(); count_in_file(report, "second.png") == 0;) {
        if (ib_test_now() - start > GIVE_UP_S)
            fail_msg("the running report never listed second.png");
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    if (count_in_file(report, "still running") == 0)
        fail_msg("the page written while watching does not say it is still running");
    assert_false(ib_test_exists(sheet));
    stop_watcher(&w, SIGTERM, 0);
    assert_int_equal(count_in_file(report, "still running"), 0);
    for (unsigned i = 0; i < 2; i++)
        assert_true(count_in_file(report, names[i]) > 0);
    ib_test_expect_size(sheet, 100, 50);
    ib_test_run_free(&w.run);
}

/* Whether this process may make a user namespace and lower its watch
 * limit there. */
static int can_lower_limit(const char *unshare, const char *sh)
{
    const char *argv[] = {unshare, "-Ur", sh, "-c", "echo 2 > /proc/sys/user/max_inotify_watches",
                          NULL};
    char err[PATH_MAX + 64];
    ib_test_spawn_t how = {.err = "/dev/null"};
    pid_t pid = ib_test_spawn(unshare, (char *const *)argv, &how, err, sizeof err);
    return pid > 0 && ib_test_wait(pid, 60, "unshare") == 0;
}

/* Past the watch limit (lowered to two in a user namespace of its own),
 * the message names the limit and its sysctl, and the watcher goes on with
 * what it could watch. */
static void watch_limit_is_named(void **state)
{
    ib_test_cli_t *t = *state;
    char unshare[PATH_MAX], sh[PATH_MAX];
    if (ib_test_find_program("unshare", unshare) < 0 || ib_test_find_program("sh", sh) < 0 ||
        !can_lower_limit(unshare, sh)) {
        ib_test_skip_loudly("watch", "cannot lower user.max_inotify_watches in a user namespace "
                                     "(unshare -Ur not found or not permitted)");
        return;
    }
    watcher_t w;
    make_folders(t, "limit", &w);
    static const char *const dirs[] = {"a", "b", "c"};
    for (unsigned i = 0; i < 3; i++) {
        char d[PATH_MAX];
        ib_test_path_join(d, w.in, dirs[i]);
        ib_test_mkdir(d);
    }
    const char *prefix[] = {
        unshare, "-Ur", sh, "-c", "echo 2 > /proc/sys/user/max_inotify_watches && exec \"$@\"",
        "sh",    NULL};
    start_watcher(t, &w, prefix, NULL);
    /* The input and one folder are watched: what lands at the top still
     * comes. */
    char dest[PATH_MAX], output[PATH_MAX];
    ib_test_path_join(dest, w.in, "top.png");
    ib_test_path_join(output, w.out, "top.png");
    land(&w, "top.png", dest, 4);
    wait_for_file(&w, output);
    stop_watcher(&w, SIGTERM, 0);
    const char *want[] = {"inotify_add_watch(\"",
                          "the limit on inotify watches is reached",
                          "fs.inotify.max_user_watches = ",
                          "user.max_inotify_watches = 2",
                          "sysctl fs.inotify.max_user_watches=",
                          "1 more directory is not watched"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(w.run.err_text, want[i]) == NULL) {
            ib_test_run_show(&w.run, "imgbatch --watch");
            fail_msg("the watch limit's message does not say '%s'", want[i]);
        }
    ib_test_run_free(&w.run);
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(renamed_in_converted_quickly),
                 cmocka_unit_test(slow_writer_converted_once_whole),
                 cmocka_unit_test(new_nested_folder),
                 cmocka_unit_test(replaced_input_takes_over_its_output),
                 cmocka_unit_test(burst_tree_moved_in),
                 cmocka_unit_test(sigterm_ends_with_summary),
                 cmocka_unit_test(report_and_sheet_of_a_watcher),
                 cmocka_unit_test(watch_limit_is_named),
             })
