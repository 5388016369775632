/* ingest.c — the Kafka → feature-store consumer (contract in mmr_ingest.h).
 *
 * Threads: two, joined by a bounded queue of messages (handoff_t, under q_mu).
 *   - The consumer thread polls Kafka and queues each message as it comes; librdkafka runs
 *     the rebalance and commit callbacks inside its rd_kafka_consumer_poll. A full queue
 *     (the writer is slower: catching up) blocks it, and librdkafka's fetcher stops once
 *     its own prefetch is full. A revoke waits for the writer to apply and commit
 *     everything queued (drain); an assignment is queued as a marker so the writer learns
 *     each partition's start offset in order with its messages.
 *   - The writer thread owns the open batch and the partition table: it decodes, dead-
 *     letters, batches, writes the store, commits Kafka offsets and, after a failure,
 *     seeks back (librdkafka's seek and commit calls are thread-safe). The DLQ delivery
 *     callback runs inside its rd_kafka_poll/flush of the producer.
 * Pausing: the consumer thread pauses every owned partition while the writer backs off
 * after a failed write (it asks, and waits for the pause), and while the writer lags: it
 * took nothing from the full queue for pause_after_ms. The consumer keeps polling
 * (rebalances, max.poll.interval.ms) and resumes once the queue is half empty and the
 * writer is not backing off. A pause is a local assignment of nothing and a resume the
 * owned partitions, each at the offset after the last message queued (`resume`, lowered
 * when the writer rewinds). librdkafka 2.0's pause/resume calls are not used: they race
 * with its own per-partition operations (an outdated op is dropped silently) and left
 * partitions paused or unstarted for good (upstream #2190, #5591); an assignment is served
 * in order on librdkafka's main thread and says where to start. With the cooperative
 * protocol, where changing the assignment outside a rebalance would answer a pending one,
 * nothing is paused: the consumer only stops polling while the queue is full. (Eager has
 * one such window, a rejoin while an assignment callback is queued; the callback still
 * comes before any message fetched meanwhile and sets the real assignment.) Pausing on a
 * merely full queue was tried: each resume re-fetches what the pause dropped, and catching
 * up ran at a twentieth of the store's rate; a writer that takes from the queue at all is
 * left to the blocking queue.
 * Other threads touch only the atomic counters, the stop flag and (under life_mu) the
 * start/stop bookkeeping. log_cb runs on librdkafka's threads and only calls mmr_log.
 * Decoding and the store write overlap with polling, which is where the second thread pays.
 *
 * Redelivery guard: per partition the writer remembers the offset after the last message it
 * took (`done`) and skips anything older, so a message librdkafka hands out twice (seen with
 * resume of partitions that were not paused) cannot be applied twice.
 *
 * Topics: events and (optionally) items are one subscription; a batch mixes messages of
 * both, and every per-partition table below is per topic (topic_t). Messages of the two
 * topics differ only in the decoder and the store call. */
#include "mmr_ingest.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>

#include "kconf.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmr_cpu.h"
#include "mmr_decode.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "ingest"

enum {
    DEFAULT_BATCH_MAX = 1000,
    DEFAULT_BATCH_MS = 50,
    IDLE_POLL_MS = 100,           /* longest poll: bounds how late the stop flag is seen */
    PAUSED_POLL_MS = 5,           /* poll while paused: how late a resume can come */
    DEFAULT_PAUSE_AFTER_MS = 1000,
    STORE_PAUSE_WAIT_MS = 1000,   /* the writer waits this long at most for its pause */
    DLQ_FLUSH_TIMEOUT_MS = 10000, /* DLQ not reachable for this long: the batch is retried */
    DLQ_QUEUE_FULL_TRIES = 100,   /* × 100 ms of producer polling before giving up */
    SEEK_TIMEOUT_MS = 5000,
    DEFAULT_QUEUE_PER_BATCH = 4,  /* queue capacity, in batches, when queue_max is 0 */
    WRITER_CHUNK = 64,            /* messages the writer takes from the queue per lock */
    BACKOFF_MIN_MS = 100,         /* retry delay after a failed batch, doubling up to max */
    BACKOFF_MAX_MS = 5000,
};
#define DEFAULT_MAX_FUTURE_MS INT64_C(3600000)

_Static_assert(MMR_MODALITY_COUNT == 3, "mmr_ingest_conf_t.emb_dims is text, image, video");

/* Per partition of one topic, indexed by partition id (ids are dense from 0). */
typedef struct part {
    int64_t first;     /* offset of the partition's first message in the open batch; -1: none */
    int64_t next;      /* offset after its last message in the open batch */
    int64_t dlq_hi;    /* offset after its last message dead-lettered in the open batch; 0: none */
    int64_t dlq_done;  /* every bad message below this offset has reached the DLQ */
    int64_t rewind_to; /* after a failed batch: the offset the next message must have; -1: none */
    int64_t done;      /* offset after the last message taken (any batch); -1: none yet */
    uint64_t rewind_gen; /* ing->rewinds when it was last sought back */
} part_t;

/* A queued message, or (m NULL) the marker of a partition assigned from offset `start`. */
typedef struct slot {
    rd_kafka_message_t *m;
    int t;
    int32_t partition;
    int64_t start;
} slot_t;

/* The bounded queue from the consumer thread to the writer thread; all under q_mu. */
typedef struct handoff {
    slot_t *ring;          /* [cap] */
    uint32_t cap, head, n;
    bool writer_running;
    bool writer_waits, consumer_waits; /* blocked on q_cv: wake only then (a wake is a syscall) */
    bool writer_stop;      /* the writer flushes its open batch and exits */
    bool store_pause;      /* the writer backs off after a failed write: pause wanted */
    bool can_pause;        /* eager protocol and partitions owned (set by the consumer) */
    bool consumer_paused;  /* the owned partitions are paused (written by the consumer) */
    uint64_t drain_req, drain_done; /* a revoke waits until drain_done reaches its drain_req */
} handoff_t;

/* The consumed topics; topics[T_ITEMS].name is NULL when items are not consumed. */
enum { T_EVENTS = 0, T_ITEMS, T_COUNT };

typedef struct topic {
    char *name;                   /* set by mmr_ingest_new, read-only afterwards */
    part_t *parts;                /* [n_parts]: writer-thread state */
    int32_t n_parts;
} topic_t;

struct mmr_ingest {
    /* Set by mmr_ingest_new, read-only afterwards (but topics[].parts, see topic_t). */
    topic_t topics[T_COUNT];
    char *dlq_topic;
    mmr_ingest_format_t format;
    uint32_t batch_max;
    uint32_t batch_ms;
    int64_t max_future_ms;
    uint32_t emb_dims[MMR_MODALITY_COUNT];
    mmr_fstore_t *fs;
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* DLQ */

    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;  /* any change of q: messages in or out, drain, stop, pause */
    handoff_t q;
    pthread_t writer;
    uint32_t pause_after_ms;
    /* Consumer-thread state, written under q_mu (read by the writer and get_lag): the
     * partitions the group gave this consumer, and per topic and partition the offset a
     * resume starts from (RD_KAFKA_OFFSET_* until a message was queued). */
    rd_kafka_topic_partition_list_t *owned;
    int64_t *resume[T_COUNT];
    int32_t n_resume[T_COUNT];
    uint32_t resumes;             /* consumer thread only: resumes so far */

    /* Writer-thread state (see the comment at the top). */
    mmr_ingest_decoded_item_t item; /* decode buffers, reused message after message */
    mmr_fstore_batch_t *batch;    /* open store batch, NULL when none */
    uint32_t batch_msgs;          /* messages in the open batch, all outcomes */
    int64_t batch_deadline_ns;    /* mmr_mono_ns() by which the open batch is flushed */
    bool batch_failed;            /* a store add or DLQ produce failed: drop and retry */
    uint32_t dlq_in_flight;       /* DLQ messages produced for the open batch */
    uint32_t dlq_failed;          /* failed DLQ delivery reports since the batch opened */
    uint64_t pend_applied, pend_duplicates, pend_items, pend_dead[MMR_INGEST_BAD_COUNT];
    uint32_t backoff_ms;
    uint64_t rewinds;             /* rewind_partitions calls so far */

    /* Lifecycle: started/joined change under life_mu; stop is read by the loop. */
    pthread_mutex_t life_mu;
    pthread_t thread;
    bool started, joined;
    atomic_bool stop;

    /* Counters: relaxed atomics, each read on its own by mmr_ingest_get_stats. */
    atomic_int assigned;          /* partitions currently assigned (all topics) */
    atomic_bool store_failing;    /* the last store write failed; written by the loop only */
    atomic_uint_fast64_t consumed, applied, duplicates, dead[MMR_INGEST_BAD_COUNT], batches,
        store_errors, dlq_errors, commit_errors, last_batch_us, items_applied, pauses, redelivered;
    atomic_uint queued;           /* messages in q now */
    atomic_bool paused;           /* the consumer has the partitions paused */
};

#define COUNT(ing, field, n) atomic_fetch_add_explicit(&(ing)->field, (n), memory_order_relaxed)

/* --- librdkafka callbacks and configuration -------------------------------------------- */

/* Runs inside rd_kafka_poll/flush on the writer thread (or in mmr_ingest_free). */
static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    mmr_ingest_t *ing = opaque;
    if (!m->err) return;
    ing->dlq_failed++;
    mmr_log(MMR_LOG_ERROR, LOG_MOD, "DLQ delivery to %s failed: %s", ing->dlq_topic,
            rd_kafka_err2str(m->err));
}

/* --- partitions ------------------------------------------------------------------------ */

/* T_EVENTS or T_ITEMS for a consumed topic's name, else -1. */
static int topic_index(const mmr_ingest_t *ing, const char *name) {
    for (int t = 0; t < T_COUNT; t++)
        if (ing->topics[t].name && name && strcmp(ing->topics[t].name, name) == 0) return t;
    return -1;
}

static part_t *part_get(mmr_ingest_t *ing, int t, int32_t partition) {
    topic_t *tp = &ing->topics[t];
    if (partition < 0) return NULL;
    if (partition >= tp->n_parts) {
        int32_t n = partition + 1 > 2 * tp->n_parts ? partition + 1 : 2 * tp->n_parts;
        part_t *p = realloc(tp->parts, (size_t)n * sizeof *p);
        if (!p) return NULL;
        for (int32_t i = tp->n_parts; i < n; i++)
            p[i] = (part_t){.first = -1, .next = -1, .rewind_to = -1, .done = -1};
        tp->parts = p;
        tp->n_parts = n;
    }
    return &tp->parts[partition];
}

/* The open batch's partitions (both topics) with `first` (rewind) or `next` (commit) as
 * offsets. */
static rd_kafka_topic_partition_list_t *batch_partitions(mmr_ingest_t *ing, bool first) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int t = 0; t < T_COUNT; t++)
        for (int32_t i = 0; i < ing->topics[t].n_parts; i++) {
            const part_t *p = &ing->topics[t].parts[i];
            if (p->first >= 0)
                rd_kafka_topic_partition_list_add(l, ing->topics[t].name, i)->offset =
                    first ? p->first : p->next;
        }
    return l;
}

/* Sleeps for the current backoff in IDLE_POLL_MS slices (returns early on stop), then
 * doubles it. The group session is kept alive by librdkafka's background heartbeats;
 * BACKOFF_MAX_MS stays far below max.poll.interval.ms. */
static void backoff_sleep(mmr_ingest_t *ing, uint32_t *backoff_ms) {
    for (uint32_t slept = 0; slept < *backoff_ms && !atomic_load(&ing->stop);
         slept += IDLE_POLL_MS) {
        struct timespec ts = {0, IDLE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    *backoff_ms = *backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff_ms * 2;
}

/* --- the hand-off queue ---------------------------------------------------------------- */

/* Waits on q_cv (q_mu held) for at most ms. */
static void q_wait_ms(mmr_ingest_t *ing, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&ing->q_cv, &ing->q_mu, &ts);
}

/* Writer thread: asks the consumer thread to pause the partitions while it backs off after
 * a failed write (want) or lets it resume them. A pause is waited for (at most
 * STORE_PAUSE_WAIT_MS: the consumer may be inside a rebalance that waits on this thread),
 * so nothing more is fetched while the store cannot take it. */
static void store_pause(mmr_ingest_t *ing, bool want) {
    handoff_t *q = &ing->q;
    pthread_mutex_lock(&ing->q_mu);
    q->store_pause = want;
    pthread_cond_broadcast(&ing->q_cv);
    int64_t deadline = mmr_mono_ns() + (int64_t)STORE_PAUSE_WAIT_MS * 1000000;
    while (want && q->can_pause && !q->consumer_paused && !atomic_load(&ing->stop) && mmr_mono_ns() < deadline)
        q_wait_ms(ing, IDLE_POLL_MS);
    pthread_mutex_unlock(&ing->q_mu);
}

/* Consumer thread: pauses (local assignment of nothing) or resumes (the owned partitions at
 * their resume offsets) every owned partition; see the comment at the top. Returns whether
 * the partitions are now in that state. */
static bool set_paused(mmr_ingest_t *ing, bool pause) {
    handoff_t *q = &ing->q;
    pthread_mutex_lock(&ing->q_mu);
    if (pause == q->consumer_paused || (pause && !q->can_pause)) {
        bool done = pause == q->consumer_paused;
        pthread_mutex_unlock(&ing->q_mu);
        return done;
    }
    /* Each resume starts another partition first: librdkafka fetches in the order the
     * partitions started, the first ones fill the queue, and each pause drops what was
     * fetched of the others; with a writer that keeps stalling, the same partitions would
     * lead every time. */
    int n = pause ? 0 : ing->owned->cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *tp = &ing->owned->elems[(i + ing->resumes) % n];
        int t = topic_index(ing, tp->topic);
        rd_kafka_topic_partition_list_add(l, tp->topic, tp->partition)->offset = ing->resume[t][tp->partition];
    }
    pthread_mutex_unlock(&ing->q_mu);
    rd_kafka_resp_err_t e = rd_kafka_assign(ing->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) { /* tried again on the next loop */
        mmr_log(MMR_LOG_WARN, LOG_MOD, "%s partitions: %s", pause ? "pause" : "resume", rd_kafka_err2str(e));
        return false;
    }
    if (!pause) ing->resumes++;
    pthread_mutex_lock(&ing->q_mu);
    q->consumer_paused = pause;
    pthread_cond_broadcast(&ing->q_cv); /* a writer waiting in store_pause */
    pthread_mutex_unlock(&ing->q_mu);
    atomic_store(&ing->paused, pause);
    if (pause) COUNT(ing, pauses, 1);
    mmr_log(MMR_LOG_DEBUG, LOG_MOD, "partitions %s", pause ? "paused" : "resumed");
    return true;
}

/* Writer thread, under q_mu, after messages left the queue: wakes a waiting consumer. */
static void q_shrunk(mmr_ingest_t *ing) {
    atomic_store(&ing->queued, ing->q.n);
    if (ing->q.consumer_waits) pthread_cond_broadcast(&ing->q_cv);
}

/* Consumer thread: queues s for the writer, waiting while the queue is full (no polling
 * meanwhile: librdkafka's prefetch fills up to queued.max.messages.kbytes and its fetcher
 * waits). Returns 1 when queued, 0 when stop is requested meanwhile, and with may_pause
 * -1 when the partitions should be paused instead (the writer backs off, or took nothing
 * for pause_after_ms); s is not queued then. */
static int handoff_push(mmr_ingest_t *ing, slot_t s, bool may_pause) {
    handoff_t *q = &ing->q;
    int64_t full_since = 0, pause_ns = (int64_t)ing->pause_after_ms * 1000000;
    int rc = 0;
    pthread_mutex_lock(&ing->q_mu);
    for (;;) {
        may_pause = may_pause && q->can_pause;
        if (may_pause && q->store_pause) {
            rc = -1;
            break;
        }
        if (q->n < q->cap) {
            q->ring[(q->head + q->n) % q->cap] = s;
            atomic_store(&ing->queued, ++q->n);
            if (s.m && !s.m->err && s.t >= 0 && s.partition < ing->n_resume[s.t])
                ing->resume[s.t][s.partition] = s.m->offset + 1;
            if (q->writer_waits) pthread_cond_broadcast(&ing->q_cv);
            rc = 1;
            break;
        }
        if (atomic_load(&ing->stop)) break;
        int64_t now = mmr_mono_ns();
        if (!full_since) full_since = now;
        if (may_pause && now - full_since >= pause_ns) {
            rc = -1;
            break;
        }
        int64_t left_ms = may_pause ? (pause_ns - (now - full_since)) / 1000000 + 1 : IDLE_POLL_MS;
        q->consumer_waits = true;
        q_wait_ms(ing, left_ms < IDLE_POLL_MS ? left_ms : IDLE_POLL_MS);
        q->consumer_waits = false;
    }
    pthread_mutex_unlock(&ing->q_mu);
    return rc;
}

/* Consumer thread, before a revoke: waits until the writer has applied everything queued
 * and flushed its batch with a synchronous commit (at once when the writer has exited). */
static void handoff_drain(mmr_ingest_t *ing) {
    handoff_t *q = &ing->q;
    pthread_mutex_lock(&ing->q_mu);
    uint64_t want = ++q->drain_req;
    pthread_cond_broadcast(&ing->q_cv);
    while (q->writer_running && q->drain_done < want) pthread_cond_wait(&ing->q_cv, &ing->q_mu);
    pthread_mutex_unlock(&ing->q_mu);
}

/* Writer thread, after seeking the partitions of l back to their offsets: drops their
 * queued messages, which will come again (markers stay), and lowers their resume offsets
 * to match. */
static void handoff_forget(mmr_ingest_t *ing, const rd_kafka_topic_partition_list_t *l) {
    handoff_t *q = &ing->q;
    pthread_mutex_lock(&ing->q_mu);
    for (int k = 0; k < l->cnt; k++) {
        int t = topic_index(ing, l->elems[k].topic);
        int32_t p = l->elems[k].partition;
        if (t >= 0 && p < ing->n_resume[t] && ing->resume[t][p] > l->elems[k].offset && l->elems[k].offset >= 0)
            ing->resume[t][p] = l->elems[k].offset;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        slot_t s = q->ring[(q->head + i) % q->cap];
        bool drop = false;
        for (int k = 0; s.m && k < l->cnt && !drop; k++)
            drop = s.m->partition == l->elems[k].partition && s.t >= 0 &&
                   strcmp(ing->topics[s.t].name, l->elems[k].topic) == 0;
        if (drop) rd_kafka_message_destroy(s.m);
        else q->ring[(q->head + kept++) % q->cap] = s;
    }
    q->n = kept;
    q_shrunk(ing);
    pthread_mutex_unlock(&ing->q_mu);
}

/* --- the batch ------------------------------------------------------------------------- */

static void batch_reset(mmr_ingest_t *ing) {
    mmr_fstore_batch_free(ing->batch);
    ing->batch = NULL;
    ing->batch_msgs = 0;
    ing->batch_failed = false;
    ing->dlq_in_flight = ing->dlq_failed = 0;
    ing->pend_applied = ing->pend_duplicates = ing->pend_items = 0;
    memset(ing->pend_dead, 0, sizeof ing->pend_dead);
    for (int t = 0; t < T_COUNT; t++)
        for (int32_t i = 0; i < ing->topics[t].n_parts; i++) {
            ing->topics[t].parts[i].first = ing->topics[t].parts[i].next = -1;
            ing->topics[t].parts[i].dlq_hi = 0;
        }
}

/* Outcome of every commit, asynchronous or not (librdkafka queues the callback for both),
 * delivered inside rd_kafka_consumer_poll / close: the one place failures are counted. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *l,
                      void *opaque) {
    mmr_ingest_t *ing = opaque;
    for (int i = 0; !e && l && i < l->cnt; i++) e = l->elems[i].err;
    if (!e || e == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    COUNT(ing, commit_errors, 1);
    mmr_log(MMR_LOG_WARN, LOG_MOD, "Kafka commit failed (the store holds the offsets): %s",
            rd_kafka_err2str(e));
}

/* The store already holds the offsets (the truth on assignment), so the Kafka commit only
 * keeps the group's view (lag tools, other readers) current: asynchronous while running,
 * which keeps a broker round trip per batch off the ingestion path (about a fifth of its
 * time at 150k events/s); synchronous for the batch flushed when partitions are revoked
 * or the consumer closes. An earlier asynchronous commit may still fail in a rebalance;
 * the next owner starts from the store's offsets anyway. Failures: on_commit. */
static void commit_kafka(mmr_ingest_t *ing, bool sync) {
    rd_kafka_topic_partition_list_t *l = batch_partitions(ing, false);
    rd_kafka_commit(ing->consumer, l, !sync);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Seeks the failed batch's partitions back to its first offsets and drops their queued
 * messages. If a seek does not take, handle_message sees the gap (rewind_to) and seeks
 * again, so no offset is skipped. */
static void rewind_partitions(mmr_ingest_t *ing) {
    rd_kafka_topic_partition_list_t *l = batch_partitions(ing, true);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->consumer, l, SEEK_TIMEOUT_MS);
    if (e) {
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "rewind seek failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err)
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "rewind seek %s/%" PRId32 ": %s", tp->topic,
                    tp->partition, rd_kafka_err2str(tp->err));
        part_t *p = &ing->topics[topic_index(ing, tp->topic)].parts[tp->partition];
        p->rewind_to = p->done = tp->offset;
        p->rewind_gen = ing->rewinds + 1;
    }
    ing->rewinds++;
    handoff_forget(ing, l);
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
            for (int t = 0; t < T_COUNT; t++)
                for (int32_t i = 0; i < ing->topics[t].n_parts; i++) {
                    part_t *p = &ing->topics[t].parts[i];
                    if (p->dlq_hi > p->dlq_done) p->dlq_done = p->dlq_hi;
                }
        }
    }
    if (ok) {
        for (int t = 0; t < T_COUNT; t++)
            for (int32_t i = 0; i < ing->topics[t].n_parts; i++)
                if (ing->topics[t].parts[i].first >= 0)
                    mmr_fstore_batch_set_offset(ing->batch, ing->topics[t].name, i,
                                                ing->topics[t].parts[i].next);
        mmr_err_t err = {0};
        int64_t t0 = mmr_mono_ns();
        /* After a failed write RocksDB refuses writes until its background error clears;
         * for a full disk it clears that itself once space returns (docs/OPERATIONS.md),
         * and this retry loop then goes on where it stopped. */
        if (mmr_fstore_batch_commit(ing->batch, &err) != MMR_OK) {
            ok = false;
            COUNT(ing, store_errors, 1);
            atomic_store(&ing->store_failing, true);
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "store commit failed, retrying the batch: %s",
                    err.msg);
        } else {
            if (atomic_exchange(&ing->store_failing, false))
                mmr_log(MMR_LOG_INFO, LOG_MOD, "store writes succeed again, ingestion resumed");
            uint64_t us = (uint64_t)(mmr_mono_ns() - t0) / 1000;
            atomic_store_explicit(&ing->last_batch_us, us, memory_order_relaxed);
            COUNT(ing, batches, 1);
            COUNT(ing, applied, ing->pend_applied);
            COUNT(ing, duplicates, ing->pend_duplicates);
            COUNT(ing, items_applied, ing->pend_items);
            for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++) COUNT(ing, dead[r], ing->pend_dead[r]);
            mmr_log(MMR_LOG_DEBUG, LOG_MOD,
                    "batch: %" PRIu32 " messages, %" PRIu64 " events applied, %" PRIu64
                    " duplicates, %" PRIu64 " items, %" PRIu32 " dead-lettered, store commit %"
                    PRIu64 " us", ing->batch_msgs, ing->pend_applied, ing->pend_duplicates,
                    ing->pend_items, ing->dlq_in_flight, us);
        }
    }
    if (ok) {
        commit_kafka(ing, !rewind); /* rewind: the running loop; else revoke or close */
        ing->backoff_ms = BACKOFF_MIN_MS;
    } else {
        /* Paused first, so nothing more is fetched while the store cannot take it; the
         * rewind lowers the resume offsets. On revoke or close the seek still matters:
         * under the cooperative protocol the batch may hold partitions that stay assigned,
         * which must not skip the dropped messages. */
        if (rewind) store_pause(ing, true);
        rewind_partitions(ing);
    }
    batch_reset(ing);
    if (!ok && rewind) { /* nothing is fetched while the store cannot take it */
        backoff_sleep(ing, &ing->backoff_ms);
        store_pause(ing, false);
    }
}

static void dead_letter(mmr_ingest_t *ing, const rd_kafka_message_t *m, int t, part_t *p,
                        mmr_ingest_reason_t reason, const char *detail) {
    const char *topic = ing->topics[t].name;
    ing->pend_dead[reason]++;
    mmr_log(MMR_LOG_DEBUG, LOG_MOD, "dead letter %s/%" PRId32 "/%" PRId64 ": %s", topic,
            m->partition, m->offset, detail);
    if (m->offset < p->dlq_done) return; /* sent by an earlier try of this batch */
    char source[320];
    snprintf(source, sizeof source, "%s/%" PRId32 "/%" PRId64, topic, m->partition, m->offset);
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
static void seek_one(mmr_ingest_t *ing, const char *topic, int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->consumer, l, SEEK_TIMEOUT_MS);
    if (e || l->elems[0].err)
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "seek %s/%" PRId32 " to %" PRId64 ": %s", topic,
                partition, offset,
                e ? rd_kafka_error_string(e) : rd_kafka_err2str(l->elems[0].err));
    if (e) rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Decodes an event and adds it to the open batch, or dead-letters it. */
static void apply_event(mmr_ingest_t *ing, const rd_kafka_message_t *m, part_t *p) {
    mmr_ingest_decoded_t d;
    mmr_ingest_reason_t reason;
    mmr_err_t err = {0};
    if (mmr_ingest_decode_event(ing->format, m->payload, m->len, mmr_now_ms(), ing->max_future_ms,
                                &d, &reason, &err) != MMR_OK) {
        dead_letter(ing, m, T_EVENTS, p, reason, err.msg);
        return;
    }
    int r = mmr_fstore_batch_add_event(ing->batch, &d.ev, &err);
    if (r == 1) {
        ing->pend_applied++;
    } else if (r == 0) {
        ing->pend_duplicates++;
    } else if (r == -MMR_ERR_INVALID) { /* retrying cannot help: dead-letter, go on */
        dead_letter(ing, m, T_EVENTS, p, MMR_INGEST_BAD_REJECTED, err.msg);
    } else {
        ing->batch_failed = true;
        COUNT(ing, store_errors, 1);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "store add %s/%" PRId32 "/%" PRId64 " failed: %s",
                ing->topics[T_EVENTS].name, m->partition, m->offset, err.msg);
    }
}

/* Decodes an item and puts it (or its tombstone) into the open batch, or dead-letters it. */
static void apply_item(mmr_ingest_t *ing, const rd_kafka_message_t *m, part_t *p) {
    mmr_ingest_reason_t reason;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_ingest_decode_item(ing->format, m->payload, m->len, ing->emb_dims,
                                             &ing->item, &reason, &err);
    if (st == MMR_ERR_INVALID) {
        dead_letter(ing, m, T_ITEMS, p, reason, err.msg);
        return;
    }
    if (st == MMR_OK) st = mmr_fstore_batch_put_item(ing->batch, &ing->item.item, &err);
    if (st == MMR_OK) {
        ing->pend_items++;
    } else if (st == MMR_ERR_INVALID) { /* the store's rules disagree with the decoder's */
        dead_letter(ing, m, T_ITEMS, p, MMR_INGEST_BAD_REJECTED, err.msg);
    } else { /* out of memory: not the message's fault, retry the batch */
        ing->batch_failed = true;
        COUNT(ing, store_errors, 1);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "item %s/%" PRId32 "/%" PRId64 " failed: %s",
                ing->topics[T_ITEMS].name, m->partition, m->offset, err.msg);
    }
}

static void handle_message(mmr_ingest_t *ing, const rd_kafka_message_t *m) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            mmr_log(MMR_LOG_WARN, LOG_MOD, "consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    int t = topic_index(ing, m->rkt ? rd_kafka_topic_name(m->rkt) : NULL);
    if (t < 0) { /* cannot happen: we subscribe to our topics by name */
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "message from an unexpected topic, ignored");
        return;
    }
    const char *topic = ing->topics[t].name;
    part_t *p = part_get(ing, t, m->partition);
    if (!p) { /* read it again later rather than let a later offset pass it */
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "out of memory for partition %s/%" PRId32, topic,
                m->partition);
        seek_one(ing, topic, m->partition, m->offset);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = m->offset;
        handoff_forget(ing, l);
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    if (p->rewind_to >= 0) {
        if (m->offset < p->rewind_to) return; /* fetched before the seek, already stored */
        if (m->offset > p->rewind_to) {         /* the seek did not take: never skip ahead */
            mmr_log(MMR_LOG_WARN, LOG_MOD, "got %s/%" PRId32 "/%" PRId64 " after rewind to %" PRId64
                    ", seeking again", topic, m->partition, m->offset, p->rewind_to);
            seek_one(ing, topic, m->partition, p->rewind_to);
            /* what is queued or left in the chunk of it is past the seek too: drop it here
             * rather than seek once per message */
            p->rewind_gen = ++ing->rewinds;
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = p->rewind_to;
            handoff_forget(ing, l);
            rd_kafka_topic_partition_list_destroy(l);
            return;
        }
        p->rewind_to = -1;
    }
    if (m->offset < p->done) { /* handed out twice by librdkafka: taken already */
        COUNT(ing, redelivered, 1);
        return;
    }
    p->done = m->offset + 1;

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
    if (t == T_EVENTS) apply_event(ing, m, p);
    else apply_item(ing, m, p);
}

/* --- rebalancing ----------------------------------------------------------------------- */

/* Where to start a newly assigned partition: the store's offset, else the beginning. A
 * store read error is retried (with backoff) until it succeeds or stop is requested: the
 * Kafka-committed offset may be behind the store, so guessing could double-apply events
 * that have no event_id. On stop the partition gets OFFSET_INVALID; nothing more is
 * processed then. */
static int64_t stored_offset(mmr_ingest_t *ing, const char *topic, int32_t partition) {
    uint32_t backoff_ms = BACKOFF_MIN_MS;
    while (!atomic_load(&ing->stop)) {
        int64_t next;
        mmr_err_t err = {0};
        if (mmr_fstore_get_offset(ing->fs, topic, partition, &next, &err) == MMR_OK)
            return next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        COUNT(ing, store_errors, 1);
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "reading the stored offset of %s/%" PRId32 ": %s", topic,
                partition, err.msg);
        backoff_sleep(ing, &backoff_ms);
    }
    return RD_KAFKA_OFFSET_INVALID;
}

/* Consumer thread, under q_mu: room in resume[t] for partition p. */
static bool resume_room(mmr_ingest_t *ing, int t, int32_t p) {
    if (p < ing->n_resume[t]) return true;
    int32_t n = p + 1 > 2 * ing->n_resume[t] ? p + 1 : 2 * ing->n_resume[t];
    int64_t *r = realloc(ing->resume[t], (size_t)n * sizeof *r);
    if (!r) return false;
    for (int32_t i = ing->n_resume[t]; i < n; i++) r[i] = RD_KAFKA_OFFSET_INVALID;
    ing->resume[t] = r;
    ing->n_resume[t] = n;
    return true;
}

/* Consumer thread, under q_mu: the owned set after a rebalance callback (eager: it is
 * replaced, and an assignment or unassignment ends any pause). Pausing needs a resume offset
 * for every owned partition: without memory for them it is off until the next rebalance. */
static void owned_update(mmr_ingest_t *ing, rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         const rd_kafka_topic_partition_list_t *parts) {
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0, ok = true;
    rd_kafka_topic_partition_list_t *o = ing->owned;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        while (!coop && o->cnt) rd_kafka_topic_partition_list_del_by_idx(o, o->cnt - 1);
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int t = topic_index(ing, tp->topic);
            if (t < 0) continue;
            if (!rd_kafka_topic_partition_list_find(o, tp->topic, tp->partition))
                rd_kafka_topic_partition_list_add(o, tp->topic, tp->partition);
            if (resume_room(ing, t, tp->partition)) ing->resume[t][tp->partition] = tp->offset;
            else ok = false;
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && coop) {
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_del(o, parts->elems[i].topic, parts->elems[i].partition);
    } else {
        while (o->cnt) rd_kafka_topic_partition_list_del_by_idx(o, o->cnt - 1);
    }
    if (!ok) mmr_log(MMR_LOG_ERROR, LOG_MOD, "out of memory for resume offsets: partitions are not paused");
    ing->q.can_pause = ok && !coop && o->cnt > 0;
    ing->q.consumer_paused = false;
    atomic_store(&ing->paused, false);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    mmr_ingest_t *ing = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int t = topic_index(ing, tp->topic);
            if (t < 0) { /* cannot happen: we subscribe to our topics by name */
                mmr_log(MMR_LOG_ERROR, LOG_MOD, "assigned unexpected topic %s", tp->topic);
                continue;
            }
            tp->offset = stored_offset(ing, tp->topic, tp->partition);
            handoff_push(ing, (slot_t){.t = t, .partition = tp->partition,
                                       .start = tp->offset >= 0 ? tp->offset : -1}, false);
            mmr_log(MMR_LOG_INFO, LOG_MOD, "assigned %s/%" PRId32 " from %s%" PRId64, tp->topic,
                    tp->partition, tp->offset < 0 ? "logical offset " : "", tp->offset);
        }
    } else {
        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            mmr_log(MMR_LOG_INFO, LOG_MOD, "revoking %d partition(s)%s", parts->cnt,
                    rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        else
            mmr_log(MMR_LOG_ERROR, LOG_MOD, "rebalance: %s", rd_kafka_err2str(err));
        handoff_drain(ing);
    }
    pthread_mutex_lock(&ing->q_mu);
    owned_update(ing, rk, err, parts);
    pthread_mutex_unlock(&ing->q_mu);
    mmr_kconf_rebalance_apply(rk, err, parts, &ing->assigned, LOG_MOD);
}

/* --- the two threads ------------------------------------------------------------------ */

/* A partition was assigned from s->start (-1: the beginning): nothing before it is taken. */
static void assign_mark(mmr_ingest_t *ing, const slot_t *s) {
    part_t *p = part_get(ing, s->t, s->partition);
    if (!p) { /* its messages will find no entry either and be sought again */
        mmr_log(MMR_LOG_ERROR, LOG_MOD, "out of memory for partition %s/%" PRId32,
                ing->topics[s->t].name, s->partition);
        return;
    }
    p->rewind_to = -1;
    p->done = s->start;
}

static void *writer_main(void *arg) {
    mmr_ingest_t *ing = arg;
    mmr_thread_set_name("mmr-ingest-wr");
    handoff_t *q = &ing->q;
    pthread_mutex_lock(&ing->q_mu);
    while (!q->writer_stop) {
        if (!q->n && q->drain_done < q->drain_req) { /* all queued is applied: flush, ack */
            uint64_t req = q->drain_req;
            pthread_mutex_unlock(&ing->q_mu);
            batch_flush(ing, false);
            pthread_mutex_lock(&ing->q_mu);
            q->drain_done = req;
            pthread_cond_broadcast(&ing->q_cv);
            continue;
        }
        slot_t chunk[WRITER_CHUNK];
        int n = 0;
        for (; n < WRITER_CHUNK && q->n; n++, q->n--) {
            chunk[n] = q->ring[q->head];
            q->head = (q->head + 1) % q->cap;
        }
        if (n) {
            q_shrunk(ing);
        } else {
            int64_t left_ms = ing->batch_msgs /* rounded up: no spinning in the last ms */
                                  ? (ing->batch_deadline_ns - mmr_mono_ns() + 999999) / 1000000
                                  : IDLE_POLL_MS;
            if (left_ms > 0) {
                q->writer_waits = true;
                q_wait_ms(ing, left_ms < IDLE_POLL_MS ? left_ms : IDLE_POLL_MS);
                q->writer_waits = false;
                continue;
            }
        }
        pthread_mutex_unlock(&ing->q_mu);
        uint64_t rewinds = ing->rewinds;
        for (int i = 0; i < n; i++) {
            slot_t *sl = &chunk[i];
            if (!sl->m) {
                assign_mark(ing, sl);
                continue;
            }
            /* A rewind since this chunk was taken: what it holds of the sought partitions
             * was fetched before the seek and comes again (handoff_forget for the queue). */
            if (ing->rewinds != rewinds && sl->t >= 0 && sl->m->partition >= 0 &&
                sl->m->partition < ing->topics[sl->t].n_parts &&
                ing->topics[sl->t].parts[sl->m->partition].rewind_gen > rewinds) {
                rd_kafka_message_destroy(sl->m);
                continue;
            }
            handle_message(ing, sl->m);
            rd_kafka_message_destroy(sl->m);
            if (ing->batch_msgs && (ing->batch_failed || ing->batch_msgs >= ing->batch_max))
                batch_flush(ing, true);
        }
        rd_kafka_poll(ing->producer, 0); /* serve DLQ producer errors between flushes */
        if (ing->batch_msgs && (ing->batch_failed || ing->batch_msgs >= ing->batch_max ||
                                mmr_mono_ns() >= ing->batch_deadline_ns))
            batch_flush(ing, true);
        pthread_mutex_lock(&ing->q_mu);
    }
    pthread_mutex_unlock(&ing->q_mu);
    batch_flush(ing, false);
    pthread_mutex_lock(&ing->q_mu);
    for (; q->n; q->n--, q->head = (q->head + 1) % q->cap) /* uncommitted: read again later */
        if (q->ring[q->head].m) rd_kafka_message_destroy(q->ring[q->head].m);
    atomic_store(&ing->queued, 0);
    q->writer_running = false;
    pthread_cond_broadcast(&ing->q_cv);
    pthread_mutex_unlock(&ing->q_mu);
    return NULL;
}

static void *ingest_main(void *arg) {
    mmr_ingest_t *ing = arg;
    mmr_thread_set_name("mmr-ingest");
    handoff_t *q = &ing->q;
    while (!atomic_load(&ing->stop)) {
        pthread_mutex_lock(&ing->q_mu);
        bool paused = q->consumer_paused, resume = paused && !q->store_pause && q->n <= q->cap / 2,
             pause = !paused && q->store_pause && q->can_pause;
        pthread_mutex_unlock(&ing->q_mu);
        if (resume || pause) set_paused(ing, pause);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->consumer, paused ? PAUSED_POLL_MS : IDLE_POLL_MS);
        if (!m) continue;
        if (q->consumer_paused) { /* fetched before the pause: the resume starts before it */
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                mmr_log(MMR_LOG_WARN, LOG_MOD, "consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        slot_t s = {.m = m, .partition = m->partition,
                    .t = m->rkt ? topic_index(ing, rd_kafka_topic_name(m->rkt)) : -1};
        int rc = atomic_load(&ing->stop) ? 0 : handoff_push(ing, s, true);
        /* Paused: m is dropped, the resume starts before it. Not paused (the assignment
         * call failed): m is queued after all, as the next message must not pass it. */
        if (rc < 0 && !set_paused(ing, true)) rc = handoff_push(ing, s, false);
        if (rc > 0) continue;
        rd_kafka_message_destroy(m);
        if (rc == 0) break; /* uncommitted: read again after a restart */
    }
    pthread_mutex_lock(&ing->q_mu);
    ing->q.writer_stop = true; /* it flushes its open batch; queued messages are dropped */
    pthread_cond_broadcast(&ing->q_cv);
    pthread_mutex_unlock(&ing->q_mu);
    pthread_join(ing->writer, NULL);
    /* Revokes (on_rebalance's drain returns at once: the writer is gone) and leaves the group. */
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
    mmr_kconf_callbacks(c);
    if (cons) {
        rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(c, on_commit);
    } else {
        rd_kafka_conf_set_dr_msg_cb(c, on_dlq_delivery);
    }
    /* defaults, then the caller's properties, then what the exactly-once design needs */
    if ((*st = mmr_kconf_set(c, "bootstrap.servers", conf->brokers, err)) ||
        (*st = mmr_kconf_set(c, "client.id", cons ? "mmrec-ingest" : "mmrec-ingest-dlq", err)) ||
        (cons && (*st = mmr_kconf_set(c, "group.id", conf->group_id, err))) ||
        (cons && (*st = mmr_kconf_set(c, "auto.offset.reset", "earliest", err))) ||
        (!cons && (*st = mmr_kconf_set(c, "acks", "all", err))) ||
        (*st = mmr_kconf_set_props(c, conf->kafka_props, conf->n_kafka_props, cons ? "consumer" : "producer", err)) ||
        (cons && (*st = mmr_kconf_set(c, "enable.auto.commit", "false", err))) ||
        (cons && (*st = mmr_kconf_set(c, "enable.auto.offset.store", "false", err)))) {
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
    bool items = nonempty(conf->items_topic);
    if (items && (strcmp(conf->items_topic, conf->events_topic) == 0 ||
                  strcmp(conf->items_topic, conf->dlq_topic) == 0))
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "ingest: items_topic must differ from events_topic and dlq_topic");
    for (int m = 0; m < MMR_MODALITY_COUNT; m++)
        if (conf->emb_dims[m] > MMR_EMB_DIM_MAX)
            return mmr_err_set(err, MMR_ERR_INVALID, "ingest: emb_dims[%d] = %" PRIu32 " > %d", m,
                               conf->emb_dims[m], MMR_EMB_DIM_MAX);
    if (conf->format != MMR_INGEST_FORMAT_PROTOBUF && conf->format != MMR_INGEST_FORMAT_JSON)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: unknown format %d", (int)conf->format);
    if (conf->max_future_ms < 0)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: max_future_ms is negative");
    if (conf->n_kafka_props && !conf->kafka_props)
        return mmr_err_set(err, MMR_ERR_INVALID, "ingest: kafka_props is NULL");

    mmr_ingest_t *ing = calloc(1, sizeof *ing);
    if (!ing) return mmr_err_set(err, MMR_ERR_NOMEM, "ingest: out of memory");
    pthread_mutex_init(&ing->life_mu, NULL);
    pthread_mutex_init(&ing->q_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* q_wait_ms */
    pthread_cond_init(&ing->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&ing->stop, false);
    ing->fs = fs;
    ing->format = conf->format;
    ing->batch_max = conf->batch_max ? conf->batch_max : DEFAULT_BATCH_MAX;
    ing->batch_ms = conf->batch_ms ? conf->batch_ms : DEFAULT_BATCH_MS;
    ing->max_future_ms = conf->max_future_ms ? conf->max_future_ms : DEFAULT_MAX_FUTURE_MS;
    memcpy(ing->emb_dims, conf->emb_dims, sizeof ing->emb_dims);
    ing->backoff_ms = BACKOFF_MIN_MS;
    ing->topics[T_EVENTS].name = strdup(conf->events_topic);
    ing->topics[T_ITEMS].name = items ? strdup(conf->items_topic) : NULL;
    ing->dlq_topic = strdup(conf->dlq_topic);
    ing->q.cap = conf->queue_max ? conf->queue_max : DEFAULT_QUEUE_PER_BATCH * ing->batch_max;
    ing->q.ring = calloc(ing->q.cap, sizeof *ing->q.ring);
    ing->pause_after_ms = conf->pause_after_ms ? conf->pause_after_ms : DEFAULT_PAUSE_AFTER_MS;
    ing->owned = rd_kafka_topic_partition_list_new(8);
    if (!ing->topics[T_EVENTS].name || (items && !ing->topics[T_ITEMS].name) || !ing->dlq_topic ||
        !ing->q.ring) {
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
    const char *items = ing->topics[T_ITEMS].name;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(T_COUNT);
    for (int t = 0; t < T_COUNT; t++)
        if (ing->topics[t].name)
            rd_kafka_topic_partition_list_add(topics, ing->topics[t].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ing->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        st = mmr_err_set(err, MMR_ERR_KAFKA, "ingest: subscribe to %s%s%s: %s",
                         ing->topics[T_EVENTS].name, items ? " and " : "", items ? items : "",
                         rd_kafka_err2str(e));
        goto out;
    }
    ing->q.writer_running = true;
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        ing->q.writer_running = false;
        rd_kafka_unsubscribe(ing->consumer);
        st = mmr_err_set(err, MMR_ERR_INTERNAL, "ingest: cannot create the writer thread");
        goto out;
    }
    if (pthread_create(&ing->thread, NULL, ingest_main, ing) != 0) {
        pthread_mutex_lock(&ing->q_mu);
        ing->q.writer_stop = true;
        pthread_cond_broadcast(&ing->q_cv);
        pthread_mutex_unlock(&ing->q_mu);
        pthread_join(ing->writer, NULL);
        rd_kafka_unsubscribe(ing->consumer);
        st = mmr_err_set(err, MMR_ERR_INTERNAL, "ingest: cannot create the consumer thread");
        goto out;
    }
    ing->started = true;
    mmr_log(MMR_LOG_INFO, LOG_MOD, "consuming %s%s%s, dead letters to %s",
            ing->topics[T_EVENTS].name, items ? " and " : "", items ? items : "", ing->dlq_topic);
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
    mmr_ingest_decoded_item_release(&ing->item);
    for (int t = 0; t < T_COUNT; t++) {
        free(ing->topics[t].parts);
        free(ing->topics[t].name);
    }
    free(ing->dlq_topic);
    if (ing->owned) rd_kafka_topic_partition_list_destroy(ing->owned);
    for (int t = 0; t < T_COUNT; t++) free(ing->resume[t]);
    free(ing->q.ring); /* emptied by the writer when it exits */
    pthread_cond_destroy(&ing->q_cv);
    pthread_mutex_destroy(&ing->q_mu);
    pthread_mutex_destroy(&ing->life_mu);
    free(ing);
}

size_t mmr_ingest_get_lag(mmr_ingest_t *ing, mmr_ingest_lag_t *out, size_t cap) {
    pthread_mutex_lock(&ing->q_mu);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(ing->owned);
    for (int i = 0; i < l->cnt; i++) {
        int t = topic_index(ing, l->elems[i].topic);
        int32_t p = l->elems[i].partition;
        l->elems[i].offset = t >= 0 && p < ing->n_resume[t] ? ing->resume[t][p] : RD_KAFKA_OFFSET_INVALID;
    }
    pthread_mutex_unlock(&ing->q_mu);
    size_t n = (size_t)l->cnt;
    for (size_t i = 0; i < n && i < cap; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        int t = topic_index(ing, tp->topic);
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(ing->consumer, tp->topic, tp->partition, &lo, &hi) != 0) hi = -1;
        out[i] = (mmr_ingest_lag_t){.topic = t >= 0 ? ing->topics[t].name : "?",
                                    .partition = tp->partition,
                                    .position = tp->offset >= 0 ? tp->offset : -1,
                                    .high = hi >= 0 ? hi : -1};
        out[i].lag = out[i].position >= 0 && out[i].high >= 0 ? out[i].high - out[i].position : -1;
        if (out[i].lag < 0 && out[i].position >= 0 && out[i].high >= 0) out[i].lag = 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return n;
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
        .items_applied = LOAD(items_applied),
        .assigned_partitions = (uint32_t)atomic_load(&ing->assigned),
        .store_failing = atomic_load(&ing->store_failing),
        .pauses = LOAD(pauses),
        .redelivered = LOAD(redelivered),
        .queued = atomic_load(&ing->queued),
        .paused = atomic_load(&ing->paused),
    };
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++) out->dead_lettered[r] = LOAD(dead[r]);
#undef LOAD
}
