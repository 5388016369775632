/* test_e2e.c — the walking skeleton end to end, all real: a Kafka broker, mmrecd as a
 * process, events produced with librdkafka, Rank and Health over gRPC, metrics over HTTP.
 * Asserts that rankings change as the events predict, that a malformed message is
 * dead-lettered, that SIGTERM exits 0, and that a restart neither loses nor re-applies
 * events (state and offsets come back from the store).
 * Usage: test_e2e PATH/TO/mmrecd  (MMREC_KAFKA_BOOTSTRAP set by with_kafka.sh) */
#include <math.h>
#include <stdint.h>

#include "daemon.h"
#include "grpc/health/v1/health.pb-c.h"
#include "mmr_rpc.h"
#include "mmrec/v1/ranking.pb-c.h"

/* Ranks candidates for user; fills order[] with item ids (static storage) and returns n. */
static size_t rank(mmr_rpc_client_t *c, const char *user, const char *cands, char order[][16],
                   float *scores, uint32_t *unknown) {
    char buf[256], *ids[16], *save = NULL;
    snprintf(buf, sizeof buf, "%s", cands);
    size_t n = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) ids[n++] = t;
    Mmrec__V1__RankRequest req = MMREC__V1__RANK_REQUEST__INIT;
    req.user_id = (char *)user;
    req.candidates = ids;
    req.n_candidates = n;
    ProtobufCMessage *out = NULL;
    mmr_err_t err = {0};
    CHECK_MSG(mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &req.base, &mmrec__v1__rank_response__descriptor,
                           &out, 5000, NULL, &err) == MMR_OK, "%s", err.msg);
    Mmrec__V1__RankResponse *r = (Mmrec__V1__RankResponse *)out;
    for (size_t i = 0; i < r->n_items && i < 16; i++) {
        snprintf(order[i], 16, "%s", r->items[i]->item_id);
        if (scores) scores[i] = r->items[i]->score;
    }
    size_t got = r->n_items;
    if (unknown) *unknown = r->unknown_candidates;
    protobuf_c_message_free_unpacked(out, NULL);
    return got;
}

/* Polls until the first ranked item for user is `want` (ingestion is asynchronous). */
static void wait_first(mmr_rpc_client_t *c, const char *user, const char *cands, const char *want) {
    char order[16][16];
    for (int i = 0; i < 200; i++) {
        if (rank(c, user, cands, order, NULL, NULL) > 0 && !strcmp(order[0], want)) return;
        sleep_ms(100);
    }
    CHECK_MSG(0, "user %s: expected %s first, got %s", user, want, order[0]);
}

static void wait_metric(int port, const char *name, double want) {
    double v = -1;
    for (int i = 0; i < 200; i++) {
        char *body = metrics_get(port);
        v = body ? metric_value(body, name) : -1;
        free(body);
        if (v == want) return;
        sleep_ms(100);
    }
    CHECK_MSG(0, "metric %s = %g, expected %g", name, v, want);
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 2 || !brokers) {
        fprintf(stderr, "skip: needs mmrecd path and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    char work[] = "/tmp/mmrec-e2e-XXXXXX";
    CHECK(mkdtemp(work));
    char store_opt[256], brokers_opt[256], group_opt[64];
    snprintf(store_opt, sizeof store_opt, "--store.path=%s/store", work);
    snprintf(brokers_opt, sizeof brokers_opt, "--kafka.brokers=%s", brokers);
    snprintf(group_opt, sizeof group_opt, "--ingest.group=e2e-%d", (int)getpid());
    char *args[] = {store_opt, brokers_opt, group_opt, "--grpc.listen=127.0.0.1:0",
                    "--metrics.listen=127.0.0.1:0", "--ingest.batch_ms=20", "--log.level=warn",
                    "--trainer.enabled=false" /* the statistics baseline is under test */, NULL};
    test_daemon_t d;
    daemon_start(&d, argv[1], work, args);
    mmr_rpc_client_t *c = NULL;
    mmr_err_t err = {0};
    CHECK(mmr_rpc_client_new(d.target, NULL, &c, &err) == MMR_OK);

    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *hresp = NULL;
    CHECK(mmr_rpc_call(c, "/grpc.health.v1.Health/Check", &hreq.base,
                       &grpc__health__v1__health_check_response__descriptor, &hresp, 5000, NULL, &err) == MMR_OK);
    CHECK(((Grpc__Health__V1__HealthCheckResponse *)hresp)->status == 1);
    protobuf_c_message_free_unpacked(hresp, NULL);
    printf("ok mmrecd serving on %s (metrics port %d)\n", d.target, d.metrics_port);

    /* Round 1: u1 clicks i1; i2 is popular with others. u1 should get i1 first. */
    rd_kafka_t *rk = producer_new(brokers);
    produce_event(rk, "e1", "u1", "i1", MMREC__V1__EVENT_TYPE__CLICK, 1);
    produce_event(rk, "e2", "u2", "i2", MMREC__V1__EVENT_TYPE__CLICK, 1);
    produce_event(rk, "e3", "u3", "i2", MMREC__V1__EVENT_TYPE__LIKE, 1);
    produce_event(rk, "e4", "u4", "i2", MMREC__V1__EVENT_TYPE__PURCHASE, 1);
    produce_event(rk, "e4", "u4", "i2", MMREC__V1__EVENT_TYPE__PURCHASE, 1); /* duplicate id */
    produce_raw(rk, "mmrec.events", "u9", "\xff\xff garbage", 10);          /* malformed */
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    wait_metric(d.metrics_port, "mmrec_ingest_applied_total", 4);
    char order[16][16];
    uint32_t unknown = 0;
    CHECK(rank(c, "u1", "i1,i2,i3", order, NULL, &unknown) == 2);
    CHECK_MSG(!strcmp(order[0], "i1") && !strcmp(order[1], "i2") && unknown == 1,
              "u1 got %s,%s unknown=%u", order[0], order[1], unknown);
    CHECK(rank(c, "new-user", "i1,i2", order, NULL, NULL) == 2 && !strcmp(order[0], "i2"));
    printf("ok round 1: u1 ranks its clicked i1 first; a cold user gets popular i2; unknown i3 counted\n");
    wait_metric(d.metrics_port, "mmrec_ingest_duplicates_total", 1);
    wait_metric(d.metrics_port, "mmrec_ingest_dead_lettered_total{reason=\"undecodable\"}", 1);
    printf("ok duplicate skipped, malformed message dead-lettered\n");
    char *body = metrics_get(d.metrics_port);
    CHECK(body);
    double rank_ok = metric_value(body, "mmrec_rpc_requests_total{method=\"/mmrec.v1.Ranker/Rank\",code=\"OK\"}");
    double rank_lat = metric_value(body, "mmrec_rpc_latency_ms_count{method=\"/mmrec.v1.Ranker/Rank\"}");
    double rank_inf = metric_value(body, "mmrec_rpc_latency_ms_bucket{method=\"/mmrec.v1.Ranker/Rank\",le=\"+Inf\"}");
    double lag = metric_value(body, "mmrec_ingest_lag{topic=\"mmrec.events\",partition=\"0\"}");
    double keys = metric_value(body, "mmrec_store_estimate_keys");
    free(body);
    CHECK_MSG(rank_ok >= 1 && rank_lat >= rank_ok && rank_inf == rank_lat, "ok %g latency count %g +Inf %g",
              rank_ok, rank_lat, rank_inf);
    CHECK_MSG(lag == 0 && keys > 0, "lag of mmrec.events/0 %g (caught up: 0), store keys %g", lag, keys);
    printf("ok metrics: %g Rank calls OK, latency histogram counts them; lag 0; ~%g keys in RocksDB\n",
           rank_ok, keys);

    /* Round 2: u1 likes and buys i2: i2 must overtake i1 for u1. */
    produce_event(rk, "e5", "u1", "i2", MMREC__V1__EVENT_TYPE__LIKE, 1);
    produce_event(rk, "e6", "u1", "i2", MMREC__V1__EVENT_TYPE__PURCHASE, 1);
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    wait_first(c, "u1", "i1,i2,i3", "i2");
    float before[16];
    CHECK(rank(c, "u1", "i1,i2", order, before, NULL) == 2);
    printf("ok round 2: after LIKE+PURCHASE, u1 ranks i2 first (%.3f > %.3f)\n", before[0], before[1]);

    /* The served ranking is logged to mmrec.impressions, in served order. */
    char *two[] = {"i1", "i2"};
    Mmrec__V1__RankRequest iq = MMREC__V1__RANK_REQUEST__INIT;
    iq.user_id = "u1";
    iq.candidates = two;
    iq.n_candidates = 2;
    iq.request_id = "imp-check";
    ProtobufCMessage *iout = NULL;
    CHECK(mmr_rpc_call(c, "/mmrec.v1.Ranker/Rank", &iq.base, &mmrec__v1__rank_response__descriptor,
                       &iout, 5000, NULL, &err) == MMR_OK);
    protobuf_c_message_free_unpacked(iout, NULL);
    char errstr[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(cc, "group.id", "e2e-impressions", errstr, sizeof errstr);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_t *rc = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    CHECK(rc);
    rd_kafka_poll_set_consumer(rc);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, "mmrec.impressions", -1);
    CHECK(rd_kafka_subscribe(rc, tl) == 0);
    rd_kafka_topic_partition_list_destroy(tl);
    int found_imp = 0;
    for (int i = 0; i < 300 && !found_imp; i++) {
        rd_kafka_message_t *km = rd_kafka_consumer_poll(rc, 100);
        if (!km) continue;
        Mmrec__V1__Impression *imp = km->err ? NULL : mmrec__v1__impression__unpack(NULL, km->len, km->payload);
        if (imp && !strcmp(imp->request_id, "imp-check")) {
            CHECK(!strcmp(imp->user_id, "u1") && imp->n_item_ids == 2);
            CHECK(!strcmp(imp->item_ids[0], "i2") && !strcmp(imp->item_ids[1], "i1"));
            found_imp = 1;
        }
        if (imp) mmrec__v1__impression__free_unpacked(imp, NULL);
        rd_kafka_message_destroy(km);
    }
    CHECK_MSG(found_imp, "impression imp-check not found in mmrec.impressions");
    rd_kafka_consumer_close(rc);
    rd_kafka_destroy(rc);
    printf("ok the served ranking was logged to mmrec.impressions in served order\n");

    /* SIGTERM: clean exit 0; restart on the same store: same state, nothing re-applied. */
    mmr_rpc_client_free(c);
    CHECK_MSG(daemon_stop(&d, SIGTERM) == 0, "mmrecd did not exit 0 on SIGTERM");
    printf("ok SIGTERM: exit 0\n");
    daemon_start(&d, argv[1], work, args);
    CHECK(mmr_rpc_client_new(d.target, NULL, &c, &err) == MMR_OK);
    produce_event(rk, "e7", "u5", "i1", MMREC__V1__EVENT_TYPE__CLICK, 1);
    CHECK(rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    wait_metric(d.metrics_port, "mmrec_ingest_applied_total", 1); /* only the new event */
    float after[16];
    CHECK(rank(c, "u1", "i1,i2", order, after, NULL) == 2 && !strcmp(order[0], "i2"));
    /* popularity decays with wall-clock time: equal up to a few seconds of decay */
    CHECK_MSG(fabsf(after[0] - before[0]) < 1e-3f, "i2 score changed across restart: %f vs %f",
              after[0], before[0]);
    printf("ok restart: offsets resumed from the store, only the new event applied, scores kept\n");

    rd_kafka_destroy(rk);
    mmr_rpc_client_free(c);
    CHECK(daemon_stop(&d, SIGINT) == 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    CHECK(system(cmd) == 0);
    printf("ok SIGINT: exit 0\n");
    return 0;
}
