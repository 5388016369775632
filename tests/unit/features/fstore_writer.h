/* fstore_writer.h — a store writer whose state is a pure function of its Kafka offset, for
 * the snapshot / export consistency tests (test_fstore_snapshot, test_cli_export).
 *
 * Batch k (k = 1, 2, ...) gives each user u<0..FSW_USERS) one CLICK on item
 * i<fsw_item(k, u)> at ts_ms = 10k, puts catalog item "n<k>" (created_ms = k; batch 1 also
 * puts i0..i<FSW_ITEMS - 1>), and sets the offsets FSW_TOPIC/0 = k and FSW_TOPIC/1 = 2k, all
 * in one commit. So a consistent state whose FSW_TOPIC/0 offset is K holds exactly: K events
 * per user (the newest at 10K), items n1..nK besides i*, FSW_TOPIC/1 = 2K, and for each i*
 * the clicks and last_ts_ms that fsw_expect_item computes. fsw_start commits batches in a
 * thread (about 1 per 0.5 ms) until fsw_stop. */
#ifndef MMR_FSTORE_WRITER_H
#define MMR_FSTORE_WRITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "fstore_test.h"
#include "mmr_fstore.h"

#define FSW_USERS 6
#define FSW_ITEMS 5
#define FSW_TOPIC "ev"

static inline int fsw_item(int64_t k, int u) { return (int)((k + u) % FSW_ITEMS); }

/* Expected clicks and last_ts_ms of item i<item> once batches 1..K are in. */
static inline void fsw_expect_item(int64_t K, int item, int64_t *clicks, int64_t *last_ts) {
    *clicks = 0;
    *last_ts = 0;
    for (int64_t k = 1; k <= K; k++)
        for (int u = 0; u < FSW_USERS; u++)
            if (fsw_item(k, u) == item) {
                ++*clicks;
                *last_ts = 10 * k;
            }
}

static inline void fsw_put_item(mmr_fstore_batch_t *b, const char *id, int64_t k) {
    mmr_err_t err;
    float emb[2] = {(float)k, 0.5f};
    mmr_item_t it = {.item_id = id, .created_ms = k, .emb_dim = {2}, .emb = {emb}};
    CHECK_OK(mmr_fstore_batch_put_item(b, &it, &err), &err);
}

static inline void fsw_commit(mmr_fstore_t *fs, int64_t k) {
    mmr_err_t err;
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(b);
    char uid[32], iid[32], eid[64];
    for (int u = 0; u < FSW_USERS; u++) {
        snprintf(uid, sizeof uid, "u%d", u);
        snprintf(iid, sizeof iid, "i%d", fsw_item(k, u));
        snprintf(eid, sizeof eid, "e%lld-%d", (long long)k, u);
        mmr_event_t ev = {eid, uid, iid, MMR_EV_CLICK, 1, 10 * k};
        CHECK_MSG(mmr_fstore_batch_add_event(b, &ev, &err) == 1, "%s", err.msg);
    }
    for (int i = 0; k == 1 && i < FSW_ITEMS; i++) {
        snprintf(iid, sizeof iid, "i%d", i);
        fsw_put_item(b, iid, k);
    }
    snprintf(iid, sizeof iid, "n%lld", (long long)k);
    fsw_put_item(b, iid, k);
    mmr_fstore_batch_set_offset(b, FSW_TOPIC, 0, k);
    mmr_fstore_batch_set_offset(b, FSW_TOPIC, 1, 2 * k);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
}

typedef struct fsw {
    mmr_fstore_t *fs;     /* read-write handle, borrowed */
    atomic_int stop;
    atomic_llong done;    /* batches committed */
    pthread_t th;
} fsw_t;

static inline void *fsw_main(void *arg) {
    fsw_t *w = arg;
    for (int64_t k = 1; !atomic_load(&w->stop); k++) {
        fsw_commit(w->fs, k);
        atomic_store(&w->done, k);
        usleep(500); /* a steady stream, not a busy loop starving the readers' opens */
    }
    return NULL;
}

/* Starts committing batches 1, 2, ... to fs in a thread. */
static inline void fsw_start(fsw_t *w, mmr_fstore_t *fs) {
    w->fs = fs;
    atomic_init(&w->stop, 0);
    atomic_init(&w->done, 0);
    CHECK(pthread_create(&w->th, NULL, fsw_main, w) == 0);
}

/* Stops the writer; returns the number of batches it committed. */
static inline int64_t fsw_stop(fsw_t *w) {
    atomic_store(&w->stop, 1);
    pthread_join(w->th, NULL);
    return atomic_load(&w->done);
}

/* Waits until at least n batches are committed. */
static inline void fsw_wait(fsw_t *w, int64_t n) {
    while (atomic_load(&w->done) < n) usleep(1000);
}

#endif
