/* ingest_test.h — shared by the streaming consumer tests: a librdkafka mock cluster (topics
 * events, items, DLQ), a test producer that remembers every message it sent (topic,
 * partition/offset from the delivery report, expected dead-letter reason), ground-truth
 * generators for the event stream and the item catalog, a DLQ checker and a stats waiter.
 * Header-only: each test is one executable; helpers not every test uses are static inline.
 * Set MMREC_TEST_LOG=debug (or info, warn, error) to see the consumer's log. */
#ifndef MMR_INGEST_TEST_H
#define MMR_INGEST_TEST_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "mmr_fstore.h"
#include "mmr_ingest.h"
#include "mmr_log.h"
#include "mmr_time.h"
#include "mmrec/v1/event.pb-c.h"
#include "mmrec/v1/item.pb-c.h"

#define IT_EVENTS "mmrec.events"
#define IT_ITEMS "mmrec.items"
#define IT_DLQ "mmrec.events.dlq"
#define IT_PARTITIONS 3
#define IT_ITEM_PARTITIONS 2
#define IT_USERS 16
#define IT_CATALOG 24           /* catalog item ids c0..c23 */
#define IT_BAD_ONLY (IT_CATALOG - 1) /* the catalog id it_send_items never writes validly */
#define IT_EMB_MAX 8            /* widest embedding the item generator writes */
#define IT_GOOD (-1)            /* sent_msg_t.reason of a message that must be applied */
#define IT_WAIT_MS 60000        /* longest wait for an ingest to catch up */

typedef struct it_msg {
    const char *topic;          /* IT_EVENTS or IT_ITEMS */
    int32_t partition;
    int64_t offset;             /* from the delivery report; -1 until delivered */
    int reason;                 /* expected mmr_ingest_reason_t, or IT_GOOD */
    int key_null;
    char key[32];
    uint8_t *payload;           /* owned */
    size_t len;
    int dlq_seen;               /* times found in the DLQ topic */
} it_msg_t;

enum { IT_ITEM_NONE = 0, IT_ITEM_LIVE, IT_ITEM_DELETED };

/* Ground truth for one catalog item: the last valid message for its id wins. */
typedef struct it_item {
    int state;                  /* IT_ITEM_NONE: never validly written */
    int64_t created_ms;
    uint32_t dim[MMR_MODALITY_COUNT];
    float emb[MMR_MODALITY_COUNT][IT_EMB_MAX];
} it_item_t;

typedef struct it_env {
    rd_kafka_t *rk;             /* test producer; hosts the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[256];
    it_msg_t *msgs;             /* [n_msgs], every message ever produced */
    size_t n_msgs, cap;
    uint64_t rng;
    int next_event_id;          /* event ids e0, e1, ... across phases */
    int64_t user_events[IT_USERS]; /* expected events_total per user "u<i>" */
    it_item_t items[IT_CATALOG];   /* expected store content of item "c<i>" */
    int n_item_puts;               /* item messages generated, for distinct values */
    int n_item_bad;                /* bad item messages generated, to cycle the reasons */
} it_env_t;

/* What one stream should do to the ingest counters. */
typedef struct it_expect {
    uint64_t messages, applied, duplicates, items_applied, dead[MMR_INGEST_BAD_COUNT], bad;
} it_expect_t;

/* The widths the item tests configure: text 8, image 4, video any (the generator writes
 * 1..IT_EMB_MAX). */
static const uint32_t it_emb_dims[MMR_MODALITY_COUNT] = {8, 4, 0};

/* Log level from $MMREC_TEST_LOG ("debug".."error"), else `dflt`. */
static inline void it_log_level(mmr_log_level_t dflt) {
    const char *s = getenv("MMREC_TEST_LOG");
    int l = s ? mmr_log_level_parse(s) : -1;
    mmr_log_set_level(l >= 0 ? (mmr_log_level_t)l : dflt);
}

static inline uint64_t it_rand(it_env_t *e) { /* xorshift64* */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 0x2545F4914F6CDD1Dull;
}

static inline void it_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    it_env_t *e = opaque;
    it_msg_t *msg = &e->msgs[(uintptr_t)m->_private];
    CHECK_MSG(m->err == 0, "test produce failed: %s", rd_kafka_err2str(m->err));
    msg->offset = m->offset;
    msg->partition = m->partition;
}

static inline void it_env_init(it_env_t *e) {
    memset(e, 0, sizeof *e);
    e->rng = 0x9E3779B97F4A7C15ull;
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(c, "test.mock.num.brokers", "1", errstr, sizeof errstr) == 0);
    CHECK(rd_kafka_conf_set(c, "linger.ms", "0", errstr, sizeof errstr) == 0);
    rd_kafka_conf_set_dr_msg_cb(c, it_on_delivery);
    rd_kafka_conf_set_opaque(c, e);
    e->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
    CHECK_MSG(e->rk != NULL, "mock producer: %s", errstr);
    e->mc = rd_kafka_handle_mock_cluster(e->rk);
    CHECK(e->mc != NULL);
    snprintf(e->bootstraps, sizeof e->bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(e->mc));
    CHECK(rd_kafka_mock_topic_create(e->mc, IT_EVENTS, IT_PARTITIONS, 1) == 0);
    CHECK(rd_kafka_mock_topic_create(e->mc, IT_ITEMS, IT_ITEM_PARTITIONS, 1) == 0);
    CHECK(rd_kafka_mock_topic_create(e->mc, IT_DLQ, 1, 1) == 0);
}

static inline void it_env_free(it_env_t *e) {
    rd_kafka_destroy(e->rk); /* and its mock cluster */
    for (size_t i = 0; i < e->n_msgs; i++) free(e->msgs[i].payload);
    free(e->msgs);
}

/* Queues one message to topic (IT_EVENTS or IT_ITEMS): key NULL for a keyless message.
 * The payload is copied. */
static inline void it_send_to(it_env_t *e, const char *topic, int32_t partition, const char *key,
                       const void *payload, size_t len, int reason) {
    if (e->n_msgs == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 256;
        e->msgs = realloc(e->msgs, e->cap * sizeof *e->msgs);
        CHECK(e->msgs != NULL);
    }
    size_t idx = e->n_msgs++;
    it_msg_t *m = &e->msgs[idx];
    *m = (it_msg_t){.topic = topic, .partition = partition, .offset = -1, .reason = reason,
                    .key_null = !key,
                    .payload = malloc(len ? len : 1), .len = len};
    CHECK(m->payload != NULL);
    memcpy(m->payload, payload, len);
    if (key) snprintf(m->key, sizeof m->key, "%s", key);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        e->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE(m->payload, len), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)idx),
        RD_KAFKA_V_END);
    CHECK_MSG(err == 0, "producev: %s", rd_kafka_err2str(err));
}

static inline void it_send(it_env_t *e, int32_t partition, const char *key, const void *payload,
                    size_t len, int reason) {
    it_send_to(e, IT_EVENTS, partition, key, payload, len, reason);
}

/* Waits until every queued message is acknowledged (offsets known). */
static inline void it_flush(it_env_t *e) {
    CHECK(rd_kafka_flush(e->rk, 10000) == 0);
    for (size_t i = 0; i < e->n_msgs; i++) CHECK(e->msgs[i].offset >= 0);
}

static inline size_t it_pb(uint8_t *buf, size_t cap, const char *event_id, const char *user_id,
                    const char *item_id, int type, float value, int64_t ts_ms) {
    Mmrec__V1__Event ev = MMREC__V1__EVENT__INIT;
    ev.event_id = (char *)event_id;
    ev.user_id = (char *)user_id;
    ev.item_id = (char *)item_id;
    ev.type = (Mmrec__V1__EventType)type;
    ev.value = value;
    ev.ts_ms = ts_ms;
    CHECK(mmrec__v1__event__get_packed_size(&ev) <= cap);
    return mmrec__v1__event__pack(&ev, buf);
}

/* Sends a shuffled stream of n_valid new events (n_noid of them without event_id), n_dup
 * byte-identical re-sends of earlier events, and n_bad malformed messages cycling through
 * every reason the decoder can give. Keys are user ids, partition = user % IT_PARTITIONS,
 * as a keyed producer would do. Adds the stream's effect to *x. */
static inline void it_send_stream(it_env_t *e, int n_valid, int n_noid, int n_dup, int n_bad,
                           it_expect_t *x) {
    enum { GOOD, NOID, DUP, BAD };
    int n = n_valid + n_noid + n_dup + n_bad, *kinds = malloc(sizeof(int) * (size_t)n);
    CHECK(kinds != NULL);
    for (int i = 0; i < n; i++)
        kinds[i] = i < n_valid ? GOOD : i < n_valid + n_noid ? NOID : i < n - n_bad ? DUP : BAD;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(it_rand(e) % (uint64_t)(i + 1)), t = kinds[i];
        kinds[i] = kinds[j];
        kinds[j] = t;
    }
    static const int bad_reasons[] = {MMR_INGEST_BAD_DECODE, MMR_INGEST_BAD_MISSING_ID,
                                      MMR_INGEST_BAD_TYPE,   MMR_INGEST_BAD_VALUE,
                                      MMR_INGEST_BAD_TS,     MMR_INGEST_BAD_ID_TOO_LONG};
    int n_bad_sent = 0;
    int64_t now = mmr_now_ms();
    for (int i = 0; i < n; i++) {
        uint8_t buf[1024];
        char uid[16], iid[16], eid[16];
        int u = (int)(it_rand(e) % IT_USERS);
        snprintf(uid, sizeof uid, "u%d", u);
        snprintf(iid, sizeof iid, "i%d", (int)(it_rand(e) % 40));
        int type = 1 + (int)(it_rand(e) % 8);
        float value = type == 5 ? 30.0f : type == 8 ? 4.0f : 1.0f;
        if (kinds[i] == DUP) { /* re-send a good message with an event_id already queued */
            size_t start = e->n_msgs ? (size_t)(it_rand(e) % e->n_msgs) : 0, k = SIZE_MAX;
            for (size_t j = 0; j < e->n_msgs && k == SIZE_MAX; j++) {
                const it_msg_t *c = &e->msgs[(start + j) % e->n_msgs];
                if (strcmp(c->topic, IT_EVENTS) == 0 && c->reason == IT_GOOD &&
                    c->payload[0] == 0x0a /* field 1: event_id */)
                    k = (start + j) % e->n_msgs;
            }
            if (k != SIZE_MAX) {
                it_msg_t orig = e->msgs[k];
                it_send(e, orig.partition, orig.key, orig.payload, orig.len, IT_GOOD);
                x->duplicates++;
                continue;
            }
            kinds[i] = GOOD; /* nothing to duplicate yet */
        }
        if (kinds[i] == BAD) {
            int r = bad_reasons[n_bad_sent++ % (int)(sizeof bad_reasons / sizeof bad_reasons[0])];
            size_t len = 0;
            char long_id[MMR_ID_MAX + 8];
            memset(long_id, 'x', sizeof long_id - 1);
            long_id[sizeof long_id - 1] = '\0';
            switch (r) {
            case MMR_INGEST_BAD_DECODE:
                memcpy(buf, "\xff\xff\xff\xff garbage", len = 12);
                break;
            case MMR_INGEST_BAD_MISSING_ID:
                len = it_pb(buf, sizeof buf, "", "", iid, type, value, now);
                break;
            case MMR_INGEST_BAD_TYPE:
                len = it_pb(buf, sizeof buf, "", uid, iid, 0, value, now);
                break;
            case MMR_INGEST_BAD_VALUE:
                len = it_pb(buf, sizeof buf, "", uid, iid, 2, NAN, now);
                break;
            case MMR_INGEST_BAD_TS:
                len = it_pb(buf, sizeof buf, "", uid, iid, 2, 1, now + 2 * 3600 * 1000);
                break;
            default:
                len = it_pb(buf, sizeof buf, "", uid, long_id, 2, 1, now);
                break;
            }
            /* garbage goes keyless: the DLQ must carry a NULL key through */
            it_send(e, u % IT_PARTITIONS, r == MMR_INGEST_BAD_DECODE ? NULL : uid, buf, len, r);
            x->dead[r]++;
            x->bad++;
            continue;
        }
        if (kinds[i] == GOOD) snprintf(eid, sizeof eid, "e%d", e->next_event_id++);
        size_t len = it_pb(buf, sizeof buf, kinds[i] == GOOD ? eid : "", uid, iid, type, value,
                           i % 2 ? 0 : now - 1000);
        it_send(e, u % IT_PARTITIONS, uid, buf, len, IT_GOOD);
        e->user_events[u]++;
        x->applied++;
    }
    x->messages += (uint64_t)n;
    free(kinds);
}

static inline int it_stats_done(const mmr_ingest_stats_t *s, const it_expect_t *x) {
    uint64_t dead = 0;
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++) dead += s->dead_lettered[r];
    return s->applied + s->duplicates + s->items_applied + dead >= x->messages;
}

/* Polls the ingest counters until the committed outcomes cover x->messages. */
static inline void it_wait(mmr_ingest_t *ing, const it_expect_t *x, mmr_ingest_stats_t *s) {
    int64_t deadline = mmr_now_ms() + IT_WAIT_MS;
    for (;;) {
        mmr_ingest_get_stats(ing, s);
        if (it_stats_done(s, x)) return;
        CHECK_MSG(mmr_now_ms() < deadline,
                  "ingest did not catch up: consumed %llu applied %llu dup %llu items %llu "
                  "of %llu", (unsigned long long)s->consumed, (unsigned long long)s->applied,
                  (unsigned long long)s->duplicates, (unsigned long long)s->items_applied,
                  (unsigned long long)x->messages);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static inline void it_check_stats(const char *phase, const mmr_ingest_stats_t *s, const it_expect_t *x) {
    CHECK_MSG(s->applied == x->applied, "%s: applied %llu, want %llu", phase,
              (unsigned long long)s->applied, (unsigned long long)x->applied);
    CHECK_MSG(s->duplicates == x->duplicates, "%s: duplicates %llu, want %llu", phase,
              (unsigned long long)s->duplicates, (unsigned long long)x->duplicates);
    CHECK_MSG(s->items_applied == x->items_applied, "%s: items_applied %llu, want %llu", phase,
              (unsigned long long)s->items_applied, (unsigned long long)x->items_applied);
    for (int r = 0; r < MMR_INGEST_BAD_COUNT; r++)
        CHECK_MSG(s->dead_lettered[r] == x->dead[r], "%s: dead_lettered[%s] %llu, want %llu",
                  phase, mmr_ingest_reason_str((mmr_ingest_reason_t)r),
                  (unsigned long long)s->dead_lettered[r], (unsigned long long)x->dead[r]);
}

static inline const char *it_header(rd_kafka_message_t *m, const char *name, char *buf, size_t cap) {
    rd_kafka_headers_t *h;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n)) return NULL;
    snprintf(buf, cap, "%.*s", (int)n, (const char *)v);
    return buf;
}

/* Reads the whole DLQ topic and matches every record to the message it came from (by the
 * mmrec.source header): same bytes, same key, the expected reason. Returns the record
 * count, which must equal the partition's high watermark (nothing unread). Each match
 * increments it_msg_t.dlq_seen. */
static inline int64_t it_read_dlq(it_env_t *e) {
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(c, "bootstrap.servers", e->bootstraps, errstr, sizeof errstr) == 0);
    CHECK(rd_kafka_conf_set(c, "group.id", "dlq-reader", errstr, sizeof errstr) == 0);
    CHECK(rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof errstr) == 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    CHECK_MSG(rk != NULL, "%s", errstr);
    int64_t lo, hi;
    CHECK(rd_kafka_query_watermark_offsets(rk, IT_DLQ, 0, &lo, &hi, 10000) == 0);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, IT_DLQ, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    CHECK(rd_kafka_assign(rk, l) == 0);
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; i < e->n_msgs; i++) e->msgs[i].dlq_seen = 0;
    int64_t n = 0, deadline = mmr_now_ms() + 20000;
    while (n < hi - lo) {
        CHECK_MSG(mmr_now_ms() < deadline, "DLQ: read %lld of %lld", (long long)n,
                  (long long)(hi - lo));
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        CHECK_MSG(!m->err, "DLQ read: %s", rd_kafka_message_errstr(m));
        char reason[64], source[128], detail[300];
        CHECK(it_header(m, "mmrec.reason", reason, sizeof reason) != NULL);
        CHECK(it_header(m, "mmrec.source", source, sizeof source) != NULL);
        CHECK(it_header(m, "mmrec.detail", detail, sizeof detail) != NULL);
        int32_t p;
        long long off;
        char topic[64];
        CHECK_MSG(sscanf(source, "%63[^/]/%d/%lld", topic, &p, &off) == 3, "source %s", source);
        CHECK_MSG(strcmp(topic, IT_EVENTS) == 0 || strcmp(topic, IT_ITEMS) == 0, "source %s",
                  source);
        it_msg_t *orig = NULL;
        for (size_t i = 0; i < e->n_msgs && !orig; i++)
            if (strcmp(e->msgs[i].topic, topic) == 0 && e->msgs[i].partition == p &&
                e->msgs[i].offset == off)
                orig = &e->msgs[i];
        CHECK_MSG(orig != NULL, "DLQ record for unknown source %s", source);
        CHECK_MSG(orig->reason != IT_GOOD, "good message %s dead-lettered (%s: %s)", source,
                  reason, detail);
        CHECK_MSG(strcmp(reason, mmr_ingest_reason_str((mmr_ingest_reason_t)orig->reason)) == 0,
                  "%s: reason %s, want %s", source, reason,
                  mmr_ingest_reason_str((mmr_ingest_reason_t)orig->reason));
        CHECK_MSG(strncmp(detail, reason, strlen(reason)) == 0, "%s: detail %s", source, detail);
        CHECK_MSG(m->len == orig->len && memcmp(m->payload, orig->payload, m->len) == 0,
                  "%s: payload differs", source);
        if (orig->key_null) CHECK_MSG(m->key == NULL, "%s: key should be NULL", source);
        else CHECK_MSG(m->key_len == strlen(orig->key) && !memcmp(m->key, orig->key, m->key_len),
                       "%s: key differs", source);
        orig->dlq_seen++;
        n++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* Produced messages per partition of topic: the next offset a caught-up consumer has. */
static inline int64_t it_end_offset(const it_env_t *e, const char *topic, int32_t partition) {
    int64_t end = 0;
    for (size_t i = 0; i < e->n_msgs; i++)
        if (strcmp(e->msgs[i].topic, topic) == 0 && e->msgs[i].partition == partition &&
            e->msgs[i].offset + 1 > end)
            end = e->msgs[i].offset + 1;
    return end;
}

/* --- the item catalog ------------------------------------------------------------------ */

/* Encodes an Item; emb[m] is [dim[m]] floats (NULL when dim[m] is 0). */
static inline size_t it_pb_item(uint8_t *buf, size_t cap, const char *item_id,
                                int64_t created_ms, int deleted,
                                const uint32_t dim[MMR_MODALITY_COUNT],
                                float emb[MMR_MODALITY_COUNT][IT_EMB_MAX]) {
    Mmrec__V1__Item it = MMREC__V1__ITEM__INIT;
    it.item_id = (char *)item_id;
    it.created_ms = created_ms;
    it.deleted = deleted;
    it.n_text_emb = dim[0], it.text_emb = emb[0];
    it.n_image_emb = dim[1], it.image_emb = emb[1];
    it.n_video_emb = dim[2], it.video_emb = emb[2];
    CHECK(mmrec__v1__item__get_packed_size(&it) <= cap);
    return mmrec__v1__item__pack(&it, buf);
}

static inline void it_item_key(int idx, char *key, size_t cap) { snprintf(key, cap, "c%d", idx); }

/* A valid put of catalog item idx (an update when it exists): each modality present with
 * probability 2/3, video of a random width (any is accepted), distinct values. */
static inline void it_item_put(it_env_t *e, int idx, it_expect_t *x) {
    uint32_t dim[MMR_MODALITY_COUNT];
    float emb[MMR_MODALITY_COUNT][IT_EMB_MAX];
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        dim[m] = it_rand(e) % 3 == 0 ? 0
                 : it_emb_dims[m] ? it_emb_dims[m]
                                  : 1 + (uint32_t)(it_rand(e) % IT_EMB_MAX);
        for (uint32_t i = 0; i < dim[m]; i++)
            emb[m][i] = (float)((int)(it_rand(e) % 20001) - 10000) / 1000.0f;
    }
    char key[16];
    it_item_key(idx, key, sizeof key);
    int64_t created = INT64_C(1700000000000) + e->n_item_puts++;
    uint8_t buf[1024];
    size_t len = it_pb_item(buf, sizeof buf, key, created, 0, dim, emb);
    it_send_to(e, IT_ITEMS, idx % IT_ITEM_PARTITIONS, key, buf, len, IT_GOOD);
    it_item_t *t = &e->items[idx];
    t->state = IT_ITEM_LIVE;
    t->created_ms = created;
    for (int m = 0; m < MMR_MODALITY_COUNT; m++) {
        t->dim[m] = dim[m];
        memcpy(t->emb[m], emb[m], dim[m] * sizeof(float));
    }
    x->items_applied++;
    x->messages++;
}

/* A tombstone for catalog item idx (existing or not); with_emb: the message still carries
 * (ignored, even wrong-width) embeddings. */
static inline void it_item_delete(it_env_t *e, int idx, int with_emb, it_expect_t *x) {
    uint32_t dim[MMR_MODALITY_COUNT] = {0};
    float emb[MMR_MODALITY_COUNT][IT_EMB_MAX] = {{0}};
    if (with_emb) dim[0] = 3; /* configured 8: would be bad_embedding_width if not deleted */
    char key[16];
    it_item_key(idx, key, sizeof key);
    int64_t created = INT64_C(1700000000000) + e->n_item_puts++;
    uint8_t buf[1024];
    size_t len = it_pb_item(buf, sizeof buf, key, created, 1, dim, emb);
    it_send_to(e, IT_ITEMS, idx % IT_ITEM_PARTITIONS, key, buf, len, IT_GOOD);
    it_item_t *t = &e->items[idx];
    memset(t, 0, sizeof *t);
    t->state = IT_ITEM_DELETED;
    t->created_ms = created;
    x->items_applied++;
    x->messages++;
}

/* Bad item message number k (cycling through every item reason), keyed by and naming catalog
 * item idx where it has an id, so that applying it would corrupt the ground truth. */
static inline void it_item_bad(it_env_t *e, int idx, int k, it_expect_t *x) {
    static const int reasons[] = {MMR_INGEST_BAD_DECODE,    MMR_INGEST_BAD_MISSING_ID,
                                  MMR_INGEST_BAD_ID_TOO_LONG, MMR_INGEST_BAD_EMB_WIDTH,
                                  MMR_INGEST_BAD_EMB_WIDTH, MMR_INGEST_BAD_EMB_VALUE,
                                  MMR_INGEST_BAD_EMB_VALUE, MMR_INGEST_BAD_TS};
    int variant = k % (int)(sizeof reasons / sizeof reasons[0]), r = reasons[variant];
    uint32_t dim[MMR_MODALITY_COUNT] = {8, 4, 2};
    float emb[MMR_MODALITY_COUNT][IT_EMB_MAX] = {{0.5f}, {0.25f}, {1.0f}};
    char key[16], long_id[MMR_ID_MAX + 2];
    it_item_key(idx, key, sizeof key);
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *id = key;
    int64_t created = INT64_C(1700000000000);
    uint8_t buf[1024];
    size_t len;
    switch (variant) {
    case 0: memcpy(buf, "\x0a\xff\xff\xff\x0f garbage", len = 13); break;
    case 1: id = ""; break;
    case 2: id = long_id; break;
    case 3: dim[0] = 7; break;           /* text: configured 8 */
    case 4: dim[1] = 5; dim[0] = 0; break; /* image: configured 4 */
    case 5: emb[1][2] = NAN; break;
    case 6: emb[2][1] = INFINITY; break;
    default: created = -1; break;
    }
    if (variant) len = it_pb_item(buf, sizeof buf, id, created, 0, dim, emb);
    it_send_to(e, IT_ITEMS, idx % IT_ITEM_PARTITIONS, variant ? key : NULL, buf, len, r);
    x->dead[r]++;
    x->bad++;
    x->messages++;
}

/* A shuffled catalog stream: n_put puts (updates once ids repeat), n_del tombstones and n_bad
 * malformed items over random catalog ids below IT_BAD_ONLY. Adds the stream's effect to *x. */
static inline void it_send_items(it_env_t *e, int n_put, int n_del, int n_bad, it_expect_t *x) {
    int n = n_put + n_del + n_bad;
    int *kinds = malloc(sizeof(int) * (size_t)(n ? n : 1));
    CHECK(kinds != NULL);
    for (int i = 0; i < n; i++) kinds[i] = i < n_put ? 0 : i < n_put + n_del ? 1 : 2;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(it_rand(e) % (uint64_t)(i + 1)), t = kinds[i];
        kinds[i] = kinds[j];
        kinds[j] = t;
    }
    for (int i = 0; i < n; i++) {
        int idx = (int)(it_rand(e) % IT_BAD_ONLY);
        if (kinds[i] == 0) it_item_put(e, idx, x);
        else if (kinds[i] == 1) it_item_delete(e, idx, (int)(it_rand(e) % 2), x);
        else it_item_bad(e, idx, e->n_item_bad++, x);
    }
    free(kinds);
}

/* Every user "u<i>" in the store has the events_total the stream says (absent = 0). */
static inline void it_check_users(const it_env_t *env, mmr_fstore_t *fs) {
    for (int u = 0; u < IT_USERS; u++) {
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        mmr_user_t *user = NULL;
        mmr_err_t err = {0};
        mmr_status_t st = mmr_fstore_get_user(fs, uid, &user, &err);
        CHECK_MSG(st == MMR_OK || st == MMR_ERR_NOT_FOUND, "get_user %s: %s", uid, err.msg);
        int64_t got = st == MMR_OK ? user->events_total : 0;
        CHECK_MSG(got == env->user_events[u], "user %s: events_total %lld, want %lld", uid,
                  (long long)got, (long long)env->user_events[u]);
        mmr_user_free(user);
    }
}

/* The ingest configuration every test starts from: small batches so a run spans many. The
 * mock group coordinator (librdkafka 2.0) makes a member joining after a LeaveGroup wait
 * session.timeout.ms - 1 s (45 s by default) instead of rebalancing at once: keep it short. */
static inline mmr_ingest_conf_t it_conf(const it_env_t *e, const char *group) {
    static const char *const props[] = {"consumer.session.timeout.ms=6000",
                                        "consumer.heartbeat.interval.ms=500"};
    return (mmr_ingest_conf_t){.brokers = e->bootstraps,
                               .kafka_props = props,
                               .n_kafka_props = 2,
                               .group_id = group,
                               .events_topic = IT_EVENTS,
                               .dlq_topic = IT_DLQ,
                               .format = MMR_INGEST_FORMAT_PROTOBUF,
                               .batch_max = 16,
                               .batch_ms = 20,
                               .items_topic = IT_ITEMS,
                               .emb_dims = {it_emb_dims[0], it_emb_dims[1], it_emb_dims[2]}};
}

#endif
