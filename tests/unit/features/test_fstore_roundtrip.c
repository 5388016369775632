/* test_fstore_roundtrip.c — events for many users/items over many batches against a ground
 * truth kept by the test: user rings (newest N, in order), events_total, stats counters and
 * the closed-form decayed popularity; again after close + reopen. Also the positive rule. */
#include <math.h>

#include "fstore_test.h"
#include "mmr_fstore.h"

#define N_USERS 40
#define N_ITEMS 25
#define N_EVENTS 3000
#define RING 8
#define HALF_LIFE_S 21600.0 /* 6 h: events span 3 days, so decay matters */
#define T0 INT64_C(1700000000000)

typedef struct truth_ev {
    int item;
    mmr_event_type_t type;
    float value;
    int64_t ts;
} truth_ev_t;

static truth_ev_t user_evs[N_USERS][N_EVENTS]; /* every event of each user, applied order */
static int user_n[N_USERS];
static mmr_item_stats_t item_truth[N_ITEMS];    /* popularity left 0: computed in the end */
static int item_seen[N_ITEMS];
static int64_t pos_ts[N_ITEMS][N_EVENTS];       /* timestamps of each item's positives */
static int pos_n[N_ITEMS];

static void check_positive_rule(void) {
    struct {
        mmr_event_type_t t;
        float v;
        int want;
    } cases[] = {
        {MMR_EV_IMPRESSION, 0, 0}, {MMR_EV_CLICK, 0, 1},   {MMR_EV_LIKE, 0, 1},
        {MMR_EV_SHARE, 0, 1},      {MMR_EV_PURCHASE, 0, 1}, {MMR_EV_SKIP, 0, 0},
        {MMR_EV_WATCH, 9.99f, 0},  {MMR_EV_WATCH, 10.0f, 1}, {MMR_EV_WATCH, 600, 1},
        {MMR_EV_RATING, 3.9f, 0},  {MMR_EV_RATING, 4.0f, 1}, {MMR_EV_RATING, 5, 1},
        {MMR_EV_UNSPECIFIED, 9, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mmr_event_t ev = {.type = cases[i].t, .value = cases[i].v};
        CHECK_MSG(mmr_event_is_positive(&ev) == cases[i].want, "case %zu", i);
    }
    printf("ok  positive rule: CLICK/LIKE/SHARE/PURCHASE, WATCH >= %.0f s, RATING >= %.0f\n",
           (double)MMR_WATCH_POSITIVE_S, (double)MMR_RATING_POSITIVE);
}

static void verify(mmr_fstore_t *fs, const char *when) {
    mmr_err_t err;
    char id[32];
    for (int u = 0; u < N_USERS; u++) {
        snprintf(id, sizeof id, "user-%d", u);
        mmr_user_t *usr;
        if (user_n[u] == 0) {
            CHECK(mmr_fstore_get_user(fs, id, &usr, &err) == MMR_ERR_NOT_FOUND);
            continue;
        }
        CHECK_OK(mmr_fstore_get_user(fs, id, &usr, &err), &err);
        CHECK_MSG(usr->events_total == user_n[u], "%s: total %lld want %d", id,
                  (long long)usr->events_total, user_n[u]);
        uint32_t want_n = user_n[u] < RING ? (uint32_t)user_n[u] : RING;
        CHECK_MSG(usr->n == want_n, "%s: n %u want %u", id, usr->n, want_n);
        for (uint32_t i = 0; i < usr->n; i++) {
            const truth_ev_t *t = &user_evs[u][user_n[u] - (int)usr->n + (int)i];
            char want_item[32];
            snprintf(want_item, sizeof want_item, "item-%d", t->item);
            CHECK_MSG(!strcmp(usr->recent[i].item_id, want_item), "%s[%u]: %s want %s", id, i,
                      usr->recent[i].item_id, want_item);
            CHECK(usr->recent[i].type == t->type);
            CHECK(usr->recent[i].value == t->value);
            CHECK(usr->recent[i].ts_ms == t->ts);
        }
        mmr_user_free(usr);
    }

    /* All items in one MultiGet, plus one that never had an event. */
    char idbuf[N_ITEMS + 1][32];
    const char *ids[N_ITEMS + 1];
    for (int i = 0; i < N_ITEMS; i++) snprintf(idbuf[i], 32, "item-%d", i);
    snprintf(idbuf[N_ITEMS], 32, "item-none");
    for (int i = 0; i <= N_ITEMS; i++) ids[i] = idbuf[i];
    mmr_item_stats_t got[N_ITEMS + 1];
    uint8_t found[N_ITEMS + 1];
    CHECK_OK(mmr_fstore_get_item_stats(fs, N_ITEMS + 1, ids, got, found, &err), &err);
    CHECK(!found[N_ITEMS] && got[N_ITEMS].impressions == 0 && got[N_ITEMS].popularity == 0);
    double worst = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        CHECK(found[i] == item_seen[i]);
        if (!found[i]) continue;
        const mmr_item_stats_t *w = &item_truth[i];
        CHECK_MSG(got[i].impressions == w->impressions && got[i].clicks == w->clicks &&
                      got[i].positives == w->positives && got[i].last_ts_ms == w->last_ts_ms,
                  "item-%d counters", i);
        /* Closed form: each positive decayed from its own ts to the newest event's ts. */
        double want = 0;
        for (int k = 0; k < pos_n[i]; k++)
            want += exp2(-(double)(w->last_ts_ms - pos_ts[i][k]) / (HALF_LIFE_S * 1000.0));
        CHECK_MSG(fst_close_rel(got[i].popularity, want, 1e-6),
                  "item-%d popularity %.12g want %.12g", i, got[i].popularity, want);
        double rel = want > 0 ? fabs(got[i].popularity - want) / want : 0;
        if (rel > worst) worst = rel;
        /* One half-life after the newest event, popularity has halved. */
        double later = mmr_fstore_popularity_at(fs, &got[i],
                                                got[i].last_ts_ms + (int64_t)(HALF_LIFE_S * 1000));
        CHECK(fst_close_rel(later, got[i].popularity / 2, 1e-12));
        CHECK(mmr_fstore_popularity_at(fs, &got[i], got[i].last_ts_ms - 1000) == got[i].popularity);
    }
    printf("ok  %s: %d users (ring %d, newest in order, events_total), %d items (counters exact, "
           "popularity worst rel err %.2g)\n",
           when, N_USERS, RING, N_ITEMS, worst);
}

int main(void) {
    check_positive_rule();

    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {
        .path = dir, .user_ring = RING, .popularity_half_life_s = HALF_LIFE_S};
    mmr_fstore_t *fs;
    mmr_err_t err;
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);

    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int applied = 0, batches = 0;
    char eid[32], uid[32], iid[32];
    while (applied < N_EVENTS) {
        mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
        CHECK(b);
        int size = 1 + (int)(fst_rand(&rng) % 300);
        for (int k = 0; k < size && applied < N_EVENTS; k++, applied++) {
            /* Users skewed towards the first few, so one batch often holds several events
             * of the same user; user 39 never gets any. */
            int u = (int)(fst_rand(&rng) % 4 == 0 ? fst_rand(&rng) % 3
                                                  : fst_rand(&rng) % (N_USERS - 1));
            int it = (int)(fst_rand(&rng) % N_ITEMS);
            mmr_event_type_t type = (mmr_event_type_t)(1 + fst_rand(&rng) % 8);
            float value = type == MMR_EV_WATCH    ? (float)(fst_rand(&rng) % 300) / 10.0f
                          : type == MMR_EV_RATING ? (float)(1 + fst_rand(&rng) % 5)
                                                  : 0.0f;
            int64_t ts = T0 + (int64_t)(fst_rand(&rng) % (3 * 86400000ull)); /* out of order */
            snprintf(eid, sizeof eid, "ev-%d", applied);
            snprintf(uid, sizeof uid, "user-%d", u);
            snprintf(iid, sizeof iid, "item-%d", it);
            mmr_event_t ev = {eid, uid, iid, type, value, ts};
            CHECK_MSG(mmr_fstore_batch_add_event(b, &ev, &err) == 1, "%s", err.msg);

            user_evs[u][user_n[u]++] = (truth_ev_t){it, type, value, ts};
            mmr_item_stats_t *w = &item_truth[it];
            w->impressions += type == MMR_EV_IMPRESSION;
            w->clicks += type == MMR_EV_CLICK;
            if (mmr_event_is_positive(&ev)) {
                w->positives++;
                pos_ts[it][pos_n[it]++] = ts;
            }
            if (!item_seen[it] || ts > w->last_ts_ms) w->last_ts_ms = ts;
            item_seen[it] = 1;
        }
        CHECK(mmr_fstore_batch_count(b) == (size_t)size || applied == N_EVENTS);
        CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
        mmr_fstore_batch_free(b);
        batches++;
    }
    printf("ok  applied %d events in %d batches of 1..300\n", applied, batches);
    verify(fs, "after commits");

    mmr_fstore_close(fs);
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    verify(fs, "after reopen");
    CHECK_OK(mmr_fstore_compact(fs, &err), &err);
    verify(fs, "after full compaction");

    /* Invalid events are refused and leave the batch usable. */
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(b);
    char long_id[MMR_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    mmr_event_t bad[] = {
        {"b1", "", "item-0", MMR_EV_CLICK, 0, T0},
        {"b2", "user-0", NULL, MMR_EV_CLICK, 0, T0},
        {"b3", long_id, "item-0", MMR_EV_CLICK, 0, T0},
        {"b4", "user-0", "item-0", MMR_EV_TYPE_COUNT, 0, T0},
        {"b5", "user-0", "item-0", MMR_EV_WATCH, NAN, T0},
        {long_id, "user-0", "item-0", MMR_EV_CLICK, 0, T0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mmr_err_clear(&err);
        CHECK_MSG(mmr_fstore_batch_add_event(b, &bad[i], &err) == -MMR_ERR_INVALID, "bad %zu", i);
        CHECK(err.code == MMR_ERR_INVALID && err.msg[0]);
    }
    CHECK(mmr_fstore_batch_count(b) == 0);
    CHECK(mmr_fstore_batch_new(fs) == NULL); /* single writer */
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    CHECK(mmr_fstore_batch_commit(b, &err) == MMR_ERR_INVALID);
    mmr_fstore_batch_free(b);
    verify(fs, "after invalid events");
    printf("ok  invalid events refused with MMR_ERR_INVALID; one open batch per store\n");

    mmr_fstore_close(fs);
    fst_rmdir(dir);
    return 0;
}
