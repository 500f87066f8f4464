/*
 * Loader-module preloading. See preload.h.
 */
#include "preload.h"

#include <dlfcn.h>
#include <glob.h>
#include <stddef.h>

#include "ib_config.h"

int ib_preload_modules(void)
{
#ifndef IB_VIPS_MODULE_DIR
    /* A libvips with its loaders built in (-Dlibvips=bundled). */
    return 0;
#else
    glob_t g;
    int loaded = 0;
    if (glob(IB_VIPS_MODULE_DIR "/*.so", 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++)
        /* RTLD_GLOBAL as GModule opens them, so libvips' own open later
         * finds this handle; RTLD_NOW so the relocations are done here,
         * once, and not in every worker. The handles are never closed. */
        if (dlopen(g.gl_pathv[i], RTLD_NOW | RTLD_GLOBAL) != NULL)
            loaded++;
    globfree(&g);
    return loaded;
#endif
}
