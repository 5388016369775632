/* mmr_ingest.h — Kafka → feature store ingestion (librdkafka consumer group).
 *
 * One consumer thread polls mmrec.events and, when items_topic is set, the catalog topic
 * mmrec.items, in ONE consumer group, and hands the messages to a writer thread through a
 * bounded queue (queue_max; the partitions are paused while store writes fail, and while
 * the writer lags: it took nothing from the full queue for pause_after_ms). The writer
 * decodes and validates each message (rules in mmr_decode.h) and applies a batch of events
 * and items as ONE feature-store WriteBatch that also holds the next offset of every
 * partition of both topics in the batch; Kafka offsets are committed (explicit list,
 * asynchronously while running, synchronously on revoke and close) only after that write
 * succeeds. On partition assignment the consumer seeks to the offsets stored in the
 * feature store (earliest when none), so a crash at any point neither loses nor
 * double-applies an event or an item. A failed store write commits nothing, seeks the
 * batch's partitions back and retries after a backoff.
 *
 * Items: a valid mmrec.v1.Item replaces the stored item of the same item_id
 * (mmr_fstore_batch_put_item); deleted = true writes a tombstone (deleted = 1, no
 * embeddings). Partitions of both topics are spread over the group's members like any
 * subscription, so with several instances each store gets only its share of the catalog.
 *
 * Malformed messages go to the dead-letter topic (original key and bytes, headers
 * "mmrec.reason" = mmr_ingest_reason_str(r), "mmrec.source" = "topic/partition/offset",
 * "mmrec.detail" = the validation message) and are counted per reason; they never stop
 * ingestion. The DLQ producer is flushed before the store batch covering those offsets is
 * written, so a bad message is in the DLQ before its offset can be committed. A batch
 * retried after a store failure does not re-send what already reached the DLQ; after a
 * DLQ failure or a crash a bad message may appear there twice (at-least-once).
 *
 * librdkafka's logs and errors are routed to mmr_log (modules "kafka" and "ingest"). */
#ifndef MMR_INGEST_H
#define MMR_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "mmr_err.h"
#include "mmr_fstore.h"

typedef struct mmr_ingest mmr_ingest_t;

typedef enum {
    MMR_INGEST_FORMAT_PROTOBUF = 0, /* mmrec.v1.Event; mmrec.v1.Item on items_topic */
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
    /* "key=value" librdkafka properties, passed through in order to both the consumer and
     * the DLQ producer; "consumer.key=value" / "producer.key=value" go to one only.
     * Applied after the defaults (auto.offset.reset=earliest, acks=all), but
     * enable.auto.commit and enable.auto.offset.store are always false. */
    const char *const *kafka_props;
    size_t n_kafka_props;
    const char *items_topic;     /* "mmrec.items"; NULL or "" = do not consume items */
    /* Expected embedding widths, indexed by mmr_modality_t (text, image, video): a present
     * modality of another width is dead-lettered (bad_embedding_width); 0 = any width up
     * to MMR_EMB_DIM_MAX. */
    uint32_t emb_dims[MMR_MODALITY_COUNT];
    /* Messages queued between the consumer thread and the writer thread (default 4 ×
     * batch_max when 0); a full queue stops polling, so a slow store holds this many
     * messages at most besides librdkafka's prefetch (queued.max.messages.kbytes, which
     * is dropped while the partitions are paused). */
    uint32_t queue_max;
    /* The writer took nothing from the full queue for this long (a stalled store): the
     * partitions are paused and the consumer thread goes on polling (rebalances, the poll
     * interval) until the writer has drained the queue to half, then resumes them.
     * 0 = 1000. Pausing needs the eager rebalance protocol (the default); with
     * cooperative-sticky the consumer only stops polling (docs/ARCHITECTURE.md). */
    uint32_t pause_after_ms;
} mmr_ingest_conf_t;

/* Reasons a message is dead-lettered; the header value is mmr_ingest_reason_str(r). */
typedef enum {
    MMR_INGEST_BAD_DECODE = 0,   /* "undecodable" */
    MMR_INGEST_BAD_MISSING_ID,   /* "missing_id" */
    MMR_INGEST_BAD_TYPE,         /* "unknown_type" */
    MMR_INGEST_BAD_VALUE,        /* "bad_value": NaN/Inf or negative where not allowed */
    MMR_INGEST_BAD_TS,           /* "bad_timestamp": negative or too far in the future;
                                    for items, a negative created_ms */
    MMR_INGEST_BAD_ID_TOO_LONG,  /* "id_too_long" */
    MMR_INGEST_BAD_REJECTED,     /* "store_rejected": decoded, but the feature store refused
                                    it as invalid (the rules disagree: a bug to fix) */
    MMR_INGEST_BAD_EMB_WIDTH,    /* "bad_embedding_width": a present modality's width is not
                                    the configured one (or exceeds MMR_EMB_DIM_MAX) */
    MMR_INGEST_BAD_EMB_VALUE,    /* "bad_embedding_value": NaN/Inf or beyond float range */
    MMR_INGEST_BAD_COUNT
} mmr_ingest_reason_t;

const char *mmr_ingest_reason_str(mmr_ingest_reason_t r);

/* applied, duplicates, dead_lettered, batches and items_applied count committed batches
 * only, so a retried batch is not counted twice; consumed counts every read (both topics),
 * re-reads included. dead_lettered counts events and items together. */
typedef struct mmr_ingest_stats {
    uint64_t consumed;           /* messages read from Kafka */
    uint64_t applied;            /* events written to the store */
    uint64_t duplicates;         /* events skipped by event_id dedup */
    uint64_t dead_lettered[MMR_INGEST_BAD_COUNT];
    uint64_t batches;            /* store batches committed */
    uint64_t store_errors;       /* failed store writes or offset reads (nothing committed) */
    uint64_t dlq_errors;         /* batches retried because a DLQ delivery failed */
    uint64_t commit_errors;      /* failed Kafka commits after a good store write (harmless:
                                    the store holds the offsets) */
    double last_batch_ms;        /* latency of the last WriteBatch commit */
    uint64_t items_applied;      /* items written to the store (tombstones included) */
    uint32_t assigned_partitions; /* partitions this consumer owns now, all topics */
    int store_failing;           /* 1 from a failed store write until one succeeds again
                                    (e.g. a full disk): nothing is committed meanwhile */
    uint64_t pauses;             /* times the partitions were paused: a store write failed
                                    or the writer lagged */
    uint64_t redelivered;        /* messages handed out again by librdkafka, skipped */
    uint32_t queued;             /* messages waiting for the writer now */
    int paused;                  /* 1 while the partitions are paused (either reason) */
} mmr_ingest_stats_t;

/* Consumer lag of one assigned partition: the partition's high watermark (as last seen by
 * the consumer's fetches) minus the position (the offset after the last message handed to
 * the writer, or where the assignment started); -1 when either is not known yet. Paused
 * partitions are listed too. */
typedef struct mmr_ingest_lag {
    const char *topic; /* borrowed: valid while ing lives */
    int32_t partition;
    int64_t position, high, lag;
} mmr_ingest_lag_t;

/* Creates the consumer (and the DLQ producer); conf strings are copied, fs is borrowed and
 * must outlive the ingest object, and no other thread may write batches to fs meanwhile.
 * Zero batch_max/batch_ms/max_future_ms take the defaults. On MMR_OK *out is owned by the
 * caller (mmr_ingest_free). Errors: MMR_ERR_INVALID (missing field, two of events_topic,
 * items_topic and dlq_topic equal, an emb_dims width above MMR_EMB_DIM_MAX, a property
 * that is not key=value or that librdkafka rejects — its message is in err), MMR_ERR_KAFKA
 * (client creation failed), MMR_ERR_NOMEM. */
mmr_status_t mmr_ingest_new(const mmr_ingest_conf_t *conf, mmr_fstore_t *fs, mmr_ingest_t **out,
                            mmr_err_t *err);
/* Subscribes and starts the consumer thread. Once only: MMR_ERR_INVALID when called again
 * or after stop. MMR_ERR_KAFKA when the subscription fails, MMR_ERR_INTERNAL when no thread
 * can be created. */
mmr_status_t mmr_ingest_start(mmr_ingest_t *ing, mmr_err_t *err);
/* Stops consuming, writes and commits what was read, leaves the group, joins the thread.
 * Blocks for up to one batch flush (its DLQ wait is bounded by 10 s) plus the group leave.
 * Safe to call twice, from any thread but the consumer's (so not from a log sink). A no-op
 * when never started. */
void mmr_ingest_stop(mmr_ingest_t *ing);
/* Stops if needed and frees. NULL is a no-op. */
void mmr_ingest_free(mmr_ingest_t *ing);
/* A consistent-enough copy of the counters (each counter read atomically). Any thread. */
/* Lag of up to cap assigned partitions into out; returns how many are assigned (may exceed
 * cap). Any thread; does not wait on the broker. */
size_t mmr_ingest_get_lag(mmr_ingest_t *ing, mmr_ingest_lag_t *out, size_t cap);
void mmr_ingest_get_stats(mmr_ingest_t *ing, mmr_ingest_stats_t *out);

#endif
