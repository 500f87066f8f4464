/*
 * The JPEG and PNG fast paths (filters/fastjpeg.c, fastpng.c) against the
 * libvips path: the same inputs converted both ways (IMGBATCH_FAST=0
 * turns the fast paths off) must give the same sizes and, pixel by pixel,
 * nearly the same images: at least 35 dB PSNR each, 45 dB on average.
 * Inputs are every JPEG and PNG of ../shared/corpus that libvips reads
 * here, plus generated ones (JPEGs in every EXIF orientation; PNGs in
 * RGB and RGBA, of sizes that leave partial boxes), so the test still
 * runs without the corpus. Each is made at two sizes, so that the small corpus PNGs
 * are shrunk on load too. The fast run's trace (IMGBATCH_DEBUG) must show
 * that every generated input took its fast path.
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
    int generated; /* the first inputs, which must take a fast path */
} fixture_t;

/* The outputs are named by stem: a second input of the same stem (the
 * corpus has testorig.jpg and testorig.png) would make the two runs keep
 * different winners of the collision, so it is left out. */
static void add_input(fixture_t *f, const char *path)
{
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    size_t stem = strcspn(base, ".");
    for (int i = 0; i < f->n; i++) {
        const char *other = strrchr(f->inputs[i], '/') + 1;
        if (strcspn(other, ".") == stem && strncmp(other, base, stem) == 0)
            return;
    }
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
        fprintf(stderr, "fastpath: corpus part SKIPPED: %s not found (generated images only)\n",
                manifest);
        return;
    }
    while (fgets(line, sizeof line, m) != NULL) {
        char *fields[8] = {0};
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        for (int i = 0; tok != NULL && i < 8; i++, tok = strtok_r(NULL, "\t", &save))
            fields[i] = tok;
        if (fields[7] == NULL || strcmp(fields[6], "valid") != 0 ||
            (strncmp(fields[3], "JPEG", 4) != 0 && strncmp(fields[3], "PNG", 3) != 0) ||
            strstr(fields[7], "vips=ok") == NULL)
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

    /* PNGs big enough to be box-shrunk: sizes that divide evenly and
     * sizes that leave a partial box at the edges, with and without an
     * alpha channel that hides some colours entirely. */
    static const unsigned sizes[][3] = {{1536, 1024, 3}, {1603, 1201, 3}, {1197, 1301, 4}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (ib_test_image_alloc(&img, sizes[i][0], sizes[i][1], sizes[i][2]) < 0)
            return -1;
        for (unsigned y = 0; y < img.height; y++)
            for (unsigned x = 0; x < img.width; x++) {
                unsigned char *p = ib_test_pixel(&img, x, y);
                p[0] = (unsigned char)(x * 255 / img.width);
                p[1] = (unsigned char)(127.5 + 127.5 * sin(hypot(x - 300.0, y - 200.0) / 9));
                p[2] = (unsigned char)(((x / 230 + y / 170) % 2) * 220);
                if (img.channels == 4)
                    p[3] = (unsigned char)((x / 200) % 3 == 0 ? 0 : y * 255 / img.height);
            }
        snprintf(path, sizeof path, "%s/gen-%ux%u.png", f->dir, img.width, img.height);
        if (ib_test_write_png(path, &img, err, sizeof err) < 0)
            return -1;
        ib_test_image_free(&img);
        add_input(f, path);
    }
    f->generated = f->n;
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

/*
 * Converts every input into out at size (flat: the inputs are named one
 * by one). With trace set, the workers' stderr (the fast paths' trace)
 * goes to that file.
 */
static void convert(const fixture_t *f, const char *out, const char *size, const char *fast,
                    const char *trace)
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
        if (trace != NULL) {
            setenv("IMGBATCH_DEBUG", "1", 1);
            if (freopen(trace, "w", stderr) == NULL)
                _exit(126);
        }
        const char *ib = getenv("IMGBATCH");
        execl(ib, ib, "--files-from", list, "-0", "-o", out, "-s", size, "-F", "png", "-q",
              "--name", "{stem}-{w}.{ext}", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    /* Some corpus JPEGs share a name: collisions are reported, fine here. */
    assert_true(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
}

/*
 * PSNR over what is seen: with alpha, colours premultiplied by it (the
 * colour under a transparent pixel is anyone's) and the alpha itself.
 */
static double psnr(const ib_test_image_t *a, const ib_test_image_t *b)
{
    double se = 0;
    unsigned ch = a->channels;
    size_t n = (size_t)a->width * a->height * ch;
    for (size_t i = 0; i < n; i++) {
        double va = a->pixels[i], vb = b->pixels[i];
        if (ch == 4 && i % 4 != 3) {
            va = va * a->pixels[i - i % 4 + 3] / 255;
            vb = vb * b->pixels[i - i % 4 + 3] / 255;
        }
        se += (va - vb) * (va - vb);
    }
    return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / (se / n));
}

/* Whether the trace says path took a fast path. */
static int traced(const char *trace, const char *path)
{
    FILE *t = fopen(trace, "r");
    assert_non_null(t);
    char line[PATH_MAX + 128], want[PATH_MAX + 32];
    snprintf(want, sizeof want, "imgbatch: %s: fast ", path);
    int found = 0;
    while (!found && fgets(line, sizeof line, t) != NULL)
        found = strncmp(line, want, strlen(want)) == 0;
    fclose(t);
    return found;
}

static void fast_path_matches_libvips(void **state)
{
    fixture_t *f = *state;
    char fast[PATH_MAX], slow[PATH_MAX], trace[PATH_MAX];
    snprintf(fast, sizeof fast, "%s/fast", f->dir);
    snprintf(slow, sizeof slow, "%s/slow", f->dir);
    snprintf(trace, sizeof trace, "%s/trace", f->dir);
    static const char *const sizes[] = {"96x96", "256x256"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        convert(f, fast, sizes[i], "1", trace);
        convert(f, slow, sizes[i], "0", NULL);
        for (int k = 0; k < f->generated; k++)
            if (!traced(trace, f->inputs[k]))
                fail_msg("%s at %s did not take a fast path", f->inputs[k], sizes[i]);
    }

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
    assert_true(compared >= 2 * f->generated);
    assert_int_equal(bad, 0);
    assert_true(mean >= 45);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test_setup_teardown(fast_path_matches_libvips, setup, teardown),
             })
