/* test_ingest_exactly_once.c — ingestion at scale against a real broker and a real
 * mmrecd process, with a crash in the middle.
 *
 * Produces 1,000,000 valid events (50k users, 10k items, all event types), 1.2% of them
 * sent twice with the same event_id, and 0.6% malformed messages of five kinds. mmrecd
 * ingests; it is killed with SIGKILL at 5 random moments and restarted on the same store
 * each time. Then:
 *   - the store's offsets equal the topic's end offsets,
 *   - every user's events_total and recent-interaction ring, and every item's
 *     impression / click / positive counters, equal a ground truth computed here from
 *     the produced log (positivity rule re-implemented, not taken from the library),
 *   - the dead-letter topic holds every malformed message with its reason; a copy re-sent
 *     because of the crash must name the same source record (the DLQ is at-least-once).
 * Usage: test_ingest_exactly_once PATH/TO/mmrecd  (under with_kafka.sh) */
#include <math.h>
#include <stdint.h>

#include "daemon.h"
#include "mmr_fstore.h"
#include "mmr_rand.h"

#define N_EVENTS 1000000
#define N_USERS 50000
#define N_ITEMS 10000
#define RING 64
#define N_DUP (N_EVENTS * 12 / 1000)
#define N_BAD (N_EVENTS * 6 / 1000)
#define KILLS 5

typedef struct ev { uint32_t user, item; uint8_t type; float value; } ev_t;

static uint64_t rng = 12345;
static uint64_t next_rand(void) { return mmr_rand_next(&rng); }

static int positive(const ev_t *e) { /* DESIGN §6, written out independently */
    switch (e->type) {
    case 2: case 3: case 4: case 7: return 1;
    case 5: return e->value >= 10.0f;
    case 8: return e->value >= 4.0f;
    default: return 0;
    }
}

static size_t pack_event(uint8_t *buf, const char *eid, const char *user, const char *item, int type,
                         float value, int64_t ts) {
    Mmrec__V1__Event m = MMREC__V1__EVENT__INIT;
    m.event_id = (char *)eid;
    m.user_id = (char *)user;
    m.item_id = (char *)item;
    m.type = (Mmrec__V1__EventType)type;
    m.value = value;
    m.ts_ms = ts;
    return mmrec__v1__event__pack(&m, buf);
}

static const char *const bad_reason[5] = {"undecodable", "missing_id", "unknown_type", "bad_value", "id_too_long"};

/* Builds malformed message k (unique bytes); returns its length and reason index. */
static size_t make_bad(uint8_t *buf, int k, int64_t ts, int *reason) {
    char eid[32], user[32], longid[400];
    snprintf(eid, sizeof eid, "bad%d", k);
    snprintf(user, sizeof user, "u%d", k % N_USERS);
    *reason = k % 5;
    switch (*reason) {
    case 0: return (size_t)snprintf((char *)buf, 64, "\xff\xfe not protobuf %d", k);
    case 1: return pack_event(buf, eid, "", "i1", 2, 1, ts);
    case 2: return pack_event(buf, eid, user, "i1", 99, 1, ts);
    case 3: return pack_event(buf, eid, user, "i1", 5, NAN, ts);
    default:
        memset(longid, 'x', 300);
        snprintf(longid + 300, 100, "%d", k);
        return pack_event(buf, eid, user, longid, 2, 1, ts);
    }
}

static long metric(int port, const char *name) {
    char *b = metrics_get(port);
    double v = b ? metric_value(b, name) : -1;
    free(b);
    return (long)v;
}

/* Waits until the daemon's consumed counter is positive and has not moved for 3 s. */
static void wait_idle(test_daemon_t *d) {
    long last = -1;
    int still = 0;
    for (int i = 0; i < 1800 && still < 30; i++) {
        long now = metric(d->metrics_port, "mmrec_ingest_consumed_total");
        still = (now > 0 && now == last) ? still + 1 : 0;
        last = now;
        sleep_ms(100);
    }
    CHECK_MSG(still >= 30, "ingestion did not settle");
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 2 || !brokers) {
        fprintf(stderr, "skip: needs mmrecd path and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    char work[] = "/tmp/mmrec-eo-XXXXXX";
    CHECK(mkdtemp(work));
    ev_t *evs = malloc(sizeof *evs * N_EVENTS);
    int64_t ts = mmr_now_ms() - 3600 * 1000;

    /* --- produce -------------------------------------------------------------------- */
    char errstr[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "enable.idempotence", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "linger.ms", "20", errstr, sizeof errstr);
    rd_kafka_conf_set(pc, "queue.buffering.max.messages", "2000000", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    CHECK_MSG(rk, "%s", errstr);
    int64_t t0 = mmr_mono_ns();
    uint8_t buf[1024];
    char eid[32], user[32], item[32];
    long sent = 0, dups = 0, bads = 0;
    for (long i = 0; i < N_EVENTS; i++) {
        uint64_t r = next_rand();
        ev_t *e = &evs[i];
        e->user = (uint32_t)(r % N_USERS);
        e->item = (uint32_t)((r >> 20) % N_ITEMS);
        static const uint8_t mix[20] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 5, 6, 8};
        e->type = mix[(r >> 40) % 20];
        if (((r >> 48) & 127) == 0) e->type = (r >> 55) & 1 ? 4 : 7;
        e->value = e->type == 5 ? (float)((r >> 8) % 60) : e->type == 8 ? (float)(1 + (r >> 8) % 5) : 1.0f;
        snprintf(eid, sizeof eid, "e%ld", i);
        snprintf(user, sizeof user, "u%u", e->user);
        snprintf(item, sizeof item, "i%u", e->item);
        size_t len = pack_event(buf, eid, user, item, e->type, e->value, ts + i / 1000);
        produce_raw(rk, "mmrec.events", user, buf, len);
        sent++;
        if (i % (N_EVENTS / N_DUP) == 7 && dups < N_DUP) { /* the same event again, later */
            produce_raw(rk, "mmrec.events", user, buf, len);
            dups++;
        }
        if (i % (N_EVENTS / N_BAD) == 3 && bads < N_BAD) {
            int reason;
            size_t blen = make_bad(buf, (int)bads, ts, &reason);
            produce_raw(rk, "mmrec.events", user, buf, blen);
            bads++;
        }
        rd_kafka_poll(rk, 0);
    }
    CHECK(rd_kafka_flush(rk, 120000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    double produce_s = (mmr_mono_ns() - t0) / 1e9;
    long total = sent + dups + bads;
    printf("ok produced %ld messages (%ld events, %ld duplicates, %ld malformed) in %.1f s\n", total, sent,
           dups, bads, produce_s);

    /* --- ingest, killed with SIGKILL at 5 random moments ------------------------------ */
    char store_opt[256], brokers_opt[256];
    snprintf(store_opt, sizeof store_opt, "--store.path=%s/store", work);
    snprintf(brokers_opt, sizeof brokers_opt, "--kafka.brokers=%s", brokers);
    char *args[] = {store_opt, brokers_opt, "--ingest.group=eo", "--grpc.listen=127.0.0.1:0",
                    "--metrics.listen=127.0.0.1:0", "--log.level=warn",
                    "--kafka.consumer.session.timeout.ms=6000", "--trainer.enabled=false", NULL};
    test_daemon_t d;
    t0 = mmr_mono_ns();
    for (int kill_no = 0; kill_no < KILLS; kill_no++) {
        daemon_start(&d, argv[1], work, args);
        /* this life consumes a random 3-12% of the log (counters restart at 0 each life) */
        long goal = total * (3 + (long)(next_rand() % 10)) / 100;
        for (int i = 0; i < 6000 && metric(d.metrics_port, "mmrec_ingest_consumed_total") < goal; i++)
            sleep_ms(10);
        long consumed = metric(d.metrics_port, "mmrec_ingest_consumed_total");
        CHECK(daemon_stop(&d, SIGKILL) == 128 + SIGKILL);
        printf("ok kill -9 #%d after this life consumed %ld messages\n", kill_no + 1, consumed);
    }
    daemon_start(&d, argv[1], work, args);
    wait_idle(&d);
    double ingest_s = (mmr_mono_ns() - t0) / 1e9;
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    printf("ok restarted, caught up and stopped cleanly; ingest wall time %.1f s (%.0f msg/s including %d restarts)\n",
           ingest_s, total / ingest_s, KILLS);

    /* --- offsets: the store's equal the topic's end offsets --------------------------- */
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = store_opt + strlen("--store.path="), .must_exist = 1};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "%s", err.msg);
    for (int p = 0; p < 4; p++) {
        int64_t lo, hi, stored;
        CHECK(rd_kafka_query_watermark_offsets(rk, "mmrec.events", p, &lo, &hi, 10000) == 0);
        CHECK(mmr_fstore_get_offset(fs, "mmrec.events", p, &stored, &err) == MMR_OK);
        CHECK_MSG(stored == hi, "partition %d: stored offset %lld, end %lld", p, (long long)stored, (long long)hi);
    }
    printf("ok stored offsets equal the end offsets of all 4 partitions\n");

    /* --- ground truth ------------------------------------------------------------------ */
    int64_t *u_total = calloc(N_USERS, sizeof *u_total);
    int64_t (*it)[3] = calloc(N_ITEMS, sizeof *it); /* impressions, clicks, positives */
    for (long i = 0; i < N_EVENTS; i++) {
        u_total[evs[i].user]++;
        it[evs[i].item][0] += evs[i].type == 1;
        it[evs[i].item][1] += evs[i].type == 2;
        it[evs[i].item][2] += positive(&evs[i]);
    }
    /* rings: the last RING events of each user, newest first, by walking the log backwards */
    uint32_t *ring_n = calloc(N_USERS, sizeof *ring_n);
    uint32_t *ring = malloc(sizeof *ring * (size_t)N_USERS * RING); /* event indices */
    for (long i = N_EVENTS - 1; i >= 0; i--) {
        uint32_t u = evs[i].user;
        if (ring_n[u] < RING) ring[(size_t)u * RING + ring_n[u]++] = (uint32_t)i;
    }
    long users_checked = 0;
    for (uint32_t u = 0; u < N_USERS; u++) {
        snprintf(user, sizeof user, "u%u", u);
        mmr_user_t *rec = NULL;
        mmr_status_t st = mmr_fstore_get_user(fs, user, &rec, &err);
        if (u_total[u] == 0) { CHECK(st == MMR_ERR_NOT_FOUND); continue; }
        CHECK_MSG(st == MMR_OK, "%s: %s", user, err.msg);
        CHECK_MSG(rec->events_total == u_total[u], "%s: events_total %lld, truth %lld", user,
                  (long long)rec->events_total, (long long)u_total[u]);
        CHECK_MSG(rec->n == ring_n[u], "%s: ring holds %u, truth %u", user, rec->n, ring_n[u]);
        for (uint32_t j = 0; j < rec->n; j++) { /* store: oldest first; ring[]: newest first */
            const ev_t *e = &evs[ring[(size_t)u * RING + (rec->n - 1 - j)]];
            snprintf(item, sizeof item, "i%u", e->item);
            CHECK_MSG(!strcmp(rec->recent[j].item_id, item) && rec->recent[j].type == e->type,
                      "%s ring[%u]: %s/%d, truth %s/%d", user, j, rec->recent[j].item_id,
                      rec->recent[j].type, item, e->type);
        }
        mmr_user_free(rec);
        users_checked++;
    }
    printf("ok %ld users: events_total and the %d-entry rings equal the ground truth\n", users_checked, RING);
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        snprintf(item, sizeof item, "i%u", i);
        const char *id = item;
        mmr_item_stats_t s;
        uint8_t found;
        CHECK(mmr_fstore_get_item_stats(fs, 1, &id, &s, &found, &err) == MMR_OK && found);
        CHECK_MSG(s.impressions == it[i][0] && s.clicks == it[i][1] && s.positives == it[i][2],
                  "%s: %lld/%lld/%lld, truth %lld/%lld/%lld", item, (long long)s.impressions,
                  (long long)s.clicks, (long long)s.positives, (long long)it[i][0], (long long)it[i][1],
                  (long long)it[i][2]);
    }
    printf("ok %d items: impressions, clicks and positives equal the ground truth\n", N_ITEMS);
    mmr_fstore_close(fs);

    /* --- dead letters: each malformed message exactly once, with its reason ----------- */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(cc, "group.id", "eo-dlq-check", errstr, sizeof errstr);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_conf_set(cc, "enable.partition.eof", "true", errstr, sizeof errstr);
    rd_kafka_t *rc = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    CHECK(rc);
    rd_kafka_poll_set_consumer(rc);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, "mmrec.events.dlq", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    CHECK(rd_kafka_assign(rc, tl) == 0);
    rd_kafka_topic_partition_list_destroy(tl);
    uint8_t *seen = calloc((size_t)bads, 1);
    char (*source)[64] = calloc((size_t)bads, 64);
    long dlq = 0, redelivered = 0;
    for (int idle = 0; idle < 300;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rc, 100);
        if (!m) { idle++; continue; }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) { rd_kafka_message_destroy(m); break; }
        CHECK_MSG(!m->err, "%s", rd_kafka_message_errstr(m));
        rd_kafka_headers_t *h = NULL;
        const void *rv = NULL;
        size_t rlen = 0;
        CHECK(rd_kafka_message_headers(m, &h) == 0 && rd_kafka_header_get_last(h, "mmrec.reason", &rv, &rlen) == 0);
        /* which malformed message is this: its event_id "bad<k>", or the index in the text */
        int k = -1, reason;
        Mmrec__V1__Event *dec = mmrec__v1__event__unpack(NULL, m->len, m->payload);
        if (dec) {
            sscanf(dec->event_id, "bad%d", &k);
            mmrec__v1__event__free_unpacked(dec, NULL);
        } else {
            char text[64];
            snprintf(text, sizeof text, "%.*s", (int)(m->len < 63 ? m->len : 63), (const char *)m->payload);
            sscanf(text, "\xff\xfe not protobuf %d", &k);
        }
        CHECK_MSG(k >= 0 && k < bads, "DLQ holds a message that was not produced as malformed");
        size_t blen = make_bad(buf, k, ts, &reason);
        CHECK_MSG(blen == m->len && !memcmp(buf, m->payload, blen), "bad%d: DLQ bytes differ from what was produced", k);
        CHECK_MSG(rlen == strlen(bad_reason[reason]) && !memcmp(rv, bad_reason[reason], rlen),
                  "bad%d: reason %.*s, expected %s", k, (int)rlen, (const char *)rv, bad_reason[reason]);
        /* A crash between the DLQ flush and the store commit re-sends that batch's dead
         * letters: allowed only as the same source record (header mmrec.source). */
        const void *sv = NULL;
        size_t slen = 0;
        CHECK(rd_kafka_header_get_last(h, "mmrec.source", &sv, &slen) == 0 && slen < 64);
        if (seen[k]) {
            CHECK_MSG(strlen(source[k]) == slen && !memcmp(source[k], sv, slen),
                      "bad%d dead-lettered twice from different source records", k);
            redelivered++;
        } else {
            seen[k] = 1;
            memcpy(source[k], sv, slen);
            dlq++;
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_MSG(dlq == bads, "DLQ holds %ld distinct messages, %ld were malformed", dlq, bads);
    printf("ok DLQ holds each of the %ld malformed messages with the right reason and source "
           "(%ld re-sent by the crash, same source record)\n", dlq, redelivered);
    rd_kafka_consumer_close(rc);
    rd_kafka_destroy(rc);
    rd_kafka_destroy(rk);

    free(source); free(seen); free(ring); free(ring_n); free(it); free(u_total); free(evs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    CHECK(system(cmd) == 0);
    return 0;
}
