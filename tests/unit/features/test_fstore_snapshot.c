/* test_fstore_snapshot.c — snapshots and read-only handles: a snapshot ignores later
 * commits in every column family (items with their stats, users, offsets), leaves deleted
 * items out and gives NULL stats to items without any; a read-only handle opens beside the
 * writer, sees the store as of its open, refuses meta writes, compaction and batch commits,
 * and fails on a missing store; snapshots through read-only handles opened while a writer
 * thread commits (with small memtables, so flushes and WAL switches happen meanwhile) are
 * each consistent with their offsets (fstore_writer.h). */
#include <string.h>

#include "fstore_test.h"
#include "fstore_writer.h"
#include "mmr_fstore.h"

/* What one scan of a snapshot saw, in the terms of fstore_writer.h. */
typedef struct seen {
    int64_t off[2];                  /* FSW_TOPIC/0 and /1; -1 when absent */
    int n_offsets;
    int users;
    int64_t total[FSW_USERS], newest_ts[FSW_USERS];
    int64_t clicks[FSW_ITEMS], last_ts[FSW_ITEMS];
    int items_i, items_n, items_other;
    int other_with_stats;            /* items outside the writer's with a stats record */
    int deleted_seen;                /* an item named "z..." (only ever deleted) */
} seen_t;

static int on_offset(void *opaque, const char *topic, int32_t part, int64_t next) {
    seen_t *s = opaque;
    CHECK_MSG(!strcmp(topic, FSW_TOPIC) && (part == 0 || part == 1), "%s/%d", topic, (int)part);
    s->off[part] = next;
    s->n_offsets++;
    return 0;
}

static int on_user(void *opaque, const char *id, const mmr_user_t *u) {
    seen_t *s = opaque;
    int k = id[0] == 'u' ? atoi(id + 1) : -1;
    CHECK_MSG(k >= 0 && k < FSW_USERS && u->n > 0, "user %s", id);
    s->total[k] = u->events_total;
    s->newest_ts[k] = u->recent[u->n - 1].ts_ms;
    s->users++;
    return 0;
}

static int on_item(void *opaque, const mmr_item_t *it, const mmr_item_stats_t *st) {
    seen_t *s = opaque;
    if (it->item_id[0] == 'i') {
        int k = atoi(it->item_id + 1);
        CHECK(k >= 0 && k < FSW_ITEMS && st && st->impressions == 0 && st->positives == st->clicks);
        CHECK(st->popularity > 0 && st->popularity <= (double)st->clicks + 1e-9);
        s->clicks[k] = st->clicks;
        s->last_ts[k] = st->last_ts_ms;
        s->items_i++;
    } else if (it->item_id[0] == 'n') {
        CHECK(it->emb_dim[0] == 2 && it->emb[0][0] == (float)atoll(it->item_id + 1) && !st);
        s->items_n++;
    } else {
        s->deleted_seen |= it->item_id[0] == 'z';
        s->other_with_stats += st != NULL;
        s->items_other++;
    }
    return 0;
}

static seen_t scan(mmr_fstore_t *fs) {
    mmr_err_t err;
    mmr_fstore_snapshot_t *snap;
    seen_t s = {.off = {-1, -1}};
    CHECK_OK(mmr_fstore_snapshot_new(fs, &snap, &err), &err);
    CHECK(mmr_fstore_snapshot_time_ms(snap) > 0);
    CHECK_OK(mmr_fstore_snapshot_iter_offsets(snap, on_offset, &s, &err), &err);
    CHECK_OK(mmr_fstore_snapshot_iter_items(snap, on_item, &s, &err), &err);
    CHECK_OK(mmr_fstore_snapshot_iter_users(snap, on_user, &s, &err), &err);
    mmr_fstore_snapshot_free(snap);
    return s;
}

/* The scan holds exactly batches 1..K, K = its FSW_TOPIC/0 offset; returns K. */
static int64_t check_consistent(const seen_t *s) {
    int64_t K = s->off[0];
    CHECK_MSG(K >= 1 && s->n_offsets == 2 && s->off[1] == 2 * K, "offsets %lld %lld",
              (long long)s->off[0], (long long)s->off[1]);
    CHECK_MSG(s->users == FSW_USERS && s->items_i == FSW_ITEMS && s->items_n == K,
              "K %lld: %d users, %d i-items, %d n-items, u0 total %lld", (long long)K, s->users,
              s->items_i, s->items_n, (long long)s->total[0]);
    for (int u = 0; u < FSW_USERS; u++)
        CHECK_MSG(s->total[u] == K && s->newest_ts[u] == 10 * K, "K %lld: user u%d total %lld",
                  (long long)K, u, (long long)s->total[u]);
    for (int i = 0; i < FSW_ITEMS; i++) {
        int64_t clicks, last;
        fsw_expect_item(K, i, &clicks, &last);
        CHECK_MSG(s->clicks[i] == clicks && s->last_ts[i] == last, "K %lld: item i%d clicks %lld",
                  (long long)K, i, (long long)s->clicks[i]);
    }
    return K;
}

static int stop_at_first(void *opaque, const mmr_item_t *it, const mmr_item_stats_t *st) {
    ++*(int *)opaque;
    return 1;
}

/* A snapshot of a read-write handle ignores what is committed after it. */
static void test_isolation(const char *dir) {
    mmr_err_t err;
    mmr_fstore_t *fs;
    mmr_fstore_opts_t o = {.path = dir};
    CHECK_OK(mmr_fstore_open(&o, &fs, &err), &err);
    fsw_commit(fs, 1);
    fsw_commit(fs, 2);
    /* Outside the writer's scheme: an item with no stats, a deleted one. */
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    float one = 1;
    mmr_item_t y = {.item_id = "y", .emb_dim = {1}, .emb = {&one}};
    mmr_item_t z = {.item_id = "z", .deleted = 1};
    CHECK_OK(mmr_fstore_batch_put_item(b, &y, &err), &err);
    CHECK_OK(mmr_fstore_batch_put_item(b, &z, &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);

    mmr_fstore_snapshot_t *snap;
    CHECK_OK(mmr_fstore_snapshot_new(fs, &snap, &err), &err);
    fsw_commit(fs, 3);
    seen_t s = {.off = {-1, -1}};
    CHECK_OK(mmr_fstore_snapshot_iter_offsets(snap, on_offset, &s, &err), &err);
    CHECK_OK(mmr_fstore_snapshot_iter_items(snap, on_item, &s, &err), &err);
    CHECK_OK(mmr_fstore_snapshot_iter_users(snap, on_user, &s, &err), &err);
    CHECK(check_consistent(&s) == 2);
    CHECK(s.items_other == 1 && s.other_with_stats == 0 && !s.deleted_seen);
    int calls = 0;
    CHECK_OK(mmr_fstore_snapshot_iter_items(snap, stop_at_first, &calls, &err), &err);
    CHECK(calls == 1);
    mmr_fstore_snapshot_free(snap);
    seen_t now = scan(fs);
    CHECK(check_consistent(&now) == 3);
    mmr_fstore_close(fs);
    printf("ok  a snapshot holds batches 1..2 after batch 3 commits; deleted items left out, "
           "no stats = NULL\n");
}

/* Read-only beside a read-write handle of the same store. */
static void test_read_only(const char *dir) {
    mmr_err_t err;
    mmr_fstore_t *rw, *ro;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    mmr_fstore_opts_t om = {.path = missing, .read_only = 1};
    CHECK(mmr_fstore_open(&om, &ro, &err) == MMR_ERR_NOT_FOUND);
    printf("ok  read-only open of a missing store: %s\n", err.msg);

    mmr_fstore_opts_t orw = {.path = dir}, oro = {.path = dir, .read_only = 1};
    CHECK_OK(mmr_fstore_open(&orw, &rw, &err), &err);
    CHECK_OK(mmr_fstore_open(&oro, &ro, &err), &err);
    CHECK(!mmr_fstore_is_read_only(rw) && mmr_fstore_is_read_only(ro));
    fsw_commit(rw, 4); /* after the read-only open: not seen by it */
    seen_t s = scan(ro);
    CHECK(check_consistent(&s) == 3);
    mmr_user_t *u;
    CHECK_OK(mmr_fstore_get_user(ro, "u0", &u, &err), &err);
    CHECK(u->events_total == 3);
    mmr_user_free(u);

    CHECK(mmr_fstore_meta_put(ro, "model/x", "1", 1, &err) == MMR_ERR_UNSUPPORTED);
    printf("ok  read-only meta write: %s\n", err.msg);
    CHECK(mmr_fstore_compact(ro, &err) == MMR_ERR_UNSUPPORTED);
    printf("ok  read-only compact: %s\n", err.msg);
    CHECK(mmr_fstore_batch_new(ro) == NULL);
    printf("ok  read-only: no batch\n");
    mmr_fstore_close(ro);

    s = scan(rw);
    CHECK(check_consistent(&s) == 4); /* the refused batch left no trace */
    mmr_fstore_close(rw);
    printf("ok  read-only handle beside a writer sees the store as of its open\n");
}

/* Read-only snapshots while a writer thread commits. */
static void test_concurrent(const char *dir) {
    enum { ROUNDS = 10 };
    mmr_err_t err;
    mmr_fstore_t *rw;
    /* Small memtables: flushes, WAL switches and compactions run while readers open. */
    mmr_fstore_opts_t orw = {.path = dir, .rocksdb_options = "write_buffer_size=1048576"};
    mmr_fstore_opts_t oro = {.path = dir, .read_only = 1};
    CHECK_OK(mmr_fstore_open(&orw, &rw, &err), &err);
    fsw_t w;
    fsw_start(&w, rw);
    int64_t prev = 0, first = 0;
    for (int r = 0; r < ROUNDS; r++) {
        fsw_wait(&w, prev + 1);
        mmr_fstore_t *ro;
        CHECK_OK(mmr_fstore_open(&oro, &ro, &err), &err);
        seen_t s = scan(ro);
        mmr_fstore_close(ro);
        int64_t K = check_consistent(&s);
        CHECK(K >= prev);
        if (!first) first = K;
        prev = K;
    }
    int64_t done = fsw_stop(&w);
    mmr_fstore_close(rw);
    mmr_fstore_t *ro;
    CHECK_OK(mmr_fstore_open(&oro, &ro, &err), &err);
    seen_t s = scan(ro);
    CHECK(check_consistent(&s) == done);
    mmr_fstore_close(ro);
    printf("ok  %d read-only snapshots during %lld commits, each consistent (K %lld..%lld)\n",
           ROUNDS, (long long)done, (long long)first, (long long)prev);
}

int main(void) {
    char a[256], c[256];
    fst_tmpdir(a);
    fst_tmpdir(c);
    test_isolation(a);
    test_read_only(a);
    test_concurrent(c);
    fst_rmdir(a);
    fst_rmdir(c);
    return 0;
}
