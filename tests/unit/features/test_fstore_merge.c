/* test_fstore_merge.c — the stats merge operator is associative and commutative: the same
 * deltas applied in different orders and groupings (one batch; one batch per event with
 * compactions in between, so RocksDB partial-merges operand runs in flushes and full-merges
 * them at the bottom level; shuffled random groups; a compacted base with operands on top)
 * give the same stats, and so do different fold trees of the pure combine function. */
#include <math.h>

#include "fstore_codec.h"
#include "fstore_test.h"
#include "mmr_fstore.h"

#define N_EV 400
#define N_ITEMS 5
#define HALF_LIFE_S 3600.0
#define T0 INT64_C(1700000000000)

static mmr_event_t evs[N_EV];
static char eids[N_EV][16], iids[N_ITEMS][16];

typedef struct plan {
    const char *name;
    int order[N_EV];   /* application order */
    int cut[N_EV];     /* 1: commit the batch after this position */
    int compact[N_EV]; /* 1: full compaction after committing at this position */
} plan_t;

static void run_plan(const plan_t *p, mmr_item_stats_t out[N_ITEMS]) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {.path = dir, .popularity_half_life_s = HALF_LIFE_S};
    mmr_fstore_t *fs;
    mmr_err_t err;
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    mmr_fstore_batch_t *b = NULL;
    int batches = 0, compactions = 0;
    for (int k = 0; k < N_EV; k++) {
        if (!b) CHECK((b = mmr_fstore_batch_new(fs)) != NULL);
        CHECK_MSG(mmr_fstore_batch_add_event(b, &evs[p->order[k]], &err) == 1, "%s", err.msg);
        if (p->cut[k] || k == N_EV - 1) {
            CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
            mmr_fstore_batch_free(b);
            b = NULL;
            batches++;
        }
        if (p->compact[k]) {
            CHECK_OK(mmr_fstore_compact(fs, &err), &err);
            compactions++;
        }
    }
    const char *ids[N_ITEMS];
    uint8_t found[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++) ids[i] = iids[i];
    CHECK_OK(mmr_fstore_get_item_stats(fs, N_ITEMS, ids, out, found, &err), &err);
    for (int i = 0; i < N_ITEMS; i++) CHECK(found[i]);
    mmr_fstore_close(fs);
    fst_rmdir(dir);
    printf("    plan %-34s %3d batches, %3d compactions\n", p->name, batches, compactions);
}

static void same_stats(const mmr_item_stats_t *a, const mmr_item_stats_t *b, double rel,
                       const char *what) {
    CHECK_MSG(a->impressions == b->impressions && a->clicks == b->clicks &&
                  a->positives == b->positives && a->last_ts_ms == b->last_ts_ms,
              "%s: counters differ", what);
    CHECK_MSG(fst_close_rel(a->popularity, b->popularity, rel), "%s: popularity %.15g vs %.15g",
              what, a->popularity, b->popularity);
}

/* Folds d[lo, hi) as a balanced tree: ((d0 d1)(d2 d3))... */
static mmr_item_stats_t fold_tree(const mmr_item_stats_t *d, int lo, int hi, double hl) {
    if (hi - lo == 1) return d[lo];
    int mid = lo + (hi - lo) / 2;
    mmr_item_stats_t l = fold_tree(d, lo, mid, hl), r = fold_tree(d, mid, hi, hl);
    mmr_fstore_codec_stats_combine(&l, &r, hl);
    return l;
}

static void check_pure_combine(void) {
    double hl = HALF_LIFE_S * 1000;
    mmr_item_stats_t d[N_EV];
    for (int k = 0; k < N_EV; k++) mmr_fstore_codec_stats_of_event(&evs[k], &d[k]);
    mmr_item_stats_t left = d[0], right = d[N_EV - 1];
    for (int k = 1; k < N_EV; k++) mmr_fstore_codec_stats_combine(&left, &d[k], hl);
    for (int k = N_EV - 2; k >= 0; k--) {
        mmr_item_stats_t x = d[k];
        mmr_fstore_codec_stats_combine(&x, &right, hl);
        right = x;
    }
    mmr_item_stats_t tree = fold_tree(d, 0, N_EV, hl);
    same_stats(&left, &right, 1e-12, "left fold vs right fold");
    same_stats(&left, &tree, 1e-12, "left fold vs tree");

    /* Closed form, and the round trip through the 41-byte record. */
    double want = 0;
    for (int k = 0; k < N_EV; k++)
        if (d[k].positives) want += exp2(-(double)(left.last_ts_ms - d[k].last_ts_ms) / hl);
    CHECK(fst_close_rel(left.popularity, want, 1e-12));
    uint8_t rec[MMR_FSTORE_STATS_SIZE];
    mmr_item_stats_t back;
    mmr_err_t err;
    mmr_fstore_codec_encode_stats(rec, &left);
    CHECK_OK(mmr_fstore_codec_decode_stats(rec, sizeof rec, &back, &err), &err);
    CHECK(!memcmp(&back, &left, sizeof back));
    printf("ok  combine: left fold = right fold = balanced tree = closed form\n");
}

int main(void) {
    uint64_t rng = 12345;
    for (int i = 0; i < N_ITEMS; i++) snprintf(iids[i], sizeof iids[i], "item-%d", i);
    for (int k = 0; k < N_EV; k++) {
        snprintf(eids[k], sizeof eids[k], "e%d", k);
        mmr_event_type_t t = (mmr_event_type_t)(1 + fst_rand(&rng) % 8);
        evs[k] = (mmr_event_t){eids[k], "u", iids[fst_rand(&rng) % N_ITEMS], t,
                               t == MMR_EV_WATCH ? (float)(fst_rand(&rng) % 20) : 4.0f,
                               T0 + (int64_t)(fst_rand(&rng) % (10 * 3600000ull))};
    }
    check_pure_combine();

    static plan_t plans[4];
    plan_t *one = &plans[0], *each = &plans[1], *shuf = &plans[2], *base = &plans[3];
    one->name = "one batch, in order";
    each->name = "batch per event, compact every 7";
    shuf->name = "shuffled, random groups+compactions";
    base->name = "reversed, compacted base + operands";
    for (int k = 0; k < N_EV; k++) {
        one->order[k] = each->order[k] = shuf->order[k] = k;
        base->order[k] = N_EV - 1 - k;
        each->cut[k] = 1;
        each->compact[k] = k % 7 == 6;
        shuf->cut[k] = fst_rand(&rng) % 20 == 0;
        shuf->compact[k] = shuf->cut[k] && fst_rand(&rng) % 2;
        base->cut[k] = k % 100 == 99;
    }
    base->compact[N_EV / 2 - 1] = 1; /* half the deltas become a base value */
    for (int k = N_EV - 1; k > 0; k--) { /* Fisher–Yates */
        int j = (int)(fst_rand(&rng) % (uint64_t)(k + 1)), t = shuf->order[k];
        shuf->order[k] = shuf->order[j];
        shuf->order[j] = t;
    }

    mmr_item_stats_t ref[N_ITEMS], got[N_ITEMS];
    run_plan(one, ref);
    for (int p = 1; p < 4; p++) {
        run_plan(&plans[p], got);
        for (int i = 0; i < N_ITEMS; i++) same_stats(&ref[i], &got[i], 1e-9, plans[p].name);
    }
    printf("ok  stats equal (counters exact, popularity within 1e-9) across %d groupings\n", 4);
    return 0;
}
