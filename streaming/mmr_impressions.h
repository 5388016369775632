/* mmr_impressions.h — logs each served ranking to Kafka topic mmrec.impressions (key =
 * user_id, protobuf mmrec.v1.Impression) so the trainer can learn negatives.
 *
 * Never on the request's critical path: mmr_impressions_log only enqueues into
 * librdkafka's bounded local buffer; when it is full (e.g. the broker is down longer
 * than the buffer lasts) the impression is dropped and counted. A poller thread serves
 * delivery reports. Thread-safe. */
#ifndef MMR_IMPRESSIONS_H
#define MMR_IMPRESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmrec/v1/event.pb-c.h"

typedef struct mmr_impressions mmr_impressions_t;

typedef struct mmr_impressions_conf {
    const char *brokers;
    const char *topic;             /* "mmrec.impressions" */
    uint32_t max_buffered;         /* messages held locally while undelivered (default 100000) */
    const char *const *kafka_props; /* "key=value" pass-through ("producer." prefix allowed) */
    size_t n_kafka_props;
} mmr_impressions_conf_t;

typedef struct mmr_impressions_stats {
    uint64_t logged;     /* accepted into the local buffer */
    uint64_t delivered;  /* acknowledged by the broker */
    uint64_t failed;     /* delivery failed after librdkafka's retries */
    uint64_t dropped;    /* refused because the local buffer was full */
} mmr_impressions_stats_t;

/* conf strings are copied. Errors: MMR_ERR_INVALID (bad property), MMR_ERR_KAFKA. */
mmr_status_t mmr_impressions_new(const mmr_impressions_conf_t *conf, mmr_impressions_t **out,
                                 mmr_err_t *err);
/* Enqueues one impression (imp is borrowed for the call). opaque is the mmr_impressions_t,
 * so this matches the ranker's impression sink. */
void mmr_impressions_log(void *opaque, const Mmrec__V1__Impression *imp);
void mmr_impressions_get_stats(mmr_impressions_t *p, mmr_impressions_stats_t *out);
/* Delivers what is buffered (up to 5 s), stops the poller and frees. NULL is a no-op. */
void mmr_impressions_free(mmr_impressions_t *p);

#endif
