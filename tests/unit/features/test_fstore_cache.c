/* test_fstore_cache.c — the hot-item cache behind mmr_fstore_get_item_summaries:
 *   - summaries equal what RocksDB holds (catalog flags, created_ms, counters) for cached,
 *     uncached, unknown, stats-only and deleted items, and after re-puts;
 *   - exact under concurrency: three reader threads keep reading (and so filling the cache)
 *     while the writer commits 400 batches of events on 1,024 items with the smallest cache
 *     (16 asked, 4 per shard: 256 entries, so constant eviction); whenever the writer is idle, every summary equals the
 *     uncached read, and the counters a reader sees never go backwards;
 *   - bad ids are refused; the hit / miss / entries gauges move. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "fstore_test.h"
#include "mmr_fstore.h"

#define N_HOT 1024
#define BATCHES 400
#define READERS 3

static char hot[N_HOT][16];
static const char *hot_ids[N_HOT];

static void put_item(mmr_fstore_t *fs, const char *id, int deleted, int64_t created) {
    mmr_err_t err = {0};
    float v[4] = {1, 2, 3, 4};
    mmr_item_t it = {.item_id = id, .created_ms = created, .deleted = deleted};
    it.emb[0] = v, it.emb_dim[0] = 4;
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(b);
    CHECK_OK(mmr_fstore_batch_put_item(b, &it, &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
}

/* Every summary of ids equals the store's uncached records. */
static void check_exact(mmr_fstore_t *fs, size_t n, const char *const *ids) {
    mmr_err_t err = {0};
    static mmr_item_summary_t sum[N_HOT];
    static mmr_item_stats_t st[N_HOT];
    static uint8_t found[N_HOT], in_cat[N_HOT];
    mmr_item_t *rec = NULL;
    CHECK_OK(mmr_fstore_get_item_summaries(fs, n, ids, sum, &err), &err);
    CHECK_OK(mmr_fstore_get_item_stats(fs, n, ids, st, found, &err), &err);
    CHECK_OK(mmr_fstore_get_items(fs, n, ids, &rec, in_cat, &err), &err);
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(sum[i].in_catalog == in_cat[i] && sum[i].has_stats == found[i], "%s flags", ids[i]);
        if (in_cat[i]) CHECK(sum[i].deleted == rec[i].deleted && sum[i].created_ms == rec[i].created_ms);
        CHECK_MSG(sum[i].stats.impressions == st[i].impressions && sum[i].stats.clicks == st[i].clicks &&
                      sum[i].stats.positives == st[i].positives && sum[i].stats.last_ts_ms == st[i].last_ts_ms,
                  "%s: cached %lld/%lld, stored %lld/%lld", ids[i], (long long)sum[i].stats.impressions,
                  (long long)sum[i].stats.clicks, (long long)st[i].impressions, (long long)st[i].clicks);
        CHECK(fst_close_rel(sum[i].stats.popularity, st[i].popularity, 1e-9));
    }
    mmr_fstore_items_free(rec);
}

typedef struct reader {
    mmr_fstore_t *fs;
    atomic_bool *stop;
    uint64_t seed, reads;
} reader_t;

static void *reader_main(void *arg) {
    reader_t *r = arg;
    int64_t last[N_HOT] = {0};
    mmr_item_summary_t sum[8];
    const char *ids[8];
    while (!atomic_load(r->stop)) {
        size_t at[8];
        for (int k = 0; k < 8; k++) at[k] = fst_rand(&r->seed) % N_HOT, ids[k] = hot_ids[at[k]];
        mmr_err_t err = {0};
        CHECK_OK(mmr_fstore_get_item_summaries(r->fs, 8, ids, sum, &err), &err);
        for (int k = 0; k < 8; k++) {
            int64_t seen = sum[k].stats.impressions + sum[k].stats.clicks;
            CHECK_MSG(seen >= last[at[k]], "%s went back from %lld to %lld", ids[k],
                      (long long)last[at[k]], (long long)seen);
            last[at[k]] = seen;
        }
        r->reads++;
    }
    return NULL;
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_err_t err = {0};
    mmr_fstore_t *fs = NULL;
    CHECK_OK(mmr_fstore_open(&(mmr_fstore_opts_t){.path = dir, .item_cache = 16}, &fs, &err), &err);
    for (int i = 0; i < N_HOT; i++) {
        snprintf(hot[i], sizeof hot[i], "hot-%d", i);
        hot_ids[i] = hot[i];
        put_item(fs, hot[i], 0, 1000 + i);
    }

    /* Flags: unknown, stats only (an event on an item not in the catalog), deleted, re-put. */
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_event_t ev = {.event_id = "e-orphan", .user_id = "u", .item_id = "orphan", .type = MMR_EV_CLICK,
                      .value = 1, .ts_ms = 5};
    CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    const char *mixed[] = {"hot-0", "nobody", "orphan", "hot-1"};
    mmr_item_summary_t sum[4];
    CHECK_OK(mmr_fstore_get_item_summaries(fs, 4, mixed, sum, &err), &err);
    CHECK(sum[0].in_catalog && !sum[0].deleted && !sum[0].has_stats && sum[0].created_ms == 1000);
    CHECK(!sum[1].in_catalog && !sum[1].has_stats);
    CHECK(!sum[2].in_catalog && sum[2].has_stats && sum[2].stats.clicks == 1);
    put_item(fs, "hot-1", 1, 7); /* cached now: the commit must update the entry */
    CHECK_OK(mmr_fstore_get_item_summaries(fs, 4, mixed, sum, &err), &err);
    CHECK(sum[3].in_catalog && sum[3].deleted && sum[3].created_ms == 7);
    put_item(fs, "hot-1", 0, 1001);
    check_exact(fs, 4, mixed);
    const char *bad[] = {"ok", ""};
    CHECK(mmr_fstore_get_item_summaries(fs, 2, bad, sum, &err) == MMR_ERR_INVALID);
    printf("ok flags: unknown, stats-only, deleted and re-put items read as stored\n");

    /* Concurrency: readers fill a 16-entry cache of 64 hot items while batches land. */
    atomic_bool stop = false;
    reader_t rd[READERS];
    pthread_t th[READERS];
    for (int t = 0; t < READERS; t++) {
        rd[t] = (reader_t){.fs = fs, .stop = &stop, .seed = 77 + (uint64_t)t};
        CHECK(pthread_create(&th[t], NULL, reader_main, &rd[t]) == 0);
    }
    uint64_t seed = 5;
    int n_ev = 0;
    for (int batch = 0; batch < BATCHES; batch++) {
        b = mmr_fstore_batch_new(fs);
        CHECK(b);
        for (int k = 0; k < 50; k++) {
            char eid[32];
            snprintf(eid, sizeof eid, "e%d", n_ev++);
            mmr_event_t e = {.event_id = eid, .user_id = "u1", .item_id = hot_ids[fst_rand(&seed) % N_HOT],
                             .type = k % 3 ? MMR_EV_IMPRESSION : MMR_EV_CLICK, .value = 1, .ts_ms = 1000 + n_ev};
            CHECK(mmr_fstore_batch_add_event(b, &e, &err) == 1);
        }
        CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
        mmr_fstore_batch_free(b);
        if (batch % 40 == 0) check_exact(fs, N_HOT, hot_ids); /* the writer is idle here */
    }
    atomic_store(&stop, true);
    uint64_t reads = 0;
    for (int t = 0; t < READERS; t++) {
        pthread_join(th[t], NULL);
        reads += rd[t].reads;
    }
    check_exact(fs, N_HOT, hot_ids);
    mmr_fstore_stats_t fst;
    mmr_fstore_get_stats(fs, &fst);
    printf("ok concurrent: %d events in %d batches, %llu reads of 8 by %d threads; cache hits %llu, "
           "misses %llu, entries %llu: every summary equals the stored record\n",
           n_ev, BATCHES, (unsigned long long)reads, READERS, (unsigned long long)fst.item_cache_hits,
           (unsigned long long)fst.item_cache_misses, (unsigned long long)fst.item_cache_entries);
    CHECK(fst.item_cache_hits > 0 && fst.item_cache_misses > 0);
    CHECK(fst.item_cache_entries == 64 * 4); /* full: 64 shards of at least 4 */
    mmr_fstore_close(fs);
    fst_rmdir(dir);
    printf("test_fstore_cache: ok\n");
    return 0;
}
