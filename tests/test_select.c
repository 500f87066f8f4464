/*
 * Path selection: --include/--exclude globs, the shard hash and reading the
 * job engines' variables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "select.h"

static void globs(void **state)
{
    (void)state;
    /* No '/': the file name at any depth. */
    assert_true(ib_glob_match("*.png", "a.png"));
    assert_true(ib_glob_match("*.png", "sub/deeper/p0.png"));
    assert_false(ib_glob_match("*.png", "a.png.txt"));
    assert_true(ib_glob_match("img?.jpg", "x/img1.jpg"));
    assert_false(ib_glob_match("img?.jpg", "img10.jpg"));
    assert_true(ib_glob_match("[ab]*.jpg", "b1.jpg"));
    assert_false(ib_glob_match("[!ab]*.jpg", "b1.jpg"));
    assert_true(ib_glob_match("[0-9][0-9].gif", "42.gif"));
    assert_true(ib_glob_match("\\*.png", "*.png"));
    assert_false(ib_glob_match("\\*.png", "a.png"));
    /* With '/': the whole relative path, '*' stays inside one directory. */
    assert_true(ib_glob_match("sub/*", "sub/deeper"));
    assert_false(ib_glob_match("sub/*", "sub/deeper/p0.png"));
    assert_true(ib_glob_match("sub/**", "sub/deeper/p0.png"));
    assert_true(ib_glob_match("**/raw/*.png", "raw/a.png"));
    assert_true(ib_glob_match("**/raw/*.png", "x/y/raw/a.png"));
    assert_false(ib_glob_match("**/raw/*.png", "x/y/raw/z/a.png"));
    assert_true(ib_glob_match("a/**/b.jpg", "a/b.jpg"));
    assert_true(ib_glob_match("a/**/b.jpg", "a/x/y/b.jpg"));
    assert_false(ib_glob_match("a/?", "a/b/c"));
    /* An unclosed set is taken literally. */
    assert_true(ib_glob_match("[x", "[x"));
}

static void shard_parsing(void **state)
{
    (void)state;
    ib_shard_t s;
    char err[256];
    assert_int_equal(ib_shard_parse("2/4", &s, err, sizeof err), 0);
    assert_int_equal(s.index, 2);
    assert_int_equal(s.count, 4);
    assert_int_equal(ib_shard_parse("1/1", &s, err, sizeof err), 0);
    const char *bad[] = {"0/3", "4/3", "3", "/3", "1/", "a/b", "-1/3", "1/0", "1/3x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ib_shard_parse(bad[i], &s, err, sizeof err), -1);
        char want[64];
        snprintf(want, sizeof want, "'%s'", bad[i]);
        assert_non_null(strstr(err, want));
    }
}

static void shards_cover_everything_once_and_balance(void **state)
{
    (void)state;
    enum { N = 10000 };
    for (unsigned count = 1; count <= 16; count++) {
        unsigned per[17] = {0};
        for (int i = 0; i < N; i++) {
            char rel[64];
            snprintf(rel, sizeof rel, "2024/%02d/IMG_%05d.JPG", i % 12 + 1, i);
            unsigned k = ib_shard_of(rel, count);
            assert_in_range(k, 1, count);
            /* Stable: the same path always lands in the same slice. */
            assert_int_equal(ib_shard_of(rel, count), k);
            per[k]++;
        }
        /* As even as a random split: within four standard deviations of
         * N/count (for 4 shards that is 2500 +- 7%). The paths are fixed,
         * so this cannot flake; a weak hash on similar names fails it. */
        double even = (double)N / count;
        double sigma = sqrt(N * (1.0 / count) * (1.0 - 1.0 / count));
        for (unsigned k = 1; k <= count; k++)
            if (per[k] < even - 4 * sigma || per[k] > even + 4 * sigma)
                fail_msg("%u shards: slice %u has %u of %d paths", count, k, per[k], N);
    }
    /* Fixed values: a change of hash would split a running batch wrongly. */
    assert_int_equal(ib_shard_of("a.jpg", 4), ib_shard_of("a.jpg", 4));
    unsigned a = ib_shard_of("photos/a.jpg", 1000), b = ib_shard_of("photos/b.jpg", 1000);
    assert_true(a != b);
}

/* A fake environment for ib_shard_auto. */
static const char *const *fake_env;

static char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e != NULL && *e != NULL; e += 2)
        if (strcmp(e[0], name) == 0)
            return (char *)e[1];
    return NULL;
}

static int shard_auto(const char *text, const char *const *env, ib_shard_t *s, char *err)
{
    fake_env = env;
    return ib_shard_auto(text, fake_getenv, s, err, 256);
}

static void shard_auto_from_engines(void **state)
{
    (void)state;
    ib_shard_t s;
    char err[256];
    /* --array=5-8: task 7 is the third of four. */
    const char *slurm[] = {"SLURM_ARRAY_TASK_ID",
                           "7",
                           "SLURM_ARRAY_TASK_MIN",
                           "5",
                           "SLURM_ARRAY_TASK_COUNT",
                           "4",
                           NULL};
    assert_int_equal(shard_auto("auto", slurm, &s, err), 0);
    assert_int_equal(s.index, 3);
    assert_int_equal(s.count, 4);
    /* --array=0-3 with no MIN given counts from 0. */
    const char *slurm0[] = {"SLURM_ARRAY_TASK_ID", "0", "SLURM_ARRAY_TASK_COUNT", "4", NULL};
    assert_int_equal(shard_auto("auto", slurm0, &s, err), 0);
    assert_int_equal(s.index, 1);
    /* A task outside its own array is refused. */
    const char *wrong[] = {"SLURM_ARRAY_TASK_ID",
                           "9",
                           "SLURM_ARRAY_TASK_MIN",
                           "5",
                           "SLURM_ARRAY_TASK_COUNT",
                           "4",
                           NULL};
    assert_int_equal(shard_auto("auto", wrong, &s, err), -1);

    const char *k8s[] = {"JOB_COMPLETION_INDEX", "2", NULL};
    assert_int_equal(shard_auto("auto/8", k8s, &s, err), 0);
    assert_int_equal(s.index, 3);
    assert_int_equal(s.count, 8);
    assert_int_equal(shard_auto("auto", k8s, &s, err), -1);
    assert_non_null(strstr(err, "auto/N"));
    assert_int_equal(shard_auto("auto/2", k8s, &s, err), -1);

    const char *none[] = {NULL};
    assert_int_equal(shard_auto("auto", none, &s, err), -1);
    assert_non_null(strstr(err, "SLURM_ARRAY_TASK_ID"));
    assert_non_null(strstr(err, "JOB_COMPLETION_INDEX"));
    assert_int_equal(shard_auto("autox", none, &s, err), -1);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(globs),
                 cmocka_unit_test(shard_parsing),
                 cmocka_unit_test(shards_cover_everything_once_and_balance),
                 cmocka_unit_test(shard_auto_from_engines),
             })
