/*
 * The JPEG fast path (filters/fastjpeg.c) against the libvips path: the
 * same inputs converted both ways (IMGBATCH_FAST=0 turns the fast path
 * off) must give the same sizes and, pixel by pixel, nearly the same
 * images: at least 35 dB PSNR each, 45 dB on average. Inputs are every
 * JPEG of ../shared/corpus that libvips reads here, plus generated JPEGs
 * in every EXIF orientation, so the test still runs without the corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "decode.h"
#include "harness.h"

#define MAX_INPUTS 400

typedef struct {
    char dir[256];
    char *inputs[MAX_INPUTS];
    int n;
} fixture_t;

static void add_input(fixture_t *f, const char *path)
{
    if (f->n < MAX_INPUTS)
        f->inputs[f->n++] = strdup(path);
}

/* Corpus JPEGs that libvips decodes here (see its MANIFEST.tsv notes). */
static void add_corpus(fixture_t *f)
{
    const char *shared = getenv("IB_SHARED");
    char manifest[PATH_MAX], line[8192];
    snprintf(manifest, sizeof manifest, "%s/corpus/MANIFEST.tsv", shared ? shared : "../shared");
    FILE *m = fopen(manifest, "r");
    if (m == NULL) {
        fprintf(stderr, "fastpath: corpus part SKIPPED: %s not found (generated JPEGs only)\n",
                manifest);
        return;
    }
    while (fgets(line, sizeof line, m) != NULL) {
        char *fields[8] = {0};
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        for (int i = 0; tok != NULL && i < 8; i++, tok = strtok_r(NULL, "\t", &save))
            fields[i] = tok;
        if (fields[7] == NULL || strcmp(fields[6], "valid") != 0 ||
            strncmp(fields[3], "JPEG", 4) != 0 || strstr(fields[7], "vips=ok") == NULL)
            continue;
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/corpus/%s", shared ? shared : "../shared", fields[0]);
        add_input(f, path);
    }
    fclose(m);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    *state = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/ib-fast-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    /* A busy picture in each orientation: the fast path turns it upright
     * after resampling, the libvips path before. */
    ib_test_image_t img;
    if (ib_test_image_alloc(&img, 300, 200, 3) < 0)
        return -1;
    for (unsigned y = 0; y < img.height; y++)
        for (unsigned x = 0; x < img.width; x++) {
            unsigned char *p = ib_test_pixel(&img, x, y);
            p[0] = (unsigned char)(x * 255 / 299);
            p[1] = (unsigned char)(y * 255 / 199);
            p[2] = (unsigned char)(((x / 10 + y / 10) % 2) * 200);
        }
    char err[256], path[PATH_MAX];
    for (int o = 1; o <= 8; o++) {
        snprintf(path, sizeof path, "%s/gen-%d.jpg", f->dir, o);
        if (ib_test_write_jpeg(path, &img, 90, o, err, sizeof err) < 0)
            return -1;
        add_input(f, path);
    }
    ib_test_image_free(&img);
    add_corpus(f);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = ib_test_rm_tree(f->dir);
    for (int i = 0; i < f->n; i++)
        free(f->inputs[i]);
    free(f);
    return rc;
}

/* Converts every input into out (flat: the inputs are named one by one). */
static void convert(const fixture_t *f, const char *out, const char *fast)
{
    char list[PATH_MAX];
    snprintf(list, sizeof list, "%s/list", f->dir);
    FILE *l = fopen(list, "w");
    assert_non_null(l);
    for (int i = 0; i < f->n; i++)
        fprintf(l, "%s%c", f->inputs[i], '\0');
    fclose(l);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("IMGBATCH_FAST", fast, 1);
        const char *ib = getenv("IMGBATCH");
        execl(ib, ib, "--files-from", list, "-0", "-o", out, "-s", "96x96", "-F", "png", "-q",
              "--name", "{stem}-{dir}.{ext}", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    /* Some corpus JPEGs share a name: collisions are reported, fine here. */
    assert_true(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
}

static double psnr(const ib_test_image_t *a, const ib_test_image_t *b)
{
    double se = 0;
    size_t n = (size_t)a->width * a->height * a->channels;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->pixels[i] - b->pixels[i];
        se += d * d;
    }
    return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / (se / n));
}

static void fast_path_matches_libvips(void **state)
{
    fixture_t *f = *state;
    char fast[PATH_MAX], slow[PATH_MAX];
    snprintf(fast, sizeof fast, "%s/fast", f->dir);
    snprintf(slow, sizeof slow, "%s/slow", f->dir);
    convert(f, fast, "1");
    convert(f, slow, "0");

    char cmd[PATH_MAX * 2 + 32];
    snprintf(cmd, sizeof cmd, "ls '%s'", slow);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    char name[1024];
    int compared = 0, identical = 0, bad = 0;
    double sum = 0, worst = INFINITY;
    while (fgets(name, sizeof name, ls) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        char a[PATH_MAX * 2], b[PATH_MAX * 2], err[256];
        snprintf(a, sizeof a, "%s/%s", fast, name);
        snprintf(b, sizeof b, "%s/%s", slow, name);
        ib_test_image_t ia, ib;
        if (ib_test_decode_png(b, &ib, err, sizeof err) < 0)
            fail_msg("%s: %s", b, err);
        if (ib_test_decode_png(a, &ia, err, sizeof err) < 0)
            fail_msg("the fast path gave no %s: %s", name, err);
        if (ia.width != ib.width || ia.height != ib.height || ia.channels != ib.channels) {
            print_error("%s: fast %ux%ux%u, libvips %ux%ux%u\n", name, ia.width, ia.height,
                        ia.channels, ib.width, ib.height, ib.channels);
            bad++;
        } else {
            double p = psnr(&ia, &ib);
            compared++;
            if (isinf(p)) {
                identical++;
            } else {
                sum += p;
                worst = p < worst ? p : worst;
                if (p < 35) {
                    print_error("%s: %.1f dB from the libvips path\n", name, p);
                    bad++;
                }
            }
        }
        ib_test_image_free(&ia);
        ib_test_image_free(&ib);
    }
    pclose(ls);
    double mean = compared > identical ? sum / (compared - identical) : INFINITY;
    fprintf(stderr, "fastpath: %d outputs compared, %d identical, mean %.1f dB, worst %.1f dB\n",
            compared, identical, mean, worst);
    assert_true(compared >= 8);
    assert_int_equal(bad, 0);
    assert_true(mean >= 45);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fast_path_matches_libvips, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
