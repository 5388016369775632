/* hdr.h — a high-dynamic-range latency histogram for mmrec-load (our own; no external
 * library). Log-linear buckets in the style of HdrHistogram: values are grouped by
 * power of two, and each power of two is split into linear sub-buckets, so a recorded
 * value is known to within a fixed *relative* error at any magnitude.
 *
 `lowest` is the resolution (as in HdrHistogram's "lowest discernible value"): with
 * sig_digits = 2 the sub-bucket count is 256 (128 per half), so any value at or above
 * 128 * 2^floor(log2(lowest)) is reported within 1/128 < 0.8% of the truth, and smaller
 * values to an absolute 2^floor(log2(lowest)). Values above `highest` are clamped to it
 * (max() still reports the exact largest value). mmrec-load records nanoseconds with
 * lowest = 1 ns and highest = 60 s: <= 0.8% error from 128 ns up (so everything from
 * 1 µs to 60 s), 3,840 counters (30 KiB) per histogram.
 *
 * Not thread-safe: each sender thread records into its own histogram and the results
 * are merged at the end (mmr_hdr_merge). */
#ifndef MMR_HDR_H
#define MMR_HDR_H

#include <stdint.h>

#include "mmr_err.h"

typedef struct mmr_hdr mmr_hdr_t;

/* A histogram for values in [0, highest] at resolution lowest (1 <= lowest < highest), with sig_digits
 * (1..4) significant decimal digits. *out is owned; free with mmr_hdr_free.
 * Errors: MMR_ERR_INVALID for a bad range, MMR_ERR_NOMEM. */
mmr_status_t mmr_hdr_new(int64_t lowest, int64_t highest, int sig_digits, mmr_hdr_t **out,
                         mmr_err_t *err);
void mmr_hdr_free(mmr_hdr_t *h); /* NULL is a no-op */
void mmr_hdr_reset(mmr_hdr_t *h);

/* Records value (negative values count as 0) n times. */
void mmr_hdr_record_n(mmr_hdr_t *h, int64_t value, int64_t n);
static inline void mmr_hdr_record(mmr_hdr_t *h, int64_t value) { mmr_hdr_record_n(h, value, 1); }

/* Adds src's counts into dst. Both must have been created with the same parameters;
 * MMR_ERR_INVALID otherwise (dst unchanged). src is not modified. */
mmr_status_t mmr_hdr_merge(mmr_hdr_t *dst, const mmr_hdr_t *src, mmr_err_t *err);

/* The value at percentile p (0..100): the smallest recorded value v such that at least
 * ceil(p/100 * count) values are <= v, reported as the highest value equivalent to v's
 * bucket (so it never under-reports) and clamped to [min, max]; in the bucket that holds
 * the maximum, the maximum itself. 0 when empty. */
int64_t mmr_hdr_percentile(const mmr_hdr_t *h, double p);
int64_t mmr_hdr_count(const mmr_hdr_t *h);
int64_t mmr_hdr_min(const mmr_hdr_t *h); /* exact; 0 when empty */
int64_t mmr_hdr_max(const mmr_hdr_t *h); /* exact; 0 when empty */
double mmr_hdr_mean(const mmr_hdr_t *h); /* exact (kept as a running sum); 0 when empty */

/* Upper bound on the relative error of a reported value >= mmr_hdr_precise_from (1/128 for
 * 2 digits). */
double mmr_hdr_rel_error(const mmr_hdr_t *h);
int64_t mmr_hdr_precise_from(const mmr_hdr_t *h);

#endif
