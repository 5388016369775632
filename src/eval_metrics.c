/* eval_metrics.c — Recall@K, NDCG@K, MRR, GAUC and coverage@K (definitions and the tie rule
 * in eval_metrics.h). Not a protocol: no masking policy, no item ids, no I/O. */
#include "eval_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mmr_eval_acc {
    size_t n_ks;
    int ks[MMR_EVAL_K_MAX];
    double recall[MMR_EVAL_K_MAX], ndcg[MMR_EVAL_K_MAX], rr; /* sums over users */
    long users, users_empty;
    double gauc_wsum, gauc_w; /* Σ weight · AUC, Σ weight */
    long gauc_users, gauc_skipped, topk_lists;
    size_t n_items;
    uint32_t *best_pos; /* [n_items] best position in any top list, UINT32_MAX = never */
    float *scratch;     /* [scratch_cap] for mmr_eval_auc */
    size_t scratch_cap;
};

static int unmasked(const uint8_t *masked, size_t j) { return !masked || !masked[j]; }

long mmr_eval_rank_of(const float *scores, const uint8_t *masked, size_t n, size_t target) {
    if (target >= n || !unmasked(masked, target) || isnan(scores[target])) return -1;
    float s = scores[target];
    long r = 0;
    for (size_t j = 0; j < n; j++)
        if (j != target && unmasked(masked, j) && scores[j] >= s) r++;
    return r;
}

void mmr_eval_ranks_of(const float *scores, const uint8_t *masked, size_t n, const size_t *targets,
                       size_t n_targets, long *ranks) {
    for (size_t i = 0; i < n_targets; i++) {
        ranks[i] = mmr_eval_rank_of(scores, masked, n, targets[i]);
        if (ranks[i] < 0) continue;
        /* rank_of counted every equal-scored target; only those listed before i rank above. */
        for (size_t u = i + 1; u < n_targets; u++)
            if (targets[u] < n && unmasked(masked, targets[u]) && scores[targets[u]] == scores[targets[i]]) ranks[i]--;
    }
}

double mmr_eval_recall_at(long rank, int k) { return rank >= 0 && rank < k ? 1.0 : 0.0; }

double mmr_eval_ndcg_at(long rank, int k) { return rank >= 0 && rank < k ? 1.0 / log2((double)rank + 2.0) : 0.0; }

double mmr_eval_rr(long rank) { return rank >= 0 ? 1.0 / ((double)rank + 1.0) : 0.0; }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double mmr_eval_auc(const float *pos, size_t np, const float *neg, size_t nn, float *scratch) {
    if (np == 0 || nn == 0) return -1;
    for (size_t i = 0; i < np; i++)
        if (isnan(pos[i])) return -1;
    for (size_t i = 0; i < nn; i++)
        if (isnan(neg[i])) return -1;
    float *p = scratch, *q = scratch + np;
    memcpy(p, pos, sizeof(float) * np);
    memcpy(q, neg, sizeof(float) * nn);
    qsort(p, np, sizeof(float), cmp_float);
    qsort(q, nn, sizeof(float), cmp_float);
    double wins = 0;
    size_t below = 0, upto = 0; /* negatives < p[i], negatives ≤ p[i]: both grow with i */
    for (size_t i = 0; i < np; i++) {
        while (below < nn && q[below] < p[i]) below++;
        if (upto < below) upto = below;
        while (upto < nn && q[upto] <= p[i]) upto++;
        wins += (double)below + 0.5 * (double)(upto - below);
    }
    return wins / ((double)np * (double)nn);
}

mmr_status_t mmr_eval_acc_new(const int *ks, size_t n_ks, size_t n_items, mmr_eval_acc_t **out,
                              mmr_err_t *err) {
    if (!ks || n_ks < 1 || n_ks > MMR_EVAL_K_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "eval: need 1..%d cut-offs", MMR_EVAL_K_MAX);
    for (size_t i = 0; i < n_ks; i++)
        if (ks[i] < 1) return mmr_err_set(err, MMR_ERR_INVALID, "eval: cut-off %d is not ≥ 1", ks[i]);
    mmr_eval_acc_t *a = calloc(1, sizeof *a);
    if (!a || (n_items && !(a->best_pos = malloc(sizeof(uint32_t) * n_items)))) {
        free(a);
        return mmr_err_set(err, MMR_ERR_NOMEM, "eval: accumulator for %zu items", n_items);
    }
    a->n_ks = n_ks;
    memcpy(a->ks, ks, sizeof(int) * n_ks);
    a->n_items = n_items;
    if (n_items) memset(a->best_pos, 0xff, sizeof(uint32_t) * n_items);
    *out = a;
    return MMR_OK;
}

void mmr_eval_acc_free(mmr_eval_acc_t *a) {
    if (!a) return;
    free(a->best_pos);
    free(a->scratch);
    free(a);
}

void mmr_eval_acc_add_ranks(mmr_eval_acc_t *a, const long *ranks, size_t n_targets) {
    if (n_targets == 0) {
        a->users_empty++;
        return;
    }
    a->users++;
    long best = -1;
    for (size_t i = 0; i < n_targets; i++)
        if (ranks[i] >= 0 && (best < 0 || ranks[i] < best)) best = ranks[i];
    a->rr += mmr_eval_rr(best);
    for (size_t j = 0; j < a->n_ks; j++) {
        int k = a->ks[j];
        double hits = 0, dcg = 0, idcg = 0;
        for (size_t i = 0; i < n_targets; i++) {
            hits += mmr_eval_recall_at(ranks[i], k);
            dcg += mmr_eval_ndcg_at(ranks[i], k);
        }
        for (long i = 0; i < k && (size_t)i < n_targets; i++) idcg += mmr_eval_ndcg_at(i, k);
        a->recall[j] += hits / (double)n_targets;
        a->ndcg[j] += dcg / idcg;
    }
}

mmr_status_t mmr_eval_acc_add_auc(mmr_eval_acc_t *a, const float *pos, size_t np, const float *neg,
                                  size_t nn, mmr_err_t *err) {
    if (np == 0 || nn == 0) {
        a->gauc_skipped++;
        return MMR_OK;
    }
    if (np + nn > a->scratch_cap) {
        float *s = realloc(a->scratch, sizeof(float) * (np + nn));
        if (!s) return mmr_err_set(err, MMR_ERR_NOMEM, "eval: AUC scratch for %zu scores", np + nn);
        a->scratch = s;
        a->scratch_cap = np + nn;
    }
    double auc = mmr_eval_auc(pos, np, neg, nn, a->scratch);
    if (auc < 0) return mmr_err_set(err, MMR_ERR_INVALID, "eval: NaN score given to GAUC");
    double w = (double)(np + nn);
    a->gauc_wsum += w * auc;
    a->gauc_w += w;
    a->gauc_users++;
    return MMR_OK;
}

mmr_status_t mmr_eval_acc_add_topk(mmr_eval_acc_t *a, const uint32_t *items, size_t n, mmr_err_t *err) {
    for (size_t i = 0; i < n; i++)
        if (items[i] >= a->n_items)
            return mmr_err_set(err, MMR_ERR_INVALID, "eval: item index %u outside the catalogue of %zu", items[i],
                               a->n_items);
    for (size_t i = 0; i < n; i++)
        if (a->best_pos[items[i]] > i) a->best_pos[items[i]] = (uint32_t)i;
    a->topk_lists++;
    return MMR_OK;
}

mmr_status_t mmr_eval_acc_merge(mmr_eval_acc_t *dst, const mmr_eval_acc_t *src, mmr_err_t *err) {
    if (dst->n_ks != src->n_ks || memcmp(dst->ks, src->ks, sizeof(int) * dst->n_ks) || dst->n_items != src->n_items)
        return mmr_err_set(err, MMR_ERR_INVALID, "eval: merging accumulators with different K lists or catalogues");
    for (size_t j = 0; j < dst->n_ks; j++) {
        dst->recall[j] += src->recall[j];
        dst->ndcg[j] += src->ndcg[j];
    }
    dst->rr += src->rr;
    dst->users += src->users;
    dst->users_empty += src->users_empty;
    dst->gauc_wsum += src->gauc_wsum;
    dst->gauc_w += src->gauc_w;
    dst->gauc_users += src->gauc_users;
    dst->gauc_skipped += src->gauc_skipped;
    dst->topk_lists += src->topk_lists;
    for (size_t i = 0; i < dst->n_items; i++)
        if (src->best_pos[i] < dst->best_pos[i]) dst->best_pos[i] = src->best_pos[i];
    return MMR_OK;
}

void mmr_eval_acc_results(const mmr_eval_acc_t *a, mmr_eval_results_t *out) {
    memset(out, 0, sizeof *out);
    out->n_ks = a->n_ks;
    memcpy(out->ks, a->ks, sizeof(int) * a->n_ks);
    double u = a->users ? (double)a->users : 1.0;
    for (size_t j = 0; j < a->n_ks; j++) {
        out->recall[j] = a->recall[j] / u;
        out->ndcg[j] = a->ndcg[j] / u;
        size_t covered = 0;
        for (size_t i = 0; i < a->n_items; i++) covered += a->best_pos[i] < (uint32_t)a->ks[j];
        out->coverage[j] = a->n_items ? (double)covered / (double)a->n_items : 0.0;
    }
    out->mrr = a->rr / u;
    out->users = a->users;
    out->users_empty = a->users_empty;
    out->gauc = a->gauc_w > 0 ? a->gauc_wsum / a->gauc_w : 0.0;
    out->gauc_users = a->gauc_users;
    out->gauc_skipped = a->gauc_skipped;
    out->topk_lists = a->topk_lists;
}
