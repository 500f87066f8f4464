/*
 * 64-bit FNV-1a. GLib's checksums would do, but the bundled libvips links
 * GLib in without exporting them; a cache-busting name needs a stable,
 * well-spread hash, not a cryptographic one.
 */
#include "hash.h"

#include <stdint.h>

void ib_hash_hex(const void *data, size_t len, char *out)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    /* The top bits are the best mixed. */
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < IB_HASH_DIGITS; i++)
        out[i] = hex[(h >> (60 - 4 * i)) & 15];
    out[IB_HASH_DIGITS] = '\0';
}
