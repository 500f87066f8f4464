/*
 * --shard: the built imgbatch ($IMGBATCH) splits its inputs between N
 * shards so that every input is done by exactly one, whether the shard is
 * given by hand, by a Slurm job array (SLURM_ARRAY_TASK_*) or by a
 * Kubernetes Indexed Job (JOB_COMPLETION_INDEX). test_slurm.c runs a real
 * Slurm array when one is there; these runs set the variables themselves.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define N_SHARD_FILES 30

/* 30 small PNGs in three directories; in gets their root. */
static void make_shard_tree(const ib_test_cli_t *t, char *in)
{
    char dir[PATH_MAX], out[PATH_MAX];
    ib_test_cli_in_out(t, "shard", dir, in, out);
    for (unsigned i = 0; i < N_SHARD_FILES; i++) {
        char path[PATH_MAX];
        ib_test_path_fmt(path, "%s/d%u/f%02u.png", in, i % 3, i);
        ib_test_make_png(path, 8, 6, IB_TEST_FILL_BUSY, i);
    }
}

/* The inputs a --dry-run of this shard, with env added, takes. */
static void shard_inputs(ib_test_cli_t *t, const char *in, const char *shard,
                         const char *const *env, ib_test_strs_t *out)
{
    ib_test_spawn_t o = {.env_add = env};
    ib_test_run_t r;
    ib_test_cli_run(t, &r, &o, "--dry-run", "--json", "-j", "1", "--shard", shard, in, NULL);
    ib_test_expect_exit(&r, 0, shard);
    ib_test_run_inputs(&r, in, out);
    ib_test_run_free(&r);
}

/* Runs shard k of n for real and adds the files it wrote to all. */
static void shard_outputs(ib_test_cli_t *t, const char *in, unsigned k, unsigned n,
                          ib_test_strs_t *all)
{
    char shard[32], out[PATH_MAX];
    snprintf(shard, sizeof shard, "%u/%u", k, n);
    ib_test_path_fmt(out, "%s/shard/out-%u-%u", t->root, n, k);
    ib_test_run_t r;
    ib_test_cli_run(t, &r, NULL, "-q", "-j", "2", "--shard", shard, "-o", out, in, NULL);
    ib_test_expect_exit(&r, 0, shard);
    ib_test_run_free(&r);
    ib_test_strs_t mine = {0};
    ib_test_tree_files(out, &mine);
    /* With more than one shard, no shard may take everything. */
    if (n > 1 && mine.n == N_SHARD_FILES)
        fail_msg("--shard %s took all %d inputs", shard, N_SHARD_FILES);
    for (size_t i = 0; i < mine.n; i++)
        ib_test_strs_add(all, mine.v[i]);
    ib_test_strs_free(&mine);
}

static void shards_split_the_inputs_exactly(void **state)
{
    ib_test_cli_t *t = *state;
    char in[PATH_MAX];
    make_shard_tree(t, in);
    ib_test_strs_t all = {0};
    ib_test_tree_files(in, &all);
    assert_int_equal(all.n, N_SHARD_FILES);

    for (unsigned n = 1; n <= 5; n++) {
        ib_test_strs_t union_ = {0};
        for (unsigned k = 1; k <= n; k++)
            shard_outputs(t, in, k, n, &union_);
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

/* Fails unless `--shard mode` with env takes what `--shard shard` does. */
static void expect_same_shard(ib_test_cli_t *t, const char *in, const char *mode,
                              const char *const *env, const char *shard, const char *what)
{
    ib_test_strs_t got = {0}, want = {0};
    shard_inputs(t, in, mode, env, &got);
    shard_inputs(t, in, shard, NULL, &want);
    ib_test_expect_same_set(&got, &want, what);
    ib_test_strs_free(&got);
    ib_test_strs_free(&want);
}

static void shard_auto_reads_job_arrays(void **state)
{
    ib_test_cli_t *t = *state;
    char in[PATH_MAX], what[160];
    make_shard_tree(t, in);

    /* sbatch --array=5-8: tasks 5..8 are shards 1/4..4/4. */
    for (unsigned id = 5; id <= 8; id++) {
        char id_var[64], shard[16];
        snprintf(id_var, sizeof id_var, "SLURM_ARRAY_TASK_ID=%u", id);
        snprintf(shard, sizeof shard, "%u/4", id - 4);
        const char *env[] = {id_var, "SLURM_ARRAY_TASK_MIN=5", "SLURM_ARRAY_TASK_COUNT=4",
                             "SLURM_ARRAY_TASK_MAX=8", NULL};
        static const char *const modes[] = {"auto", "auto/4"};
        for (size_t m = 0; m < 2; m++) {
            snprintf(what, sizeof what, "--shard %s in Slurm task %u of 5-8 (as --shard %s)",
                     modes[m], id, shard);
            expect_same_shard(t, in, modes[m], env, shard, what);
        }
    }

    /* A Kubernetes Indexed Job with 3 completions: indexes 0..2. */
    for (unsigned i = 0; i < 3; i++) {
        char var[64], shard[16];
        snprintf(var, sizeof var, "JOB_COMPLETION_INDEX=%u", i);
        snprintf(shard, sizeof shard, "%u/3", i + 1);
        const char *env[] = {var, NULL};
        snprintf(what, sizeof what, "--shard auto/3 with %s (as --shard %s)", var, shard);
        expect_same_shard(t, in, "auto/3", env, shard, what);
    }
}

IB_TEST_MAIN(ib_test_cli_group_setup, ib_test_cli_group_teardown,
             {
                 cmocka_unit_test(shards_split_the_inputs_exactly),
                 cmocka_unit_test(shard_auto_reads_job_arrays),
             })
