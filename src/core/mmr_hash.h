/* mmr_hash.h — a 64-bit hash of an id byte string (FNV-1a, then splitmix64's finaliser),
 * the one key every module uses for in-memory maps of users and items (caches, the
 * trainer's item-vector cache, the joiner). Not cryptographic; not stored on disk. */
#ifndef MMR_HASH_H
#define MMR_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t mmr_hash64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

#endif
