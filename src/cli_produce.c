/* cli_produce.c — `mmrec produce`: push a dataset into Kafka as protobuf messages.
 *
 * Events: TSV lines `ts_ms user_id item_id [type [value [request_id]]]` (type defaults
 * to CLICK, value to 1) → mmrec.v1.Event keyed by user_id. The event_id is
 * "<file name>:<line>", so producing the same file twice is deduplicated by ingestion.
 * Items: JSON Lines with item_id and optional text_emb/image_emb/video_emb float
 * arrays → mmrec.v1.Item keyed by item_id. Bad lines are reported with file:line and
 * skipped; the exit code is 1 if any line was bad or any delivery failed. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mmr_time.h"
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

static long produce_events(rd_kafka_t *rk, const char *path, const char *topic, double rate, long *bad) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "mmrec produce: cannot open %s\n", path); (*bad)++; return 0; }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char line[4096], eid[512];
    long lineno = 0, sent = 0;
    int64_t start = mmr_mono_ns();
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line || *line == '#') continue;
        char *col[6] = {0}, *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, "\t", &save); t && n < 6; t = strtok_r(NULL, "\t", &save)) col[n++] = t;
        Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
        char *end;
        ev.ts_ms = n >= 3 ? strtoll(col[0], &end, 10) : 0;
        const ProtobufCEnumValue *type = protobuf_c_enum_descriptor_get_value_by_name(
            &mmrec__v1__event_type__descriptor, n >= 4 ? col[3] : "CLICK");
        if (n < 3 || *end || !type) {
            if ((*bad)++ < 10)
                fprintf(stderr, "%s:%ld: expected ts_ms<TAB>user<TAB>item[<TAB>TYPE[<TAB>value[<TAB>request_id]]]\n",
                        path, lineno);
            continue;
        }
        snprintf(eid, sizeof eid, "%s:%ld", base, lineno);
        ev.event_id = eid;
        ev.user_id = col[1];
        ev.item_id = col[2];
        ev.type = (Mmrec__V1__EventType)type->value;
        ev.value = n >= 5 ? strtof(col[4], NULL) : 1.0f;
        if (n >= 6) ev.request_id = col[5];
        if (send_msg(rk, topic, ev.user_id, &ev.base) != 0) { (*bad)++; break; }
        pace(++sent, rate, start);
    }
    fclose(f);
    return sent;
}

static int json_floats(json_t *arr, float **out, size_t *n) {
    if (!arr) return 1;
    if (!json_is_array(arr)) return 0;
    *n = json_array_size(arr);
    *out = malloc(sizeof(float) * (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_number(v)) return 0;
        (*out)[i] = (float)json_number_value(v);
    }
    return 1;
}

static long produce_items(rd_kafka_t *rk, const char *path, const char *topic, long *bad) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "mmrec produce: cannot open %s\n", path); (*bad)++; return 0; }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, sent = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
        const char *id = o ? json_string_value(json_object_get(o, "item_id")) : NULL;
        int ok = id && json_floats(json_object_get(o, "text_emb"), &it.text_emb, &it.n_text_emb) &&
                 json_floats(json_object_get(o, "image_emb"), &it.image_emb, &it.n_image_emb) &&
                 json_floats(json_object_get(o, "video_emb"), &it.video_emb, &it.n_video_emb);
        if (!ok) {
            if ((*bad)++ < 10)
                fprintf(stderr, "%s:%ld: %s\n", path, lineno,
                        o ? "expected {\"item_id\": string, \"text_emb\"/\"image_emb\"/\"video_emb\": [numbers]}" : jerr.text);
        } else {
            it.item_id = (char *)id;
            it.created_ms = mmr_now_ms();
            if (send_msg(rk, topic, id, &it.base) == 0) sent++;
            else (*bad)++;
        }
        free(it.text_emb);
        free(it.image_emb);
        free(it.video_emb);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return sent;
}

int mmr_cli_produce(int argc, char **argv) {
    static const char *const valued[] = {"brokers", "events", "items", "events-topic", "items-topic", "rate", NULL};
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
    if (items) n_items = produce_items(rk, items, mmr_cli_opt(argc, argv, "items-topic", "mmrec.items"), &bad);
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
