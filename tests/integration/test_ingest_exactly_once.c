/* test_ingest_exactly_once.c — ingestion at scale against a real broker and a real
 * mmrecd process, with a crash in the middle.
 *
 * Produces 1,000,000 valid events (50k users, 10k items, all event types), 1.2% of them
 * sent twice with the same event_id, and 0.6% malformed messages of five kinds. mmrecd
 * ingests; it is killed with SIGKILL at 5 random moments and restarted on the same store
 * each time. Then:
 *   - the store's offsets equal the topic's end offsets,
 *   - every user's events_total and recent-interaction ring, and every item's
 *     impression / click / positive counters, equal a ground truth computed from
 *     the produced log (positivity rule re-implemented, not taken from the library),
 *   - the dead-letter topic holds every malformed message with its reason; a copy re-sent
 *     because of the crash must name the same source record (the DLQ is at-least-once).
 * The event stream and the ground truth come from truth.h (shared with the fault tests).
 * Usage: test_ingest_exactly_once PATH/TO/mmrecd  (under with_kafka.sh) */
#include <math.h>
#include <stdint.h>

#include "daemon.h"
#include "truth.h"

#define N_EVENTS 1000000
#define N_USERS 50000
#define N_ITEMS 10000
#define RING 64
#define N_DUP (N_EVENTS * 12 / 1000)
#define N_BAD (N_EVENTS * 6 / 1000)
#define KILLS 5

static uint64_t rng = 12345; /* the kill moments */
static uint64_t next_rand(void) { return mmr_rand_next(&rng); }

static const char *const bad_reason[5] = {"undecodable", "missing_id", "unknown_type", "bad_value", "id_too_long"};

/* Builds malformed message k (unique bytes); returns its length and reason index. */
static size_t make_bad(uint8_t *buf, int k, int64_t ts, int *reason) {
    char eid[32], user[32], longid[400];
    snprintf(eid, sizeof eid, "bad%d", k);
    snprintf(user, sizeof user, "u%d", k % N_USERS);
    *reason = k % 5;
    switch (*reason) {
    case 0: return (size_t)snprintf((char *)buf, 64, "\xff\xfe not protobuf %d", k);
    case 1: return truth_pack_event(buf, eid, "", "i1", 2, 1, ts);
    case 2: return truth_pack_event(buf, eid, user, "i1", 99, 1, ts);
    case 3: return truth_pack_event(buf, eid, user, "i1", 5, NAN, ts);
    default:
        memset(longid, 'x', 300);
        snprintf(longid + 300, 100, "%d", k);
        return truth_pack_event(buf, eid, user, longid, 2, 1, ts);
    }
}

int main(int argc, char **argv) {
    const char *brokers = getenv("MMREC_KAFKA_BOOTSTRAP");
    if (argc < 2 || !brokers) {
        fprintf(stderr, "skip: needs mmrecd path and MMREC_KAFKA_BOOTSTRAP (run via with_kafka.sh)\n");
        return MMR_TEST_SKIP;
    }
    char work[] = "/tmp/mmrec-eo-XXXXXX";
    CHECK(mkdtemp(work));
    int64_t ts = mmr_now_ms() - 3600 * 1000;
    truth_t truth;
    truth_init(&truth, N_EVENTS, N_USERS, N_ITEMS, 12345, ts);

    /* --- produce -------------------------------------------------------------------- */
    char errstr[512];
    rd_kafka_t *rk = truth_producer_new(brokers);
    int64_t t0 = mmr_mono_ns();
    uint8_t buf[1024];
    char user[32];
    long sent = 0, dups = 0, bads = 0;
    for (long i = 0; i < N_EVENTS; i++) {
        size_t len = truth_draw(&truth, buf, user);
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
        for (int i = 0; i < 6000 && truth_metric(d.metrics_port, "mmrec_ingest_consumed_total") < goal; i++)
            sleep_ms(10);
        long consumed = truth_metric(d.metrics_port, "mmrec_ingest_consumed_total");
        CHECK(daemon_stop(&d, SIGKILL) == 128 + SIGKILL);
        printf("ok kill -9 #%d after this life consumed %ld messages\n", kill_no + 1, consumed);
    }
    daemon_start(&d, argv[1], work, args);
    truth_wait_idle(&d);
    double ingest_s = (mmr_mono_ns() - t0) / 1e9;
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    printf("ok restarted, caught up and stopped cleanly; ingest wall time %.1f s (%.0f msg/s including %d restarts)\n",
           ingest_s, total / ingest_s, KILLS);

    /* --- offsets and state: the store equals the ground truth ------------------------ */
    truth_check_store(&truth, store_opt + strlen("--store.path="), RING, rk, 4);

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

    free(source); free(seen);
    truth_free(&truth);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    CHECK(system(cmd) == 0);
    return 0;
}
