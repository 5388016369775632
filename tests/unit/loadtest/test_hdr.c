/* test_hdr.c — mmr_hdr against exact answers: percentiles of known distributions
 * (uniform, exponential, a bimodal mix, log-uniform over 1 µs..60 s) must lie within
 * the histogram's relative-error bound of the exact sorted answer and never below it;
 * merging per-thread histograms must equal recording everything in one. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hdr.h"

#define N 200000

static uint64_t rng = 42;
static double unit(void) { /* splitmix64 -> [0, 1) */
    uint64_t x = (rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return (double)((x ^ (x >> 31)) >> 11) * 0x1.0p-53;
}

static int cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The exact percentile under hdr.h's definition: the ceil(p/100 * n)-th smallest. */
static int64_t exact(const int64_t *sorted, long n, double p) {
    double want = p / 100.0 * (double)n;
    long rank = (long)want;
    if ((double)rank < want) rank++;
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

static mmr_hdr_t *new_hist(void) {
    mmr_hdr_t *h = NULL;
    CHECK(mmr_hdr_new(1, 60LL * 1000000000LL, 2, &h, NULL) == MMR_OK);
    return h;
}

static void check_against_exact(const char *name, int64_t *v, long n) {
    mmr_hdr_t *h = new_hist();
    double sum = 0;
    for (long i = 0; i < n; i++) { mmr_hdr_record(h, v[i]); sum += (double)v[i]; }
    qsort(v, (size_t)n, sizeof *v, cmp);
    CHECK(mmr_hdr_count(h) == n);
    CHECK(mmr_hdr_min(h) == v[0]);
    CHECK(mmr_hdr_max(h) == v[n - 1]);
    CHECK(fabs(mmr_hdr_mean(h) - sum / n) <= 1e-9 * (sum / n));
    double bound = mmr_hdr_rel_error(h);
    CHECK(bound <= 0.01);
    static const double ps[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        int64_t want = exact(v, n, ps[i]), got = mmr_hdr_percentile(h, ps[i]);
        CHECK_MSG(got >= want && (double)(got - want) <= bound * (double)want + 1,
                  "%s p%g: hdr %lld exact %lld (bound %.4f)", name, ps[i], (long long)got, (long long)want, bound);
    }
    CHECK(mmr_hdr_percentile(h, 100) == v[n - 1]);
    mmr_hdr_free(h);
    printf("ok %s: percentiles within %.2f%% of exact\n", name, bound * 100);
}

static void test_merge(int64_t *v, long n) {
    enum { T = 7 };
    mmr_hdr_t *one = new_hist(), *parts[T], *merged = new_hist();
    for (int t = 0; t < T; t++) parts[t] = new_hist();
    for (long i = 0; i < n; i++) {
        mmr_hdr_record(one, v[i]);
        mmr_hdr_record(parts[(i * 31) % T], v[i]);
    }
    for (int t = 0; t < T; t++) CHECK(mmr_hdr_merge(merged, parts[t], NULL) == MMR_OK);
    CHECK(mmr_hdr_count(merged) == mmr_hdr_count(one));
    CHECK(mmr_hdr_min(merged) == mmr_hdr_min(one));
    CHECK(mmr_hdr_max(merged) == mmr_hdr_max(one));
    CHECK(fabs(mmr_hdr_mean(merged) - mmr_hdr_mean(one)) <= 1e-9 * mmr_hdr_mean(one));
    for (double p = 0; p <= 100; p += 0.5) CHECK(mmr_hdr_percentile(merged, p) == mmr_hdr_percentile(one, p));
    CHECK(mmr_hdr_percentile(merged, 99.99) == mmr_hdr_percentile(one, 99.99));
    /* merging an empty histogram changes nothing */
    mmr_hdr_t *empty = new_hist();
    CHECK(mmr_hdr_merge(merged, empty, NULL) == MMR_OK);
    CHECK(mmr_hdr_min(merged) == mmr_hdr_min(one) && mmr_hdr_count(merged) == mmr_hdr_count(one));
    /* shapes must match */
    mmr_hdr_t *other = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_hdr_new(1000, 60LL * 1000000000LL, 2, &other, NULL) == MMR_OK);
    CHECK(mmr_hdr_merge(merged, other, &err) == MMR_ERR_INVALID);
    CHECK(mmr_hdr_count(merged) == mmr_hdr_count(one));
    for (int t = 0; t < T; t++) mmr_hdr_free(parts[t]);
    mmr_hdr_free(one);
    mmr_hdr_free(merged);
    mmr_hdr_free(empty);
    mmr_hdr_free(other);
    printf("ok merge of %d per-thread histograms equals one\n", T);
}

static void test_edges(void) {
    mmr_hdr_t *h = new_hist();
    CHECK(mmr_hdr_count(h) == 0 && mmr_hdr_percentile(h, 50) == 0 && mmr_hdr_max(h) == 0 &&
          mmr_hdr_min(h) == 0 && mmr_hdr_mean(h) == 0);
    mmr_hdr_record(h, 1234567);
    for (double p = 0; p <= 100; p += 10) CHECK(mmr_hdr_percentile(h, p) == 1234567); /* clamped to [min, max] */
    mmr_hdr_record(h, -5);                   /* counts as 0 */
    mmr_hdr_record(h, 120LL * 1000000000LL); /* above highest: clamped into the last bucket */
    CHECK(mmr_hdr_count(h) == 3 && mmr_hdr_min(h) == 0 && mmr_hdr_max(h) == 120LL * 1000000000LL);
    CHECK(mmr_hdr_percentile(h, 100) == 120LL * 1000000000LL);
    CHECK(mmr_hdr_percentile(h, 1) == 0);
    mmr_hdr_record_n(h, 500, 1000);
    CHECK(mmr_hdr_count(h) == 1003 && mmr_hdr_percentile(h, 50) >= 500 && mmr_hdr_percentile(h, 50) <= 503);
    mmr_hdr_reset(h);
    CHECK(mmr_hdr_count(h) == 0 && mmr_hdr_max(h) == 0);
    /* small values are exact below 256 ns at 1 ns resolution */
    for (int v = 0; v < 256; v++) { mmr_hdr_reset(h); mmr_hdr_record(h, v); CHECK(mmr_hdr_percentile(h, 50) == v); }
    mmr_hdr_free(h);
    mmr_hdr_t *bad = NULL;
    CHECK(mmr_hdr_new(0, 100, 2, &bad, NULL) == MMR_ERR_INVALID && !bad);
    CHECK(mmr_hdr_new(100, 100, 2, &bad, NULL) == MMR_ERR_INVALID);
    CHECK(mmr_hdr_new(1, 100, 0, &bad, NULL) == MMR_ERR_INVALID);
    CHECK(mmr_hdr_new(1, 100, 5, &bad, NULL) == MMR_ERR_INVALID);
    mmr_hdr_free(NULL);
    /* 3 digits: finer buckets */
    CHECK(mmr_hdr_new(1, 3600LL * 1000000000LL, 3, &bad, NULL) == MMR_OK);
    CHECK(mmr_hdr_rel_error(bad) <= 0.001);
    mmr_hdr_free(bad);
    printf("ok edges: empty, clamping, negative, small values, bad shapes\n");
}

int main(void) {
    int64_t *v = malloc(N * sizeof *v);
    CHECK(v);
    /* uniform on [1 µs, 10 ms] */
    for (long i = 0; i < N; i++) v[i] = 1000 + (int64_t)(unit() * 9999000.0);
    check_against_exact("uniform 1us..10ms", v, N);
    /* exponential, mean 2 ms */
    for (long i = 0; i < N; i++) v[i] = (int64_t)(-log(1.0 - unit()) * 2e6);
    test_merge(v, N);
    check_against_exact("exponential mean 2ms", v, N);
    /* bimodal: 97% around 800 µs, 3% around 400 ms (a slow path / GC pause) */
    for (long i = 0; i < N; i++) {
        double base = unit() < 0.97 ? 8e5 : 4e8;
        v[i] = (int64_t)(base * (0.75 + 0.5 * unit()));
    }
    check_against_exact("bimodal 0.8ms/400ms", v, N);
    /* log-uniform over the whole tracked range, 1 µs .. 60 s */
    for (long i = 0; i < N; i++) v[i] = (int64_t)exp(log(1e3) + unit() * (log(6e10) - log(1e3)));
    test_merge(v, N);
    check_against_exact("log-uniform 1us..60s", v, N);
    free(v);
    test_edges();
    return 0;
}
