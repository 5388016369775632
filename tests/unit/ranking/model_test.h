/* model_test.h — helpers shared by the model / registry / admin tests: a temporary store
 * with a small random catalog and user histories, a small tower with random weights, and
 * directory cleanup. Header-only; each test is its own executable. */
#ifndef MMR_MODEL_TEST_H
#define MMR_MODEL_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mmr_fstore.h"
#include "mmr_rand.h"
#include "mmr_time.h"
#include "mmr_tower.h"

#define MT_DT 12 /* text width */
#define MT_DI 8  /* image width; video 6 */
#define MT_DV 6

#define CHECK_OK(call, errp)                                                           \
    do {                                                                               \
        mmr_status_t st_ = (call);                                                     \
        CHECK_MSG(st_ == MMR_OK, "%s: %s", mmr_status_str(st_), (errp)->msg);          \
    } while (0)

static inline mmr_tower_config_t mt_config(void) {
    mmr_tower_config_t c = mmr_tower_config_default();
    c.d_text = MT_DT; c.d_image = MT_DI; c.d_video = MT_DV;
    c.d_hidden = 16; c.d_out = 16; c.n_item_ids = 512; c.n_user_ids = 256; c.hist_len = 8;
    return c;
}

/* A tower whose every weight (head included) is uniform in [-0.3, 0.3) from seed, so that
 * popularity, recency and id embeddings all matter. Owned by the caller. */
static inline mmr_tower_t *mt_tower(uint64_t seed) {
    mmr_tower_config_t c = mt_config();
    mmr_tower_t *t = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_tower_new(&c, seed, &t, &err), &err);
    float *p = mmr_tower_params(t);
    for (size_t i = 0; i < mmr_tower_param_count(t); i++) p[i] = 0.6f * (float)mmr_rand_uniform(&seed) - 0.3f;
    mmr_tower_params_changed(t);
    return t;
}

/* Puts n items "i<k>" (k in [first, first + n)) with random content; every 5th lacks its
 * image, every 7th its video; created k minutes ago. */
static inline void mt_put_items(mmr_fstore_t *fs, int first, int n, uint64_t *rng) {
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(b);
    mmr_err_t err = {0};
    for (int k = first; k < first + n; k++) {
        float t[MT_DT], im[MT_DI], v[MT_DV];
        for (int j = 0; j < MT_DT; j++) t[j] = (float)mmr_rand_uniform(rng) - 0.5f;
        for (int j = 0; j < MT_DI; j++) im[j] = (float)mmr_rand_uniform(rng) - 0.5f;
        for (int j = 0; j < MT_DV; j++) v[j] = (float)mmr_rand_uniform(rng) - 0.5f;
        char id[32];
        snprintf(id, sizeof id, "i%d", k);
        mmr_item_t it = {.item_id = id, .created_ms = mmr_now_ms() - (int64_t)k * 60000,
                         .emb_dim = {MT_DT, k % 5 ? MT_DI : 0, k % 7 ? MT_DV : 0},
                         .emb = {t, k % 5 ? im : NULL, k % 7 ? v : NULL}};
        CHECK_OK(mmr_fstore_batch_put_item(b, &it, &err), &err);
    }
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
}

/* Events: user "u<k>" for k < users clicks/likes/watches `per_user` random items of
 * [0, n_items) at past times; item "i0" gets extra clicks (popular). */
static inline void mt_put_events(mmr_fstore_t *fs, int users, int per_user, int n_items, uint64_t *rng) {
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(b);
    mmr_err_t err = {0};
    static const mmr_event_type_t types[] = {MMR_EV_CLICK, MMR_EV_LIKE, MMR_EV_WATCH, MMR_EV_SKIP};
    int64_t now = mmr_now_ms();
    for (int u = 0; u < users; u++)
        for (int e = 0; e < per_user; e++) {
            char uid[32], iid[32];
            snprintf(uid, sizeof uid, "u%d", u);
            snprintf(iid, sizeof iid, "i%d", (int)(mmr_rand_next(rng) % (uint64_t)n_items));
            mmr_event_t ev = {NULL, uid, iid, types[e % 4], 20.0f, now - (int64_t)(per_user - e) * 3600000};
            CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
        }
    for (int e = 0; e < 20; e++) {
        mmr_event_t ev = {NULL, "fan", "i0", MMR_EV_CLICK, 1.0f, now - 1000};
        CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
    }
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
}

static inline mmr_fstore_t *mt_store(char dir[64]) {
    snprintf(dir, 64, "/tmp/mmrec-model-XXXXXX");
    CHECK(mkdtemp(dir));
    mmr_fstore_opts_t o = {.path = dir};
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    return fs;
}

static inline int mt_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static inline void mt_rmdir(const char *dir) { nftw(dir, mt_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

#endif
