/* impressions.c — non-blocking impression log producer (see mmr_impressions.h). */
#include "mmr_impressions.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kconf.h"
#include "mmr_cpu.h"
#include "mmr_log.h"

struct mmr_impressions {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    pthread_t poller;
    atomic_bool stop;
    atomic_uint_fast64_t logged, delivered, failed, dropped;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    mmr_impressions_t *p = opaque;
    if (!m->err) { atomic_fetch_add(&p->delivered, 1); return; }
    if (atomic_fetch_add(&p->failed, 1) % 1000 == 0) /* the first, then every 1000th */
        mmr_log(MMR_LOG_WARN, "impressions", "delivery failed: %s", rd_kafka_err2str(m->err));
}

static void *poller_main(void *arg) {
    mmr_impressions_t *p = arg;
    mmr_thread_set_name("mmr-impr-poll");
    while (!atomic_load(&p->stop)) rd_kafka_poll(p->rk, 100);
    return NULL;
}

mmr_status_t mmr_impressions_new(const mmr_impressions_conf_t *conf, mmr_impressions_t **out,
                                 mmr_err_t *err) {
    if (!conf->brokers || !conf->topic || !*conf->topic)
        return mmr_err_set(err, MMR_ERR_INVALID, "impressions: brokers and topic are required");
    mmr_impressions_t *p = calloc(1, sizeof *p);
    if (!p) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    char buffered[32], errstr[512];
    snprintf(buffered, sizeof buffered, "%u", conf->max_buffered ? conf->max_buffered : 100000);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    mmr_kconf_callbacks(c);
    rd_kafka_conf_set_opaque(c, p);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    mmr_status_t st;
    if ((st = mmr_kconf_set(c, "bootstrap.servers", conf->brokers, err)) ||
        (st = mmr_kconf_set(c, "client.id", "mmrec-impressions", err)) ||
        (st = mmr_kconf_set(c, "linger.ms", "20", err)) ||
        (st = mmr_kconf_set(c, "queue.buffering.max.messages", buffered, err)) ||
        (st = mmr_kconf_set_props(c, conf->kafka_props, conf->n_kafka_props, "producer", err))) {
        rd_kafka_conf_destroy(c);
        free(p);
        return st;
    }
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
    if (!p->rk) {
        rd_kafka_conf_destroy(c);
        free(p);
        return mmr_err_set(err, MMR_ERR_KAFKA, "impressions producer: %s", errstr);
    }
    p->topic = rd_kafka_topic_new(p->rk, conf->topic, NULL);
    pthread_create(&p->poller, NULL, poller_main, p);
    *out = p;
    return MMR_OK;
}

void mmr_impressions_log(void *opaque, const Mmrec__V1__Impression *imp) {
    mmr_impressions_t *p = opaque;
    size_t len = mmrec__v1__impression__get_packed_size(imp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) { atomic_fetch_add(&p->dropped, 1); return; }
    mmrec__v1__impression__pack(imp, buf);
    if (rd_kafka_produce(p->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, buf, len,
                         imp->user_id, strlen(imp->user_id), NULL) != 0) {
        free(buf); /* queue full (or fatal): never block the request */
        if (atomic_fetch_add(&p->dropped, 1) % 1000 == 0)
            mmr_log(MMR_LOG_WARN, "impressions", "local buffer full: dropping impressions (%s)",
                    rd_kafka_err2str(rd_kafka_last_error()));
        return;
    }
    atomic_fetch_add(&p->logged, 1);
}

void mmr_impressions_get_stats(mmr_impressions_t *p, mmr_impressions_stats_t *out) {
    out->logged = atomic_load(&p->logged);
    out->delivered = atomic_load(&p->delivered);
    out->failed = atomic_load(&p->failed);
    out->dropped = atomic_load(&p->dropped);
}

void mmr_impressions_free(mmr_impressions_t *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    pthread_join(p->poller, NULL);
    if (rd_kafka_flush(p->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        mmr_log(MMR_LOG_WARN, "impressions", "%d impressions undelivered at shutdown",
                rd_kafka_outq_len(p->rk));
    rd_kafka_topic_destroy(p->topic);
    rd_kafka_destroy(p->rk);
    free(p);
}
