/* trainfeed.c — the trainer's consumer (see mmr_trainfeed.h).
 *
 * Offsets blob: text, one line per partition, "<topic> <partition> <next offset>\n"; small,
 * readable in a checkpoint dump, and checked line by line on load. */
#include "mmr_trainfeed.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kconf.h"
#include "mmr_decode.h"
#include "mmr_log.h"
#include "mmr_time.h"
#include "mmrec/v1/event.pb-c.h"

#define LOG_MOD "trainfeed"
enum { T_EVENTS, T_IMPRESSIONS, T_COUNT };

typedef struct part {
    int topic; /* T_* */
    int32_t partition;
    int64_t next; /* next offset to read; -1 = none saved */
} part_t;

struct mmr_trainfeed {
    rd_kafka_t *rk;
    mmr_joiner_t *joiner;
    char *topics[T_COUNT];
    mmr_ingest_format_t format;
    int64_t max_future_ms;
    part_t *parts;
    size_t n_parts, cap_parts;
    mmr_ingest_decoded_t dec;
    atomic_uint_fast64_t events, impressions, undecodable;
    atomic_int assigned;
};

static int topic_index(const mmr_trainfeed_t *f, const char *name) {
    for (int t = 0; t < T_COUNT; t++)
        if (f->topics[t] && strcmp(f->topics[t], name) == 0) return t;
    return -1;
}

static part_t *part_get(mmr_trainfeed_t *f, int t, int32_t partition) {
    for (size_t i = 0; i < f->n_parts; i++)
        if (f->parts[i].topic == t && f->parts[i].partition == partition) return &f->parts[i];
    if (f->n_parts == f->cap_parts) {
        size_t cap = f->cap_parts ? 2 * f->cap_parts : 16;
        part_t *p = realloc(f->parts, cap * sizeof *p);
        if (!p) return NULL;
        f->parts = p;
        f->cap_parts = cap;
    }
    f->parts[f->n_parts] = (part_t){.topic = t, .partition = partition, .next = -1};
    return &f->parts[f->n_parts++];
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    mmr_trainfeed_t *f = opaque;
    for (int i = 0; err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = topic_index(f, tp->topic);
        part_t *p = t >= 0 ? part_get(f, t, tp->partition) : NULL;
        tp->offset = p && p->next >= 0 ? p->next : RD_KAFKA_OFFSET_BEGINNING;
    }
    mmr_kconf_rebalance_apply(rk, err, parts, &f->assigned, LOG_MOD);
}

void mmr_trainfeed_free(mmr_trainfeed_t *f) {
    if (!f) return;
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    for (int t = 0; t < T_COUNT; t++) free(f->topics[t]);
    free(f->parts);
    free(f);
}

mmr_status_t mmr_trainfeed_new(const mmr_trainfeed_conf_t *conf, mmr_joiner_t *joiner,
                               mmr_trainfeed_t **out, mmr_err_t *err) {
    if (!conf || !joiner || !conf->brokers || !*conf->brokers || !conf->group_id ||
        !*conf->group_id || !conf->events_topic || !*conf->events_topic)
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "trainfeed: brokers, group_id and events_topic are required");
    mmr_trainfeed_t *f = calloc(1, sizeof *f);
    if (!f) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    f->joiner = joiner;
    f->format = conf->format;
    f->max_future_ms = conf->max_future_ms ? conf->max_future_ms : 3600000;
    f->topics[T_EVENTS] = strdup(conf->events_topic);
    int imps = conf->impressions_topic && *conf->impressions_topic;
    f->topics[T_IMPRESSIONS] = imps ? strdup(conf->impressions_topic) : NULL;
    if (!f->topics[T_EVENTS] || (imps && !f->topics[T_IMPRESSIONS])) {
        mmr_trainfeed_free(f);
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(c, f);
    mmr_kconf_callbacks(c);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    mmr_status_t st;
    if ((st = mmr_kconf_set(c, "bootstrap.servers", conf->brokers, err)) ||
        (st = mmr_kconf_set(c, "client.id", "mmrec-trainer", err)) ||
        (st = mmr_kconf_set(c, "group.id", conf->group_id, err)) ||
        /* freshness: do not let the broker hold a fetch 500 ms (librdkafka's default) */
        (st = mmr_kconf_set(c, "fetch.wait.max.ms", "50", err)) ||
        (st = mmr_kconf_set_props(c, conf->kafka_props, conf->n_kafka_props, "consumer", err)) ||
        (st = mmr_kconf_set(c, "enable.auto.commit", "false", err)) ||
        (st = mmr_kconf_set(c, "enable.auto.offset.store", "false", err))) {
        rd_kafka_conf_destroy(c);
        mmr_trainfeed_free(f);
        return st;
    }
    char errstr[512];
    if (!(f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(c);
        mmr_trainfeed_free(f);
        return mmr_err_set(err, MMR_ERR_KAFKA, "trainfeed: creating the consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(f->rk);
    *out = f;
    return MMR_OK;
}

mmr_status_t mmr_trainfeed_set_offsets(mmr_trainfeed_t *f, const void *blob, size_t len,
                                       mmr_err_t *err) {
    const char *s = blob, *end = s + len;
    int line = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        line++;
        char buf[512], topic[400];
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        int32_t partition;
        int64_t next;
        int used = 0;
        if (!nl || n >= sizeof buf) goto bad;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (sscanf(buf, "%399s %" SCNd32 " %" SCNd64 "%n", topic, &partition, &next, &used) != 3 ||
            (size_t)used != n || partition < 0 || next < 0)
            goto bad;
        int t = topic_index(f, topic);
        if (t < 0) { /* a topic no longer read (config changed): dropped */
            mmr_log(MMR_LOG_WARN, LOG_MOD, "checkpoint offsets name topic %s, not read now", topic);
        } else {
            part_t *p = part_get(f, t, partition);
            if (!p) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
            p->next = next;
        }
        s = nl + 1;
        continue;
    bad:
        return mmr_err_set(err, MMR_ERR_CORRUPT, "trainer offsets: line %d is not \"topic partition offset\"", line);
    }
    return MMR_OK;
}

mmr_status_t mmr_trainfeed_start(mmr_trainfeed_t *f, mmr_err_t *err) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(T_COUNT);
    for (int t = 0; t < T_COUNT; t++)
        if (f->topics[t]) rd_kafka_topic_partition_list_add(l, f->topics[t], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(f->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) return mmr_err_set(err, MMR_ERR_KAFKA, "trainfeed: subscribe: %s", rd_kafka_err2str(e));
    return MMR_OK;
}

/* An Impression from mmrec.impressions; malformed ones are counted and skipped. */
static mmr_status_t feed_impression(mmr_trainfeed_t *f, const rd_kafka_message_t *m, mmr_err_t *err) {
    Mmrec__V1__Impression *imp = mmrec__v1__impression__unpack(NULL, m->len, m->payload);
    int ok = imp && *imp->user_id && strlen(imp->user_id) <= MMR_ID_MAX &&
             strlen(imp->request_id) <= MMR_ID_MAX && imp->ts_ms >= 0;
    for (size_t i = 0; ok && i < imp->n_item_ids; i++)
        ok = *imp->item_ids[i] && strlen(imp->item_ids[i]) <= MMR_ID_MAX;
    mmr_status_t st = MMR_OK;
    if (!ok) {
        atomic_fetch_add(&f->undecodable, 1);
    } else {
        atomic_fetch_add(&f->impressions, 1);
        st = mmr_joiner_impression(f->joiner, imp->request_id, imp->user_id,
                                   (const char *const *)imp->item_ids, imp->n_item_ids,
                                   imp->model_version, imp->experiment_arm,
                                   imp->ts_ms ? imp->ts_ms : mmr_now_ms(), err);
    }
    mmrec__v1__impression__free_unpacked(imp, NULL);
    return st;
}

int mmr_trainfeed_poll(mmr_trainfeed_t *f, int timeout_ms, int max_msgs, mmr_err_t *err) {
    int n = 0;
    while (n < max_msgs) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, n ? 0 : timeout_ms);
        if (!m) break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                mmr_log(MMR_LOG_WARN, LOG_MOD, "consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int t = topic_index(f, rd_kafka_topic_name(m->rkt));
        part_t *p = t >= 0 ? part_get(f, t, m->partition) : NULL;
        mmr_status_t st = MMR_OK;
        if (t == T_IMPRESSIONS) {
            st = feed_impression(f, m, err);
        } else if (t == T_EVENTS) {
            mmr_ingest_reason_t reason;
            if (mmr_ingest_decode_event(f->format, m->payload, m->len, mmr_now_ms(),
                                        f->max_future_ms, &f->dec, &reason, NULL) == MMR_OK) {
                atomic_fetch_add(&f->events, 1);
                st = mmr_joiner_event(f->joiner, &f->dec.ev, f->dec.request_id, err);
            } else {
                atomic_fetch_add(&f->undecodable, 1);
            }
        }
        if (p && st == MMR_OK) p->next = m->offset + 1;
        rd_kafka_message_destroy(m);
        if (st != MMR_OK) return -(int)st;
        n++;
    }
    return n;
}

mmr_status_t mmr_trainfeed_offsets(mmr_trainfeed_t *f, void **blob, size_t *len, mmr_err_t *err) {
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    if (!mem) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->n_parts; i++)
        if (f->parts[i].next >= 0)
            fprintf(mem, "%s %" PRId32 " %" PRId64 "\n", f->topics[f->parts[i].topic],
                    f->parts[i].partition, f->parts[i].next);
    if (fclose(mem) != 0) {
        free(buf);
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    *blob = buf;
    *len = size;
    return MMR_OK;
}

void mmr_trainfeed_commit(mmr_trainfeed_t *f) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)f->n_parts);
    for (size_t i = 0; i < f->n_parts; i++)
        if (f->parts[i].next >= 0)
            rd_kafka_topic_partition_list_add(l, f->topics[f->parts[i].topic], f->parts[i].partition)
                ->offset = f->parts[i].next;
    if (l->cnt) rd_kafka_commit(f->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

void mmr_trainfeed_get_stats(mmr_trainfeed_t *f, mmr_trainfeed_stats_t *out) {
    out->events = atomic_load(&f->events);
    out->impressions = atomic_load(&f->impressions);
    out->undecodable = atomic_load(&f->undecodable);
    out->assigned = (uint64_t)atomic_load(&f->assigned);
}
