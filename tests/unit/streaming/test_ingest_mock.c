/* test_ingest_mock.c — mmr_ingest end to end against librdkafka's mock cluster and a real
 * (temporary) feature store:
 *   1. a stream with duplicates and every kind of malformed message: the counters, the
 *      store (offsets, per-user totals) and the group's Kafka commits match the ground
 *      truth, and the DLQ holds exactly the bad messages, bytes, keys and reasons intact;
 *   2. a second ingest on the same store and group, fed while running: it resumes where
 *      the first stopped (reads only the new messages) and counts re-sent events as
 *      duplicates, not applications;
 *   3. a third ingest with a NEW group on the same store: it still resumes from the
 *      store's offsets, not from Kafka's (which that group does not have). */
#include <ftw.h>
#include <unistd.h>

#include "ingest_test.h"
#include "mmr_fstore.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static mmr_ingest_t *start_ingest(const it_env_t *env, const char *group, mmr_fstore_t *fs) {
    mmr_ingest_conf_t conf = it_conf(env, group);
    mmr_ingest_t *ing;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_new(&conf, fs, &ing, &err);
    CHECK_MSG(st == MMR_OK, "ingest_new: %s", err.msg);
    CHECK_MSG(mmr_ingest_start(ing, &err) == MMR_OK, "ingest_start: %s", err.msg);
    return ing;
}

/* Store offsets equal the produced end of every partition; so do the group's commits
 * (all_committed: every partition must have one; else only those the group committed). */
static void check_offsets(const it_env_t *env, mmr_fstore_t *fs, const char *group,
                          int all_committed) {
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(c, "bootstrap.servers", env->bootstraps, errstr, sizeof errstr) == 0);
    CHECK(rd_kafka_conf_set(c, "group.id", group, errstr, sizeof errstr) == 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    CHECK_MSG(rk != NULL, "%s", errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(IT_PARTITIONS);
    for (int32_t p = 0; p < IT_PARTITIONS; p++) rd_kafka_topic_partition_list_add(l, IT_EVENTS, p);
    CHECK(rd_kafka_committed(rk, l, 10000) == 0);
    for (int32_t p = 0; p < IT_PARTITIONS; p++) {
        int64_t stored;
        mmr_err_t err = {0};
        CHECK_MSG(mmr_fstore_get_offset(fs, IT_EVENTS, p, &stored, &err) == MMR_OK, "%s", err.msg);
        int64_t end = it_end_offset(env, IT_EVENTS, p);
        CHECK_MSG(stored == end, "partition %d: store offset %lld, end %lld", p,
                  (long long)stored, (long long)end);
        CHECK_MSG(l->elems[p].offset == stored || (!all_committed && l->elems[p].offset < 0),
                  "partition %d: Kafka commit %lld, store %lld", p,
                  (long long)l->elems[p].offset, (long long)stored);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void check_dlq(it_env_t *env, const it_expect_t *total) {
    int64_t n = it_read_dlq(env);
    CHECK_MSG((uint64_t)n == total->bad, "DLQ holds %lld records, want %llu", (long long)n,
              (unsigned long long)total->bad);
    for (size_t i = 0; i < env->n_msgs; i++)
        CHECK_MSG(env->msgs[i].dlq_seen == (env->msgs[i].reason != IT_GOOD),
                  "message %d/%lld seen %d times in the DLQ", env->msgs[i].partition,
                  (long long)env->msgs[i].offset, env->msgs[i].dlq_seen);
}

int main(void) {
    it_log_level(MMR_LOG_WARN);
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mmr_ingest_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    mmr_fstore_t *fs;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = dir};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "fstore_open: %s", err.msg);

    it_env_t env;
    it_env_init(&env);
    it_expect_t total = {0};

    /* 1: produce first, then ingest everything. */
    it_expect_t x1 = {0};
    it_send_stream(&env, 150, 20, 40, 36, &x1);
    it_flush(&env);
    mmr_ingest_t *ing = start_ingest(&env, "mmrec-ingest-test", fs);
    CHECK(mmr_ingest_start(ing, &err) == MMR_ERR_INVALID); /* once only */
    mmr_ingest_stats_t s;
    it_wait(ing, &x1, &s);
    mmr_ingest_stop(ing);
    mmr_ingest_stop(ing); /* twice is fine */
    mmr_ingest_get_stats(ing, &s);
    it_check_stats("phase 1", &s, &x1);
    CHECK_MSG(s.consumed == x1.messages, "phase 1: consumed %llu of %llu",
              (unsigned long long)s.consumed, (unsigned long long)x1.messages);
    CHECK(s.store_errors == 0 && s.dlq_errors == 0 && s.commit_errors == 0);
    CHECK(s.batches >= x1.messages / 16);
    mmr_ingest_free(ing);
    total.bad += x1.bad;
    check_offsets(&env, fs, "mmrec-ingest-test", 1);
    it_check_users(&env, fs);
    check_dlq(&env, &total);
    printf("phase 1: %llu messages: %llu applied, %llu duplicates, %llu dead-lettered, "
           "%llu batches ok\n", (unsigned long long)x1.messages, (unsigned long long)s.applied,
           (unsigned long long)s.duplicates, (unsigned long long)x1.bad,
           (unsigned long long)s.batches);

    /* 2: same store, same group, messages arrive while it runs. */
    ing = start_ingest(&env, "mmrec-ingest-test", fs);
    it_expect_t x2 = {0};
    it_send_stream(&env, 60, 5, 30, 12, &x2);
    it_flush(&env);
    it_wait(ing, &x2, &s);
    mmr_ingest_free(ing); /* stops */
    it_check_stats("phase 2", &s, &x2);
    CHECK_MSG(s.consumed == x2.messages, "phase 2: consumed %llu, want only the %llu new",
              (unsigned long long)s.consumed, (unsigned long long)x2.messages);
    total.bad += x2.bad;
    check_offsets(&env, fs, "mmrec-ingest-test", 1);
    it_check_users(&env, fs);
    check_dlq(&env, &total);
    printf("phase 2: resumed, %llu new messages, %llu duplicates ok\n",
           (unsigned long long)x2.messages, (unsigned long long)s.duplicates);

    /* 3: a new group on the same store resumes from the store. */
    ing = start_ingest(&env, "mmrec-ingest-other", fs);
    it_expect_t x3 = {0};
    it_send_stream(&env, 10, 0, 3, 2, &x3);
    it_flush(&env);
    it_wait(ing, &x3, &s);
    mmr_ingest_free(ing);
    it_check_stats("phase 3", &s, &x3);
    CHECK_MSG(s.consumed == x3.messages, "phase 3: consumed %llu, want only the %llu new",
              (unsigned long long)s.consumed, (unsigned long long)x3.messages);
    total.bad += x3.bad;
    check_offsets(&env, fs, "mmrec-ingest-other", 0);
    it_check_users(&env, fs);
    check_dlq(&env, &total);
    printf("phase 3: new group resumed from the store offsets ok\n");

    it_env_free(&env);
    mmr_fstore_close(fs);
    CHECK(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return 0;
}
