/*
 * `meson install`: the binary, the man page and the bash, zsh and fish
 * completion land under one prefix, where the Debian package puts them
 * (debian/), the page as the sources have it and the completion as the
 * build made it. The build directory is found from $IMGBATCH
 * (<build>/app/imgbatch) and installed into a DESTDIR of the test's own.
 *
 * NOTES
 * - Without meson on PATH, or when $IMGBATCH is not in a meson build
 *   directory, the test skips loudly.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

/* Finds the one installed file that ends with suffix; prefix gets the
 * part of its path before the suffix. */
static void find_installed(const ib_test_strs_t *files, const char *suffix, char *prefix)
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

/* The build directory that $IMGBATCH (<build>/app/imgbatch) is in, or a
 * skip. */
static void build_dir(const ib_test_cli_t *t, char *build)
{
    char marker[PATH_MAX];
    ib_test_path_fmt(build, "%s", t->bin);
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(build, '/');
        if (slash == NULL)
            fail_msg("cannot find the build directory from %s", t->bin);
        *slash = '\0';
    }
    ib_test_path_join(marker, build, "meson-private");
    if (!ib_test_exists(marker))
        ib_test_skip_loudly(NULL, "%s is not a meson build directory: install not tried", build);
}

/* Fails unless dest/PREFIXrel holds what src does. */
static void expect_same_file(const char *src, const char *dest, const char *prefix, const char *rel)
{
    char path[PATH_MAX];
    size_t a_len, b_len;
    ib_test_path_fmt(path, "%s/%s%s", dest, prefix, rel);
    char *a = ib_test_slurp(src, &a_len), *b = ib_test_slurp(path, &b_len);
    if (a_len != b_len || memcmp(a, b, a_len) != 0)
        fail_msg("installed %s differs from %s", path, src);
    test_free(a);
    test_free(b);
}

static void meson_install_puts_everything_in_place(void **state)
{
    ib_test_cli_t *t = *state;
    char meson[PATH_MAX], build[PATH_MAX], dest[PATH_MAX];
    if (ib_test_find_program("meson", meson) < 0)
        ib_test_skip_loudly(NULL, "meson is not on PATH: install not tried");
    build_dir(t, build);
    ib_test_cli_dir(t, "destdir", dest);
    const char *argv[] = {"meson", "install",      "-C",      build, "--destdir",
                          dest,    "--no-rebuild", "--quiet", NULL};
    ib_test_run_t r;
    ib_test_cli_run_prog(t, &r, NULL, meson, argv);
    ib_test_expect_exit(&r, 0, "meson install --destdir");
    ib_test_run_free(&r);

    ib_test_strs_t files = {0};
    ib_test_tree_files(dest, &files);
    char bin[PATH_MAX], man[PATH_MAX], under[PATH_MAX], path[PATH_MAX];
    find_installed(&files, "bin/imgbatch", bin);
    find_installed(&files, "share/man/man1/imgbatch.1", man);
    assert_string_equal(bin, man); /* all under one prefix */
    ib_test_path_fmt(path, "%s/%sbin/imgbatch", dest, bin);
    assert_int_equal(access(path, X_OK), 0);
    if (t->source_root != NULL) {
        ib_test_path_fmt(path, "%s/app/imgbatch.1", t->source_root);
        expect_same_file(path, dest, bin, "share/man/man1/imgbatch.1");
    }

    /* Each completion where its shell looks, as the build made it. */
    static const char *const completions[][2] = {
        {"IB_BASH_COMPLETION", "share/bash-completion/completions/imgbatch"},
        {"IB_ZSH_COMPLETION", "share/zsh/vendor-completions/_imgbatch"},
        {"IB_FISH_COMPLETION", "share/fish/vendor_completions.d/imgbatch.fish"},
    };
    for (size_t i = 0; i < sizeof completions / sizeof completions[0]; i++) {
        find_installed(&files, completions[i][1], under);
        assert_string_equal(bin, under);
        if (getenv(completions[i][0]) != NULL)
            expect_same_file(getenv(completions[i][0]), dest, bin, completions[i][1]);
    }
    ib_test_strs_free(&files);
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(meson_install_puts_everything_in_place),
             })
