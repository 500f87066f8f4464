/*
 * Output claims: which output paths this run has already given to an
 * input, shared by every worker. A worker claims each output path before
 * writing it, so two inputs that map to one output (a.png and a.jpg with
 * -F webp) give one success and one collision, never an overwrite, even
 * when two workers get there at the same moment.
 *
 * Rules: the table is one MAP_SHARED mapping made before fork(); slots are
 * 64-bit path hashes taken with compare-and-swap, so a worker that dies
 * mid-claim cannot leave anything locked. Each slot also keeps a hash of
 * the input that claimed it, stored just after the claim.
 */
#ifndef IB_APP_CLAIMS_H
#define IB_APP_CLAIMS_H

#include <stddef.h>

typedef struct ib_claims ib_claims_t;

/* Room for about capacity paths. NULL with errno set. */
ib_claims_t *ib_claims_new(size_t capacity);
void ib_claims_free(ib_claims_t *c);

/* 1: path is now owner's (or was already: an input converted again, as
 * --watch does when it changes); 0: another input claimed it; -1: the
 * table is full (the caller goes on without the check). */
int ib_claims_take(ib_claims_t *c, const char *path, const char *owner);

/* Hands path's claim from one input to another: 1 when it was from's and
 * is now to's, 0 otherwise. For an owner that no longer exists (under
 * --watch, photo.png deleted and photo.jpg added, both making photo.webp);
 * of two inputs taking over at once, one wins. */
int ib_claims_pass(ib_claims_t *c, const char *path, const char *from, const char *to);

#endif
