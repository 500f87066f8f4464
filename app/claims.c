/*
 * Output claims: open addressing over 64-bit hashes. See claims.h.
 *
 * Two different paths with the same 64-bit hash would be taken for a
 * collision; at a million outputs the odds are about 1 in 3e7.
 */
#include "claims.h"

#include "select.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

struct ib_claims {
    size_t mask;
    size_t map_size;
    _Atomic uint64_t slot[];
};

ib_claims_t *ib_claims_new(size_t capacity)
{
    size_t n = 1024;
    while (n < 2 * capacity)
        n <<= 1;
    size_t size = sizeof(ib_claims_t) + n * sizeof(uint64_t);
    /* Untouched pages cost nothing, so a generous table is cheap. */
    ib_claims_t *c = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return NULL;
    c->mask = n - 1;
    c->map_size = size;
    return c;
}

void ib_claims_free(ib_claims_t *c)
{
    if (c != NULL)
        munmap(c, c->map_size);
}

int ib_claims_take(ib_claims_t *c, const char *path)
{
    uint64_t h = ib_path_hash(path); /* never 0, which marks an empty slot */
    for (size_t probe = 0; probe <= c->mask; probe++) {
        _Atomic uint64_t *slot = &c->slot[(h + probe) & c->mask];
        uint64_t seen = 0;
        if (atomic_compare_exchange_strong(slot, &seen, h))
            return 1;
        if (seen == h)
            return 0;
    }
    return -1;
}
