/* test_fstore_offsets.c — offsets commit with the features: set_offset + commit survive a
 * close/reopen; a batch freed without commit leaves no trace (no user, stats, item, dedup
 * mark or offset); a bad topic fails the commit and writes nothing; must_exist. */
#include "fstore_test.h"
#include "mmr_fstore.h"

#define TOPIC "mmrec.events"

static int64_t offset_of(mmr_fstore_t *fs, const char *topic, int32_t part) {
    mmr_err_t err;
    int64_t off;
    CHECK_OK(mmr_fstore_get_offset(fs, topic, part, &off, &err), &err);
    return off;
}

static int user_exists(mmr_fstore_t *fs, const char *uid) {
    mmr_err_t err;
    mmr_user_t *u = NULL;
    mmr_status_t st = mmr_fstore_get_user(fs, uid, &u, &err);
    CHECK_MSG(st == MMR_OK || st == MMR_ERR_NOT_FOUND, "%s", err.msg);
    mmr_user_free(u);
    return st == MMR_OK;
}

int main(void) {
    char dir[256];
    fst_tmpdir(dir);
    mmr_err_t err;
    mmr_fstore_t *fs;

    mmr_fstore_opts_t must = {.path = dir, .must_exist = 1};
    CHECK(mmr_fstore_open(&must, &fs, &err) == MMR_ERR_NOT_FOUND);
    printf("ok  must_exist on an empty directory: %s\n", err.msg);

    mmr_fstore_opts_t opts = {.path = dir, .sync_writes = 1};
    CHECK_OK(mmr_fstore_open(&opts, &fs, &err), &err);
    CHECK(offset_of(fs, TOPIC, 0) == -1);

    mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
    mmr_event_t ev = {"e1", "alice", "i1", MMR_EV_LIKE, 0, 1000};
    CHECK(mmr_fstore_batch_add_event(b, &ev, &err) == 1);
    mmr_fstore_batch_set_offset(b, TOPIC, 0, 41);
    mmr_fstore_batch_set_offset(b, TOPIC, 0, 42); /* last wins */
    mmr_fstore_batch_set_offset(b, TOPIC, 7, 1000000000000);
    mmr_fstore_batch_set_offset(b, "mmrec.items", 0, 5);
    CHECK_OK(mmr_fstore_batch_commit(b, &err), &err);
    mmr_fstore_batch_free(b);

    mmr_fstore_close(fs);
    CHECK_OK(mmr_fstore_open(&must, &fs, &err), &err);
    CHECK(offset_of(fs, TOPIC, 0) == 42);
    CHECK(offset_of(fs, TOPIC, 7) == 1000000000000);
    CHECK(offset_of(fs, "mmrec.items", 0) == 5);
    CHECK(offset_of(fs, TOPIC, 1) == -1);
    CHECK(offset_of(fs, "other", 0) == -1);
    CHECK(user_exists(fs, "alice"));
    printf("ok  offsets committed with the batch survive close + reopen (last set wins)\n");

    /* An uncommitted batch: events (new user, new item stats, dedup mark), an item and
     * offsets, then freed. */
    b = mmr_fstore_batch_new(fs);
    mmr_event_t ev2 = {"e2", "bob", "i2", MMR_EV_CLICK, 0, 2000};
    mmr_event_t ev3 = {"e3", "alice", "i1", MMR_EV_CLICK, 0, 3000};
    CHECK(mmr_fstore_batch_add_event(b, &ev2, &err) == 1);
    CHECK(mmr_fstore_batch_add_event(b, &ev3, &err) == 1);
    float emb[3] = {1, 2, 3};
    mmr_item_t item = {.item_id = "i2", .emb_dim = {3, 0, 0}, .emb = {emb}};
    CHECK_OK(mmr_fstore_batch_put_item(b, &item, &err), &err);
    mmr_fstore_batch_set_offset(b, TOPIC, 0, 99);
    mmr_fstore_batch_set_offset(b, TOPIC, 3, 10);
    mmr_fstore_batch_free(b);

    CHECK(offset_of(fs, TOPIC, 0) == 42);
    CHECK(offset_of(fs, TOPIC, 3) == -1);
    CHECK(!user_exists(fs, "bob"));
    mmr_user_t *u;
    CHECK_OK(mmr_fstore_get_user(fs, "alice", &u, &err), &err);
    CHECK(u->events_total == 1 && u->n == 1);
    mmr_user_free(u);
    const char *ids[2] = {"i1", "i2"};
    mmr_item_stats_t st[2];
    uint8_t found[2];
    CHECK_OK(mmr_fstore_get_item_stats(fs, 2, ids, st, found, &err), &err);
    CHECK(found[0] && !found[1] && st[0].clicks == 0 && st[0].positives == 1);
    mmr_item_t *items;
    CHECK_OK(mmr_fstore_get_items(fs, 2, ids, &items, found, &err), &err);
    CHECK(!found[0] && !found[1]);
    mmr_fstore_items_free(items);
    b = mmr_fstore_batch_new(fs); /* no dedup mark was left: e2 applies now */
    CHECK(mmr_fstore_batch_add_event(b, &ev2, &err) == 1);
    mmr_fstore_batch_free(b);
    printf("ok  an uncommitted batch leaves no user, stats, item, dedup mark or offset\n");

    /* A bad topic fails the commit, and nothing of the batch is written. */
    b = mmr_fstore_batch_new(fs);
    CHECK(mmr_fstore_batch_add_event(b, &ev2, &err) == 1);
    mmr_fstore_batch_set_offset(b, TOPIC, 0, 100);
    mmr_fstore_batch_set_offset(b, "", 0, 1);
    CHECK(mmr_fstore_batch_commit(b, &err) == MMR_ERR_INVALID);
    printf("ok  bad topic refused at commit: %s\n", err.msg);
    mmr_fstore_batch_free(b);
    b = mmr_fstore_batch_new(fs);
    mmr_fstore_batch_set_offset(b, TOPIC, 0, -5);
    CHECK(mmr_fstore_batch_commit(b, &err) == MMR_ERR_INVALID);
    mmr_fstore_batch_free(b);
    CHECK(offset_of(fs, TOPIC, 0) == 42);
    CHECK(!user_exists(fs, "bob"));
    int64_t off;
    CHECK(mmr_fstore_get_offset(fs, NULL, 0, &off, &err) == MMR_ERR_INVALID && off == -1);
    printf("ok  a failed commit writes nothing; get_offset refuses a NULL topic\n");

    mmr_fstore_close(fs);
    fst_rmdir(dir);
    return 0;
}
