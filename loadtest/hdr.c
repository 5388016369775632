/* hdr.c — log-linear latency histogram (see hdr.h).
 *
 * Layout: bucket b covers values [2^(b+u) * half, 2^(b+u+1) * half) for b >= 1 and
 * [0, 2^u * 2*half) for b = 0, where u = floor(log2(lowest)) and half = sub_count/2;
 * each bucket holds `half` linear sub-buckets of width 2^(b+u) (bucket 0 holds
 * sub_count of width 2^u). Flattened, that is counts[(buckets + 1) * half]. The
 * indexing is HdrHistogram's; the arithmetic is integer-only (clz). */
#include "hdr.h"

#include <stdlib.h>
#include <string.h>

struct mmr_hdr {
    int64_t lowest, highest;
    int sig_digits;
    int unit_mag;      /* floor(log2(lowest)) */
    int half_mag;      /* log2(sub_count / 2) */
    int64_t sub_count; /* sub-buckets per bucket (power of two) */
    int64_t sub_mask;  /* (sub_count - 1) << unit_mag */
    int buckets;
    int counts_len;
    int64_t total, min, max;
    double sum;
    int64_t *counts; /* [counts_len] */
};

static int floor_log2(uint64_t v) { return 63 - __builtin_clzll(v); }

mmr_status_t mmr_hdr_new(int64_t lowest, int64_t highest, int sig_digits, mmr_hdr_t **out,
                         mmr_err_t *err) {
    *out = NULL;
    if (lowest < 1 || highest <= lowest || highest > INT64_MAX / 4 || sig_digits < 1 || sig_digits > 4)
        return mmr_err_set(err, MMR_ERR_INVALID, "hdr: bad range [%lld, %lld] or digits %d",
                           (long long)lowest, (long long)highest, sig_digits);
    mmr_hdr_t *h = calloc(1, sizeof *h);
    if (!h) return mmr_err_set(err, MMR_ERR_NOMEM, "hdr: out of memory");
    int64_t largest_single_unit = 2;
    for (int i = 0; i < sig_digits; i++) largest_single_unit *= 10; /* 2 * 10^digits */
    int sub_mag = floor_log2((uint64_t)largest_single_unit - 1) + 1;   /* ceil(log2) */
    h->lowest = lowest;
    h->highest = highest;
    h->sig_digits = sig_digits;
    h->unit_mag = floor_log2((uint64_t)lowest);
    h->half_mag = sub_mag - 1;
    h->sub_count = (int64_t)1 << sub_mag;
    h->sub_mask = (h->sub_count - 1) << h->unit_mag;
    int64_t untrackable = h->sub_count << h->unit_mag;
    int buckets = 1;
    while (untrackable <= highest) { untrackable <<= 1; buckets++; }
    h->buckets = buckets;
    h->counts_len = (buckets + 1) * (int)(h->sub_count / 2);
    h->counts = calloc((size_t)h->counts_len, sizeof *h->counts);
    if (!h->counts) { free(h); return mmr_err_set(err, MMR_ERR_NOMEM, "hdr: out of memory"); }
    h->min = INT64_MAX;
    *out = h;
    return MMR_OK;
}

void mmr_hdr_free(mmr_hdr_t *h) {
    if (!h) return;
    free(h->counts);
    free(h);
}

void mmr_hdr_reset(mmr_hdr_t *h) {
    memset(h->counts, 0, (size_t)h->counts_len * sizeof *h->counts);
    h->total = 0;
    h->max = 0;
    h->min = INT64_MAX;
    h->sum = 0;
}

static int counts_index(const mmr_hdr_t *h, int64_t v) {
    int b = floor_log2((uint64_t)(v | h->sub_mask)) - (h->unit_mag + h->half_mag);
    int64_t sub = v >> (b + h->unit_mag);
    /* b = 0 lands sub in [0, sub_count); b >= 1 lands it in [half, sub_count). */
    return (int)(((int64_t)b << h->half_mag) + sub);
}

/* Lowest value and width of the sub-bucket at counts index i. */
static void index_range(const mmr_hdr_t *h, int i, int64_t *lo, int64_t *width) {
    int64_t half = h->sub_count / 2;
    int b = (int)(i >> h->half_mag) - 1;
    int64_t sub = (i & (half - 1)) + half;
    if (b < 0) { b = 0; sub -= half; }
    *lo = sub << (b + h->unit_mag);
    *width = (int64_t)1 << (b + h->unit_mag);
}

void mmr_hdr_record_n(mmr_hdr_t *h, int64_t value, int64_t n) {
    if (n <= 0) return;
    if (value < 0) value = 0;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
    h->sum += (double)value * (double)n;
    h->total += n;
    h->counts[counts_index(h, value > h->highest ? h->highest : value)] += n;
}

mmr_status_t mmr_hdr_merge(mmr_hdr_t *dst, const mmr_hdr_t *src, mmr_err_t *err) {
    if (dst->lowest != src->lowest || dst->highest != src->highest || dst->sig_digits != src->sig_digits)
        return mmr_err_set(err, MMR_ERR_INVALID, "hdr: merging histograms of different shapes");
    for (int i = 0; i < dst->counts_len; i++) dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->total) {
        if (src->min < dst->min) dst->min = src->min;
        if (src->max > dst->max) dst->max = src->max;
    }
    return MMR_OK;
}

int64_t mmr_hdr_percentile(const mmr_hdr_t *h, double p) {
    if (h->total == 0) return 0;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    double want = p / 100.0 * (double)h->total;
    int64_t rank = (int64_t)want;
    if ((double)rank < want) rank++; /* ceil */
    if (rank < 1) rank = 1;
    /* the bucket holding max reports max: exact, and still within that bucket's width
     * (it also covers values clamped from above `highest`) */
    int max_i = counts_index(h, h->max > h->highest ? h->highest : h->max);
    int64_t seen = 0;
    for (int i = 0; i < h->counts_len; i++) {
        seen += h->counts[i];
        if (i == max_i) return h->max;
        if (seen >= rank) {
            int64_t lo, width;
            index_range(h, i, &lo, &width);
            int64_t v = lo + width - 1;
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

int64_t mmr_hdr_count(const mmr_hdr_t *h) { return h->total; }
int64_t mmr_hdr_min(const mmr_hdr_t *h) { return h->total ? h->min : 0; }
int64_t mmr_hdr_max(const mmr_hdr_t *h) { return h->max; }
double mmr_hdr_mean(const mmr_hdr_t *h) { return h->total ? h->sum / (double)h->total : 0; }
double mmr_hdr_rel_error(const mmr_hdr_t *h) { return 1.0 / (double)(h->sub_count / 2); }
int64_t mmr_hdr_precise_from(const mmr_hdr_t *h) { return (h->sub_count / 2) << h->unit_mag; }
