/* ingest.c — the Kafka → feature-store consumer (contract in mmr_ingest.h).
 *
 * Threads: the consumer thread owns the open batch and the partition table. librdkafka
 * runs the rebalance and error callbacks inside rd_kafka_consumer_poll and the DLQ
 * delivery callback inside rd_kafka_poll/flush of the producer, all called from that
 * thread, so that state needs no lock. Other threads touch only the atomic counters, the
 * stop flag and (under life_mu) the start/stop bookkeeping. log_cb runs on librdkafka's
 * internal threads and only calls mmr_log, which is thread-safe.
 *
 * Not here: items-topic consumption, pause/resume backpressure (the loop commits each
 * batch before polling more, and librdkafka bounds its prefetch queue), per-partition lag
 * metrics. */
#include "mmr_ingest.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmr_decode.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "ingest"

enum {
    DEFAULT_BATCH_MAX = 1000,
    DEFAULT_BATCH_MS = 50,
    IDLE_POLL_MS = 100,           /* longest poll: bounds how late the stop flag is seen */
    DLQ_FLUSH_TIMEOUT_MS = 10000, /* DLQ not reachable for this long: the batch is retried */
    DLQ_QUEUE_FULL_TRIES = 100,   /* × 100 ms of producer polling before giving up */
    SEEK_TIMEOUT_MS = 5000,
    BACKOFF_MIN_MS = 100,         /* retry delay after a failed batch, doubling up to max */
    BACKOFF_MAX_MS = 5000,
};
#define DEFAULT_MAX_FUTURE_MS INT64_C(3600000)

/* Per partition of events_topic, indexed by partition id (ids are dense from 0). */
typedef struct part {
    int64_t first;     /* offset of the partition's first message in the open batch; -1: none */
    int64_t next;      /* offset after its last message in the open batch */
    int64_t dlq_hi;    /* offset after its last message dead-lettered in the open batch; 0: none */
    int64_t dlq_done;  /* every bad message below this offset has reached the DLQ */
    int64_t rewind_to; /* after a failed batch: the offset the next message must have; -1: none */
} part_t;

struct mmr_ingest {
    /* Set by mmr_ingest_new, read-only afterwards. */
    char *events_topic;
    char *dlq_topic;
    mmr_ingest_format_t format;
    uint32_t batch_max;
    uint32_t batch_ms;
    int64_t max_future_ms;
    mmr_fstore_t *fs;
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* DLQ */

    /* Consumer-thread state (see the comment at the top). */
    part_t *parts;                /* [n_parts] */
    int32_t n_parts;
    mmr_fstore_batch_t *batch;    /* open store batch, NULL when none */
    uint32_t batch_msgs;          /* messages in the open batch, all outcomes */
    int64_t batch_deadline_ns;    /* mmr_mono_ns() by which the open batch is flushed */
    bool batch_failed;            /* a store add or DLQ produce failed: drop and retry */
    uint32_t dlq_in_flight;       /* DLQ messages produced for the open batch */
    uint32_t dlq_failed;          /* failed DLQ delivery reports since the batch opened */
    uint64_t pend_applied, pend_duplicates, pend_dead[MMR_INGEST_BAD_COUNT];
    uint32_t backoff_ms;

    /* Lifecycle: started/joined change under life_mu; stop is read by the loop. */
    pthread_mutex_t life_mu;
    pthread_t thread;
    bool started, joined;
    atomic_bool stop;

    /* Counters: relaxed atomics, each read on its own by mmr_ingest_get_stats. */
    atomic_uint_fast64_t consumed, applied, duplicates, dead[MMR_INGEST_BAD_COUNT], batches,
        store_errors, dlq_errors, commit_errors, last_batch_us;
};

#define COUNT(ing, field, n) atomic_fetch_add_explicit(&(ing)->field, (n), memory_order_relaxed)

/* --- librdkafka callbacks and configuration -------------------------------------------- */

/* syslog levels → mmr levels; librdkafka logs from its own threads. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    mmr_log_level_t l = level <= 3 ? MMR_LOG_ERROR
                        : level == 4 ? MMR_LOG_WARN
                        : level <= 6 ? MMR_LOG_INFO
                                     : MMR_LOG_DEBUG;
    mmr_log(l, "kafka", "%s %s: %s", rd_kafka_name(rk), fac, buf);
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        mmr_log(MMR_LOG_ERROR, "kafka", "%s fatal: %s", rd_kafka_name(rk), why);
        return;
    }
    mmr_log(MMR_LOG_WARN, "kafka", "%s %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Runs inside rd_kafka_poll/flush on the consumer thread (or in mmr_ingest_free). */
static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    mmr_ingest_t *ing = opaque;
    if (!m->err) return;
    ing->dlq_failed++;
    mmr_log(MMR_LOG_ERROR, LOG_MOD, "DLQ delivery to %s failed: %s", ing->dlq_topic,
            rd_kafka_err2str(m->err));
}

static mmr_status_t conf_set(rd_kafka_conf_t *c, const char *key, const char *val,
                             mmr_err_t *err) {
    char errstr[512];
    if (rd_kafka_conf_set(c, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return mmr_err_set(err, MMR_ERR_INVALID, "kafka property %s: %s", key, errstr);
    return MMR_OK;
}

/* Applies the pass-through properties meant for `role` ("consumer" or "producer"): plain
 * ones and "<role>.key=value". Values may be secrets: our messages name the key, never the
 * value (librdkafka quotes a value only when it is not one of an enum's names). */
static mmr_status_t conf_set_props(rd_kafka_conf_t *c, const mmr_ingest_conf_t *conf,
                                   const char *role, mmr_err_t *err) {
    for (size_t i = 0; i < conf->n_kafka_props; i++) {
        const char *kv = conf->kafka_props[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        char key[256];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
            return mmr_err_set(err, MMR_ERR_INVALID, "kafka_props[%zu] is not key=value", i);
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        const char *k = key;
        size_t rl = strlen(role);
        if (!strncmp(k, "consumer.", 9) || !strncmp(k, "producer.", 9)) {
            if (strncmp(k, role, rl) != 0) continue; /* the other client's */
            k += rl + 1;
        }
        mmr_status_t st = conf_set(c, k, eq + 1, err);
        if (st) return st;
    }
    return MMR_OK;
}

/* --- partitions ------------------------------------------------------------------------ */

static part_t *part_get(mmr_ingest_t *ing, int32_t partition) {
    if (partition < 0) return NULL;
    if (partition >= ing->n_parts) {
        int32_t n = partition + 1 > 2 * ing->n_parts ? partition + 1 : 2 * ing->n_parts;
        part_t *p = realloc(ing->parts, (size_t)n * sizeof *p);
        if (!p) return NULL;
        for (int32_t i = ing->n_parts; i < n; i++)
            p[i] = (part_t){.first = -1, .next = -1, .rewind_to = -1};
        ing->parts = p;
        ing->n_parts = n;
    }
    return &ing->parts[partition];
}

/* The open batch's partitions with `first` (rewind) or `next` (commit) as offsets. */
static rd_kafka_topic_partition_list_t *batch_partitions(mmr_ingest_t *ing, bool first) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t i = 0; i < ing->n_parts; i++)
        if (ing->parts[i].first >= 0)
            rd_kafka_topic_partition_list_add(l, ing->events_topic, i)->offset =
                first ? ing->parts[i].first : ing->parts[i].next;
    return l;
}

/* Sleeps for the current backoff in IDLE_POLL_MS slices (returns early on stop), then
 * doubles it. The group session is kept alive by librdkafka's background heartbeats;
 * BACKOFF_MAX_MS stays far below max.poll.interval.ms. */
static void backoff_sleep(mmr_ingest_t *ing) {
    for (uint32_t slept = 0; slept < ing->backoff_ms && !atomic_load(&ing->stop);
         slept += IDLE_POLL_MS) {
        struct timespec ts = {0, IDLE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    ing->backoff_ms = ing->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ing->backoff_ms * 2;
}

/* --- the batch ------------------------------------------------------------------------- */

static void batch_reset(mmr_ingest_t *ing) {
    mmr_fstore_batch_free(ing->batch);
    ing->batch = NULL;
    ing->batch_msgs = 0;
    ing->batch_failed = false;
    ing->dlq_in_flight = ing->dlq_failed = 0;
    ing->pend_applied = ing->pend_duplicates = 0;
    memset(ing->pend_dead, 0, sizeof ing->pend_dead);
    for (int32_t i = 0; i < ing->n_parts; i++) {
        ing->parts[i].first = ing->parts[i].next = -1;
        ing->parts[i].dlq_hi = 0;
    }
}

static void commit_kafka(mmr_ingest_t *ing) {
    rd_kafka_topic_partition_list_t *l = batch_partitions(ing, false);
    rd_kafka_resp_err_t e = rd_kafka_commit(ing->consumer, l, 0 /* sync */);
    for (int i = 0; !e && i < l->cnt; i++) e = l->elems[i].err;
    if (e) {
        COUNT(ing, commit_errors, 1);
        mmr_log(MMR_LOG_WARN, LOG_MOD, "Kafka commit failed (the store holds the offsets): %s",
                rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Seeks the failed batch's partitions back to its first offsets. If a seek does not take,
 * handle_message sees the gap (rewind_to) and seeks again, so no offset is skipped. */
static void rewind_partitions(mmr_ingest_t *ing) {
    rd_kafka_topic_partition_list_t *l = batch_partitions(ing, true);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->consumer, l, SEEK_TIMEOUT_MS);
    if (e) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "rewind seek failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].err)
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "rewind seek %s/%" PRId32 ": %s", ing->events_topic,
                    l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
        ing->parts[l->elems[i].partition].rewind_to = l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Makes the open batch durable, in this order: DLQ deliveries, the store WriteBatch with
 * the next offsets, the Kafka commit. Any failure before the store write commits nothing;
 * with `rewind` the partitions are seeked back and the loop backs off (the revoke path
 * passes false: the partitions are going away and their next owner starts from the store). */
static void batch_flush(mmr_ingest_t *ing, bool rewind) {
    if (ing->batch_msgs == 0) return;
    bool ok = !ing->batch_failed;
    if (ok && ing->dlq_in_flight) {
        rd_kafka_resp_err_t e = rd_kafka_flush(ing->producer, DLQ_FLUSH_TIMEOUT_MS);
        if (e || ing->dlq_failed) {
            ok = false;
            COUNT(ing, dlq_errors, 1);
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "DLQ flush: %s; retrying the batch",
                    e ? rd_kafka_err2str(e) : "delivery failed");
        } else {
            for (int32_t i = 0; i < ing->n_parts; i++)
                if (ing->parts[i].dlq_hi > ing->parts[i].dlq_done)
                    ing->parts[i].dlq_done = ing->parts[i].dlq_hi;
        }
    }
    if (ok) {
        for (int32_t i = 0; i < ing->n_parts; i++)
            if (ing->parts[i].first >= 0)
                mmr_fstore_batch_set_offset(ing->batch, ing->events_topic, i, ing->parts[i].next);
        mmr_err_t err = {0};
        int64_t t0 = mmr_mono_ns();
        if (mmr_fstore_batch_commit(ing->batch, &err) != MMR_OK) {
            ok = false;
            COUNT(ing, store_errors, 1);
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "store commit failed, retrying the batch: %s",
                    err.msg);
        } else {
            uint64_t us = (uint64_t)(mmr_mono_ns() - t0) / 1000;
            atomic_store_explicit(&ing->last_batch_us, us, memory_order_relaxed);
            COUNT(ing, batches, 1);
            COUNT(ing, applied, ing->pend_applied);
            COUNT(ing, duplicates, ing->pend_duplicates);
            for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++) COUNT(ing, dead[r], ing->pend_dead[r]);
            mmr_log(MMR_LOG_DEBUG, LOG_MOD,
                    "batch: %" PRIu32 " messages, %" PRIu64 " applied, %" PRIu64
                    " duplicates, %" PRIu32 " dead-lettered, store commit %" PRIu64 " us",
                    ing->batch_msgs, ing->pend_applied, ing->pend_duplicates,
                    ing->dlq_in_flight, us);
        }
    }
    if (ok) {
        commit_kafka(ing);
        ing->backoff_ms = BACKOFF_MIN_MS;
    } else if (rewind) {
        rewind_partitions(ing);
    }
    batch_reset(ing);
    if (!ok && rewind) backoff_sleep(ing);
}

static void dead_letter(mmr_ingest_t *ing, const rd_kafka_message_t *m, part_t *p,
                        mmr_ingest_reason_t reason, const char *detail) {
    ing->pend_dead[reason]++;
    mmr_log(MMR_LOG_DEBUG, LOG_MOD, "dead letter %s/%" PRId32 "/%" PRId64 ": %s",
            ing->events_topic, m->partition, m->offset, detail);
    if (m->offset < p->dlq_done) return; /* sent by an earlier try of this batch */
    char source[320];
    snprintf(source, sizeof source, "%s/%" PRId32 "/%" PRId64, ing->events_topic, m->partition,
             m->offset);
    rd_kafka_resp_err_t e;
    for (int tries = 0;; tries++) {
        e = rd_kafka_producev(
            ing->producer, RD_KAFKA_V_TOPIC(ing->dlq_topic),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_HEADER("mmrec.reason", mmr_ingest_reason_str(reason), -1),
            RD_KAFKA_V_HEADER("mmrec.source", source, -1),
            RD_KAFKA_V_HEADER("mmrec.detail", detail, -1), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries == DLQ_QUEUE_FULL_TRIES) break;
        rd_kafka_poll(ing->producer, 100);
    }
    if (e) {
        ing->batch_failed = true;
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "DLQ produce to %s failed: %s", ing->dlq_topic,
                rd_kafka_err2str(e));
        return;
    }
    ing->dlq_in_flight++;
    p->dlq_hi = m->offset + 1;
}

/* Seeks one partition so that `offset` is the next message it delivers. */
static void seek_one(mmr_ingest_t *ing, int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ing->events_topic, partition)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->consumer, l, SEEK_TIMEOUT_MS);
    if (e || l->elems[0].err)
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "seek %s/%" PRId32 " to %" PRId64 ": %s",
                ing->events_topic, partition, offset,
                e ? rd_kafka_error_string(e) : rd_kafka_err2str(l->elems[0].err));
    if (e) rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
}

static void handle_message(mmr_ingest_t *ing, const rd_kafka_message_t *m) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            mmr_log(MMR_LOG_WARN, LOG_MOD, "consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    part_t *p = part_get(ing, m->partition);
    if (!p) { /* read it again later rather than let a later offset pass it */
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "out of memory for partition %" PRId32, m->partition);
        seek_one(ing, m->partition, m->offset);
        return;
    }
    if (p->rewind_to >= 0) {
        if (m->offset < p->rewind_to) return; /* fetched before the seek, already stored */
        if (m->offset > p->rewind_to) {         /* the seek did not take: never skip ahead */
            mmr_log(MMR_LOG_WARN, LOG_MOD, "got %s/%" PRId32 "/%" PRId64 " after rewind to %" PRId64
                    ", seeking again", ing->events_topic, m->partition, m->offset, p->rewind_to);
            seek_one(ing, m->partition, p->rewind_to);
            return;
        }
        p->rewind_to = -1;
    }

    COUNT(ing, consumed, 1);
    if (ing->batch_msgs == 0) {
        ing->batch = mmr_fstore_batch_new(ing->fs);
        ing->batch_deadline_ns = mmr_mono_ns() + (int64_t)ing->batch_ms * 1000000;
        if (!ing->batch) {
            ing->batch_failed = true;
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "cannot open a store batch");
        }
    }
    ing->batch_msgs++;
    if (p->first < 0) p->first = m->offset;
    p->next = m->offset + 1;
    if (ing->batch_failed) return; /* the loop drops and retries this batch right away */

    mmr_ingest_decoded_t d;
    mmr_ingest_reason_t reason;
    mmr_err_t err = {0};
    if (mmr_ingest_decode_event(ing->format, m->payload, m->len, mmr_now_ms(), ing->max_future_ms,
                                &d, &reason, &err) != MMR_OK) {
        dead_letter(ing, m, p, reason, err.msg);
        return;
    }
    int r = mmr_fstore_batch_add_event(ing->batch, &d.ev, &err);
    if (r == 1) {
        ing->pend_applied++;
    } else if (r == 0) {
        ing->pend_duplicates++;
    } else if (r == -MMR_ERR_INVALID) { /* retrying cannot help: dead-letter, go on */
        dead_letter(ing, m, p, MMR_INGEST_BAD_REJECTED, err.msg);
    } else {
        ing->batch_failed = true;
        COUNT(ing, store_errors, 1);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "store add %s/%" PRId32 "/%" PRId64 " failed: %s",
                ing->events_topic, m->partition, m->offset, err.msg);
    }
}

/* --- rebalancing ----------------------------------------------------------------------- */

/* Where to start a newly assigned partition: the store's offset, else the beginning. A
 * store read error is retried (with backoff) until it succeeds or stop is requested: the
 * Kafka-committed offset may be behind the store, so guessing could double-apply events
 * that have no event_id. On stop the partition gets OFFSET_INVALID; nothing more is
 * processed then. */
static int64_t stored_offset(mmr_ingest_t *ing, int32_t partition) {
    while (!atomic_load(&ing->stop)) {
        int64_t next;
        mmr_err_t err = {0};
        if (mmr_fstore_get_offset(ing->fs, ing->events_topic, partition, &next, &err) == MMR_OK) {
            ing->backoff_ms = BACKOFF_MIN_MS;
            return next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        }
        COUNT(ing, store_errors, 1);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "reading the stored offset of %s/%" PRId32 ": %s",
                ing->events_topic, partition, err.msg);
        backoff_sleep(ing);
    }
    return RD_KAFKA_OFFSET_INVALID;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    mmr_ingest_t *ing = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            tp->offset = stored_offset(ing, tp->partition);
            part_t *p = part_get(ing, tp->partition);
            if (p) p->rewind_to = -1;
            mmr_log(MMR_LOG_INFO, LOG_MOD, "assigned %s/%" PRId32 " from %s%" PRId64, tp->topic,
                    tp->partition, tp->offset < 0 ? "logical offset " : "", tp->offset);
        }
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else e = rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        mmr_log(MMR_LOG_INFO, LOG_MOD, "revoking %d partition(s)%s", parts->cnt,
                rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        batch_flush(ing, false);
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else e = rd_kafka_assign(rk, NULL);
    } else {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "rebalance: %s", rd_kafka_err2str(err));
        batch_flush(ing, false);
        e = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "rebalance assign: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (e) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "rebalance assign: %s", rd_kafka_err2str(e));
    }
}

/* --- the consumer thread --------------------------------------------------------------- */

static void *ingest_main(void *arg) {
    mmr_ingest_t *ing = arg;
    while (!atomic_load(&ing->stop)) {
        int timeout = IDLE_POLL_MS;
        if (ing->batch_msgs) {
            int64_t left_ms = (ing->batch_deadline_ns - mmr_mono_ns()) / 1000000;
            timeout = left_ms <= 0 ? 0 : left_ms < IDLE_POLL_MS ? (int)left_ms : IDLE_POLL_MS;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->consumer, timeout);
        if (m && atomic_load(&ing->stop)) { /* uncommitted: read again by the next run */
            rd_kafka_message_destroy(m);
            break;
        }
        if (m) {
            handle_message(ing, m);
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(ing->producer, 0); /* serve DLQ producer errors between flushes */
        if (ing->batch_msgs && (ing->batch_failed || ing->batch_msgs >= ing->batch_max ||
                                mmr_mono_ns() >= ing->batch_deadline_ns))
            batch_flush(ing, true);
    }
    batch_flush(ing, false);
    /* Revokes (on_rebalance flushes nothing more and unassigns) and leaves the group. */
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(ing->consumer);
    if (e) mmr_log(MMR_LOG_WARN, LOG_MOD, "consumer close: %s", rd_kafka_err2str(e));
    return NULL;
}

/* --- public API ------------------------------------------------------------------------ */

static rd_kafka_t *client_new(mmr_ingest_t *ing, const mmr_ingest_conf_t *conf,
                              rd_kafka_type_t type, mmr_err_t *err, mmr_status_t *st) {
    bool cons = type == RD_KAFKA_CONSUMER;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(c, ing);
    rd_kafka_conf_set_log_cb(c, on_kafka_log);
    rd_kafka_conf_set_error_cb(c, on_kafka_error);
    if (cons) rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    else rd_kafka_conf_set_dr_msg_cb(c, on_dlq_delivery);
    /* defaults, then the caller's properties, then what the exactly-once design needs */
    if ((*st = conf_set(c, "bootstrap.servers", conf->brokers, err)) ||
        (*st = conf_set(c, "client.id", cons ? "mmrec-ingest" : "mmrec-ingest-dlq", err)) ||
        (cons && (*st = conf_set(c, "group.id", conf->group_id, err))) ||
        (cons && (*st = conf_set(c, "auto.offset.reset", "earliest", err))) ||
        (!cons && (*st = conf_set(c, "acks", "all", err))) ||
        (*st = conf_set_props(c, conf, cons ? "consumer" : "producer", err)) ||
        (cons && (*st = conf_set(c, "enable.auto.commit", "false", err))) ||
        (cons && (*st = conf_set(c, "enable.auto.offset.store", "false", err)))) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, errstr, sizeof errstr); /* takes c on success */
    if (!rk) {
        rd_kafka_conf_destroy(c);
        *st = mmr_err_set(err, MMR_ERR_KAFKA, "creating the Kafka %s: %s",
                          cons ? "consumer" : "producer", errstr);
    }
    return rk;
}

static bool nonempty(const char *s) { return s && *s; }

mmr_status_t mmr_ingest_new(const mmr_ingest_conf_t *conf, mmr_fstore_t *fs, mmr_ingest_t **out,
                            mmr_err_t *err) {
    if (out) *out = NULL;
    if (!conf || !fs || !out) return mmr_err_set(err, MMR_ERR_INVALID, "ingest: NULL argument");
    if (!nonempty(conf->brokers) || !nonempty(conf->group_id) || !nonempty(conf->events_topic) ||
        !nonempty(conf->dlq_topic))
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "ingest: brokers, group_id, events_topic and dlq_topic are required");
    if (strcmp(conf->events_topic, conf->dlq_topic) == 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: dlq_topic must differ from events_topic");
    if (conf->format != MMR_INGEST_FORMAT_PROTOBUF && conf->format != MMR_INGEST_FORMAT_JSON)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: unknown format %d", (int)conf->format);
    if (conf->max_future_ms < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: max_future_ms is negative");
    if (conf->n_kafka_props && !conf->kafka_props)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: kafka_props is NULL");

    mmr_ingest_t *ing = calloc(1, sizeof *ing);
    if (!ing) return mmr_err_set(err, MMR_ERR_NOMEM, "ingest: out of memory");
    pthread_mutex_init(&ing->life_mu, NULL);
    atomic_init(&ing->stop, false);
    ing->fs = fs;
    ing->format = conf->format;
    ing->batch_max = conf->batch_max ? conf->batch_max : DEFAULT_BATCH_MAX;
    ing->batch_ms = conf->batch_ms ? conf->batch_ms : DEFAULT_BATCH_MS;
    ing->max_future_ms = conf->max_future_ms ? conf->max_future_ms : DEFAULT_MAX_FUTURE_MS;
    ing->backoff_ms = BACKOFF_MIN_MS;
    ing->events_topic = strdup(conf->events_topic);
    ing->dlq_topic = strdup(conf->dlq_topic);
    if (!ing->events_topic || !ing->dlq_topic) {
        mmr_ingest_free(ing);
        return mmr_err_set(err, MMR_ERR_NOMEM, "ingest: out of memory");
    }
    mmr_status_t st = MMR_OK;
    if (!(ing->consumer = client_new(ing, conf, RD_KAFKA_CONSUMER, err, &st)) ||
        !(ing->producer = client_new(ing, conf, RD_KAFKA_PRODUCER, err, &st))) {
        mmr_ingest_free(ing);
        return st;
    }
    rd_kafka_poll_set_consumer(ing->consumer); /* errors and rebalances via consumer_poll */
    *out = ing;
    return MMR_OK;
}

mmr_status_t mmr_ingest_start(mmr_ingest_t *ing, mmr_err_t *err) {
    pthread_mutex_lock(&ing->life_mu);
    mmr_status_t st = MMR_OK;
    if (ing->started) {
        st = mmr_err_set(err, MMR_ERR_INVALID, "ingest: already started");
        goto out;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, ing->events_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ing->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        st = mmr_err_set(err, MMR_ERR_KAFKA, "ingest: subscribe to %s: %s", ing->events_topic,
                         rd_kafka_err2str(e));
        goto out;
    }
    if (pthread_create(&ing->thread, NULL, ingest_main, ing) != 0) {
        rd_kafka_unsubscribe(ing->consumer);
        st = mmr_err_set(err, MMR_ERR_INTERNAL, "ingest: cannot create the consumer thread");
        goto out;
    }
    ing->started = true;
    mmr_log(MMR_LOG_INFO, LOG_MOD, "consuming %s, dead letters to %s", ing->events_topic,
            ing->dlq_topic);
out:
    pthread_mutex_unlock(&ing->life_mu);
    return st;
}

void mmr_ingest_stop(mmr_ingest_t *ing) {
    pthread_mutex_lock(&ing->life_mu);
    if (ing->started && !ing->joined) {
        atomic_store(&ing->stop, true);
        pthread_join(ing->thread, NULL);
        ing->joined = true;
    }
    pthread_mutex_unlock(&ing->life_mu);
}

void mmr_ingest_free(mmr_ingest_t *ing) {
    if (!ing) return;
    mmr_ingest_stop(ing);
    /* Closes the consumer too when it was never started; the thread closed it otherwise. */
    if (ing->consumer) rd_kafka_destroy(ing->consumer);
    if (ing->producer) {
        if (rd_kafka_flush(ing->producer, DLQ_FLUSH_TIMEOUT_MS))
            mmr_log(MMR_LOG_WARN, LOG_MOD, "DLQ producer: undelivered messages at exit");
        rd_kafka_destroy(ing->producer);
    }
    mmr_fstore_batch_free(ing->batch);
    free(ing->parts);
    free(ing->events_topic);
    free(ing->dlq_topic);
    pthread_mutex_destroy(&ing->life_mu);
    free(ing);
}

void mmr_ingest_get_stats(mmr_ingest_t *ing, mmr_ingest_stats_t *out) {
#define LOAD(f) atomic_load_explicit(&ing->f, memory_order_relaxed)
    *out = (mmr_ingest_stats_t){
        .consumed = LOAD(consumed),
        .applied = LOAD(applied),
        .duplicates = LOAD(duplicates),
        .batches = LOAD(batches),
        .store_errors = LOAD(store_errors),
        .dlq_errors = LOAD(dlq_errors),
        .commit_errors = LOAD(commit_errors),
        .last_batch_ms = (double)LOAD(last_batch_us) / 1000.0,
    };
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++) out->dead_lettered[r] = LOAD(dead[r]);
#undef LOAD
}
