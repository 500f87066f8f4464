/*
 * What the integration tests share besides the decoders: paths and files,
 * running a program with its output captured, the --json events of a run,
 * and the listing of an output tree.
 *
 * NOTES
 * - ib_test_X() fails the running test (cmocka's fail_msg) with the call
 *   and the cause. ib_test_try_X() returns -1 (or NULL) instead: for
 *   fixtures, which report by returning -1, and for diagnostics, which must
 *   not fail in their turn.
 * - Paths live in PATH_MAX buffers; one that does not fit is an error,
 *   never cut short.
 * - Memory handed out comes from test_malloc(), so cmocka sees a leak of
 *   it; free it with test_free() or the matching _free().
 * - Programs are started with fork() and execve() and never looked up on
 *   PATH: a test names the binary it means (ib_test_find_program() finds
 *   one).
 */
#ifndef IB_TESTS_HARNESS_H
#define IB_TESTS_HARNESS_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "decode.h"

/* ---- paths and files ---- */

void ib_test_path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ib_test_try_path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a/b */
void ib_test_path_join(char *out, const char *a, const char *b);
/* lstat() succeeds: a dangling symbolic link exists. */
int ib_test_exists(const char *path);
/* mkdir -p */
void ib_test_mkdir(const char *path);
/* Makes the directories above file (mkdir -p of its dirname). */
void ib_test_mkdirs_for(const char *file);
int ib_test_try_mkdirs_for(const char *file);
/* Creates or truncates path (and the directories above it) and writes n
 * bytes to it. */
void ib_test_write_file(const char *path, const void *data, size_t n);
int ib_test_try_write_file(const char *path, const void *data, size_t n);
/* A whole file in a test_malloc'ed buffer with a NUL after it; its length
 * into len unless len is NULL. */
char *ib_test_slurp(const char *path, size_t *len);
char *ib_test_try_slurp(const char *path, size_t *len);
/* rm -rf: -1 if path is still there afterwards. */
int ib_test_rm_tree(const char *path);
/* The full path of a program found on PATH into out (PATH_MAX), or -1. */
int ib_test_find_program(const char *name, char *out);
/* The imgbatch under test: $IMGBATCH, which must be executable. NULL after
 * saying why on stderr, suite first ("e2e: IMGBATCH must name ..."). */
const char *ib_test_imgbatch(const char *suite);
/* Makes a fresh directory $TMPDIR/NAME-XXXXXX (TMPDIR defaults to /tmp)
 * into root; -1 after saying why on stderr (suite first, unless NULL), with
 * root "". */
int ib_test_make_root(const char *suite, const char *name, char *root);
/* A suite's teardown of its root (from ib_test_make_root(); "" for none):
 * removed, or kept when IB_KEEP_TMP is set, saying where (suite first). */
void ib_test_drop_root(const char *suite, const char *root);
/* Says on stderr why a test is skipped ("suite: SKIPPED: why", or
 * "SKIPPED: why" when suite is NULL) and skips it: a skip must be seen. */
void ib_test_skip_loudly(const char *suite, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The shared test corpus, $IB_SHARED/corpus, into corpus (PATH_MAX); -1
 * when IB_SHARED is not set or that is not a directory. */
int ib_test_find_corpus(char *corpus);
/* Seconds on CLOCK_MONOTONIC, for deadlines and durations. */
double ib_test_now(void);
/* strcmp() for qsort() over an array of char *. */
int ib_test_cmp_str(const void *a, const void *b);

/* ---- the files of an output tree ---- */

typedef struct {
    char **paths; /* relative to the root, sorted */
    size_t n, cap;
    size_t temps; /* '.NAME.*.tmp' files, which no run may leave behind */
    char first_temp[PATH_MAX];
} ib_test_listing_t;

/* Every file and symbolic link under root (none if root is missing). */
void ib_test_list_tree(const char *root, ib_test_listing_t *l);
/* The same for an output root, failing if a run left a temporary file
 * there. */
void ib_test_list_outputs(const char *root, ib_test_listing_t *l);
void ib_test_listing_free(ib_test_listing_t *l);

/* ---- running a program ---- */

typedef struct {
    const char *in;      /* stdin from this file; NULL: in_fd, in_data or /dev/null */
    int in_fd;           /* stdin from this descriptor when > 0 */
    const char *in_data; /* ib_test_run_start() only: stdin is these in_len bytes, */
    size_t in_len;       /* written to the run's .stdin file first */
    const char *out;     /* stdout into this file, created or truncated; NULL: ours */
    const char *err;     /* stderr likewise */
    const char *cwd;     /* NULL: this process's */
    char *const *env;    /* NULL: environ */
    /* NAME=VALUE entries added to env, each replacing one of that NAME. */
    const char *const *env_add;
    /* Names left out of env; "NAME*" leaves out every name it begins. */
    const char *const *env_unset;
    int own_group;   /* lead a new process group, so a kill reaches its workers */
    long long fsize; /* RLIMIT_FSIZE in bytes; 0 leaves it */
    int as_nobody;   /* drop to user nobody first (when run as root) */
    /* The sanitizers let SIGSEGV kill (handle_segv=0 appended to
     * ASAN_OPTIONS and UBSAN_OPTIONS): their own handler would turn a
     * worker killed by the signal into one that exits with a report. */
    int segv_kills;
} ib_test_spawn_t;

/* Starts prog with argv (fork() and execve(): the child makes only
 * async-signal-safe calls); its pid, or -1 with err filled if it could not
 * be started (the files opened, the directory entered, the limits set,
 * prog executed). */
pid_t ib_test_spawn(const char *prog, char *const *argv, const ib_test_spawn_t *how, char *err,
                    size_t errlen);
/* A waitpid() status as a shell gives it: the exit status, or 128 + the
 * signal. */
int ib_test_exit_status(int wait_status);
/* Waits for pid; its ib_test_exit_status(). After timeout_s seconds it is
 * killed (with its process group if it leads one) and the test fails, so a
 * hung program fails its test instead of wedging the suite. what names the
 * program in that message ("imgbatch (pid 42) still running"), NULL for
 * none ("pid 42 still running"). */
int ib_test_wait(pid_t pid, int timeout_s, const char *what);
/* The same, -1 instead of failing: errno is ETIMEDOUT if it was killed. */
int ib_test_try_wait(pid_t pid, int timeout_s);

/* An argument vector built up in place: argv[0] first, NULL after the
 * last. Too many arguments fail the test. */
#define IB_TEST_MAX_ARGS 64

typedef struct {
    char *v[IB_TEST_MAX_ARGS + 1];
    int n;
} ib_test_args_t;

void ib_test_args_start(ib_test_args_t *a, const char *argv0);
void ib_test_args_add(ib_test_args_t *a, ...) __attribute__((sentinel));
/* The entries of a NULL-terminated list. */
void ib_test_args_addv(ib_test_args_t *a, const char *const *list);

/* A run whose stdout and stderr go to files. */
typedef struct {
    int status; /* ib_test_exit_status() */
    char in[PATH_MAX];
    char out[PATH_MAX];
    char err[PATH_MAX];
    pid_t pid;
    double started, seconds;
    long max_rss_kb; /* the largest of the program and its children */
    /* Both capture files, after ib_test_run_read(); NULL before. */
    char *out_text, *err_text;
    size_t out_len, err_len;
} ib_test_run_t;

/* Names the files of run number n: dir/runN.stdin, .stdout and .stderr;
 * the rest of the run is cleared. */
void ib_test_run_files(ib_test_run_t *r, const char *dir, unsigned n);
/* Starts argv[0] with its output in the run's files (named first with
 * ib_test_run_files()); how->out and how->err are ignored. Fails the test
 * if it cannot be started. */
void ib_test_run_start(ib_test_run_t *r, char *const *argv, const ib_test_spawn_t *how);
/* Waits for a started run as ib_test_wait() does, noting its time and
 * memory. */
void ib_test_run_finish(ib_test_run_t *r, int timeout_s);
/* Both: the run to its end. how may be NULL. */
void ib_test_run(ib_test_run_t *r, char *const *argv, const ib_test_spawn_t *how, int timeout_s);
/* Kills (SIGKILL) and reaps a started run that a test gives up on. */
void ib_test_run_abandon(ib_test_run_t *r);
/* Reads both capture files into out_text and err_text. */
void ib_test_run_read(ib_test_run_t *r);
/* Frees what ib_test_run_read() read. */
void ib_test_run_free(ib_test_run_t *r);
/* Prints the exit status, the time and both capture files to stderr, for
 * a test about to fail; what names the program ("--- imgbatch exited 1"),
 * NULL for none. */
void ib_test_run_show(const ib_test_run_t *r, const char *what);
/* Fails, showing the run, unless it exited want; what names the run in
 * the message. */
void ib_test_expect_exit(const ib_test_run_t *r, int want, const char *what);
/* Whether the file (a capture file) holds text. */
int ib_test_file_has(const char *file, const char *text);
/* Waits until the file holds text, for at most timeout_s seconds. */
int ib_test_wait_for_text(const char *file, const char *text, double timeout_s);

/* ---- an imgbatch command-line suite ---- */

/* The job-array variables (SLURM_*, JOB_COMPLETION_INDEX), for env_unset:
 * without them a suite behaves the same inside a Slurm job. */
extern const char *const ib_test_job_variables[];

typedef struct {
    const char *bin;         /* $IMGBATCH */
    const char *source_root; /* $IB_SOURCE_ROOT; NULL when it is not set */
    char root[PATH_MAX];     /* mkdtemp(); removed by the teardown */
    char runs[PATH_MAX];     /* stdin, stdout and stderr files of the runs */
    unsigned n_runs;
} ib_test_cli_t;

/* cmocka group fixtures: *state becomes an ib_test_cli_t with a root
 * named after the program; the teardown drops the root (IB_KEEP_TMP keeps
 * it), frees the state and sets it to NULL, so a setup that fails after
 * ib_test_cli_new() may call it. */
int ib_test_cli_group_setup(void **state);
int ib_test_cli_group_teardown(void **state);
/* For a suite with more state: size bytes, zeroed, that begin with an
 * ib_test_cli_t set up as above; NULL after saying why on stderr. */
void *ib_test_cli_new(size_t size);
/* For a group setup: -1 after saying why on stderr. */
int ib_test_cli_setup(ib_test_cli_t *t, const char *name);
void ib_test_cli_teardown(ib_test_cli_t *t);
/* Names the files of the suite's next run (ib_test_run_files() under
 * runs). */
void ib_test_cli_files(ib_test_cli_t *t, ib_test_run_t *r);
/* A fresh, empty directory root/name for one test. */
void ib_test_cli_dir(const ib_test_cli_t *t, const char *name, char *out);
/* The same into dir, and the paths of dir/in and dir/out (neither made). */
void ib_test_cli_in_out(const ib_test_cli_t *t, const char *name, char *dir, char *in, char *out);
/* Runs prog with argv to its end (60 s at most) in a process group of its
 * own, without the job-array variables, in the root unless how->cwd says
 * otherwise; both capture files are read (ib_test_run_free() them). */
void ib_test_cli_run_prog(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how,
                          const char *prog, const char *const *argv);
/* The same for imgbatch with its arguments (no argv[0]) as a
 * NULL-terminated list, or as the variable arguments. */
void ib_test_cli_runv(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how,
                      const char *const *args);
void ib_test_cli_run(ib_test_cli_t *t, ib_test_run_t *r, const ib_test_spawn_t *how, ...)
    __attribute__((sentinel));

/* ---- sets of strings ---- */

typedef struct {
    char **v;
    size_t n, cap;
} ib_test_strs_t;

void ib_test_strs_add(ib_test_strs_t *s, const char *str);
void ib_test_strs_free(ib_test_strs_t *s);
void ib_test_strs_sort(ib_test_strs_t *s);
size_t ib_test_strs_count(const ib_test_strs_t *s, const char *str);
/* Adds the space-separated words of s (1023 bytes at most). */
void ib_test_strs_split(const char *s, ib_test_strs_t *out);
/* Lists the set after a title, for a test about to fail. */
void ib_test_strs_print(const char *title, const ib_test_strs_t *s);
/* Sorts both and fails, listing them, unless they hold the same strings. */
void ib_test_expect_same_set(ib_test_strs_t *got, ib_test_strs_t *want, const char *what);

/* The files and links of ib_test_list_tree(), added to out. */
void ib_test_tree_files(const char *root, ib_test_strs_t *out);
/* Every entry under root (directories too) as "path|mode|size|mtime",
 * added to out: two such sets differ when anything under root was
 * written. Fails if root cannot be walked. */
void ib_test_tree_stamps(const char *root, ib_test_strs_t *out);

/* ---- test images ---- */

/* What fills a test image: one colour; red x, green y and blue x ^ y;
 * noise; or a busy pattern that the seed shifts, so that inputs made
 * alike still differ. The seed also varies the noise. */
enum { IB_TEST_FILL_SOLID, IB_TEST_FILL_GRADIENT, IB_TEST_FILL_NOISE, IB_TEST_FILL_BUSY };

void ib_test_fill(ib_test_image_t *img, int how, unsigned seed);
/* Fails unless path decodes (tests/decode.c) to a w x h image. */
void ib_test_expect_size(const char *path, unsigned w, unsigned h);
/* img at path, with the directories above it: a PNG when the name ends
 * with .png, else a JPEG at quality with that EXIF orientation (0: no
 * EXIF). Fails the test on an error. */
void ib_test_save(const char *path, const ib_test_image_t *img, int quality, int orientation);
/* An RGB PNG, or JPEG (quality 90), of w x h filled so, with the
 * directories above it. */
void ib_test_make_png(const char *path, unsigned w, unsigned h, int how, unsigned seed);
void ib_test_make_jpeg(const char *path, unsigned w, unsigned h, int how, unsigned seed);
/* One of them (seed 0) at dir/name, whose path goes into path: a JPEG
 * when the name ends with .jpg. */
void ib_test_make_image_in(char *path, const char *dir, const char *name, unsigned w, unsigned h,
                           int how);
/* Small busy PNGs (8x6), each of its own seed, at root/rel for each of
 * the n rels. */
void ib_test_make_pngs(const char *root, const char *const *rels, size_t n);

/* ---- cmocka ---- */

/* cmocka_run_group_tests() for a main: 77, which meson counts as a skip,
 * when every case skipped (through ib_test_skip_loudly(), the group setup
 * deciding to skip included); else the number of failures. A suite where
 * only some cases skip exits 0: meson cannot count partial skips. */
#define ib_test_run_suite(tests, setup, teardown)                                                  \
    ib_test_suite_status(cmocka_run_group_tests(tests, setup, teardown),                           \
                         sizeof(tests) / sizeof((tests)[0]))
int ib_test_suite_status(int failed, size_t n_tests);
/* A suite's main(): the cases, a braced list of cmocka_unit_test(...) and
 * the like, run with the group fixtures (NULL for none) by
 * ib_test_run_suite(). */
#define IB_TEST_MAIN(setup, teardown, ...)                                                         \
    int main(void)                                                                                 \
    {                                                                                              \
        const struct CMUnitTest tests[] = __VA_ARGS__;                                             \
        return ib_test_run_suite(tests, setup, teardown);                                          \
    }

/* ---- the --json events of an imgbatch run ---- */

typedef struct {
    ib_test_event_t *files; /* in the order of stdout */
    size_t n;
    ib_test_event_t summary;
    int has_summary;
} ib_test_events_t;

/* Parses the run's stdout (ib_test_event_parse(), strict); fails unless
 * it ends with a newline, every line is a file event or the summary, and
 * the summary comes once and last. */
void ib_test_events_load(const ib_test_run_t *r, ib_test_events_t *e);
void ib_test_events_free(ib_test_events_t *e);

typedef struct {
    size_t files, ok, skipped, failed;
} ib_test_tally_t;

/* The file events counted by status; fails on one without its input,
 * status, outputs or ms or with another status, and unless the summary
 * gives the same counts. */
ib_test_tally_t ib_test_events_tally(const ib_test_events_t *e);
/* Adds the file events' inputs, each with prefix and a '/' taken off, to
 * out; fails on an input not under prefix. */
void ib_test_event_inputs(const ib_test_events_t *e, const char *prefix, ib_test_strs_t *out);
/* All three for a run's events: loaded, tallied, their inputs added to out. */
ib_test_tally_t ib_test_run_inputs(const ib_test_run_t *r, const char *prefix, ib_test_strs_t *out);
/* The one file event whose input is suffix or ends with '/' suffix; fails
 * on none or more. */
const ib_test_event_t *ib_test_event_for(const ib_test_events_t *e, const char *suffix);
/* The same, but NULL on none: for a file a run must not have reached. */
const ib_test_event_t *ib_test_event_find(const ib_test_events_t *e, const char *suffix);
/* Fails, naming the error, unless the event has that status. */
void ib_test_expect_event(const ib_test_event_t *ev, const char *status);

/* imgbatch --json -j 1 -o DIR/out (options, NULL-terminated) DIR/in, its
 * exit status checked against want_exit and, unless e is NULL, its
 * events loaded into e. */
void ib_test_run_dir(ib_test_cli_t *t, const char *dir, ib_test_run_t *r, ib_test_events_t *e,
                     int want_exit, ...) __attribute__((sentinel));
/* The same with the options as a NULL-terminated array. */
void ib_test_run_dirv(ib_test_cli_t *t, const char *dir, ib_test_run_t *r, ib_test_events_t *e,
                      int want_exit, const char *const *args);

/* The value of n base-83 digits (BlurHash's alphabet); fails on others. */
unsigned ib_test_base83(const char *s, size_t n);

#endif
