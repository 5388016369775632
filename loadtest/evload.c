/* evload.c — mmrec-load's Kafka producer mode (see evload.h). One librdkafka producer
 * on the calling thread; delivery reports are served by rd_kafka_poll on that same
 * thread, so the counters need no locks. */
#include "evload.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "mmr_log.h"
#include "mmr_rand.h"
#include "mmr_time.h"
#include "mmrec/v1/event.pb-c.h"
#include "pace.h"
#include "zipf.h"

#define ID_LEN 48
#define LATE_STOP_NS 1000000000LL /* give up sending 1 s after the schedule ends */

void mmr_evload_cfg_default(mmr_evload_cfg_t *c) {
    memset(c, 0, sizeof *c);
    c->topic = "mmrec.events";
    c->rate = 1000;
    c->duration_s = 10;
    c->users = 1000;
    c->items = 500;
    c->seed = 1;
    c->flush_ms = 5000;
}

typedef struct run {
    mmr_evload_result_t *res;
    long delivered_failed;
    int64_t last_ack_ns;
} run_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    run_t *r = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->res->acked++;
        r->last_ack_ns = mmr_mono_ns();
    } else {
        r->delivered_failed++;
        snprintf(r->res->last_error, sizeof r->res->last_error, "%s", rd_kafka_err2str(m->err));
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    mmr_log(level <= 3 ? MMR_LOG_ERROR : level <= 5 ? MMR_LOG_WARN : MMR_LOG_DEBUG, "kafka", "%s: %s", fac, buf);
}

static mmr_status_t producer_new(const mmr_evload_cfg_t *cfg, run_t *r, rd_kafka_t **out, mmr_err_t *err) {
    static const char *const kv[][2] = {
        {"linger.ms", "5"},                /* small batches: freshness is measured from ts_ms */
        {"queue.buffering.max.messages", "1000000"},
    };
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return mmr_err_set(err, MMR_ERR_INVALID, "kafka: %s", errstr);
    }
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof errstr); /* valid by construction */
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, r);
    *out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr); /* takes conf on success */
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        return mmr_err_set(err, MMR_ERR_KAFKA, "kafka producer: %s", errstr);
    }
    return MMR_OK;
}

/* Event j of this run into ev, its strings in the caller's buffers. */
static void draw_event(const mmr_evload_cfg_t *cfg, const mmr_zipf_t *users, const mmr_zipf_t *items,
                       uint64_t *rng, long long run_ms, long j, char *eid, char *user, char *item,
                       Mmrec__V1__Event *ev) {
    *ev = (Mmrec__V1__Event)MMREC__V1__EVENT__INIT;
    snprintf(eid, ID_LEN, "ld%lld-%llu-%ld", run_ms, (unsigned long long)cfg->seed, j);
    mmr_zipf_draw_id(users, rng, 'u', user);
    mmr_zipf_draw_id(items, rng, 'i', item);
    ev->event_id = eid;
    ev->user_id = user;
    ev->item_id = item;
    double u = mmr_rand_uniform(rng);
    ev->type = u < 0.80 ? MMREC__V1__EVENT_TYPE__CLICK
             : u < 0.90 ? MMREC__V1__EVENT_TYPE__IMPRESSION
             : u < 0.95 ? MMREC__V1__EVENT_TYPE__LIKE : MMREC__V1__EVENT_TYPE__WATCH;
    ev->value = ev->type == MMREC__V1__EVENT_TYPE__WATCH ? (float)(1 + mmr_rand_next(rng) % 60) : 1.0f;
}

mmr_status_t mmr_evload_run(const mmr_evload_cfg_t *cfg, mmr_evload_result_t *res, mmr_err_t *err) {
    memset(res, 0, sizeof *res);
    if (!cfg->brokers || !*cfg->brokers || !cfg->topic || !(cfg->rate > 0) || !(cfg->duration_s > 0) ||
        cfg->rate * cfg->duration_s > 1e9 || cfg->max_events < 0 || cfg->users < 1 || cfg->items < 1 ||
        !(cfg->zipf_s >= 0) || cfg->flush_ms < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "evload: option out of range");
    double want = cfg->rate * cfg->duration_s;
    res->scheduled = cfg->max_events > 0 && cfg->max_events < want ? cfg->max_events : (long)want;
    run_t r = {.res = res};
    mmr_zipf_t users = {0}, items = {0};
    rd_kafka_t *rk = NULL;
    mmr_status_t st = mmr_zipf_init(&users, cfg->users, cfg->zipf_s, err);
    if (st == MMR_OK) st = mmr_zipf_init(&items, cfg->items, cfg->zipf_s, err);
    if (st == MMR_OK) st = producer_new(cfg, &r, &rk, err);
    if (st != MMR_OK) {
        mmr_zipf_release(&users);
        mmr_zipf_release(&items);
        return st;
    }
    uint64_t rng = cfg->seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull; /* not the Rank streams */
    long long run_ms = (long long)mmr_now_ms();
    int64_t start = mmr_mono_ns();
    int64_t late_stop = start + (int64_t)(cfg->duration_s * 1e9) + LATE_STOP_NS;
    mmr_pace_t pace;
    mmr_pace_init(&pace, cfg->rate, start);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, cfg->topic, NULL);
    while (pace.next < res->scheduled && mmr_mono_ns() < late_stop) {
        long j = pace.next;
        int64_t due = mmr_pace_wait(&pace, INT64_MAX);
        char eid[ID_LEN], user[ID_LEN], item[ID_LEN];
        uint8_t buf[256]; /* an Event with these ids packs to < 100 bytes */
        Mmrec__V1__Event ev;
        draw_event(cfg, &users, &items, &rng, run_ms, j, eid, user, item, &ev);
        int64_t now = mmr_mono_ns();
        if (now - due > res->max_lag_ns) res->max_lag_ns = now - due;
        ev.ts_ms = mmr_now_ms();
        size_t len = mmrec__v1__event__pack(&ev, buf);
        int rc;
        while ((rc = rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf, len, user,
                                      strlen(user), NULL)) != 0 &&
               rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL && mmr_mono_ns() < late_stop)
            rd_kafka_poll(rk, 1); /* local queue full: serve reports, then retry */
        if (rc == 0) {
            res->sent++;
        } else {
            res->failed++;
            snprintf(res->last_error, sizeof res->last_error, "%s", rd_kafka_err2str(rd_kafka_last_error()));
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, cfg->flush_ms);
    rd_kafka_poll(rk, 0);
    res->failed += r.delivered_failed;
    res->unacked = res->sent - res->acked - r.delivered_failed;
    int64_t end = r.last_ack_ns > start ? r.last_ack_ns : mmr_mono_ns();
    res->elapsed_s = (double)(end - start) / 1e9;
    res->achieved_rate = res->elapsed_s > 0 ? res->acked / res->elapsed_s : 0;
    rd_kafka_topic_destroy(topic);
    if (res->unacked) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT); /* bounded exit */
    rd_kafka_destroy(rk);
    mmr_zipf_release(&users);
    mmr_zipf_release(&items);
    return MMR_OK;
}
