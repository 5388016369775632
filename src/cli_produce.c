/* cli_produce.c — `mmrec produce`: push a dataset into Kafka as protobuf messages.
 *
 * Events: the TSV of docs/REPLAY.md (`ts_ms user_id item_id [type [value [request_id]]]`)
 * → mmrec.v1.Event keyed by user_id. The event_id is "<file name>:<line>", so producing
 * the same file twice is deduplicated by ingestion. Items: the JSON Lines of
 * docs/REPLAY.md (item_id, text_emb/image_emb/video_emb, or raw text embedded with
 * --dims) → mmrec.v1.Item keyed by item_id. Bad lines are reported with file:line and
 * skipped; the exit code is 1 if any line was bad or any delivery failed. */
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mmr_time.h"
#include "replay_io.h"
#include "mmrec/v1/event.pb-c.h"
#include "mmrec/v1/item.pb-c.h"

static atomic_long delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    if (m->err) {
        if (atomic_fetch_add(&delivery_failures, 1) < 5)
            fprintf(stderr, "mmrec produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static int send_msg(rd_kafka_t *rk, const char *topic, const char *key, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    protobuf_c_message_pack(msg, buf);
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                  RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 100);
    if (e) {
        free(buf);
        fprintf(stderr, "mmrec produce: %s\n", rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_poll(rk, 0);
    return 0;
}

/* Sleeps so that `sent` messages take at least sent/rate seconds since start_ns. */
static void pace(long sent, double rate, int64_t start_ns) {
    if (rate <= 0) return;
    int64_t due = start_ns + (int64_t)(sent / rate * 1e9), now = mmr_mono_ns();
    if (due > now) nanosleep(&(struct timespec){(due - now) / 1000000000, (due - now) % 1000000000}, NULL);
}

/* Reading goes through the replay readers (replay_io.h): the same TSV and JSON Lines rules
 * as `mmrec replay`, bad lines reported as file:line and counted, never fatal here. */
static mmr_replay_io_opts_t read_opts(const uint32_t *dims) {
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 1.0; /* produce what is good; the exit code reports the rest */
    if (dims) memcpy(o.dims, dims, sizeof o.dims);
    return o;
}

static long produce_events(rd_kafka_t *rk, const char *path, const char *topic, double rate, long *bad) {
    mmr_replay_io_opts_t o = read_opts(NULL);
    mmr_replay_io_events_t *r;
    mmr_err_t err = {0};
    if (mmr_replay_io_events_new(path, &o, &r, &err) != MMR_OK) {
        fprintf(stderr, "mmrec produce: %s\n", err.msg);
        (*bad)++;
        return 0;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char eid[512];
    long sent = 0;
    int64_t start = mmr_mono_ns();
    mmr_replay_event_t e;
    int got;
    while ((got = mmr_replay_io_events_next(r, &e, &err)) == 1) {
        Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
        snprintf(eid, sizeof eid, "%s:%ld", base, e.line);
        ev.event_id = eid;
        ev.user_id = (char *)e.ev.user_id;
        ev.item_id = (char *)e.ev.item_id;
        ev.type = (Mmrec__V1__EventType)e.ev.type;
        ev.value = e.ev.value;
        ev.ts_ms = e.ev.ts_ms;
        ev.request_id = (char *)e.request_id;
        if (send_msg(rk, topic, ev.user_id, &ev.base) != 0) { (*bad)++; break; }
        pace(++sent, rate, start);
    }
    if (got < 0) fprintf(stderr, "mmrec produce: %s\n", err.msg);
    mmr_replay_io_stats_t st;
    mmr_replay_io_events_stats(r, &st);
    *bad += st.bad + (got < 0);
    mmr_replay_io_events_free(r);
    return sent;
}

static long produce_items(rd_kafka_t *rk, const char *path, const char *topic, const uint32_t *dims,
                          long *bad) {
    mmr_replay_io_opts_t o = read_opts(dims);
    mmr_replay_io_items_t *r;
    mmr_err_t err = {0};
    if (mmr_replay_io_items_new(path, &o, &r, &err) != MMR_OK) {
        fprintf(stderr, "mmrec produce: %s\n", err.msg);
        (*bad)++;
        return 0;
    }
    long sent = 0;
    mmr_replay_item_t ri;
    int got;
    while ((got = mmr_replay_io_items_next(r, &ri, &err)) == 1) {
        const mmr_item_t *x = &ri.item;
        Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
        it.item_id = (char *)x->item_id;
        it.text_emb = (float *)x->emb[MMR_MODALITY_TEXT], it.n_text_emb = x->emb_dim[MMR_MODALITY_TEXT];
        it.image_emb = (float *)x->emb[MMR_MODALITY_IMAGE], it.n_image_emb = x->emb_dim[MMR_MODALITY_IMAGE];
        it.video_emb = (float *)x->emb[MMR_MODALITY_VIDEO], it.n_video_emb = x->emb_dim[MMR_MODALITY_VIDEO];
        it.created_ms = x->created_ms ? x->created_ms : mmr_now_ms();
        it.deleted = x->deleted;
        if (send_msg(rk, topic, x->item_id, &it.base) != 0) { (*bad)++; break; }
        sent++;
    }
    if (got < 0) fprintf(stderr, "mmrec produce: %s\n", err.msg);
    mmr_replay_io_stats_t st;
    mmr_replay_io_items_stats(r, &st);
    *bad += st.bad + (got < 0);
    mmr_replay_io_items_free(r);
    return sent;
}

int mmr_cli_produce(int argc, char **argv) {
    static const char *const valued[] = {"brokers", "events", "items", "events-topic", "items-topic", "rate", "dims", NULL};
    if (!mmr_cli_check_opts(argc, argv, valued, NULL)) return 2;
    const char *brokers = mmr_cli_opt(argc, argv, "brokers", NULL);
    const char *events = mmr_cli_opt(argc, argv, "events", NULL);
    const char *items = mmr_cli_opt(argc, argv, "items", NULL);
    if (!brokers || (!events && !items)) {
        fprintf(stderr, "mmrec produce: --brokers and at least one of --events/--items are required\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr)) {
        fprintf(stderr, "mmrec produce: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "mmrec produce: %s\n", errstr);
        return 1;
    }
    long bad = 0, n_items = 0, n_events = 0;
    uint32_t dims[3] = {0, 0, 0};
    const char *dims_s = mmr_cli_opt(argc, argv, "dims", NULL);
    if (dims_s && sscanf(dims_s, "%u,%u,%u", &dims[0], &dims[1], &dims[2]) != 3) {
        fprintf(stderr, "mmrec produce: --dims wants T,I,V (e.g. 384,512,512)\n");
        rd_kafka_destroy(rk);
        return 2;
    }
    if (items)
        n_items = produce_items(rk, items, mmr_cli_opt(argc, argv, "items-topic", "mmrec.items"), dims, &bad);
    if (events)
        n_events = produce_events(rk, events, mmr_cli_opt(argc, argv, "events-topic", "mmrec.events"),
                                  atof(mmr_cli_opt(argc, argv, "rate", "0")), &bad);
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "mmrec produce: %d messages not delivered within 60 s\n", rd_kafka_outq_len(rk));
        bad++;
    }
    rd_kafka_destroy(rk);
    long failed = atomic_load(&delivery_failures);
    printf("produced %ld items, %ld events; %ld bad lines, %ld delivery failures\n", n_items, n_events,
           bad, failed);
    return bad || failed ? 1 : 0;
}
