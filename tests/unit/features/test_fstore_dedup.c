/* test_fstore_dedup.c — an event_id is applied once: duplicates inside a batch, across
 * batches and across a reopen return 0 and change nothing; events without an id are never
 * deduplicated; marks older than dedup_ttl_s are dropped by the compaction filter. */
#include "fstore_test.h"
#include "mmr_fstore.h"

#define T0 INT64_C(1700000000000)

static int add(mmr_fstore_batch_t *b, const char *eid, const char *uid, const char *iid) {
    mmr_err_t err;
    mmr_event_t ev = {eid, uid, iid, MMR_EV_CLICK, 0, T0};
    int r = mmr_fstore_batch_add_event(b, &ev, &err);
    CHECK_MSG(r >= 0, "add %s: %s", eid ? eid : "(null)", err.msg);
    return r;
}

static void commit(mmr_fstore_batch_t *b) {
    mmr_err_t err;
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
}

static void expect(mmr_fstore_t *fs, const char *uid, int64_t total, const char *iid,
                   int64_t clicks) {
    mmr_err_t err;
    mmr_user_t *u;
    CHECK_OK(mmr_fstore_get_user(fs, uid, &u, &err), &err);
    CHECK_MSG(u->events_total == total, "%s: events_total %lld want %lld", uid,
              (long long)u->events_total, (long long)total);
    mmr_user_free(u);
    mmr_item_stats_t s;
    uint8_t found;
    CHECK_OK(mmr_fstore_get_item_stats(fs, 1, &iid, &s, &found, &err), &err);
    CHECK(found);
    CHECK_MSG(s.clicks == clicks, "%s: clicks %lld want %lld", iid, (long long)s.clicks,
              (long long)clicks);
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {.path = dir, .dedup_ttl_s = 1};
    mmr_fstore_t *fs;
    mmr_err_t err;
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);

    /* Within one batch. */
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    CHECK(add(b, "e1", "alice", "i1") == 1);
    CHECK(add(b, "e2", "alice", "i1") == 1);
    CHECK(add(b, "e1", "alice", "i1") == 0);
    CHECK(add(b, "e1", "bob", "i2") == 0); /* same id, other payload: still a duplicate */
    CHECK(add(b, "e2", "alice", "i1") == 0);
    CHECK(add(b, "", "alice", "i1") == 1); /* no id: no dedup possible */
    CHECK(add(b, "", "alice", "i1") == 1);
    CHECK(add(b, NULL, "alice", "i1") == 1);
    CHECK(mmr_fstore_batch_count(b) == 5);
    commit(b);
    expect(fs, "alice", 5, "i1", 5);
    CHECK(mmr_fstore_get_user(fs, "bob", &(mmr_user_t *){NULL}, &err) == MMR_ERR_NOT_FOUND);
    printf("ok  duplicates within a batch applied once, batch_add_event returned 0\n");

    /* Across batches (the first lookup goes to the DB, then the batch's own set). */
    b = mmr_fstore_batch_new(fs);
    CHECK(add(b, "e1", "alice", "i1") == 0);
    CHECK(add(b, "e3", "alice", "i1") == 1);
    CHECK(add(b, "e3", "alice", "i1") == 0);
    CHECK(add(b, "e2", "carol", "i1") == 0);
    CHECK(mmr_fstore_batch_count(b) == 1);
    commit(b);
    expect(fs, "alice", 6, "i1", 6);
    printf("ok  duplicates across batches applied once\n");

    /* Across a reopen (marks are durable, and flushed to SST by close). */
    mmr_fstore_close(fs);
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    b = mmr_fstore_batch_new(fs);
    CHECK(add(b, "e1", "alice", "i1") == 0);
    CHECK(add(b, "e3", "alice", "i1") == 0);
    CHECK(mmr_fstore_batch_count(b) == 0);
    commit(b);
    expect(fs, "alice", 6, "i1", 6);
    printf("ok  duplicates after reopen applied once\n");

    /* TTL: with dedup_ttl_s = 1, a mark 2 s old is dropped by the next compaction and the
     * same id is applied again; a fresh mark survives the same compaction. */
    sleep(2);
    b = mmr_fstore_batch_new(fs);
    CHECK(add(b, "e4", "alice", "i1") == 1);
    commit(b);
    CHECK_OK(mmr_fstore_compact(fs, &err), &err);
    b = mmr_fstore_batch_new(fs);
    CHECK(add(b, "e1", "alice", "i1") == 1);
    CHECK(add(b, "e4", "alice", "i1") == 0);
    commit(b);
    expect(fs, "alice", 8, "i1", 8);
    printf("ok  marks older than dedup_ttl_s dropped by the compaction filter, fresh ones kept\n");

    mmr_fstore_close(fs);
    fst_rmdir(dir);
    return 0;
}
