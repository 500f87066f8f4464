#include "fastpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ib_fastpath_enabled(void)
{
    const char *v = getenv("IMGBATCH_FAST");
    return v == NULL || strcmp(v, "0") != 0;
}

void ib_fastpath_trace(const char *path, const char *codec, unsigned xshrink, unsigned yshrink)
{
    if (getenv("IMGBATCH_DEBUG") != NULL)
        fprintf(stderr, "imgbatch: %s: fast %s decode, shrunk %ux%u on load\n", path, codec,
                xshrink, yshrink);
}
