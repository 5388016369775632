/* test_ingest_retry.c — the consumer's failure paths, on the mock cluster with the fake
 * store (fake_fstore.c) so failures can be injected. Events and catalog items flow
 * together, so failed batches hold both:
 *   A. the first stored-offset read on assignment fails, then two batch commits fail: no
 *      event or item is lost or applied twice, offsets of both topics end where the topics
 *      end, nothing is committed for a failed batch, and each bad message is in the DLQ
 *      exactly once (a retried batch does not re-send what already reached the DLQ);
 *   B. the DLQ broker rejects a produce request: the batch is not committed but retried,
 *      every bad message still reaches the DLQ and the counters stay exact;
 *   C. one long batch holds events and items (one WriteBatch with the offsets of both
 *      topics) and its commit fails: both topics are rewound and the whole batch retried;
 *   D. backpressure: the store takes 30 ms per commit and two commits fail; the queue to
 *      the writer (queue_max 48) never holds more than 48 messages, the partitions are
 *      paused while the writer backs off after each failure and resumed after, and the
 *      counts stay exact;
 *   E. the writer lags: the store takes 400 ms per commit and never fails; with
 *      pause_after_ms 100 the consumer pauses the partitions while the queue stays full,
 *      resumes them once it is half empty, the queue stays within its bound and the counts
 *      stay exact. */
#include "fake_fstore.h"
#include "ingest_test.h"

#define PRODUCE_API_KEY 0 /* Kafka ProduceRequest */

static void check_store(it_env_t *env, mmr_fstore_t *fs, uint64_t applied, uint64_t items) {
    CHECK_MSG(fake_fstore_applied(fs) == applied, "store applied %llu, want %llu",
              (unsigned long long)fake_fstore_applied(fs), (unsigned long long)applied);
    CHECK_MSG(fake_fstore_items(fs) == items, "store items %llu, want %llu",
              (unsigned long long)fake_fstore_items(fs), (unsigned long long)items);
    static const char *const topics[] = {IT_EVENTS, IT_ITEMS};
    static const int32_t n_parts[] = {IT_PARTITIONS, IT_ITEM_PARTITIONS};
    for (int t = 0; t < 2; t++)
        for (int32_t p = 0; p < n_parts[t]; p++)
            CHECK_MSG(fake_fstore_offset(fs, topics[t], p) == it_end_offset(env, topics[t], p),
                      "%s/%d: store offset %lld, end %lld", topics[t], p,
                      (long long)fake_fstore_offset(fs, topics[t], p),
                      (long long)it_end_offset(env, topics[t], p));
}

/* batch_max/batch_ms/queue_max/pause_after_ms 0: it_conf's small batches, the defaults. */
static mmr_ingest_t *start_ingest(const it_env_t *env, mmr_fstore_t *fs, uint32_t batch_max,
                                  uint32_t batch_ms, uint32_t queue_max, uint32_t pause_after_ms) {
    mmr_ingest_conf_t conf = it_conf(env, "mmrec-ingest-retry");
    if (batch_max) conf.batch_max = batch_max;
    if (batch_ms) conf.batch_ms = batch_ms;
    conf.queue_max = queue_max;
    conf.pause_after_ms = pause_after_ms;
    mmr_ingest_t *ing;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_ingest_new(&conf, fs, &ing, &err) == MMR_OK, "ingest_new: %s", err.msg);
    CHECK_MSG(mmr_ingest_start(ing, &err) == MMR_OK, "ingest_start: %s", err.msg);
    return ing;
}

/* Backpressure scenarios: runs ing (its store's commits take commit_ms) until x is ingested,
 * then frees it; *s gets the final stats and *seen_paused whether a pause was seen. Checks
 * the counts, the queue within its bound 48 and no pause left. */
static void run_slow(const char *name, mmr_ingest_t *ing, int commit_ms, const it_expect_t *x,
                     mmr_ingest_stats_t *s, int *seen_paused) {
    uint32_t max_queued = 0;
    *seen_paused = 0;
    int64_t deadline = mmr_now_ms() + IT_WAIT_MS;
    for (mmr_ingest_get_stats(ing, s); !it_stats_done(s, x); mmr_ingest_get_stats(ing, s)) {
        CHECK_MSG(mmr_now_ms() < deadline, "%s: ingest did not catch up: applied %llu of %llu", name,
                  (unsigned long long)s->applied, (unsigned long long)x->messages);
        if (s->queued > max_queued) max_queued = s->queued;
        *seen_paused |= s->paused;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    mmr_ingest_free(ing);
    it_check_stats(name, s, x);
    CHECK_MSG(max_queued <= 48, "%s: %u messages queued, bound 48", name, max_queued);
    CHECK_MSG(!s->paused, "%s: still paused after the writer caught up", name);
    printf("%s: store %d ms/commit: %llu pauses, at most %u of 48 queued, %llu redelivered and "
           "skipped, exact counts\n", name, commit_ms, (unsigned long long)s->pauses, max_queued,
           (unsigned long long)s->redelivered);
}

int main(void) {
    /* the injected failures log a few expected ERROR lines */
    it_log_level(MMR_LOG_ERROR);
    it_env_t env;
    it_env_init(&env);
    mmr_fstore_t *fs = fake_fstore_new();
    uint64_t applied_total = 0, items_total = 0;

    /* A: store failures. */
    it_expect_t xa = {0};
    it_send_stream(&env, 60, 5, 10, 12, &xa);
    it_send_items(&env, 30, 4, 16, &xa);
    it_send_stream(&env, 60, 5, 10, 12, &xa);
    it_flush(&env);
    fake_fstore_fail_get_offsets(fs, 1);
    fake_fstore_fail_commits(fs, 2, 2);
    mmr_ingest_t *ing = start_ingest(&env, fs, 0, 0, 0, 0);
    mmr_ingest_stats_t s;
    it_wait(ing, &xa, &s);
    mmr_ingest_free(ing);
    it_check_stats("A", &s, &xa);
    CHECK_MSG(s.store_errors == 3, "A: store_errors %llu, want 3",
              (unsigned long long)s.store_errors);
    CHECK_MSG(s.consumed > xa.messages, "A: consumed %llu: the failed batches were not re-read",
              (unsigned long long)s.consumed);
    CHECK(s.dlq_errors == 0 && s.commit_errors == 0);
    CHECK_MSG(!s.store_failing, "A: store_failing still set after the retried commits succeeded");
    applied_total += xa.applied;
    items_total += xa.items_applied;
    check_store(&env, fs, applied_total, items_total);
    int64_t n_dlq = it_read_dlq(&env);
    CHECK_MSG((uint64_t)n_dlq == xa.bad, "A: DLQ holds %lld, want %llu", (long long)n_dlq,
              (unsigned long long)xa.bad);
    for (size_t i = 0; i < env.n_msgs; i++)
        CHECK_MSG(env.msgs[i].dlq_seen == (env.msgs[i].reason != IT_GOOD),
                  "A: message %d/%lld seen %d times in the DLQ", env.msgs[i].partition,
                  (long long)env.msgs[i].offset, env.msgs[i].dlq_seen);
    printf("A: %llu messages (%llu items), %llu reads, 3 injected store failures: exact counts, "
           "%llu mixed batches, DLQ once each\n", (unsigned long long)xa.messages,
           (unsigned long long)xa.items_applied, (unsigned long long)s.consumed,
           (unsigned long long)fake_fstore_mixed_commits(fs));

    /* B: the DLQ rejects one produce request (non-retriable). */
    it_expect_t xb = {0};
    size_t first_b = env.n_msgs;
    it_send_stream(&env, 40, 0, 10, 12, &xb);
    it_send_items(&env, 10, 2, 8, &xb);
    it_flush(&env); /* the test producer is done: the next Produce request is the DLQ's */
    rd_kafka_mock_push_request_errors(env.mc, PRODUCE_API_KEY, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ing = start_ingest(&env, fs, 0, 0, 0, 0);
    it_wait(ing, &xb, &s);
    mmr_ingest_free(ing);
    it_check_stats("B", &s, &xb);
    CHECK_MSG(s.dlq_errors >= 1, "B: the injected DLQ failure was not seen");
    CHECK_MSG(s.store_errors == 0, "B: store_errors %llu", (unsigned long long)s.store_errors);
    CHECK_MSG(s.consumed > xb.messages, "B: the failed batch was not re-read");
    applied_total += xb.applied;
    items_total += xb.items_applied;
    check_store(&env, fs, applied_total, items_total);
    n_dlq = it_read_dlq(&env);
    int64_t extra = n_dlq - (int64_t)(xa.bad + xb.bad);
    for (size_t i = 0; i < env.n_msgs; i++) {
        if (env.msgs[i].reason == IT_GOOD) continue;
        /* at-least-once: a partially delivered retried batch may repeat some */
        CHECK_MSG(env.msgs[i].dlq_seen >= 1 && (i >= first_b || env.msgs[i].dlq_seen == 1),
                  "B: message %d/%lld seen %d times in the DLQ", env.msgs[i].partition,
                  (long long)env.msgs[i].offset, env.msgs[i].dlq_seen);
    }
    printf("B: DLQ produce failure: batch retried (%llu dlq_errors), every bad message "
           "delivered (%lld repeats)\n", (unsigned long long)s.dlq_errors, (long long)extra);

    /* C: everything in one batch (1 s, up to 1000 messages), whose first commit fails. */
    it_expect_t xc = {0};
    size_t first_c = env.n_msgs;
    it_send_stream(&env, 20, 2, 4, 6, &xc);
    it_send_items(&env, 12, 2, 8, &xc);
    it_flush(&env);
    uint64_t mixed_before = fake_fstore_mixed_commits(fs);
    fake_fstore_fail_commits(fs, 0, 1);
    ing = start_ingest(&env, fs, 1000, 1000, 0, 0);
    it_wait(ing, &xc, &s);
    mmr_ingest_free(ing);
    it_check_stats("C", &s, &xc);
    CHECK_MSG(s.store_errors == 1 && s.dlq_errors == 0, "C: store_errors %llu, dlq_errors %llu",
              (unsigned long long)s.store_errors, (unsigned long long)s.dlq_errors);
    CHECK_MSG(s.consumed >= 2 * xc.messages, "C: consumed %llu: the whole batch was not re-read",
              (unsigned long long)s.consumed);
    uint64_t mixed = fake_fstore_mixed_commits(fs) - mixed_before;
    CHECK_MSG(mixed >= 1, "C: no committed batch held offsets of both topics");
    applied_total += xc.applied;
    items_total += xc.items_applied;
    check_store(&env, fs, applied_total, items_total);
    n_dlq = it_read_dlq(&env);
    for (size_t i = first_c; i < env.n_msgs; i++)
        CHECK_MSG(env.msgs[i].dlq_seen == (env.msgs[i].reason != IT_GOOD),
                  "C: message %s/%d/%lld seen %d times in the DLQ", env.msgs[i].topic,
                  env.msgs[i].partition, (long long)env.msgs[i].offset, env.msgs[i].dlq_seen);
    printf("C: %llu messages (%llu items) in %llu mixed batch(es), first commit failed: "
           "both topics rewound, exact counts, DLQ once each\n",
           (unsigned long long)xc.messages, (unsigned long long)xc.items_applied,
           (unsigned long long)mixed);

    /* D: a slow store behind a small queue. */
    it_expect_t xd = {0};
    it_send_stream(&env, 600, 20, 40, 20, &xd);
    it_send_items(&env, 30, 4, 8, &xd);
    it_flush(&env);
    fake_fstore_slow_commits(fs, 30);
    fake_fstore_fail_commits(fs, 3, 2);
    int seen_paused;
    run_slow("D", start_ingest(&env, fs, 16, 20, 48, 0), 30, &xd, &s, &seen_paused);
    /* 2 pauses, or 1 when the second failure comes before the queue let the first resume */
    CHECK_MSG(s.pauses >= 1 && s.pauses <= 2 && seen_paused, "D: %llu pauses (seen paused: %d) for 2 failed writes",
              (unsigned long long)s.pauses, seen_paused);
    applied_total += xd.applied;
    items_total += xd.items_applied;
    check_store(&env, fs, applied_total, items_total);

    /* E: a store that stalls the writer (400 ms per commit) without failing. */
    it_expect_t xe = {0};
    it_send_stream(&env, 240, 0, 0, 0, &xe);
    it_flush(&env);
    fake_fstore_slow_commits(fs, 400);
    run_slow("E", start_ingest(&env, fs, 16, 20, 48, 100), 400, &xe, &s, &seen_paused);
    fake_fstore_slow_commits(fs, 0);
    CHECK_MSG(s.pauses >= 1 && seen_paused && s.store_errors == 0,
              "E: %llu pauses (seen paused: %d, store errors %llu) while the writer lagged",
              (unsigned long long)s.pauses, seen_paused, (unsigned long long)s.store_errors);
    applied_total += xe.applied;
    items_total += xe.items_applied;
    check_store(&env, fs, applied_total, items_total);

    it_env_free(&env);
    fake_fstore_free(fs);
    return 0;
}
