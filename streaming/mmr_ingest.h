/* mmr_ingest.h — Kafka → feature store ingestion (librdkafka consumer group).
 *
 * One consumer thread polls mmrec.events, decodes and validates each message, and
 * applies a batch of events as ONE feature-store WriteBatch that also holds the next
 * offset of every partition in the batch; Kafka offsets are committed only after that
 * write succeeds. On partition assignment the consumer seeks to the offsets stored in the
 * feature store, so a crash at any point neither loses nor double-counts an event.
 * Malformed messages go to the dead-letter topic with the reason in header "mmrec.reason"
 * and are counted per reason; they never stop ingestion. */
#ifndef MMR_INGEST_H
#define MMR_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"

typedef struct mmr_ingest mmr_ingest_t;

typedef enum {
    MMR_INGEST_FORMAT_PROTOBUF = 0, /* mmrec.v1.Event */
    MMR_INGEST_FORMAT_JSON,         /* one JSON object per message, same field names */
} mmr_ingest_format_t;

typedef struct mmr_ingest_conf {
    const char *brokers;         /* "127.0.0.1:9092" */
    const char *group_id;        /* consumer group, e.g. "mmrec-ingest" */
    const char *events_topic;    /* "mmrec.events" */
    const char *dlq_topic;       /* "mmrec.events.dlq" */
    mmr_ingest_format_t format;
    uint32_t batch_max;          /* events per WriteBatch (default 1000 when 0) */
    uint32_t batch_ms;           /* longest wait to fill a batch (default 50 when 0) */
    int64_t max_future_ms;       /* events stamped further ahead than this are invalid (default 1 h) */
    const char *const *kafka_props; /* "key=value" librdkafka properties, passed through */
    size_t n_kafka_props;
} mmr_ingest_conf_t;

/* Reasons a message is dead-lettered; the header value is mmr_ingest_reason_str(r). */
typedef enum {
    MMR_INGEST_BAD_DECODE = 0,   /* "undecodable" */
    MMR_INGEST_BAD_MISSING_ID,   /* "missing_id" */
    MMR_INGEST_BAD_TYPE,         /* "unknown_type" */
    MMR_INGEST_BAD_VALUE,        /* "bad_value": NaN/Inf or negative where not allowed */
    MMR_INGEST_BAD_TS,           /* "bad_timestamp": negative or too far in the future */
    MMR_INGEST_BAD_ID_TOO_LONG,  /* "id_too_long" */
    MMR_INGEST_BAD_COUNT
} mmr_ingest_reason_t;

const char *mmr_ingest_reason_str(mmr_ingest_reason_t r);

typedef struct mmr_ingest_stats {
    uint64_t consumed;           /* messages read from Kafka */
    uint64_t applied;            /* events written to the store */
    uint64_t duplicates;         /* events skipped by event_id dedup */
    uint64_t dead_lettered[MMR_INGEST_BAD_COUNT];
    uint64_t batches;
    uint64_t store_errors;       /* failed WriteBatch commits (offsets not committed) */
    double last_batch_ms;        /* latency of the last WriteBatch commit */
} mmr_ingest_stats_t;

/* Creates the consumer (and the DLQ producer); conf strings are copied, fs is borrowed and
 * must outlive the ingest object. Errors: MMR_ERR_INVALID (bad conf/property), MMR_ERR_KAFKA. */
mmr_status_t mmr_ingest_new(const mmr_ingest_conf_t *conf, mmr_fstore_t *fs, mmr_ingest_t **out,
                            mmr_err_t *err);
/* Starts the consumer thread. */
mmr_status_t mmr_ingest_start(mmr_ingest_t *ing, mmr_err_t *err);
/* Stops consuming, writes and commits what was read, leaves the group, joins the thread.
 * Safe to call twice. */
void mmr_ingest_stop(mmr_ingest_t *ing);
/* Stops if needed and frees. NULL is a no-op. */
void mmr_ingest_free(mmr_ingest_t *ing);
/* A consistent-enough copy of the counters (each counter read atomically). */
void mmr_ingest_get_stats(mmr_ingest_t *ing, mmr_ingest_stats_t *out);

#endif
