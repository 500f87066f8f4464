/*
 * Writes a shell completion script for imgbatch, made from the option
 * table (app/options.c), to standard output. Run at build time:
 *
 *   ib-completion bash > imgbatch
 */
#include <stdio.h>
#include <string.h>

#include "options.h"

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "bash") != 0) {
        fprintf(stderr, "usage: ib-completion bash\n");
        return 2;
    }
    ib_options_bash(stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
