/*
 * Output naming: where an input's output goes under the output root.
 * Pure functions, shared by the workers (which write the file) and the
 * parent (which reports it), so both always agree on the name.
 */
#ifndef IB_APP_NAMING_H
#define IB_APP_NAMING_H

#include <stddef.h>
#include <stdint.h>

#define IB_DEFAULT_TEMPLATE "{dir}/{stem}.{ext}"
#define IB_DEFAULT_VARIANT_TEMPLATE "{dir}/{stem}-{variant}.{ext}"

typedef struct {
    const char *rel; /* the input's path relative to its root, e.g. "a/b/c.jpg" */
    const char *ext; /* the output's extension, without the dot */
    unsigned width;
    unsigned height;
    const char *variant; /* NULL or "" when there are no variants */
    int64_t date;        /* wall-clock capture date (clock.h), for {date} */
    const char *hash;    /* the output's content hash; NULL before it is encoded */
} ib_name_vars_t;

/* Checks a --name template: 0, or -1 with a message in err. */
int ib_name_check(const char *tmpl, char *err, size_t errlen);

/* Whether tmpl names outputs by their content ({hash}): such a name is
 * known only once the output is encoded. */
int ib_name_has_hash(const char *tmpl);

/* Renders tmpl under root into out. Empty path components are dropped, so
 * "{dir}/{stem}.{ext}" with no directory gives "root/stem.ext". {hash}
 * without a hash stays as it is (a --dry-run shows it so).
 * 0, or -1 if it does not fit. */
int ib_name_render(const char *root, const char *tmpl, const ib_name_vars_t *v, char *out,
                   size_t cap);

/* The pieces of rel: dir ("" at the top), stem and ext (without the dot). */
void ib_name_split(const char *rel, char *dir, size_t dlen, char *stem, size_t slen, char *ext,
                   size_t elen);

#endif
