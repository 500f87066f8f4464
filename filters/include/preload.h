/*
 * Loading libvips' loader modules (libheif, ImageMagick, poppler, ...) into
 * the parent before the workers are forked, without starting libvips.
 *
 * Why: mapping and relocating those libraries is most of a worker's start
 * (about 60% of its instructions before the first image). Done once in the
 * parent, every worker inherits it and each libvips start only registers
 * the modules. This calls no libvips function, and the libraries' own
 * start-up code starts no thread (tests/test_sniff.c checks), so the
 * parent stays single-threaded and safe to fork.
 */
#ifndef IB_FILTERS_PRELOAD_H
#define IB_FILTERS_PRELOAD_H

/* How many modules were loaded; those that fail to load are left for
 * libvips to report in the workers. */
int ib_preload_modules(void);

#endif
