/* test_eval_metrics.c — Recall@K, NDCG@K, MRR, GAUC and coverage@K against hand-computed
 * cases: pessimistic ties, K larger than the candidate count, masked and unranked targets,
 * empty users, single-class users (GAUC skip), several targets, merge. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "eval_metrics.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

static void test_rank(void) {
    /* scores:  0:0.9  1:0.5  2:0.7  3:0.5  4:0.1  5:NaN */
    const float s[] = {0.9f, 0.5f, 0.7f, 0.5f, 0.1f, NAN};
    CHECK(mmr_eval_rank_of(s, NULL, 6, 0) == 0);
    CHECK(mmr_eval_rank_of(s, NULL, 6, 2) == 1);
    CHECK(mmr_eval_rank_of(s, NULL, 6, 1) == 3); /* 0.9, 0.7 and the tied item 3 rank above */
    CHECK(mmr_eval_rank_of(s, NULL, 6, 3) == 3); /* pessimistic both ways */
    CHECK(mmr_eval_rank_of(s, NULL, 6, 4) == 4); /* the NaN never ranks above anything */
    CHECK(mmr_eval_rank_of(s, NULL, 6, 5) == -1 && mmr_eval_rank_of(s, NULL, 6, 6) == -1);
    const uint8_t mask[] = {1, 0, 0, 1, 0, 0};
    CHECK(mmr_eval_rank_of(s, mask, 6, 1) == 1); /* 0.9 and the tie are masked */
    CHECK(mmr_eval_rank_of(s, mask, 6, 0) == -1);
    const float flat[] = {1, 1, 1, 1};
    CHECK(mmr_eval_rank_of(flat, NULL, 4, 0) == 3); /* a constant scorer gets no credit */

    const size_t t[] = {3, 1, 4};
    long r[3];
    mmr_eval_ranks_of(s, NULL, 6, t, 3, r);
    CHECK(r[0] == 2 && r[1] == 3 && r[2] == 4); /* tied targets: the first listed ranks first */
    mmr_eval_ranks_of(s, mask, 6, t, 3, r);
    CHECK(r[0] == -1 && r[1] == 1 && r[2] == 2);
    printf("ok ranks: pessimistic ties, masks, NaN, several targets\n");

    CHECK(mmr_eval_recall_at(0, 1) == 1 && mmr_eval_recall_at(1, 1) == 0 && mmr_eval_recall_at(-1, 10) == 0);
    CHECK(NEAR(mmr_eval_ndcg_at(0, 5), 1.0) && NEAR(mmr_eval_ndcg_at(2, 5), 0.5) && NEAR(mmr_eval_ndcg_at(1, 5), 1 / log2(3.0)));
    CHECK(mmr_eval_ndcg_at(5, 5) == 0 && mmr_eval_ndcg_at(-1, 5) == 0);
    CHECK(NEAR(mmr_eval_rr(0), 1) && NEAR(mmr_eval_rr(3), 0.25) && mmr_eval_rr(-1) == 0);
}

static void test_auc(void) {
    float scratch[16];
    const float p1[] = {0.9f, 0.4f}, n1[] = {0.5f, 0.1f, 0.4f};
    /* pairs: 0.9 beats all 3; 0.4 beats 0.1, ties 0.4, loses to 0.5 → (3 + 1 + 0.5) / 6 */
    CHECK(NEAR(mmr_eval_auc(p1, 2, n1, 3, scratch), 4.5 / 6));
    const float p2[] = {1, 1}, n2[] = {1, 1, 1};
    CHECK(NEAR(mmr_eval_auc(p2, 2, n2, 3, scratch), 0.5));
    CHECK(mmr_eval_auc(p1, 2, n1, 0, scratch) < 0 && mmr_eval_auc(p1, 0, n1, 3, scratch) < 0);
    const float pn[] = {NAN};
    CHECK(mmr_eval_auc(pn, 1, n1, 3, scratch) < 0);
    printf("ok AUC: ties count 1/2\n");
}

static void test_acc(void) {
    const int ks[] = {1, 5, 10};
    mmr_eval_acc_t *a = NULL, *b = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_eval_acc_new(ks, 0, 4, &a, &err) == MMR_ERR_INVALID);
    const int bad_k[] = {0};
    CHECK(mmr_eval_acc_new(bad_k, 1, 4, &a, &err) == MMR_ERR_INVALID);
    CHECK(mmr_eval_acc_new(ks, 3, 6, &a, &err) == MMR_OK);

    /* user A: target at rank 0. user B: rank 2 of only 3 candidates (K=10 > candidates).
     * user C: target not ranked. user D: no targets (empty). */
    long r0 = 0, r2 = 2, rn = -1;
    mmr_eval_acc_add_ranks(a, &r0, 1);
    mmr_eval_acc_add_ranks(a, &r2, 1);
    mmr_eval_acc_add_ranks(a, &rn, 1);
    mmr_eval_acc_add_ranks(a, NULL, 0);
    mmr_eval_results_t res;
    mmr_eval_acc_results(a, &res);
    CHECK(res.users == 3 && res.users_empty == 1 && res.n_ks == 3 && res.ks[2] == 10);
    CHECK(NEAR(res.recall[0], 1 / 3.0) && NEAR(res.recall[1], 2 / 3.0) && NEAR(res.recall[2], 2 / 3.0));
    CHECK(NEAR(res.ndcg[0], 1 / 3.0) && NEAR(res.ndcg[1], (1 + 0.5) / 3) && NEAR(res.ndcg[2], 0.5));
    CHECK(NEAR(res.mrr, (1 + 1 / 3.0) / 3));
    printf("ok single target: Recall@1/5/10 %.3f/%.3f/%.3f NDCG@5 %.3f MRR %.3f over %ld users (+%ld empty)\n",
           res.recall[0], res.recall[1], res.recall[2], res.ndcg[1], res.mrr, res.users, res.users_empty);

    /* Several targets: ranks {1, 6} → Recall@1 0, @5 1/2, @10 1; NDCG@5 = (1/log2 3) / (1 + 1/log2 3);
     * NDCG@10 = (1/log2 3 + 1/log2 8) / (1 + 1/log2 3); RR 1/2. Checked on a fresh accumulator. */
    CHECK(mmr_eval_acc_new(ks, 3, 6, &b, &err) == MMR_OK);
    const long two[] = {6, 1};
    mmr_eval_acc_add_ranks(b, two, 2);
    mmr_eval_acc_results(b, &res);
    double l3 = 1 / log2(3.0);
    CHECK(res.users == 1 && res.recall[0] == 0 && NEAR(res.recall[1], 0.5) && NEAR(res.recall[2], 1));
    CHECK(NEAR(res.ndcg[1], l3 / (1 + l3)) && NEAR(res.ndcg[2], (l3 + 1 / 3.0) / (1 + l3)) && NEAR(res.mrr, 0.5));
    printf("ok several targets: NDCG@10 %.4f\n", res.ndcg[2]);

    /* GAUC: user 1 AUC 0.75 with 2+2 impressions, user 2 AUC 0 with 1+3, user 3 all positive (skipped),
     * user 4 all negative (skipped) → (4·0.75 + 4·0) / 8. */
    const float pa[] = {0.9f, 0.2f}, na[] = {0.5f, 0.1f}, pb[] = {0.0f}, nb[] = {1, 2, 3}, pc[] = {1, 2};
    CHECK(mmr_eval_acc_add_auc(a, pa, 2, na, 2, &err) == MMR_OK);
    CHECK(mmr_eval_acc_add_auc(a, pb, 1, nb, 3, &err) == MMR_OK);
    CHECK(mmr_eval_acc_add_auc(a, pc, 2, NULL, 0, &err) == MMR_OK);
    CHECK(mmr_eval_acc_add_auc(a, NULL, 0, nb, 3, &err) == MMR_OK);
    const float nan1[] = {NAN};
    CHECK(mmr_eval_acc_add_auc(a, nan1, 1, nb, 3, &err) == MMR_ERR_INVALID);
    mmr_eval_acc_results(a, &res);
    CHECK(res.gauc_users == 2 && res.gauc_skipped == 2 && NEAR(res.gauc, 0.375));
    printf("ok GAUC %.3f (impression-weighted, %ld single-class users skipped)\n", res.gauc, res.gauc_skipped);

    /* Coverage over a catalogue of 6: lists {0,1,2,...} and {3,0}: @1 {0,3} = 2/6, @5 and @10 {0,1,2,3,4} = 5/6. */
    const uint32_t l1[] = {0, 1, 2, 4}, l2[] = {3, 0}, lbad[] = {6};
    CHECK(mmr_eval_acc_add_topk(a, l1, 4, &err) == MMR_OK && mmr_eval_acc_add_topk(a, l2, 2, &err) == MMR_OK);
    CHECK(mmr_eval_acc_add_topk(a, lbad, 1, &err) == MMR_ERR_INVALID);
    mmr_eval_acc_results(a, &res);
    CHECK(res.topk_lists == 2 && NEAR(res.coverage[0], 2 / 6.0) && NEAR(res.coverage[1], 5 / 6.0) && NEAR(res.coverage[2], 5 / 6.0));
    printf("ok coverage@1/5/10 %.3f/%.3f/%.3f\n", res.coverage[0], res.coverage[1], res.coverage[2]);

    /* Merge: b (one user, two targets; one list {5}) into a. */
    const uint32_t l5[] = {5};
    CHECK(mmr_eval_acc_add_topk(b, l5, 1, &err) == MMR_OK);
    CHECK(mmr_eval_acc_merge(a, b, &err) == MMR_OK);
    mmr_eval_acc_results(a, &res);
    CHECK(res.users == 4 && res.users_empty == 1 && NEAR(res.recall[2], (1 + 1 + 0 + 1) / 4.0) && res.topk_lists == 3);
    CHECK(NEAR(res.coverage[0], 3 / 6.0) && NEAR(res.mrr, (1 + 1 / 3.0 + 0.5) / 4) && res.gauc_users == 2);
    mmr_eval_acc_t *c = NULL;
    CHECK(mmr_eval_acc_new(ks, 2, 6, &c, &err) == MMR_OK && mmr_eval_acc_merge(a, c, &err) == MMR_ERR_INVALID);
    mmr_eval_acc_free(c);
    CHECK(mmr_eval_acc_new(ks, 3, 0, &c, &err) == MMR_OK && mmr_eval_acc_merge(a, c, &err) == MMR_ERR_INVALID);
    CHECK(mmr_eval_acc_add_topk(c, l5, 1, &err) == MMR_ERR_INVALID); /* no catalogue: no coverage */
    mmr_eval_acc_results(c, &res);
    CHECK(res.users == 0 && res.mrr == 0 && res.gauc == 0 && res.coverage[0] == 0);
    printf("ok merge, mismatched accumulators refused, empty results are zeros\n");
    mmr_eval_acc_free(c);
    mmr_eval_acc_free(a);
    mmr_eval_acc_free(b);
    mmr_eval_acc_free(NULL);
}

int main(void) {
    test_rank();
    test_auc();
    test_acc();
    return 0;
}
