/* test_fstore_throughput.c — informational: 200k events applied in batches of 1000 (each
 * with an event id, so the dedup lookup is included), 20k users, 5k items, skewed towards
 * popular items. Prints events/s; asserts only that every event was applied. */
#include "fstore_test.h"
#include "mmr_fstore.h"
#include "mmr_time.h"

#define N_EVENTS 200000
#define BATCH 1000
#define N_USERS 20000
#define N_ITEMS 5000

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {.path = dir};
    mmr_fstore_t *fs;
    mmr_err_t err;
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);

    uint64_t rng = 42;
    char eid[32], uid[32], iid[32];
    size_t applied = 0;
    int64_t t0 = mmr_mono_ns(), worst_ns = 0;
    for (int k = 0; k < N_EVENTS; k += BATCH) {
        int64_t b0 = mmr_mono_ns();
        mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
        CHECK(b);
        for (int j = k; j < k + BATCH; j++) {
            uint64_t r = fst_rand(&rng);
            int item = (int)(r % 8 == 0 ? r % N_ITEMS : (r >> 8) % 100); /* hot head */
            snprintf(eid, sizeof eid, "ev-%d", j);
            snprintf(uid, sizeof uid, "user-%d", (int)(fst_rand(&rng) % N_USERS));
            snprintf(iid, sizeof iid, "item-%d", item);
            mmr_event_t ev = {eid, uid, iid, (mmr_event_type_t)(1 + (r >> 20) % 8),
                              (float)((r >> 32) % 30), 1700000000000 + j};
            CHECK_MSG(mmr_fstore_batch_add_event(b, &ev, &err) == 1, "%s", err.msg);
        }
        mmr_fstore_batch_set_offset(b, "mmrec.events", 0, k + BATCH);
        CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
        applied += mmr_fstore_batch_count(b);
        mmr_fstore_batch_free(b);
        int64_t dt = mmr_mono_ns() - b0;
        if (dt > worst_ns) worst_ns = dt;
    }
    double secs = (double)(mmr_mono_ns() - t0) / 1e9;
    CHECK(applied == N_EVENTS);
    int64_t off;
    CHECK_OK(mmr_fstore_get_offset(fs, "mmrec.events", 0, &off, &err), &err);
    CHECK(off == N_EVENTS);
    printf("info %d events in batches of %d: %.2f s, %.0f events/s, slowest batch %.1f ms\n",
           N_EVENTS, BATCH, secs, N_EVENTS / secs, (double)worst_ns / 1e6);

    mmr_fstore_close(fs);
    fst_rmdir(dir);
    return 0;
}
