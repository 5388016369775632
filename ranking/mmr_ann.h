/* mmr_ann.h — an approximate top-K index by dot product over N unit item vectors of width
 * D (IVF-SQ8: spherical k-means lists of 8-bit codes, the best candidates re-scored exactly
 * from the float vectors), and the exact top-K scan it shares with mmr_model_retrieve. Not
 * in here: ids, the catalog, when to use which (mmr_model.h); no updates (an index is
 * rebuilt per model).
 *
 * Results follow mmr_model_retrieve's contract: best first, ties by the lower row; rows
 * listed in exclude_rows (sorted ascending, duplicates allowed) are skipped; *n_out =
 * min(k, rows not excluded) — a search probes more lists than nprobe when the first ones
 * hold fewer than k usable rows, up to all of them.
 *
 * Threads: a built index is immutable; mmr_ann_search may run concurrently on one index
 * (scratch lives on the caller's stack, about 80 KB). Determinism:
 * the same vectors and options (seed included) give the same index and the same answers. */
#ifndef MMR_ANN_H
#define MMR_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"

#define MMR_ANN_MAX_NLIST 4096
#define MMR_ANN_MAX_D 2048

typedef struct mmr_ann mmr_ann_t;

typedef struct mmr_ann_opts {
    uint32_t nlist;      /* lists; 0 = round(sqrt(N)), clamped to [1, MMR_ANN_MAX_NLIST] and N */
    uint32_t nprobe;     /* lists probed per query; 0 = calibrated at build (below) */
    float target_recall; /* calibration: smallest nprobe whose recall@calib_k reaches it */
    uint32_t rerank;     /* a search re-scores the best rerank * k by code exactly (0 = 1),
                          * at most 2048 of them, or k when k is larger */
    uint32_t calib_k;    /* calibration k (clamped to N) */
    uint32_t calib_queries; /* per query set: sampled item vectors, and random directions */
    uint32_t iters;      /* k-means iterations */
    uint32_t train_per_list; /* k-means trains on min(N, nlist * train_per_list) sampled rows */
    uint64_t seed;
} mmr_ann_opts_t;

/* nlist 0, nprobe 0, target_recall 0.97, rerank 2, calib_k 100, calib_queries 32, iters 10,
 * train_per_list 64, seed 1. */
mmr_ann_opts_t mmr_ann_opts_default(void);

/* What a built index looks like; recall and scan_frac are the calibration's means at
 * nprobe (recall = the worse of the two query sets, measured by searching; with a fixed
 * nprobe they are measured the same way). */
typedef struct mmr_ann_info {
    uint32_t nlist, nprobe;
    float recall;    /* recall@calib_k against exact */
    float scan_frac; /* mean share of the N rows scanned per query */
    double build_s;  /* k-means + lists + calibration, seconds */
} mmr_ann_info_t;

/* Builds the index over vec (n, D), which the index keeps reading (re-scoring): vec must
 * stay valid and unchanged until mmr_ann_free. It holds n * (D rounded up to 16) bytes of
 * codes and 4 n of rows. opts NULL = defaults. Errors: MMR_ERR_INVALID (n = 0, n ≥
 * UINT32_MAX, D < 1 or over MMR_ANN_MAX_D, nlist over the cap), MMR_ERR_NOMEM. *out is NULL
 * on failure. */
mmr_status_t mmr_ann_new(const float *vec, size_t n, int D, const mmr_ann_opts_t *opts,
                         mmr_ann_t **out, mmr_err_t *err);
void mmr_ann_free(mmr_ann_t *a); /* NULL is a no-op */

void mmr_ann_get_info(const mmr_ann_t *a, mmr_ann_info_t *out);

/* Approximate top-k for q (D) into rows (k) and dots (k) (contract at the top of this
 * file). nprobe 0 = the index's. Never fails. */
void mmr_ann_search(const mmr_ann_t *a, const float *q, size_t k, uint32_t nprobe,
                    const int64_t *exclude_rows, size_t n_exclude, int64_t *rows, float *dots,
                    size_t *n_out);

/* --- the exact top-K scan (also mmr_model_retrieve's) ------------------------------- */

/* A running top-k: rows (k) and dots (k) are the caller's; h counts the rows held (a
 * min-heap until mmr_ann_topk_sort). Start with {.k, .rows, .dots, .ex, .n_ex}, h = 0. */
typedef struct mmr_ann_topk {
    size_t k, h;
    int64_t *rows;
    float *dots;
    const int64_t *ex; /* (n_ex) excluded rows, sorted ascending; may be NULL when n_ex = 0 */
    size_t n_ex;
} mmr_ann_topk_t;

/* Offers the n vectors vec (n, D) with q (D); vector i is row ids[i] (ids NULL: row0 + i). */
void mmr_ann_topk_scan(mmr_ann_topk_t *t, const float *q, const float *vec, size_t n, int D,
                       const uint32_t *ids, int64_t row0);
/* Sorts the held rows best first; the heap is gone afterwards. */
void mmr_ann_topk_sort(mmr_ann_topk_t *t);

#endif
