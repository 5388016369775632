/* test_fstore_corrupt.c — garbage written straight into the column families through a raw
 * RocksDB handle: reads return MMR_ERR_CORRUPT with a message (never crash), ingestion
 * replaces a bad user record and the merge operator drops a bad stats base; the schema
 * version check refuses a newer store, also one with column families we do not know. */
#include <rocksdb/c.h>

#include "fstore_test.h"
#include "mmr_fstore.h"

/* Opens the store's DB with every column family it has, puts key → val into cf, closes. */
static void raw_put(const char *path, const char *cf, const char *key, const void *val,
                    size_t vlen, const char *create_cf) {
    rocksdb_options_t *o = rocksdb_options_create();
    char *rerr = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(o, path, &n, &rerr);
    CHECK_MSG(!rerr, "%s", rerr);
    const rocksdb_options_t *cfo[16];
    rocksdb_column_family_handle_t *h[16];
    CHECK(n <= 16);
    for (size_t i = 0; i < n; i++) cfo[i] = o;
    rocksdb_t *db = rocksdb_open_column_families(o, path, (int)n, (const char *const *)names, cfo,
                                                 h, &rerr);
    CHECK_MSG(db, "%s", rerr);
    if (create_cf) {
        rocksdb_column_family_handle_t *c = rocksdb_create_column_family(db, o, create_cf, &rerr);
        CHECK_MSG(!rerr, "%s", rerr);
        rocksdb_column_family_handle_destroy(c);
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    size_t i = 0;
    while (i < n && strcmp(names[i], cf)) i++;
    CHECK_MSG(i < n, "no column family %s", cf);
    rocksdb_put_cf(db, wo, h[i], key, strlen(key), val, vlen, &rerr);
    CHECK_MSG(!rerr, "%s", rerr);
    rocksdb_writeoptions_destroy(wo);
    for (size_t k = 0; k < n; k++) rocksdb_column_family_handle_destroy(h[k]);
    rocksdb_close(db);
    rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(o);
}

static void expect_corrupt(mmr_status_t st, const mmr_err_t *err, const char *what) {
    CHECK_MSG(st == MMR_ERR_CORRUPT, "%s: got %s", what, mmr_status_str(st));
    CHECK(err->msg[0]);
    printf("ok  %-28s -> MMR_ERR_CORRUPT: %s\n", what, err->msg);
}

static int count_items(void *opaque, const mmr_item_t *it) {
    ++*(int *)opaque;
    return 0;
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_fstore_opts_t opts = {.path = dir};
    mmr_fstore_t *fs;
    mmr_err_t err;

    /* A store with one good user, item and stats record. */
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_event_t ev = {"e1", "good", "item-good", MMR_EV_CLICK, 0, 1000};
    CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
    float emb[4] = {1, 2, 3, 4};
    mmr_item_t good = {.item_id = "item-good", .emb_dim = {4, 0, 0}, .emb = {emb}};
    CHECK_OK(mmr_fstore_batch_put_item(b, &good, &err), &err);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    mmr_fstore_close(fs);

    /* users: n = 2 claimed, but one truncated entry follows. */
    static const unsigned char bad_user[] = {1, 5, 2, 3, 'a', 'b', 'c', 2, 0, 0};
    raw_put(dir, "users", "alice", bad_user, sizeof bad_user, NULL);
    raw_put(dir, "users", "zed", "\x07garbage", 8, NULL); /* unknown version */
    /* items: header claims a 1000-float text embedding, 30 bytes follow. */
    unsigned char bad_item[30] = {1, 0};
    bad_item[10] = 0xe8;
    bad_item[11] = 0x03;
    raw_put(dir, "items", "item-bad", bad_item, sizeof bad_item, NULL);
    raw_put(dir, "stats", "item-bad", "xyz", 3, NULL);
    raw_put(dir, "meta", "offset/t/0", "abc", 3, NULL);

    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    mmr_user_t *u = NULL;
    expect_corrupt(mmr_fstore_get_user(fs, "alice", &u, &err), &err, "get_user (truncated)");
    CHECK(u == NULL);
    expect_corrupt(mmr_fstore_get_user(fs, "zed", &u, &err), &err, "get_user (version)");
    CHECK_OK(mmr_fstore_get_user(fs, "good", &u, &err), &err);
    mmr_user_free(u);

    mmr_item_t *items = (mmr_item_t *)1;
    uint8_t found[2];
    const char *ids[2] = {"item-good", "item-bad"};
    expect_corrupt(mmr_fstore_get_items(fs, 2, ids, &items, found, &err), &err, "get_items");
    CHECK(items == NULL && !found[0] && !found[1]);
    int n = 0;
    expect_corrupt(mmr_fstore_iter_items(fs, count_items, &n, &err), &err, "iter_items");
    CHECK(n == 0); /* "item-bad" sorts first */
    mmr_item_stats_t st[2];
    expect_corrupt(mmr_fstore_get_item_stats(fs, 2, ids, st, found, &err), &err, "get_item_stats");
    CHECK(!found[0] && !found[1]);
    int64_t off;
    expect_corrupt(mmr_fstore_get_offset(fs, "t", 0, &off, &err), &err, "get_offset");

    /* Ingestion goes on: the bad user record is replaced (WARN), the bad stats base is
     * dropped by the merge operator (WARN), and the new events count. */
    b = mmr_fstore_batch_new(fs);
    mmr_event_t ev2 = {"e2", "alice", "item-bad", MMR_EV_CLICK, 0, 2000};
    mmr_event_t ev3 = {"e3", "alice", "item-bad", MMR_EV_IMPRESSION, 0, 3000};
    CHECK(mmr_fstore_batch_add_event(b, &ev2, &err) == 1);
    CHECK(mmr_fstore_batch_add_event(b, &ev3, &err) == 1);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);
    CHECK_OK(mmr_fstore_get_user(fs, "alice", &u, &err), &err);
    CHECK(u->events_total == 2 && u->n == 2 && !strcmp(u->recent[1].item_id, "item-bad"));
    mmr_user_free(u);
    CHECK_OK(mmr_fstore_get_item_stats(fs, 2, ids, st, found, &err), &err);
    CHECK(found[1] && st[1].clicks == 1 && st[1].impressions == 1 && st[1].last_ts_ms == 3000);
    printf("ok  ingestion replaces a bad user record and drops a bad stats base (WARN logged)\n");
    mmr_fstore_close(fs);

    /* Schema versions: a malformed one, a newer one, a newer one with a new CF. */
    raw_put(dir, "meta", "schema_version", "\x01\x00", 2, NULL);
    expect_corrupt(mmr_fstore_open(&opts, &fs, &err), &err, "open (bad schema)");
    raw_put(dir, "meta", "schema_version", "\x02\x00\x00\x00", 4, NULL);
    CHECK(mmr_fstore_open(&opts, &fs, &err) == MMR_ERR_UNSUPPORTED);
    printf("ok  open (newer schema)             -> MMR_ERR_UNSUPPORTED: %s\n", err.msg);
    raw_put(dir, "meta", "schema_version", "\x02\x00\x00\x00", 4, "fused_v2");
    CHECK(mmr_fstore_open(&opts, &fs, &err) == MMR_ERR_UNSUPPORTED);
    printf("ok  open (newer schema + new CF)    -> MMR_ERR_UNSUPPORTED: %s\n", err.msg);
    raw_put(dir, "meta", "schema_version", "\x01\x00\x00\x00", 4, NULL);
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err); /* unknown CF, our schema: opens */
    mmr_fstore_close(fs);
    printf("ok  our schema with an extra column family opens\n");

    fst_rmdir(dir);
    return 0;
}
