/* zipf.h — draws ids 0..n-1 uniformly or from Zipf(s), for mmrec-load's users and items
 * (the Rank engine and the event producer draw the same way). Not a general sampler: the
 * Zipf table is an explicit CDF of n doubles, fine for catalogs up to ~10^8. */
#ifndef MMR_ZIPF_H
#define MMR_ZIPF_H

#include <stdint.h>

#include "mmr_err.h"

typedef struct mmr_zipf {
    long n;
    double *cdf; /* [n] cumulative P(id <= k); NULL = uniform. Owned. */
} mmr_zipf_t;

/* Prepares *z to draw from [0, n): s > 0 is Zipf with exponent s (P(k) ∝ (k+1)^-s),
 * s == 0 is uniform. Read-only afterwards, so threads may share it. Release with
 * mmr_zipf_release (also after a failure). Errors: MMR_ERR_INVALID (n < 1, s < 0),
 * MMR_ERR_NOMEM. */
mmr_status_t mmr_zipf_init(mmr_zipf_t *z, long n, double s, mmr_err_t *err);

/* Next id in [0, n), advancing the caller's splitmix64 state *rng (mmr_rand.h). */
long mmr_zipf_draw(const mmr_zipf_t *z, uint64_t *rng);

/* Draws an id as mmr_zipf_draw does and writes it as text, prefix then decimal digits
 * ("i42"), into out[MMR_ZIPF_ID_LEN]. Per-request id formatting on the load generator's
 * cores: snprintf cost it about 3% of a Rank's client CPU (100 candidates). */
#define MMR_ZIPF_ID_LEN 24 /* prefix + up to 19 digits + NUL */
void mmr_zipf_draw_id(const mmr_zipf_t *z, uint64_t *rng, char prefix, char *out);

/* Frees the table; z may be NULL or zeroed. */
void mmr_zipf_release(mmr_zipf_t *z);

#endif
