/* zipf.c — uniform and Zipf id draws for mmrec-load (see zipf.h). */
#include "zipf.h"

#include <math.h>
#include <stdlib.h>

#include "mmr_rand.h"

mmr_status_t mmr_zipf_init(mmr_zipf_t *z, long n, double s, mmr_err_t *err) {
    z->n = n;
    z->cdf = NULL;
    if (n < 1 || !(s >= 0)) return mmr_err_set(err, MMR_ERR_INVALID, "zipf: n %ld, s %g", n, s);
    if (s == 0) return MMR_OK;
    z->cdf = malloc((size_t)n * sizeof *z->cdf);
    if (!z->cdf) return mmr_err_set(err, MMR_ERR_NOMEM, "zipf table of %ld entries", n);
    double acc = 0;
    for (long k = 0; k < n; k++) z->cdf[k] = (acc += pow((double)(k + 1), -s));
    for (long k = 0; k < n; k++) z->cdf[k] /= acc;
    return MMR_OK;
}

long mmr_zipf_draw(const mmr_zipf_t *z, uint64_t *rng) {
    if (!z->cdf) return (long)(mmr_rand_next(rng) % (uint64_t)z->n);
    double u = mmr_rand_uniform(rng);
    long lo = 0, hi = z->n - 1; /* first k with cdf[k] >= u */
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] >= u) hi = mid; else lo = mid + 1;
    }
    return lo;
}

void mmr_zipf_draw_id(const mmr_zipf_t *z, uint64_t *rng, char prefix, char *out) {
    char digits[20];
    int n = 0;
    for (unsigned long k = (unsigned long)mmr_zipf_draw(z, rng); n == 0 || k; k /= 10)
        digits[n++] = (char)('0' + k % 10);
    *out++ = prefix;
    while (n) *out++ = digits[--n];
    *out = '\0';
}

void mmr_zipf_release(mmr_zipf_t *z) {
    if (!z) return;
    free(z->cdf);
    z->cdf = NULL;
}
