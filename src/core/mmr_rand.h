/* mmr_rand.h — splitmix64, the small seeded generator used wherever the engine needs a
 * reproducible stream (synthetic data, weight initialisation, tests). Not for secrets. */
#ifndef MMR_RAND_H
#define MMR_RAND_H

#include <stdint.h>

/* Advances *state and returns the next 64 random bits. */
static inline uint64_t mmr_rand_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) from the top 53 bits. */
static inline double mmr_rand_uniform(uint64_t *state) {
    return (double)(mmr_rand_next(state) >> 11) / 9007199254740992.0;
}

#endif
