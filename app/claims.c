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

/* A claimed output and who claimed it. */
typedef struct {
    _Atomic uint64_t path;
    _Atomic uint64_t owner;
} claim_t;

struct ib_claims {
    size_t mask;
    size_t map_size;
    claim_t slot[];
};

ib_claims_t *ib_claims_new(size_t capacity)
{
    size_t n = 1024;
    while (n < 2 * capacity)
        n <<= 1;
    size_t size = sizeof(ib_claims_t) + n * sizeof(claim_t);
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

int ib_claims_take(ib_claims_t *c, const char *path, const char *owner)
{
    uint64_t h = ib_path_hash(path); /* never 0, which marks an empty slot */
    uint64_t who = ib_path_hash(owner);
    for (size_t probe = 0; probe <= c->mask; probe++) {
        claim_t *slot = &c->slot[(h + probe) & c->mask];
        uint64_t seen = 0;
        if (atomic_compare_exchange_strong(&slot->path, &seen, h)) {
            atomic_store(&slot->owner, who);
            return 1;
        }
        /* An owner not stored yet is a claim being made this instant:
         * by another job, so a collision. */
        if (seen == h)
            return atomic_load(&slot->owner) == who;
    }
    return -1;
}

int ib_claims_pass(ib_claims_t *c, const char *path, const char *from, const char *to)
{
    uint64_t h = ib_path_hash(path), old = ib_path_hash(from);
    for (size_t probe = 0; probe <= c->mask; probe++) {
        claim_t *slot = &c->slot[(h + probe) & c->mask];
        uint64_t seen = atomic_load(&slot->path);
        if (seen == 0)
            return 0;
        if (seen == h)
            return atomic_compare_exchange_strong(&slot->owner, &old, ib_path_hash(to));
    }
    return 0;
}
