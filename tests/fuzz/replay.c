/*
 * A main for the fuzz harnesses without libFuzzer: the normal build links
 * one with each harness, and meson test replays the inputs of
 * tests/fuzz/regress/ through it, so that every build (the sanitizer
 * build too) checks that fixed findings stay fixed.
 *
 *   replay_NAME DIR PREFIX    every file in DIR whose name starts PREFIX
 *   replay_NAME FILE...       these files
 *
 * A finding aborts, as under libFuzzer. No input at all fails too: a
 * replay of nothing would pass whatever the code did.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "fuzz.h"

/* Optional in a harness, as for libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay(const char *path)
{
    size_t len = 0;
    struct stat st;
    unsigned char *data = NULL;
    if (stat(path, &st) == 0 && st.st_size == 0)
        data = malloc(1); /* an empty input is an input too */
    else
        data = ib_read_file(path, (size_t)1 << 30, &len);
    if (data == NULL) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every DIR/PREFIX* in name order; the count replayed, or -1. */
static int replay_dir(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: opendir(\"%s\") failed: %s\n", dir, strerror(errno));
        return -1;
    }
    char *names[4096];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < sizeof names / sizeof names[0];)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    int rc = (int)n;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (names[i] == NULL || replay(path) < 0)
            rc = -1;
        free(names[i]);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR PREFIX | FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    struct stat st;
    int n = 0;
    if (argc == 3 && stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode)) {
        n = replay_dir(argv[1], argv[2]);
    } else {
        for (int i = 1; i < argc && n >= 0; i++)
            n = replay(argv[i]) < 0 ? -1 : n + 1;
    }
    if (n <= 0) {
        fprintf(stderr, "replay: %s\n", n == 0 ? "no inputs" : "an input could not be read");
        return 1;
    }
    printf("replay: %d inputs, no findings\n", n);
    return 0;
}
