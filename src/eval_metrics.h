/* eval_metrics.h — ranking metrics for offline evaluation: Recall@K, NDCG@K, MRR, GAUC and
 * catalogue coverage@K, per user and accumulated over users. Not the replay protocols: the
 * caller decides what the candidates, targets and masks are.
 *
 * Ranks are 0-based positions among the scored, unmasked candidates; -1 = not ranked
 * (masked, filtered, or missing from the list), which scores 0 everywhere.
 *
 * Ties (mmr_eval_rank_of / mmr_eval_ranks_of) are pessimistic: a candidate whose score
 * equals the target's counts as ranked above it, so a constant scorer gets no credit and a
 * model cannot gain from ties. Among several targets with equal scores, the one listed
 * first ranks first (so their ranks are distinct). NaN scores never count as above anything;
 * a target with a NaN score is not ranked.
 *
 * With one target: Recall@K = HR@K = [rank < K]; NDCG@K = [rank < K] / log2(rank + 2);
 * RR = 1 / (rank + 1) over the full ranking (MRR is not cut at K).
 * With n targets (distinct ranks): Recall@K = hits@K / n; NDCG@K = DCG@K / IDCG@K with
 * IDCG@K = Σ_{i < min(n, K)} 1 / log2(i + 2); RR uses the best-ranked target.
 * A user added with no target is counted in users_empty and left out of every mean.
 *
 * GAUC: per user, AUC = P(score of a positive > score of a negative), ties counting 1/2
 * (Mann-Whitney); the mean over users weighted by the user's impressions (positives +
 * negatives). Users with no positive or no negative are skipped and counted.
 *
 * Coverage@K: distinct items that appear in at least one top-K list given to
 * mmr_eval_acc_add_topk, divided by the catalogue size n_items.
 *
 * An accumulator is not thread-safe; give each thread its own and merge them. */
#ifndef MMR_EVAL_METRICS_H
#define MMR_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"

#define MMR_EVAL_K_MAX 8 /* most cut-offs in one K list */

/* Pessimistic rank of scores[target] among the entries of scores[n] whose masked[j] is 0
 * (masked may be NULL: nothing masked). -1 when target ≥ n, masked, or NaN. O(n). */
long mmr_eval_rank_of(const float *scores, const uint8_t *masked, size_t n, size_t target);
/* Ranks of several targets (indices into scores[n], distinct) into ranks[n_targets], with
 * the rules above: non-target candidates tie pessimistically, targets tie in list order.
 * O(n · n_targets). */
void mmr_eval_ranks_of(const float *scores, const uint8_t *masked, size_t n, const size_t *targets,
                       size_t n_targets, long *ranks);

/* One target. k ≥ 1. */
double mmr_eval_recall_at(long rank, int k);
double mmr_eval_ndcg_at(long rank, int k);
double mmr_eval_rr(long rank);

/* AUC of pos[np] against neg[nn] (ties 1/2); scratch is [np + nn] floats of the caller.
 * Returns -1 when np or nn is 0 or a score is NaN. O((np + nn) log(np + nn)). */
double mmr_eval_auc(const float *pos, size_t np, const float *neg, size_t nn, float *scratch);

typedef struct mmr_eval_results {
    size_t n_ks;
    int ks[MMR_EVAL_K_MAX];
    double recall[MMR_EVAL_K_MAX];   /* means over users */
    double ndcg[MMR_EVAL_K_MAX];
    double coverage[MMR_EVAL_K_MAX]; /* 0 when n_items is 0 */
    double mrr;
    long users;          /* users with at least one target: the denominator of the means */
    long users_empty;    /* users added with no target */
    double gauc;         /* 0 when gauc_users is 0 */
    long gauc_users;     /* users in the GAUC mean */
    long gauc_skipped;   /* users with a single class */
    long topk_lists;     /* lists given to mmr_eval_acc_add_topk */
} mmr_eval_results_t;

typedef struct mmr_eval_acc mmr_eval_acc_t;

/* ks[n_ks]: cut-offs (each ≥ 1, 1 ≤ n_ks ≤ MMR_EVAL_K_MAX), copied. n_items: catalogue size
 * for coverage (item indices are 0..n_items-1; 0 = no coverage). On MMR_OK *out is owned
 * (mmr_eval_acc_free). Errors: MMR_ERR_INVALID, MMR_ERR_NOMEM. */
mmr_status_t mmr_eval_acc_new(const int *ks, size_t n_ks, size_t n_items, mmr_eval_acc_t **out,
                              mmr_err_t *err);
/* NULL is a no-op. */
void mmr_eval_acc_free(mmr_eval_acc_t *a);

/* One user: the ranks of its n_targets targets (distinct, -1 = not ranked); n_targets 0
 * counts an empty user. */
void mmr_eval_acc_add_ranks(mmr_eval_acc_t *a, const long *ranks, size_t n_targets);
/* One user's scores for GAUC. A single-class user is counted as skipped.
 * Errors: MMR_ERR_INVALID (a NaN score; nothing recorded), MMR_ERR_NOMEM. */
mmr_status_t mmr_eval_acc_add_auc(mmr_eval_acc_t *a, const float *pos, size_t np, const float *neg,
                                  size_t nn, mmr_err_t *err);
/* One served list, best first: items[n] are catalogue indices; the first K of it count for
 * coverage@K. Errors: MMR_ERR_INVALID (an index ≥ n_items; nothing recorded). */
mmr_status_t mmr_eval_acc_add_topk(mmr_eval_acc_t *a, const uint32_t *items, size_t n, mmr_err_t *err);
/* Adds src into dst (src unchanged). Errors: MMR_ERR_INVALID (different K lists or n_items). */
mmr_status_t mmr_eval_acc_merge(mmr_eval_acc_t *dst, const mmr_eval_acc_t *src, mmr_err_t *err);
void mmr_eval_acc_results(const mmr_eval_acc_t *a, mmr_eval_results_t *out);

#endif
