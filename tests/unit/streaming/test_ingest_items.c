/* test_ingest_items.c — the catalog topic (mmrec.items) end to end, on librdkafka's mock
 * cluster and a real (temporary) feature store, with events flowing in the same run:
 *   1. item puts (random absent modalities, any-width video), updates of one id, tombstones
 *      (some carrying ignored embeddings) and every kind of bad item, interleaved with an
 *      event stream: the store's items equal the ground truth (embeddings bit for bit,
 *      created_ms, deleted = 1 for tombstones), an id only ever sent bad is absent, the DLQ
 *      holds exactly the bad messages of both topics with their reasons, the store and the
 *      group's Kafka commits hold the end offsets of both topics, the counters are exact;
 *   2. a second ingest on the same store and group, fed while running (update, delete,
 *      un-delete): it resumes both topics from the store and reads only the new messages;
 *   3. format JSON on a fresh cluster and store: JSON items and events take the same path. */
#include <ftw.h>
#include <unistd.h>

#include "ingest_test.h"
#include "mmr_fstore.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static mmr_fstore_t *open_store(char *dir, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/mmr_items_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    mmr_fstore_t *fs;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = dir};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "fstore_open: %s", err.msg);
    return fs;
}

static void close_store(mmr_fstore_t *fs, const char *dir) {
    mmr_fstore_close(fs);
    CHECK(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

static mmr_ingest_t *start_ingest(const it_env_t *env, const char *group, mmr_fstore_t *fs,
                                  mmr_ingest_format_t format) {
    mmr_ingest_conf_t conf = it_conf(env, group);
    conf.format = format;
    mmr_ingest_t *ing;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_ingest_new(&conf, fs, &ing, &err) == MMR_OK, "ingest_new: %s", err.msg);
    CHECK_MSG(mmr_ingest_start(ing, &err) == MMR_OK, "ingest_start: %s", err.msg);
    return ing;
}

/* Store offsets equal the produced end of every partition of both topics, and so do the
 * group's Kafka commits (a partition with no message may have no commit). */
static void check_offsets(const it_env_t *env, mmr_fstore_t *fs, const char *group) {
    static const char *const topics[] = {IT_EVENTS, IT_ITEMS};
    static const int32_t n_parts[] = {IT_PARTITIONS, IT_ITEM_PARTITIONS};
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(c, "bootstrap.servers", env->bootstraps, errstr, sizeof errstr) == 0);
    CHECK(rd_kafka_conf_set(c, "group.id", group, errstr, sizeof errstr) == 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    CHECK_MSG(rk != NULL, "%s", errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < 2; t++)
        for (int32_t p = 0; p < n_parts[t]; p++) rd_kafka_topic_partition_list_add(l, topics[t], p);
    CHECK(rd_kafka_committed(rk, l, 10000) == 0);
    for (int i = 0; i < l->cnt; i++) {
        const char *topic = l->elems[i].topic;
        int32_t p = l->elems[i].partition;
        int64_t stored, end = it_end_offset(env, topic, p);
        mmr_err_t err = {0};
        CHECK_MSG(mmr_fstore_get_offset(fs, topic, p, &stored, &err) == MMR_OK, "%s", err.msg);
        CHECK_MSG(stored == (end ? end : -1), "%s/%d: store offset %lld, end %lld", topic, p,
                  (long long)stored, (long long)end);
        CHECK_MSG(l->elems[i].offset == stored || (!end && l->elems[i].offset < 0),
                  "%s/%d: Kafka commit %lld, store %lld", topic, p,
                  (long long)l->elems[i].offset, (long long)stored);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static int count_live(void *opaque, const mmr_item_t *item) {
    CHECK_MSG(!item->deleted, "iter_items returned tombstone %s", item->item_id);
    ++*(size_t *)opaque;
    return 0;
}

/* The store's items equal env->items: absent, tombstone or live with the exact embeddings. */
static void check_items(const it_env_t *env, mmr_fstore_t *fs, const char *phase) {
    char keys[IT_CATALOG][16];
    const char *ids[IT_CATALOG];
    for (int i = 0; i < IT_CATALOG; i++) {
        it_item_key(i, keys[i], sizeof keys[i]);
        ids[i] = keys[i];
    }
    mmr_item_t *got = NULL;
    uint8_t found[IT_CATALOG];
    mmr_err_t err = {0};
    CHECK_MSG(mmr_fstore_get_items(fs, IT_CATALOG, ids, &got, found, &err) == MMR_OK, "%s: %s",
              phase, err.msg);
    size_t live = 0, deleted = 0;
    for (int i = 0; i < IT_CATALOG; i++) {
        const it_item_t *t = &env->items[i];
        if (t->state == IT_ITEM_NONE) {
            CHECK_MSG(!found[i], "%s: item %s stored, but never sent valid", phase, ids[i]);
            continue;
        }
        CHECK_MSG(found[i], "%s: item %s missing", phase, ids[i]);
        CHECK_MSG(got[i].deleted == (t->state == IT_ITEM_DELETED), "%s: item %s deleted %d",
                  phase, ids[i], got[i].deleted);
        CHECK_MSG(got[i].created_ms == t->created_ms, "%s: item %s created_ms %lld, want %lld",
                  phase, ids[i], (long long)got[i].created_ms, (long long)t->created_ms);
        for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
            CHECK_MSG(got[i].emb_dim[m] == t->dim[m], "%s: item %s modality %d width %u, want %u",
                      phase, ids[i], m, got[i].emb_dim[m], t->dim[m]);
            CHECK_MSG(!t->dim[m] ||
                          memcmp(got[i].emb[m], t->emb[m], t->dim[m] * sizeof(float)) == 0,
                      "%s: item %s modality %d values differ", phase, ids[i], m);
        }
        live += t->state == IT_ITEM_LIVE;
        deleted += t->state == IT_ITEM_DELETED;
    }
    mmr_fstore_items_free(got);
    size_t served = 0;
    CHECK_MSG(mmr_fstore_iter_items(fs, count_live, &served, &err) == MMR_OK, "%s", err.msg);
    CHECK_MSG(served == live, "%s: iter_items saw %zu live items, want %zu", phase, served, live);
    printf("%s: %zu live items, %zu tombstones, %d absent: store equals ground truth\n", phase,
           live, deleted, IT_CATALOG - (int)(live + deleted));
}

static void check_dlq(it_env_t *env, uint64_t bad) {
    int64_t n = it_read_dlq(env);
    CHECK_MSG((uint64_t)n == bad, "DLQ holds %lld records, want %llu", (long long)n,
              (unsigned long long)bad);
    for (size_t i = 0; i < env->n_msgs; i++)
        CHECK_MSG(env->msgs[i].dlq_seen == (env->msgs[i].reason != IT_GOOD),
                  "message %s/%d/%lld seen %d times in the DLQ", env->msgs[i].topic,
                  env->msgs[i].partition, (long long)env->msgs[i].offset, env->msgs[i].dlq_seen);
}

static void check_run(const char *phase, const mmr_ingest_stats_t *s, const it_expect_t *x) {
    it_check_stats(phase, s, x);
    CHECK_MSG(s->consumed == x->messages, "%s: consumed %llu, want %llu", phase,
              (unsigned long long)s->consumed, (unsigned long long)x->messages);
    CHECK_MSG(s->store_errors == 0 && s->dlq_errors == 0 && s->commit_errors == 0,
              "%s: store %llu dlq %llu commit %llu errors", phase,
              (unsigned long long)s->store_errors, (unsigned long long)s->dlq_errors,
              (unsigned long long)s->commit_errors);
}

/* --- JSON ------------------------------------------------------------------------------- */

/* Appends `"name":[v,...]` for n floats, printed so that they read back exactly. */
static size_t json_floats(char *buf, size_t cap, const char *name, const float *v, uint32_t n) {
    size_t o = (size_t)snprintf(buf, cap, ",\"%s\":[", name);
    for (uint32_t i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%.9g", i ? "," : "", (double)v[i]);
    o += (size_t)snprintf(buf + o, cap - o, "]");
    CHECK(o < cap);
    return o;
}

/* A JSON put of catalog item idx: text and video present, image absent. */
static void json_item_put(it_env_t *e, int idx, float base, it_expect_t *x) {
    static const char *const names[MMR_MODALITY_COUNT] = {"text_emb", "imageEmb", "video_emb"};
    it_item_t *t = &e->items[idx];
    t->state = IT_ITEM_LIVE;
    t->created_ms = INT64_C(1700000000000) + idx;
    t->dim[0] = it_emb_dims[0], t->dim[1] = 0, t->dim[2] = 3;
    char buf[1024], key[16];
    it_item_key(idx, key, sizeof key);
    size_t o = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":\"%s\",\"created_ms\":\"%lld\"",
                                key, (long long)t->created_ms);
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        for (uint32_t i = 0; i < t->dim[m]; i++) t->emb[m][i] = base + 0.1f * (float)i;
        if (t->dim[m]) o += json_floats(buf + o, sizeof buf - o, names[m], t->emb[m], t->dim[m]);
    }
    o += (size_t)snprintf(buf + o, sizeof buf - o, "}");
    it_send_to(e, IT_ITEMS, idx % IT_ITEM_PARTITIONS, key, buf, o, IT_GOOD);
    x->items_applied++;
    x->messages++;
}

static void json_send(it_env_t *e, const char *topic, int32_t partition, const char *key,
                      const char *json, int reason, it_expect_t *x) {
    it_send_to(e, topic, partition, key, json, strlen(json), reason);
    x->messages++;
    if (reason != IT_GOOD) {
        x->dead[reason]++;
        x->bad++;
    }
}

static void phase_json(void) {
    char dir[256];
    mmr_fstore_t *fs = open_store(dir, sizeof dir);
    it_env_t env;
    it_env_init(&env);
    it_expect_t x = {0};
    json_item_put(&env, 0, 1.5f, &x);
    json_item_put(&env, 1, -2.0f, &x);
    json_send(&env, IT_EVENTS, 1, "u1",
              "{\"event_id\":\"je1\",\"user_id\":\"u1\",\"item_id\":\"c0\",\"type\":\"CLICK\"}",
              IT_GOOD, &x);
    env.user_events[1]++;
    x.applied++;
    json_item_put(&env, 0, 7.25f, &x); /* update */
    json_send(&env, IT_ITEMS, 1, "c1", "{\"item_id\":\"c1\",\"deleted\":true,\"createdMs\":5}",
              IT_GOOD, &x);
    memset(&env.items[1], 0, sizeof env.items[1]);
    env.items[1].state = IT_ITEM_DELETED;
    env.items[1].created_ms = 5;
    x.items_applied++;
    json_send(&env, IT_ITEMS, 0, "c2", "{\"item_id\":\"c2\",\"text_emb\":[1,2,3]}",
              MMR_INGEST_BAD_EMB_WIDTH, &x);
    json_send(&env, IT_ITEMS, 0, "c2",
              "{\"item_id\":\"c2\",\"text_emb\":[1,2,3,4,5,6,7,\"NaN\"]}",
              MMR_INGEST_BAD_EMB_VALUE, &x);
    json_send(&env, IT_ITEMS, 0, "c0", "{\"item_id\":\"c0\",\"text_emb\":", MMR_INGEST_BAD_DECODE,
              &x);
    json_send(&env, IT_ITEMS, 0, NULL, "{\"text_emb\":[1,2,3,4,5,6,7,8]}",
              MMR_INGEST_BAD_MISSING_ID, &x);
    json_send(&env, IT_EVENTS, 2, "u2", "{\"user_id\":\"u2\",\"item_id\":\"c0\",\"type\":\"LIKE\"}",
              IT_GOOD, &x);
    env.user_events[2]++;
    x.applied++;
    it_flush(&env);

    mmr_ingest_t *ing = start_ingest(&env, "mmrec-items-json", fs, MMR_INGEST_FORMAT_JSON);
    mmr_ingest_stats_t s;
    it_wait(ing, &x, &s);
    mmr_ingest_free(ing);
    check_run("phase 3 (JSON)", &s, &x);
    check_items(&env, fs, "phase 3 (JSON)");
    it_check_users(&env, fs);
    check_offsets(&env, fs, "mmrec-items-json");
    check_dlq(&env, x.bad);
    it_env_free(&env);
    close_store(fs, dir);
}

int main(void) {
    it_log_level(MMR_LOG_WARN);
    char dir[256];
    mmr_fstore_t *fs = open_store(dir, sizeof dir);
    it_env_t env;
    it_env_init(&env);
    uint64_t bad_total = 0;

    /* 1: events and items interleaved, produced before the ingest starts. */
    it_expect_t x1 = {0};
    for (int round = 0; round < 4; round++) {
        it_send_stream(&env, 30, 4, 6, 6, &x1);
        it_send_items(&env, 15, 2, 4, &x1);
    }
    for (int k = 0; k < 8; k++) it_item_bad(&env, IT_BAD_ONLY, k, &x1); /* every reason */
    it_item_put(&env, 0, &x1);
    it_send_stream(&env, 5, 0, 1, 1, &x1);
    it_item_put(&env, 0, &x1);            /* update of the same id */
    it_item_bad(&env, 0, 5, &x1);         /* a NaN for c0 afterwards must not touch it */
    it_item_put(&env, 1, &x1);
    it_item_delete(&env, 1, 1, &x1);      /* tombstone (with ignored embeddings) */
    CHECK(env.items[0].state == IT_ITEM_LIVE && env.items[1].state == IT_ITEM_DELETED);
    CHECK(env.items[IT_BAD_ONLY].state == IT_ITEM_NONE);
    it_flush(&env);

    mmr_ingest_t *ing = start_ingest(&env, "mmrec-items-test", fs, MMR_INGEST_FORMAT_PROTOBUF);
    mmr_ingest_stats_t s;
    it_wait(ing, &x1, &s);
    mmr_ingest_free(ing);
    check_run("phase 1", &s, &x1);
    for (int r = MMR_INGEST_BAD_EMB_WIDTH; r <= MMR_INGEST_BAD_EMB_VALUE; r++)
        CHECK(x1.dead[r] > 0); /* the new reasons were exercised */
    bad_total += x1.bad;
    check_items(&env, fs, "phase 1");
    it_check_users(&env, fs);
    check_offsets(&env, fs, "mmrec-items-test");
    check_dlq(&env, bad_total);
    printf("phase 1: %llu messages: %llu events applied, %llu items applied, %llu "
           "dead-lettered, %llu batches ok\n", (unsigned long long)x1.messages,
           (unsigned long long)s.applied, (unsigned long long)s.items_applied,
           (unsigned long long)x1.bad, (unsigned long long)s.batches);

    /* 2: same store and group, fed while running. */
    ing = start_ingest(&env, "mmrec-items-test", fs, MMR_INGEST_FORMAT_PROTOBUF);
    it_expect_t x2 = {0};
    it_item_put(&env, 0, &x2);       /* another update */
    it_item_put(&env, 1, &x2);       /* un-delete */
    it_item_delete(&env, 2, 0, &x2);
    it_send_stream(&env, 20, 2, 5, 4, &x2);
    it_send_items(&env, 10, 2, 8, &x2);
    it_flush(&env);
    it_wait(ing, &x2, &s);
    mmr_ingest_free(ing);
    check_run("phase 2", &s, &x2); /* consumed = only the new messages */
    bad_total += x2.bad;
    check_items(&env, fs, "phase 2");
    it_check_users(&env, fs);
    check_offsets(&env, fs, "mmrec-items-test");
    check_dlq(&env, bad_total);
    printf("phase 2: resumed both topics from the store, %llu new messages ok\n",
           (unsigned long long)x2.messages);

    it_env_free(&env);
    close_store(fs, dir);

    phase_json();
    printf("phase 3: JSON items and events ok\n");
    return 0;
}
