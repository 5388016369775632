/* truth.h — a reproducible stream of valid events and the feature-store state it must
 * produce, for black-box tests that crash, stop or starve mmrecd while it ingests. The
 * tests produce the events with truth_produce, let mmrecd ingest them through whatever
 * fault they inject (truth_metric / truth_wait_idle watch it catch up), stop it, and call
 * truth_check_store on its store.
 *
 * The ground truth is computed here from the produced log, independently of the library
 * (the positivity rule of DESIGN §6 is written out again). Not here: duplicates and
 * malformed messages (test_ingest_exactly_once sends those itself; they do not change the
 * truth), the catalog. Header-only: each integration test is one program. */
#ifndef MMR_TEST_TRUTH_H
#define MMR_TEST_TRUTH_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon.h"
#include "mmr_fstore.h"
#include "mmr_rand.h"
#include "mmrec/v1/event.pb-c.h"

typedef struct truth_ev { uint32_t user, item; uint8_t type; float value; } truth_ev_t;

typedef struct truth {
    truth_ev_t *evs;   /* [cap]: event i has event_id "e<i>", user "u<user>", item "i<item>" */
    long n, cap;
    uint32_t n_users, n_items;
    uint64_t rng;
    int64_t ts0;       /* event i has ts_ms = ts0 + i / 1000 */
} truth_t;

static inline void truth_init(truth_t *t, long cap, uint32_t n_users, uint32_t n_items, uint64_t seed,
                              int64_t ts0) {
    *t = (truth_t){.evs = malloc(sizeof *t->evs * (size_t)cap), .cap = cap, .n_users = n_users,
                   .n_items = n_items, .rng = seed, .ts0 = ts0};
    CHECK(t->evs);
}

static inline void truth_free(truth_t *t) { free(t->evs); }

static inline int truth_positive(const truth_ev_t *e) { /* DESIGN §6, written out independently */
    switch (e->type) {
    case 2: case 3: case 4: case 7: return 1;
    case 5: return e->value >= 10.0f;
    case 8: return e->value >= 4.0f;
    default: return 0;
    }
}

static inline size_t truth_pack_event(uint8_t *buf, const char *eid, const char *user, const char *item,
                                      int type, float value, int64_t ts) {
    Mmrec__V1__Event m = MMREC__V1__EVENT__INIT;
    m.event_id = (char *)eid;
    m.user_id = (char *)user;
    m.item_id = (char *)item;
    m.type = (Mmrec__V1__EventType)type;
    m.value = value;
    m.ts_ms = ts;
    return mmrec__v1__event__pack(&m, buf);
}

/* Draws event t->n (a mix of all types, mostly impressions and clicks), records it and
 * packs it into buf (≥ 256 bytes); user[32] gets its user id (the Kafka key). */
static inline size_t truth_draw(truth_t *t, uint8_t *buf, char user[32]) {
    CHECK(t->n < t->cap);
    uint64_t r = mmr_rand_next(&t->rng);
    truth_ev_t *e = &t->evs[t->n];
    e->user = (uint32_t)(r % t->n_users);
    e->item = (uint32_t)((r >> 20) % t->n_items);
    static const uint8_t mix[20] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 5, 6, 8};
    e->type = mix[(r >> 40) % 20];
    if (((r >> 48) & 127) == 0) e->type = (r >> 55) & 1 ? 4 : 7;
    e->value = e->type == 5 ? (float)((r >> 8) % 60) : e->type == 8 ? (float)(1 + (r >> 8) % 5) : 1.0f;
    char eid[32], item[32];
    snprintf(eid, sizeof eid, "e%ld", t->n);
    snprintf(user, 32, "u%u", e->user);
    snprintf(item, sizeof item, "i%u", e->item);
    return truth_pack_event(buf, eid, user, item, e->type, e->value, t->ts0 + t->n++ / 1000);
}

/* A producer for bulk event loads (idempotent, large local queue). Owned: rd_kafka_destroy. */
static inline rd_kafka_t *truth_producer_new(const char *brokers) {
    char errstr[512];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    CHECK(rd_kafka_conf_set(pc, "bootstrap.servers", brokers, errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    CHECK(rd_kafka_conf_set(pc, "enable.idempotence", "true", errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    CHECK(rd_kafka_conf_set(pc, "linger.ms", "20", errstr, sizeof errstr) == RD_KAFKA_CONF_OK);
    CHECK(rd_kafka_conf_set(pc, "queue.buffering.max.messages", "2000000", errstr, sizeof errstr) ==
          RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    CHECK_MSG(rk, "%s", errstr);
    return rk;
}

/* Draws n events and produces each to mmrec.events (key = user); flush_ms > 0: then
 * flushes and checks that every one was delivered. */
static inline void truth_produce(truth_t *t, rd_kafka_t *rk, long n, int flush_ms) {
    uint8_t buf[512];
    char user[32];
    for (long i = 0; i < n; i++) {
        size_t len = truth_draw(t, buf, user);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("mmrec.events"), RD_KAFKA_V_KEY(user, strlen(user)),
                                 RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    if (flush_ms > 0) CHECK(rd_kafka_flush(rk, flush_ms) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A label-less metric of the daemon (or a full "name{labels}"), -1 when unreadable. */
static inline long truth_metric(int port, const char *name) {
    char *b = metrics_get(port);
    double v = b ? metric_value(b, name) : -1;
    free(b);
    return (long)v;
}

/* Waits until the daemon owns partitions and its consumed counter has not moved for 3 s
 * (it may stay 0: a life before this one can have consumed everything). */
static inline void truth_wait_idle(test_daemon_t *d) {
    long last = -1;
    int still = 0;
    for (int i = 0; i < 1800 && still < 30; i++) {
        long now = truth_metric(d->metrics_port, "mmrec_ingest_consumed_total");
        long owned = truth_metric(d->metrics_port, "mmrec_ingest_assigned_partitions");
        still = (now >= 0 && owned > 0 && now == last) ? still + 1 : 0;
        last = now;
        sleep_ms(100);
    }
    CHECK_MSG(still >= 30, "ingestion did not settle");
}

/* Opens the store at path (mmrecd must be stopped) and checks it against the truth:
 * with rk, the stored offsets of mmrec.events' n_parts partitions equal the topic's end
 * offsets (mmrec.events must hold only these events and duplicates); every user's
 * events_total and `ring`-entry recent-interaction ring; every item's impressions, clicks
 * and positives. Exits through CHECK on the first difference; prints one line per group. */
static inline void truth_check_store(const truth_t *t, const char *path, uint32_t ring, rd_kafka_t *rk,
                                     int n_parts) {
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    mmr_fstore_opts_t fo = {.path = path, .must_exist = 1};
    CHECK_MSG(mmr_fstore_open(&fo, &fs, &err) == MMR_OK, "%s", err.msg);
    for (int p = 0; rk && p < n_parts; p++) {
        int64_t lo, hi, stored;
        CHECK(rd_kafka_query_watermark_offsets(rk, "mmrec.events", p, &lo, &hi, 10000) == 0);
        CHECK(mmr_fstore_get_offset(fs, "mmrec.events", p, &stored, &err) == MMR_OK);
        CHECK_MSG(stored == hi, "partition %d: stored offset %lld, end %lld", p, (long long)stored, (long long)hi);
    }
    if (rk) printf("ok stored offsets equal the end offsets of all %d partitions\n", n_parts);

    int64_t *u_total = calloc(t->n_users, sizeof *u_total);
    int64_t (*it)[3] = calloc(t->n_items, sizeof *it); /* impressions, clicks, positives */
    for (long i = 0; i < t->n; i++) {
        u_total[t->evs[i].user]++;
        it[t->evs[i].item][0] += t->evs[i].type == 1;
        it[t->evs[i].item][1] += t->evs[i].type == 2;
        it[t->evs[i].item][2] += truth_positive(&t->evs[i]);
    }
    /* rings: the last `ring` events of each user, newest first, by walking the log backwards */
    uint32_t *ring_n = calloc(t->n_users, sizeof *ring_n);
    uint32_t *rings = malloc(sizeof *rings * (size_t)t->n_users * ring); /* event indices */
    CHECK(u_total && it && ring_n && rings);
    for (long i = t->n - 1; i >= 0; i--) {
        uint32_t u = t->evs[i].user;
        if (ring_n[u] < ring) rings[(size_t)u * ring + ring_n[u]++] = (uint32_t)i;
    }
    char user[32], item[32];
    long users_checked = 0;
    for (uint32_t u = 0; u < t->n_users; u++) {
        snprintf(user, sizeof user, "u%u", u);
        mmr_user_t *rec = NULL;
        mmr_status_t st = mmr_fstore_get_user(fs, user, &rec, &err);
        if (u_total[u] == 0) { CHECK(st == MMR_ERR_NOT_FOUND); continue; }
        CHECK_MSG(st == MMR_OK, "%s: %s", user, err.msg);
        CHECK_MSG(rec->events_total == u_total[u], "%s: events_total %lld, truth %lld", user,
                  (long long)rec->events_total, (long long)u_total[u]);
        CHECK_MSG(rec->n == ring_n[u], "%s: ring holds %u, truth %u", user, rec->n, ring_n[u]);
        for (uint32_t j = 0; j < rec->n; j++) { /* store: oldest first; rings[]: newest first */
            const truth_ev_t *e = &t->evs[rings[(size_t)u * ring + (rec->n - 1 - j)]];
            snprintf(item, sizeof item, "i%u", e->item);
            CHECK_MSG(!strcmp(rec->recent[j].item_id, item) && rec->recent[j].type == e->type,
                      "%s ring[%u]: %s/%d, truth %s/%d", user, j, rec->recent[j].item_id,
                      rec->recent[j].type, item, e->type);
        }
        mmr_user_free(rec);
        users_checked++;
    }
    printf("ok %ld users: events_total and the %u-entry rings equal the ground truth\n", users_checked, ring);
    for (uint32_t i = 0; i < t->n_items; i++) {
        snprintf(item, sizeof item, "i%u", i);
        const char *id = item;
        mmr_item_stats_t s;
        uint8_t found;
        CHECK(mmr_fstore_get_item_stats(fs, 1, &id, &s, &found, &err) == MMR_OK);
        if (!found) { CHECK_MSG(!it[i][0] && !it[i][1] && !it[i][2], "%s: no stats in the store", item); continue; }
        CHECK_MSG(s.impressions == it[i][0] && s.clicks == it[i][1] && s.positives == it[i][2],
                  "%s: %lld/%lld/%lld, truth %lld/%lld/%lld", item, (long long)s.impressions,
                  (long long)s.clicks, (long long)s.positives, (long long)it[i][0], (long long)it[i][1],
                  (long long)it[i][2]);
    }
    printf("ok %u items: impressions, clicks and positives equal the ground truth\n", t->n_items);
    mmr_fstore_close(fs);
    free(rings); free(ring_n); free(it); free(u_total);
}

#endif
