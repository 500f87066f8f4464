/*
 * The scanner on real trees: nesting, hidden entries, non-images, symlinks
 * and symlink loops, an unreadable directory, named files, stdin lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "scan.h"

typedef struct {
    char root[256];
} tree_t;

/* root/rel into out (PATH_MAX). */
static void under(const tree_t *t, const char *rel, char *out)
{
    ib_test_path_join(out, t->root, rel);
}

static void put(const tree_t *t, const char *rel, const char *bytes, size_t n)
{
    char path[PATH_MAX];
    under(t, rel, path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void dir(const tree_t *t, const char *rel)
{
    char path[PATH_MAX];
    under(t, rel, path);
    assert_int_equal(mkdir(path, 0755), 0);
}

static const char jpeg[] = "\xff\xd8\xff\xe0\0\x10JFIF";
static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
static const char gif[] = "GIF89a\x01\0\x01\0";

static int setup(void **state)
{
    tree_t *t = test_malloc(sizeof *t);
    snprintf(t->root, sizeof t->root, "/tmp/ib-scan-XXXXXX");
    if (mkdtemp(t->root) == NULL)
        return -1;
    chmod(t->root, 0755);
    dir(t, "in");
    dir(t, "in/sub");
    dir(t, "in/sub/deeper");
    dir(t, "in/.hdir");
    put(t, "in/a.jpg", jpeg, sizeof jpeg);
    put(t, "in/sub/b.png", png, sizeof png);
    put(t, "in/sub/deeper/c", gif, sizeof gif); /* no extension: found by its bytes */
    put(t, "in/notes.txt", "just text", 9);
    put(t, "in/data.bin", "\x01\x02\x03", 3);
    put(t, "in/garbage.jpg", "not really", 10); /* named like an image: handed on */
    put(t, "in/.hidden.jpg", jpeg, sizeof jpeg);
    put(t, "in/.hdir/d.jpg", jpeg, sizeof jpeg);
    put(t, "outside.png", png, sizeof png);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tree_t *t = *state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' && rm -rf '%s'", t->root, t->root);
    int rc = system(cmd);
    test_free(t);
    return rc == 0 ? 0 : -1;
}

/* Every item as "I:rel", "G:rel" (ignored), "E:path" or "N:path", sorted,
 * joined by spaces. */
static char *collect_scan(ib_scan_t *s)
{
    assert_non_null(s);
    ib_scan_item_t *item = malloc(sizeof *item);
    char **lines = NULL;
    size_t count = 0;
    while (ib_scan_next(s, item)) {
        lines = realloc(lines, (count + 1) * sizeof *lines);
        char buf[2 * PATH_MAX];
        static const char kinds[] = {[IB_SCAN_IMAGE] = 'I',
                                     [IB_SCAN_ERROR] = 'E',
                                     [IB_SCAN_NOTE] = 'N',
                                     [IB_SCAN_IGNORED] = 'G'};
        int by_rel = item->kind == IB_SCAN_IMAGE || item->kind == IB_SCAN_IGNORED;
        const char *what = by_rel ? item->rel : item->path;
        char kind = kinds[item->kind];
        snprintf(buf, sizeof buf, "%c:%s", kind, what);
        lines[count++] = strdup(buf);
        assert_true(count < 1000); /* a loop would never end */
    }
    ib_scan_free(s);
    free(item);
    for (size_t i = 0; i < count; i++)
        for (size_t j = i + 1; j < count; j++)
            if (strcmp(lines[i], lines[j]) > 0) {
                char *x = lines[i];
                lines[i] = lines[j];
                lines[j] = x;
            }
    size_t total = 1;
    for (size_t i = 0; i < count; i++)
        total += strlen(lines[i]) + 1;
    char *out = calloc(1, total);
    for (size_t i = 0; i < count; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

static char *collect(const ib_scan_opts_t *o, char **inputs, int n)
{
    return collect_scan(ib_scan_new(o, inputs, n));
}

static void expect_text(char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        print_error("scan gave:\n  %s\nwanted:\n  %s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

/* What ib_scan_new_below() gives for path, below the root of root_len. */
static void expect_below(const ib_scan_opts_t *o, const char *path, size_t root_len,
                         const char *want)
{
    expect_text(collect_scan(ib_scan_new_below(o, path, root_len)), want);
}

static void expect(const ib_scan_opts_t *o, char **inputs, int n, const char *want)
{
    expect_text(collect(o, inputs, n), want);
}

/* The same for one input. */
static void expect_one(const ib_scan_opts_t *o, char *input, const char *want)
{
    char *inputs[] = {input};
    expect(o, inputs, 1, want);
}

static void nested_tree_hidden_and_non_images(void **state)
{
    char in[PATH_MAX];
    under(*state, "in", in);
    /* Non-images come out as ignored, so the run can count them. */
    ib_scan_opts_t o = {0};
    expect_one(&o, in, "G:data.bin G:notes.txt I:a.jpg I:garbage.jpg I:sub/b.png I:sub/deeper/c");
    o.hidden = 1;
    expect_one(
        &o, in,
        "G:data.bin G:notes.txt I:.hdir/d.jpg I:.hidden.jpg I:a.jpg I:garbage.jpg I:sub/b.png "
        "I:sub/deeper/c");
    /* What the globs leave out is not ignored: it was never wanted. */
    char *txt[] = {"*.txt"};
    o.excludes = txt;
    o.n_excludes = 1;
    expect_one(&o, in,
               "G:data.bin I:.hdir/d.jpg I:.hidden.jpg I:a.jpg I:garbage.jpg I:sub/b.png "
               "I:sub/deeper/c");
}

static void trailing_slash_on_the_root(void **state)
{
    char in[PATH_MAX];
    under(*state, "in/sub/", in);
    ib_scan_opts_t o = {0};
    expect_one(&o, in, "I:b.png I:deeper/c");
}

static void symlinks_and_loops(void **state)
{
    tree_t *t = *state;
    char in[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
    under(t, "in", in);
    under(t, "in/sub/loop", link);
    assert_int_equal(symlink("..", link), 0);
    under(t, "in/linked.png", link);
    under(t, "outside.png", target);
    assert_int_equal(symlink(target, link), 0);
    under(t, "in/dangling.jpg", link);
    assert_int_equal(symlink("/nonexistent/x.jpg", link), 0);

    /* By default a symlinked directory is not entered at all. */
    ib_scan_opts_t o = {0};
    expect_one(&o, in,
               "G:data.bin G:notes.txt I:a.jpg I:garbage.jpg I:linked.png I:sub/b.png "
               "I:sub/deeper/c");

    /* Followed, the loop is noticed and each file still comes once. */
    o.follow_symlinks = 1;
    char want[1024];
    snprintf(want, sizeof want,
             "G:data.bin G:notes.txt I:a.jpg I:garbage.jpg I:linked.png I:sub/b.png "
             "I:sub/deeper/c N:%s/in/sub/loop",
             t->root);
    expect_one(&o, in, want);
}

static void output_root_inside_input_is_not_scanned(void **state)
{
    char in[PATH_MAX], out[PATH_MAX];
    under(*state, "in", in);
    under(*state, "in/sub", out);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    ib_scan_opts_t o = {.has_skip = 1, .skip_dev = st.st_dev, .skip_ino = st.st_ino};
    expect_one(&o, in, "G:data.bin G:notes.txt I:a.jpg I:garbage.jpg");
}

static void named_files_and_base(void **state)
{
    tree_t *t = *state;
    char a[PATH_MAX], b[PATH_MAX], txt[PATH_MAX], root[PATH_MAX];
    under(t, "in/a.jpg", a);
    under(t, "in/sub/b.png", b);
    under(t, "in/notes.txt", txt);
    under(t, "in", root);
    char *inputs[] = {a, b, txt};
    /* Named files are always handed on, non-images too: the worker says so. */
    ib_scan_opts_t o = {0};
    expect(&o, inputs, 3, "I:a.jpg I:b.png I:notes.txt");
    o.base = root;
    expect(&o, inputs, 3, "I:a.jpg I:notes.txt I:sub/b.png");
}

static void missing_named_input_is_an_error(void **state)
{
    char gone[PATH_MAX], want[PATH_MAX + 8];
    under(*state, "nope.jpg", gone);
    ib_scan_opts_t o = {0};
    snprintf(want, sizeof want, "E:%s", gone);
    expect_one(&o, gone, want);
}

static void paths_from_stdin(void **state)
{
    tree_t *t = *state;
    char list[PATH_MAX];
    under(t, "list.txt", list);
    FILE *f = fopen(list, "w");
    assert_non_null(f);
    fprintf(f, "%s/in/a.jpg\n\n%s/in/sub\r\n", t->root, t->root);
    fclose(f);
    int saved = dup(0);
    assert_non_null(freopen(list, "r", stdin));
    ib_scan_opts_t o = {0};
    expect_one(&o, "-", "I:a.jpg I:b.png I:deeper/c");
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
}

/* Root reads any directory, so the check runs as an unprivileged user. */
static void unreadable_directory_is_reported_and_the_rest_scanned(void **state)
{
    tree_t *t = *state;
    char locked[PATH_MAX], in[PATH_MAX];
    under(t, "in/locked", locked);
    assert_int_equal(mkdir(locked, 0755), 0);
    put(t, "in/locked/e.jpg", jpeg, sizeof jpeg);
    assert_int_equal(chmod(locked, 0), 0);
    under(t, "in", in);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            struct passwd *pw = getpwnam("nobody");
            if (pw == NULL || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
                _exit(3);
        }
        char *inputs[] = {in};
        ib_scan_opts_t o = {0};
        char want[PATH_MAX + 128];
        snprintf(want, sizeof want,
                 "E:%s G:data.bin G:notes.txt I:a.jpg I:garbage.jpg I:sub/b.png I:sub/deeper/c",
                 locked);
        char *got = collect(&o, inputs, 1);
        int ok = strcmp(got, want) == 0;
        if (!ok)
            fprintf(stderr, "scan gave:\n  %s\nwanted:\n  %s\n", got, want);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    chmod(locked, 0755);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Where a filesystem keeps no extended attributes, outputs beside their
 * originals are known by the names --name makes. */
static void names_the_template_makes(void **state)
{
    (void)state;
    static const char *const sizes[] = {"sm", "lg"};
    /* For each template, the names it makes and (after a '|') some it
     * cannot have made. */
    static const char *const cases[][2] = {
        {"{dir}/{stem}-small.{ext}", "a-small.jpg x/y/a-small.png | a.jpg -small.jpg a-small"},
        {"{stem}_{w}x{h}.{ext}", "a_100x75.jpg | a_100xwide.jpg sub/a_100x75.jpg"},
        {"{dir}/{stem}-{variant}.{ext}", "p/a-sm.webp a-lg.webp | a-md.webp"},
        {"thumbs/{dir}/{stem}.{ext}", "thumbs/a/b.jpg | a/b.jpg"},
        {"{stem}.{hash}.{ext}", "a.0123456789ab.jpg | a.0123456789AB.jpg a.0123456789.jpg a.jpg"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ib_test_strs_t rels = {0};
        ib_test_strs_split(cases[i][1], &rels);
        int made = 1;
        for (size_t k = 0; k < rels.n; k++) {
            if (strcmp(rels.v[k], "|") == 0)
                made = 0;
            else if (ib_scan_made_by_template(cases[i][0], rels.v[k], sizes, 2) != made)
                fail_msg("%s %s be made by %s", rels.v[k], made ? "should" : "cannot", cases[i][0]);
        }
        ib_test_strs_free(&rels);
    }
}

/* The output root named as the input: walked, with its outputs (which
 * carry user.imgbatch.source) passed over and its other images found. */
static void outputs_beside_originals_are_passed_over(void **state)
{
    tree_t *t = *state;
    char in[PATH_MAX], made[PATH_MAX];
    under(t, "in", in);
    put(t, "in/a-small.jpg", jpeg, sizeof jpeg);
    put(t, "in/sub/b-small.png", png, sizeof png);
    under(t, "in/sub/b-small.png", made);
    if (setxattr(made, "user.imgbatch.source", "b.png", 5, 0) < 0)
        fail_msg("setxattr(\"%s\") failed: %s", made, strerror(errno));
    struct stat st;
    assert_int_equal(stat(in, &st), 0);
    ib_scan_opts_t o = {.has_skip = 1,
                        .skip_dev = st.st_dev,
                        .skip_ino = st.st_ino,
                        .name_template = "{dir}/{stem}-small.{ext}"};
    /* a-small.jpg carries no attribute on a filesystem that keeps them:
     * an input of the user's that only looks like an output. */
    expect_one(&o, in,
               "G:data.bin G:notes.txt I:a-small.jpg I:a.jpg I:garbage.jpg I:sub/b.png "
               "I:sub/deeper/c");
}

/* One entry below a root, as the watcher walks what lands: paths relative
 * to the root, and the walk's rules (hidden, depth, globs) from there. */
static void entries_below_a_root(void **state)
{
    char in[PATH_MAX], p[PATH_MAX];
    under(*state, "in", in);
    size_t root_len = strlen(in) + 1;
    ib_scan_opts_t o = {0};
    ib_test_path_join(p, in, "sub");
    expect_below(&o, p, root_len, "I:sub/b.png I:sub/deeper/c");
    ib_test_path_join(p, in, "sub/b.png");
    expect_below(&o, p, root_len, "I:sub/b.png");
    ib_test_path_join(p, in, "notes.txt");
    expect_below(&o, p, root_len, "G:notes.txt");
    ib_test_path_join(p, in, ".hidden.jpg");
    expect_below(&o, p, root_len, "");
    ib_test_path_join(p, in, "gone.png");
    expect_below(&o, p, root_len, "");
    /* --max-depth 1 walks sub (one below the root) but not sub/deeper. */
    o.has_max_depth = 1;
    o.max_depth = 1;
    ib_test_path_join(p, in, "sub");
    expect_below(&o, p, root_len, "I:sub/b.png");
    o.max_depth = 0;
    expect_below(&o, p, root_len, "");
    o.has_max_depth = 0;
    char *deeper[] = {"sub/deeper"};
    o.excludes = deeper;
    o.n_excludes = 1;
    expect_below(&o, p, root_len, "I:sub/b.png");
}

/* Adds each directory entered, after the root, to the set in ctx. */
static void note_entered(void *ctx, const char *dir, size_t root_len)
{
    ib_test_strs_add(ctx, strlen(dir) > root_len ? dir + root_len : ".");
}

/* The scan says which directories it walks, as it enters them: the
 * watcher watches exactly those. */
static void entered_directories_are_told(void **state)
{
    char in[PATH_MAX];
    under(*state, "in", in);
    ib_test_strs_t got = {0}, want = {0};
    ib_scan_opts_t o = {.entered = note_entered, .entered_ctx = &got};
    free(collect(&o, (char *[]){in}, 1));
    ib_test_strs_split(". sub sub/deeper", &want);
    ib_test_expect_same_set(&got, &want, "directories entered");
    ib_test_strs_free(&got);
    ib_test_strs_free(&want);
}

#define SCAN_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

IB_TEST_MAIN(NULL, NULL,
             {
                 SCAN_TEST(nested_tree_hidden_and_non_images),
                 SCAN_TEST(trailing_slash_on_the_root),
                 SCAN_TEST(symlinks_and_loops),
                 SCAN_TEST(output_root_inside_input_is_not_scanned),
                 SCAN_TEST(named_files_and_base),
                 SCAN_TEST(missing_named_input_is_an_error),
                 SCAN_TEST(paths_from_stdin),
                 SCAN_TEST(unreadable_directory_is_reported_and_the_rest_scanned),
                 cmocka_unit_test(names_the_template_makes),
                 SCAN_TEST(outputs_beside_originals_are_passed_over),
                 SCAN_TEST(entries_below_a_root),
                 SCAN_TEST(entered_directories_are_told),
             })
