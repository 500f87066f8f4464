/*
 * A content hash for output names ({hash} in --name): the same bytes give
 * the same digits on every run and machine.
 */
#ifndef IB_UTIL_HASH_H
#define IB_UTIL_HASH_H

#include <stddef.h>

/* Hex digits of the hash put in names: 48 bits, so that two different
 * outputs of one input share a name only by a one in 2^48 chance. */
#define IB_HASH_DIGITS 12

/* The first IB_HASH_DIGITS lowercase hex digits of the hash of data, and
 * a NUL, into out (at least IB_HASH_DIGITS + 1 bytes). */
void ib_hash_hex(const void *data, size_t len, char *out);

#endif
