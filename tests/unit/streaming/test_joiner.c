/* test_joiner.c — the impression/positive join: labels, windows, early positives, bounds,
 * sampled negatives; then examples built from a real temporary RocksDB store. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../features/fstore_test.h"
#include "check.h"
#include "mmr_exbuild.h"
#include "mmr_joiner.h"

#define MAXJ 256
typedef struct {
    int n;
    char user[MAXJ][16], item[MAXJ][16], arm[MAXJ][16];
    float label[MAXJ];
    int sampled[MAXJ];
    uint64_t version[MAXJ];
} sink_t;

static void collect(void *opaque, const mmr_joined_t *j) {
    sink_t *s = opaque;
    CHECK(s->n < MAXJ);
    snprintf(s->user[s->n], 16, "%s", j->user_id);
    snprintf(s->item[s->n], 16, "%s", j->item_id);
    snprintf(s->arm[s->n], 16, "%s", j->arm);
    s->label[s->n] = j->label;
    s->sampled[s->n] = j->sampled;
    s->version[s->n] = j->model_version;
    s->n++;
}

static mmr_event_t ev(const char *u, const char *i, mmr_event_type_t t, float v, int64_t ts) {
    return (mmr_event_t){.user_id = u, .item_id = i, .type = t, .value = v, .ts_ms = ts};
}

static int find(const sink_t *s, const char *item, float label) {
    for (int k = 0; k < s->n; k++)
        if (strcmp(s->item[k], item) == 0 && s->label[k] == label) return k;
    return -1;
}

static void test_labels(void) {
    sink_t s = {0};
    mmr_err_t err = {0};
    mmr_joiner_t *j;
    mmr_joiner_conf_t c = {.window_ms = 1000};
    CHECK(mmr_joiner_new(&c, collect, &s, &j, &err) == MMR_OK);
    const char *shown[] = {"a", "b", "c"};
    CHECK(mmr_joiner_impression(j, "r1", "u1", shown, 3, 7, "treat", 100, &err) == MMR_OK);
    mmr_event_t click = ev("u1", "b", MMR_EV_CLICK, 1, 400);
    CHECK(mmr_joiner_event(j, &click, "r1", &err) == MMR_OK);
    CHECK(s.n == 1 && strcmp(s.item[0], "b") == 0 && s.label[0] == 1.0f);
    CHECK(s.version[0] == 7 && strcmp(s.arm[0], "treat") == 0); /* the arm that served it */
    /* A short WATCH is not positive, a SKIP is a negative at once. */
    mmr_event_t watch = ev("u1", "a", MMR_EV_WATCH, 2, 500), skip = ev("u1", "z", MMR_EV_SKIP, 0, 500);
    CHECK(mmr_joiner_event(j, &watch, "r1", &err) == MMR_OK);
    CHECK(mmr_joiner_event(j, &skip, NULL, &err) == MMR_OK);
    CHECK(s.n == 2 && find(&s, "z", 0.0f) == 1);
    /* Time passes (event time): a and c become negatives, b does not. */
    mmr_event_t later = ev("u2", "q", MMR_EV_IMPRESSION, 0, 1200);
    CHECK(mmr_joiner_event(j, &later, "r2", &err) == MMR_OK);
    CHECK(s.n == 4 && find(&s, "a", 0.0f) >= 0 && find(&s, "c", 0.0f) >= 0);
    CHECK(find(&s, "b", 0.0f) < 0);
    /* A positive before its impression settles it in advance. */
    mmr_event_t early = ev("u3", "e", MMR_EV_LIKE, 1, 1300);
    CHECK(mmr_joiner_event(j, &early, "r3", &err) == MMR_OK);
    const char *e1[] = {"e", "f"};
    CHECK(mmr_joiner_impression(j, "r3", "u3", e1, 2, 8, "", 1250, &err) == MMR_OK);
    mmr_joiner_flush(j);
    CHECK(find(&s, "e", 0.0f) < 0 && find(&s, "f", 0.0f) >= 0 && find(&s, "q", 0.0f) >= 0);
    mmr_joiner_stats_t st;
    mmr_joiner_get_stats(j, &st);
    CHECK(st.positives == 2 && st.negatives == 5 && st.settled == 2 && st.pending == 0);
    mmr_joiner_free(j);
}

static void test_bound_and_sampling(void) {
    sink_t s = {0};
    mmr_err_t err = {0};
    mmr_joiner_t *j;
    mmr_joiner_conf_t c = {.window_ms = 1000000, .max_pending = 4, .neg_per_pos = 3, .seed = 1};
    CHECK(mmr_joiner_new(&c, collect, &s, &j, &err) == MMR_OK);
    char id[8][4];
    const char *ids[8];
    for (int i = 0; i < 8; i++) { snprintf(id[i], 4, "i%d", i); ids[i] = id[i]; }
    CHECK(mmr_joiner_impression(j, "r", "u", ids, 8, 1, "", 10, &err) == MMR_OK);
    mmr_joiner_stats_t st;
    mmr_joiner_get_stats(j, &st);
    CHECK(st.forced == 4 && st.pending == 4 && s.n == 4); /* the oldest four decided early */
    mmr_event_t click = ev("u", "i7", MMR_EV_CLICK, 1, 20);
    CHECK(mmr_joiner_event(j, &click, "r", &err) == MMR_OK);
    int sampled = 0;
    for (int k = 0; k < s.n; k++)
        if (s.sampled[k]) {
            sampled++;
            CHECK(s.label[k] == 0.0f && strcmp(s.item[k], "i7") != 0);
        }
    CHECK(sampled == 3);
    mmr_joiner_free(j);
    CHECK(mmr_joiner_new(&(mmr_joiner_conf_t){.neg_per_pos = 65}, collect, &s, &j, &err) == MMR_ERR_INVALID);
}

/* Negatives are uniform over distinct items, not over appearances; a reservoir holding
 * only the positive item yields none (and does not hang). */
typedef struct { int hot, cold, n; } uni_t;
static void count_uniform(void *opaque, const mmr_joined_t *j) {
    uni_t *u = opaque;
    if (!j->sampled) return;
    u->n++;
    if (!strcmp(j->item_id, "hot")) u->hot++;
    else u->cold++;
}

static void test_uniform_negatives(void) {
    uni_t u = {0};
    mmr_err_t err = {0};
    mmr_joiner_t *j;
    CHECK(mmr_joiner_new(&(mmr_joiner_conf_t){.neg_per_pos = 2, .seed = 3}, count_uniform, &u, &j, &err) == MMR_OK);
    mmr_event_t only = ev("u", "p", MMR_EV_CLICK, 1, 1), again = ev("u", "p", MMR_EV_CLICK, 1, 2);
    CHECK(mmr_joiner_event(j, &only, NULL, &err) == MMR_OK && mmr_joiner_event(j, &again, NULL, &err) == MMR_OK);
    CHECK(u.n == 0);
    char id[16];
    for (int i = 0; i < 1000; i++) { /* "hot" shows up 1000 times, c0..c9 once each */
        mmr_event_t e = ev("v", "hot", MMR_EV_IMPRESSION, 0, 10 + i);
        CHECK(mmr_joiner_event(j, &e, NULL, &err) == MMR_OK);
        if (i < 10) {
            snprintf(id, sizeof id, "c%d", i);
            mmr_event_t c = ev("v", id, MMR_EV_IMPRESSION, 0, 10 + i);
            CHECK(mmr_joiner_event(j, &c, NULL, &err) == MMR_OK);
        }
    }
    for (int i = 0; i < 2000; i++) {
        mmr_event_t c = ev("w", "p", MMR_EV_CLICK, 1, 2000 + i);
        CHECK(mmr_joiner_event(j, &c, NULL, &err) == MMR_OK);
    }
    /* 12 distinct ids, "p" excluded: hot is 1 of 11 candidates (~9%), not 1000 of 1010 */
    CHECK_MSG(u.n == 4000 && u.hot > 200 && u.hot < 600, "sampled %d, hot %d", u.n, u.hot);
    mmr_joiner_free(j);
}

static void test_exbuild(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_err_t err = {0};
    mmr_fstore_t *fs;
    CHECK_OK(mmr_fstore_open(&(mmr_fstore_opts_t){.path = dir}, &fs, &err), &err);
    mmr_tower_config_t tc = mmr_tower_config_default();
    tc.d_text = 3, tc.d_image = 2, tc.d_video = 2, tc.hist_len = 2;
    float t3[3] = {1, 2, 3}, v5[5] = {1, 1, 1, 1, 1};
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_item_t a = {.item_id = "a", .created_ms = 1000, .emb_dim = {3, 0, 5}, .emb = {t3, NULL, v5}};
    CHECK_OK(mmr_fstore_batch_put_item(b, &a, &err), &err);
    const char *hist[] = {"x", "y", "z"};
    for (int k = 0; k < 3; k++) {
        mmr_event_t e = ev("u", hist[k], k == 1 ? MMR_EV_IMPRESSION : MMR_EV_CLICK, 1, 3600000 * (k + 1));
        CHECK(mmr_fstore_batch_add_event(b, &e, &err) == 1);
    }
    mmr_event_t e = ev("u", "a", MMR_EV_CLICK, 1, 3600000 * 4);
    CHECK(mmr_fstore_batch_add_event(b, &e, &err) == 1);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);

    mmr_exbuild_t *xb;
    CHECK_OK(mmr_exbuild_new(fs, &tc, 4, &xb, &err), &err);
    mmr_joined_t jn = {.user_id = "u", .item_id = "a", .ts_ms = 3600000 * 4, .label = 1};
    mmr_example_t ex;
    for (int round = 0; round < 3; round++) { /* the cache (4 items) empties between calls */
        CHECK_OK(mmr_exbuild_make(xb, &jn, &ex, &err), &err);
        CHECK(ex.label == 1.0f && ex.hist_len == 2); /* z, x: the impression and a itself left out */
        CHECK(ex.hist_type[0] == MMR_EV_CLICK && fabsf(ex.hist_age[0] - 1.0f) < 1e-6f);
        CHECK(fabsf(ex.hist_age[1] - 3.0f) < 1e-6f);
        CHECK(ex.item.x[0] && ex.item.x[0][2] == 3.0f && !ex.item.x[1] && !ex.item.x[2]);
        CHECK(!ex.hist[0].x[0] && ex.hist[0].id_bucket >= 0 && ex.hist[0].key != ex.item.key);
        CHECK(ex.popularity > 0.9f && fabsf(ex.recency - logf(1.0f + (3600000 * 4 - 1000) / 3.6e6f)) < 1e-4f);
        CHECK(ex.user_bucket == mmr_tower_id_bucket("u", 1, tc.n_user_ids));
    }
    mmr_exbuild_stats_t st;
    mmr_exbuild_get_stats(xb, &st);
    CHECK(st.examples == 3 && st.width_mismatch == 3 && st.cache_misses >= 6);
    /* An unknown user has no history; an unknown item no content. */
    jn.user_id = "nobody", jn.item_id = "nothing";
    CHECK_OK(mmr_exbuild_make(xb, &jn, &ex, &err), &err);
    CHECK(ex.hist_len == 0 && !ex.item.x[0] && ex.popularity == 0.0f && ex.recency == 0.0f);
    mmr_exbuild_free(xb);
    mmr_fstore_close(fs);
    fst_rmdir(dir);
}

int main(void) {
    test_labels();
    test_bound_and_sampling();
    test_uniform_negatives();
    test_exbuild();
    printf("test_joiner: ok\n");
    return 0;
}
