/* bench_ingest.c — ingestion benchmark (not a test): events/s from Kafka into the RocksDB
 * feature store through mmr_ingest, against the raw feature-store WriteBatch rate for the
 * SAME records measured in the same run, plus produce-to-visible latency.
 *
 * Run under a real broker:  scripts/kafka.sh run DIR -- build/bench_ingest [N [BATCH]]
 * BATCH (default 1000): events per WriteBatch, for the raw loop and ingest.batch_max alike.
 * Default durability: WAL on, no fsync per batch (store.sync=false), as mmrecd runs. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmr_fstore.h"
#include "mmr_ingest.h"
#include "mmr_time.h"
#include "mmrec/v1/event.pb-c.h"

#define USERS 100000
#define ITEMS 20000
#define LATENCY_SAMPLES 300

static void die(const char *what, const char *msg) {
    fprintf(stderr, "bench_ingest: %s: %s\n", what, msg);
    exit(1);
}

/* Record i of the workload, deterministic: ids written into the caller's buffers. */
static mmr_event_t record(long i, char *eid, char *user, char *item) {
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    sprintf(eid, "b%ld", i);
    sprintf(user, "u%llu", (unsigned long long)(h % USERS));
    sprintf(item, "i%llu", (unsigned long long)((h >> 24) % ITEMS));
    mmr_event_t ev = {eid, user, item, (mmr_event_type_t)(1 + (h >> 50) % 8), 1.0f, mmr_now_ms()};
    return ev;
}

static mmr_fstore_t *store_open(const char *dir) {
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t o = {.path = dir};
    if (mmr_fstore_open(&o, &fs, &err) != MMR_OK) die("open store", err.msg);
    return fs;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (!brokers) die("usage", "run under scripts/kafka.sh run DIR -- bench_ingest [N [BATCH]]");
    long n = argc > 1 ? atol(argv[1]) : 1000000, batch = argc > 2 ? atol(argv[2]) : 1000;
    if (n < 1 || batch < 1 || batch > 1000000) die("usage", "bench_ingest [N >= 1 [BATCH 1..1000000]]");
    char tmpl[] = "/tmp/mmrec-bench-ingest-XXXXXX", eid[32], user[32], item[32], path[256];
    if (!mkdtemp(tmpl)) die("mkdtemp", "failed");
    mmr_err_t err = {0};

    /* 1. raw: the same records straight into a fresh store, in batches of BATCH */
    snprintf(path, sizeof path, "%s/raw", tmpl);
    mmr_fstore_t *fs = store_open(path);
    int64_t t0 = mmr_mono_ns();
    for (long i = 0; i < n;) {
        mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
        for (long j = 0; j < batch && i < n; j++, i++) {
            mmr_event_t ev = record(i, eid, user, item);
            if (mmr_fstore_batch_add_event(b, &ev, &err) < 0) die("raw add", err.msg);
        }
        mmr_fstore_batch_set_offset(b, "raw", 0, i);
        if (mmr_fstore_batch_commit(b, &err) != MMR_OK) die("raw commit", err.msg);
        mmr_fstore_batch_free(b);
    }
    double raw_s = (mmr_mono_ns() - t0) / 1e9;
    mmr_fstore_close(fs);

    /* 2. produce the same records to Kafka (timed separately, not part of the rate) */
    char errstr[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "linger.ms", "20", errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "queue.buffering.max.messages", "2000000", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    if (!rk) die("producer", errstr);
    uint8_t buf[256];
    t0 = mmr_mono_ns();
    for (long i = 0; i < n; i++) {
        mmr_event_t ev = record(i, eid, user, item);
        Mmrec__V1__Event m = MMREC__V1__EVENT__INIT;
        m.event_id = eid;
        m.user_id = user;
        m.item_id = item;
        m.type = (Mmrec__V1__EventType)ev.type;
        m.value = ev.value;
        m.ts_ms = ev.ts_ms;
        size_t len = mmrec__v1__event__pack(&m, buf);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("mmrec.events"), RD_KAFKA_V_KEY(user, strlen(user)),
                                 RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000)) die("produce", "not all messages delivered");
    double produce_s = (mmr_mono_ns() - t0) / 1e9;

    /* 3. ingest them through mmr_ingest into a fresh store */
    snprintf(path, sizeof path, "%s/ingest", tmpl);
    fs = store_open(path);
    mmr_ingest_conf_t ic = {.brokers = brokers, .group_id = "bench-ingest", .events_topic = "mmrec.events",
                            .dlq_topic = "mmrec.events.dlq", .batch_max = (uint32_t)batch};
    mmr_ingest_t *ing = NULL;
    if (mmr_ingest_new(&ic, fs, &ing, &err) != MMR_OK) die("ingest", err.msg);
    t0 = mmr_mono_ns();
    if (mmr_ingest_start(ing, &err) != MMR_OK) die("ingest start", err.msg);
    mmr_ingest_stats_t st = {0};
    int64_t first_ns = 0;
    while (st.applied + st.duplicates < (uint64_t)n) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        mmr_ingest_get_stats(ing, &st);
        if (!first_ns && st.applied) first_ns = mmr_mono_ns(); /* rate excludes group join */
    }
    double ingest_s = (mmr_mono_ns() - first_ns) / 1e9, join_s = (first_ns - t0) / 1e9;

    /* 4. produce-to-visible: one event at a time for a fresh user, poll until readable */
    int64_t lat[LATENCY_SAMPLES];
    for (int i = 0; i < LATENCY_SAMPLES; i++) {
        snprintf(user, sizeof user, "lat%d", i);
        snprintf(eid, sizeof eid, "lat%d", i);
        Mmrec__V1__Event m = MMREC__V1__EVENT__INIT;
        m.event_id = eid;
        m.user_id = user;
        m.item_id = "i1";
        m.type = MMREC__V1__EVENT_TYPE__CLICK;
        size_t len = mmrec__v1__event__pack(&m, buf);
        int64_t s = mmr_mono_ns();
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("mmrec.events"), RD_KAFKA_V_KEY(user, strlen(user)),
                          RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        rd_kafka_poll(rk, 0);
        mmr_user_t *u = NULL;
        while (mmr_fstore_get_user(fs, user, &u, &err) == MMR_ERR_NOT_FOUND) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
            rd_kafka_poll(rk, 0);
        }
        lat[i] = mmr_mono_ns() - s;
        mmr_user_free(u);
    }
    qsort(lat, LATENCY_SAMPLES, sizeof *lat, cmp_i64);
    mmr_ingest_free(ing);
    mmr_fstore_close(fs);
    rd_kafka_destroy(rk);

    double raw_rate = n / raw_s, ingest_rate = n / ingest_s;
    printf("events                     %ld (%d users, %d items, protobuf, 4 partitions, batches of %ld)\n", n, USERS,
           ITEMS, batch);
    printf("raw fstore WriteBatch      %.0f events/s (%.2f s)\n", raw_rate, raw_s);
    printf("produce to Kafka           %.0f events/s (%.2f s, not part of the ratio)\n", n / produce_s, produce_s);
    printf("Kafka -> store (mmr_ingest) %.0f events/s (%.2f s after %.2f s group join; %llu pauses)\n", ingest_rate,
           ingest_s, join_s, (unsigned long long)st.pauses);
    printf("ingest / raw               %.2f\n", ingest_rate / raw_rate);
    printf("produce-to-visible         p50 %.1f ms  p99 %.1f ms  max %.1f ms (%d sequential events)\n",
           lat[LATENCY_SAMPLES / 2] / 1e6, lat[LATENCY_SAMPLES * 99 / 100] / 1e6,
           lat[LATENCY_SAMPLES - 1] / 1e6, LATENCY_SAMPLES);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    return system(cmd) == 0 ? 0 : 1;
}
