/*
 * Writes a shell completion script for imgbatch, made from the option
 * table (app/options.c), to standard output. Run at build time:
 *
 *   ib-completion bash > imgbatch
 *   ib-completion zsh > _imgbatch
 *   ib-completion fish > imgbatch.fish
 */
#include <stdio.h>
#include <string.h>

#include "complete.h"

/* An option whose .offers no writer knows would complete to nothing in
 * every shell without a word: stop the build instead. */
static int check_table(void)
{
    for (size_t i = 0; i < ib_n_options; i++)
        if (ib_offer_kind(&ib_options[i]) == IB_OFFER_UNKNOWN) {
            fprintf(stderr, "ib-completion: --%s offers '%s', which is not @dir, @file or @chain\n",
                    ib_options[i].name, ib_options[i].offers);
            return -1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *shell;
        void (*write)(FILE *f);
    } writers[] = {
        {"bash", ib_complete_bash}, {"zsh", ib_complete_zsh}, {"fish", ib_complete_fish}};
    for (size_t i = 0; argc == 2 && i < sizeof writers / sizeof writers[0]; i++)
        if (strcmp(argv[1], writers[i].shell) == 0) {
            if (check_table() < 0)
                return 1;
            writers[i].write(stdout);
            return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
        }
    fprintf(stderr, "usage: ib-completion bash|zsh|fish\n");
    return 2;
}
