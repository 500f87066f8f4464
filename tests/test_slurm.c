/*
 * A real Slurm job array splits one batch: a one-node cluster (slurmctld,
 * slurmd, munged; tests/slurm/cluster.sh) is started, an array of four
 * tasks numbered 3-6 each runs `imgbatch --shard auto` over the same tree,
 * and together they must convert every image exactly once.
 *
 * Needs root, slurm-wlm and munge (.ci/run installs them); without them
 * the test is skipped with a message saying why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode.h"
#include "harness.h"

#define N_IMAGES 48
#define N_TASKS 4

typedef struct {
    char dir[256];
    char tree[PATH_MAX];
    char out[PATH_MAX];
    char cluster[PATH_MAX];
    char skip_reason[256];
    int started;
} fixture_t;

static int make_tree(fixture_t *f)
{
    char err[256], path[PATH_MAX + 64];
    ib_test_image_t img;
    if (ib_test_image_alloc(&img, 40, 30, 3) < 0)
        return -1;
    for (int i = 0; i < N_IMAGES; i++) {
        unsigned char rgba[4] = {(unsigned char)(i * 5), 80, (unsigned char)(255 - i * 5), 255};
        ib_test_image_fill(&img, rgba);
        snprintf(path, sizeof path, "%s/d%d", f->tree, i % 3);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/d%d/img%02d.png", f->tree, i % 3, i);
        if (ib_test_write_png(path, &img, err, sizeof err) < 0) {
            ib_test_image_free(&img);
            return -1;
        }
    }
    ib_test_image_free(&img);
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/ib-slurm-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->tree, sizeof f->tree, "%s/tree", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    snprintf(f->cluster, sizeof f->cluster, "%s/cluster", f->dir);
    mkdir(f->tree, 0755);
    if (make_tree(f) < 0)
        return -1;

    if (geteuid() != 0) {
        snprintf(f->skip_reason, sizeof f->skip_reason, "a Slurm cluster needs root");
        return 0;
    }
    const char *tools[] = {"slurmctld", "slurmd", "sbatch", "sinfo", "munged"};
    char found[PATH_MAX];
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (ib_test_find_program(tools[i], found) < 0) {
            snprintf(f->skip_reason, sizeof f->skip_reason,
                     "%s is not installed (apt-get install slurm-wlm munge)", tools[i]);
            return 0;
        }

    const char *root = getenv("IB_SOURCE_ROOT");
    char cmd[3 * PATH_MAX], line[PATH_MAX + 32] = "";
    snprintf(cmd, sizeof cmd, "'%s/tests/slurm/cluster.sh' start '%s'", root ? root : ".",
             f->cluster);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while (fgets(line, sizeof line, p) != NULL)
        if (strncmp(line, "SLURM_CONF=", 11) == 0) {
            line[strcspn(line, "\n")] = '\0';
            setenv("SLURM_CONF", line + 11, 1);
            f->started = 1;
        }
    int rc = pclose(p);
    if (rc != 0 || !f->started) {
        /* Slurm is there but will not run here (no hostname, a sandbox
         * that forbids its daemons): say so, do not pretend. */
        snprintf(f->skip_reason, sizeof f->skip_reason,
                 "the one-node Slurm cluster did not start (see the messages above)");
        f->started = 0;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[3 * PATH_MAX + 64];
    if (f->started) {
        const char *root = getenv("IB_SOURCE_ROOT");
        snprintf(cmd, sizeof cmd, "'%s/tests/slurm/cluster.sh' stop '%s'", root ? root : ".",
                 f->cluster);
        if (system(cmd) != 0)
            fprintf(stderr, "slurm: stopping the cluster failed\n");
    }
    int rc = ib_test_rm_tree(f->dir);
    free(f);
    return rc;
}

/* Every input's relative path under the tree, as "d0/img00.png". */
static int index_of(const fixture_t *f, const char *input)
{
    size_t n = strlen(f->tree);
    if (strncmp(input, f->tree, n) != 0 || input[n] != '/')
        return -1;
    int d, i;
    if (sscanf(input + n + 1, "d%d/img%d.png", &d, &i) != 2 || i < 0 || i >= N_IMAGES || d != i % 3)
        return -1;
    return i;
}

static void array_converts_every_image_once(void **state)
{
    fixture_t *f = *state;
    if (!f->started)
        ib_test_skip_loudly("slurm", "%s", f->skip_reason);
    const char *ib = getenv("IMGBATCH");
    assert_non_null(ib);

    char script[PATH_MAX + 16], cmd[4 * PATH_MAX];
    snprintf(script, sizeof script, "%s/job.sh", f->dir);
    FILE *s = fopen(script, "w");
    assert_non_null(s);
    /* The README's recipe: one command for every task, --shard auto. */
    fprintf(s, "#!/bin/sh\nexec '%s' '%s' -o '%s' -s 24x24 --shard auto --json -q\n", ib, f->tree,
            f->out);
    fclose(s);
    chmod(script, 0755);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sbatch --wait --quiet --array=3-%d --cpus-per-task=1 "
             "--output='%s/task-%%a.json' --error='%s/task-%%a.err' '%s'",
             f->dir, 3 + N_TASKS - 1, f->dir, f->dir, script);
    assert_int_equal(system(cmd), 0);

    int seen[N_IMAGES] = {0};
    int busy_tasks = 0;
    for (int t = 3; t < 3 + N_TASKS; t++) {
        char path[PATH_MAX + 32], line[8192], err[256];
        snprintf(path, sizeof path, "%s/task-%d.json", f->dir, t);
        FILE *in = fopen(path, "r");
        assert_non_null(in);
        int files = 0, summaries = 0;
        while (fgets(line, sizeof line, in) != NULL) {
            ib_test_event_t ev;
            if (ib_test_event_parse(line, strlen(line), &ev, err, sizeof err) < 0)
                fail_msg("task %d: bad JSON line (%s): %s", t, err, line);
            if (strcmp(ev.event, "file") == 0) {
                int i = index_of(f, ev.input);
                if (i < 0)
                    fail_msg("task %d: unexpected input %s", t, ev.input);
                assert_string_equal(ev.status, "ok");
                seen[i]++;
                files++;
            } else if (strcmp(ev.event, "summary") == 0) {
                summaries++;
                assert_int_equal(ev.failed, 0);
            }
            ib_test_event_free(&ev);
        }
        fclose(in);
        assert_int_equal(summaries, 1);
        busy_tasks += files > 0;
    }
    for (int i = 0; i < N_IMAGES; i++)
        if (seen[i] != 1)
            fail_msg("img%02d.png was converted %d times across the array", i, seen[i]);
    /* 48 paths over 4 slices: an empty slice would mean a broken hash. */
    assert_int_equal(busy_tasks, N_TASKS);

    /* The outputs are exactly the input tree, each decodable. */
    for (int i = 0; i < N_IMAGES; i++) {
        char out[PATH_MAX + 32], err[256];
        snprintf(out, sizeof out, "%s/d%d/img%02d.png", f->out, i % 3, i);
        ib_test_image_t img;
        if (ib_test_decode_png(out, &img, err, sizeof err) < 0)
            fail_msg("%s: %s", out, err);
        assert_int_equal(img.width, 24);
        assert_int_equal(img.height, 18);
        ib_test_image_free(&img);
    }
    snprintf(cmd, sizeof cmd, "test \"$(find '%s' -type f | wc -l)\" -eq %d", f->out, N_IMAGES);
    assert_int_equal(system(cmd), 0);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test_setup_teardown(array_converts_every_image_once, setup, teardown),
             })
