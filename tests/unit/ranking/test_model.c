/* test_model.c — mmr_model against a direct tower computation on a real temporary store:
 * user vectors and candidate scores equal item/user forward + head computed here from the
 * raw records; exact top-K equals a brute-force scan (with exclusions); items added after
 * the build are encoded on the fly, unknown ones skipped, deleted ones never scored. */
#include <math.h>

#include "mmr_model.h"
#include "model_test.h"

#define N_ITEMS 300
#define TOL 1e-5f

static mmr_fstore_t *fs;

/* Reference item vectors (n, D) and gates (n, 3) of catalog items, straight from records. */
static void ref_items(const mmr_tower_t *t, size_t n, const char *const *ids, float *vec, float *gate) {
    const mmr_tower_config_t *c = mmr_tower_get_config(t);
    mmr_item_t *rec = NULL;
    uint8_t found[64];
    mmr_err_t err = {0};
    CHECK(n <= 64);
    CHECK_OK(mmr_fstore_get_items(fs, n, ids, &rec, found, &err), &err);
    static float x[3][64 * MT_DT];
    static uint8_t present[64 * 3];
    static int32_t bucket[64];
    const int w[3] = {c->d_text, c->d_image, c->d_video};
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < 3; m++) {
            present[i * 3 + m] = found[i] && rec[i].emb_dim[m] == (uint32_t)w[m];
            if (present[i * 3 + m]) memcpy(x[m] + i * w[m], rec[i].emb[m], w[m] * sizeof(float));
        }
        bucket[i] = mmr_tower_id_bucket(ids[i], strlen(ids[i]), c->n_item_ids);
    }
    mmr_tower_item_batch_t b = {(int)n, {x[0], x[1], x[2]}, present, bucket};
    CHECK_OK(mmr_tower_item_forward(t, NULL, &b, vec, gate, &err), &err);
    mmr_fstore_items_free(rec);
}

static void ref_user(const mmr_tower_t *t, const char *uid, int64_t now, float *vec) {
    const mmr_tower_config_t *c = mmr_tower_get_config(t);
    mmr_user_t *u = NULL;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_fstore_get_user(fs, uid, &u, &err);
    CHECK(st == MMR_OK || st == MMR_ERR_NOT_FOUND);
    const char *ids[64];
    int32_t types[64], len = 0;
    float ages[64], hist[64 * 16];
    for (int j = u ? (int)u->n - 1 : -1; j >= 0 && len < c->hist_len; j--, len++) {
        ids[len] = u->recent[j].item_id;
        types[len] = u->recent[j].type;
        ages[len] = (float)((double)(now - u->recent[j].ts_ms) / 3.6e6);
    }
    if (len) ref_items(t, (size_t)len, ids, hist, NULL);
    int32_t ub = mmr_tower_id_bucket(uid, strlen(uid), c->n_user_ids);
    mmr_tower_user_batch_t b = {1, hist, types, ages, &len, &ub};
    CHECK_OK(mmr_tower_user_forward(t, NULL, &b, vec, &err), &err);
    mmr_user_free(u);
}

static float maxdiff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

int main(void) {
    char dir[64];
    fs = mt_store(dir);
    uint64_t rng = 1;
    mt_put_items(fs, 0, N_ITEMS, &rng);
    mt_put_events(fs, 20, 12, N_ITEMS, &rng);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_item_t gone = {.item_id = "gone", .deleted = 1};
    mmr_err_t err = {0};
    CHECK_OK(mmr_fstore_batch_put_item(b, &gone, &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);

    mmr_tower_t *ref = mt_tower(7), *copy = NULL;
    CHECK_OK(mmr_tower_clone(ref, &copy, &err), &err);
    mmr_model_t *m = NULL;
    CHECK_OK(mmr_model_new(copy, fs, NULL, &m, &err), &err);
    CHECK_MSG(mmr_model_item_count(m) == N_ITEMS, "%zu", mmr_model_item_count(m));
    CHECK(mmr_model_find(m, "gone") < 0 && mmr_model_find(m, "i17") >= 0 &&
          !strcmp(mmr_model_item_id(m, (size_t)mmr_model_find(m, "i17")), "i17"));
    printf("ok index: %d items, deleted item left out, id map\n", N_ITEMS);

    /* user vectors: history from the index equals the direct computation */
    int64_t now = mmr_now_ms();
    float uv[16], uref[16];
    for (int k = 0; k < 5; k++) {
        char uid[16];
        snprintf(uid, sizeof uid, k < 4 ? "u%d" : "stranger", k);
        mmr_user_t *u = NULL;
        mmr_fstore_get_user(fs, uid, &u, NULL);
        CHECK_OK(mmr_model_encode_user(m, uid, u, now, uv, &err), &err);
        ref_user(ref, uid, now, uref);
        CHECK_MSG(maxdiff(uv, uref, 16) < TOL, "%s: %g", uid, maxdiff(uv, uref, 16));
        mmr_user_free(u);
    }
    printf("ok user vectors equal the direct tower computation (4 users + 1 unknown)\n");

    /* scores: head over [u·v, popularity, recency] */
    const char *cands[6] = {"i0", "i3", "i10", "i299", "nosuch", "gone"};
    float score[6], gate[18], iv[4 * 16], ig[4 * 3], pop[4], rec[4], prob[4];
    uint8_t status[6];
    ref_user(ref, "u1", now, uref);
    CHECK_OK(mmr_model_score(m, uref, 6, cands, now, score, gate, status, &err), &err);
    CHECK(status[4] == MMR_MODEL_UNKNOWN && status[5] == MMR_MODEL_DELETED && score[4] == 0 && score[5] == 0);
    ref_items(ref, 4, cands, iv, ig);
    mmr_item_stats_t st[4];
    uint8_t found[4];
    mmr_item_t *recs = NULL;
    CHECK_OK(mmr_fstore_get_item_stats(fs, 4, cands, st, found, &err), &err);
    CHECK_OK(mmr_fstore_get_items(fs, 4, cands, &recs, found, &err), &err);
    for (int i = 0; i < 4; i++) {
        pop[i] = (float)mmr_fstore_popularity_at(fs, &st[i], now);
        rec[i] = (float)log1p((double)(now - recs[i].created_ms) / 3.6e6);
    }
    mmr_fstore_items_free(recs);
    CHECK(pop[0] > 1.0f);
    mmr_tower_head_forward(ref, 4, uref, iv, pop, rec, prob);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(status[i] == MMR_MODEL_SCORED && fabsf(score[i] - prob[i]) < TOL, "%s: %g vs %g", cands[i],
                  score[i], prob[i]);
        CHECK(fabsf(gate[i * 3] + gate[i * 3 + 1] + gate[i * 3 + 2] - 1.0f) < 1e-5f);
        CHECK(maxdiff(gate + i * 3, ig + i * 3, 3) < TOL);
    }
    printf("ok scores equal head(u·v, popularity, recency) computed directly; unknown and deleted skipped\n");

    /* exact top-K against brute force, with exclusions */
    for (int trial = 0; trial < 20; trial++) {
        float q[16];
        for (int k = 0; k < 16; k++) q[k] = (float)mmr_rand_uniform(&rng) - 0.5f;
        size_t K = trial == 0 ? N_ITEMS + 5 : 1 + trial * 7;
        int64_t ex[3] = {5, 5, 40}, rows[N_ITEMS + 5];
        float dots[N_ITEMS + 5], all[N_ITEMS];
        size_t got = 0, nex = trial % 2 ? 3 : 0;
        mmr_model_retrieve(m, q, K, ex, nex, rows, dots, &got);
        size_t expect = K < N_ITEMS - (nex ? 2 : 0) ? K : N_ITEMS - (nex ? 2 : 0);
        CHECK_MSG(got == expect, "got %zu expect %zu", got, expect);
        for (size_t r = 0; r < N_ITEMS; r++) {
            double d = 0;
            for (int k = 0; k < 16; k++) d += (double)q[k] * mmr_model_item_vec(m, r)[k];
            all[r] = (float)d;
        }
        /* every returned row beats (or ties within rounding) every row not returned */
        static uint8_t in[N_ITEMS];
        memset(in, 0, sizeof in);
        for (size_t i = 0; i < got; i++) {
            CHECK(!nex || (rows[i] != 5 && rows[i] != 40));
            CHECK(fabsf(dots[i] - all[rows[i]]) < 1e-5f);
            CHECK(i == 0 || dots[i] <= dots[i - 1]);
            in[rows[i]] = 1;
        }
        for (size_t r = 0; r < N_ITEMS; r++)
            if (!in[r] && !(nex && (r == 5 || r == 40))) CHECK(all[r] <= dots[got - 1] + 1e-5f);
    }
    printf("ok exact top-K equals brute force (20 queries, K up to all, exclusions)\n");

    /* items added after the build: scored from the store; deleted after the build: never */
    mt_put_items(fs, N_ITEMS, 2, &rng);
    b = mmr_fstore_batch_new(fs);
    mmr_item_t del3 = {.item_id = "i3", .deleted = 1};
    CHECK_OK(mmr_fstore_batch_put_item(b, &del3, &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    const char *late[3] = {"i300", "i301", "i3"};
    float ls[3];
    CHECK_OK(mmr_model_score(m, uref, 3, late, now, ls, NULL, status, &err), &err);
    CHECK(status[0] == MMR_MODEL_SCORED && status[1] == MMR_MODEL_SCORED && status[2] == MMR_MODEL_DELETED);
    mmr_tower_t *copy2 = NULL;
    mmr_model_t *m2 = NULL;
    CHECK_OK(mmr_tower_clone(ref, &copy2, &err), &err);
    CHECK_OK(mmr_model_new(copy2, fs, NULL, &m2, &err), &err);
    float ls2[3];
    CHECK_OK(mmr_model_score(m2, uref, 3, late, now, ls2, NULL, status, &err), &err);
    CHECK(fabsf(ls[0] - ls2[0]) < TOL && fabsf(ls[1] - ls2[1]) < TOL);
    printf("ok late items encoded on the fly (= a rebuilt index), late deletions never scored\n");

    mmr_model_free(m2);
    mmr_model_free(m);
    mmr_model_free(NULL);
    mmr_tower_free(ref);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    return 0;
}
