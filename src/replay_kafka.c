/* replay_kafka.c — reads one Kafka topic range for `mmrec replay` (contract in replay_io.h,
 * mmr_replay_io_events_new_kafka; interface in replay_kafka.h): a plain consumer, the
 * range resolved to offsets once, every message decoded by streaming's decoder
 * (mmr_decode.h), the partitions merged by time. Not the bad-line counting (replay_io.c).
 *
 * Consumer: librdkafka's rd_kafka_assign needs a group.id, so one is set, but the group is
 * never joined (no subscribe), no offset is ever committed or stored (auto commit and
 * offset store off) and every start offset is explicit, so no group's offsets are read or
 * moved. auto.offset.reset=error: a start offset that retention has deleted meanwhile is
 * an error, not a silent jump. librdkafka's logs and errors go to mmr_log (kconf.h).
 *
 * Memory: the whole range is held as kev_t records (56 bytes) plus one pool for the ids,
 * because the merge by ts_ms needs every partition read first. */
#include "replay_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kconf.h"
#include "mmr_decode.h"
#include "mmr_log.h"
#include "mmr_time.h"

#define LOG_MOD "replay"
#define POLL_MS 100
#define GROUP_ID "mmrec-replay" /* required by rd_kafka_assign; never joined, never committed */

typedef struct kev {
    int64_t ts_ms, offset;
    int32_t partition;
    uint8_t type;
    float value;
    size_t user, item, req; /* offsets of the ids in the pool */
} kev_t;

struct mmr_replay_kafka {
    kev_t *ev;  /* [n], in (ts_ms, partition, offset) order once read */
    size_t n, cap, next;
    char *pool; /* NUL-terminated ids back to back; pool[0] = "" (no request id) */
    size_t len, pool_cap;
};

/* One partition: its range [start, end), fixed when reading starts, and the progress. */
typedef struct part {
    int64_t lo, hi;     /* watermarks when the reader started */
    int64_t start, end;
    int64_t pos;        /* next offset expected */
    int done;
} part_t;

typedef struct loader {
    const mmr_replay_io_kafka_t *src;
    int timeout_ms;
    int64_t start_ms;   /* wall clock at start: now_ms of messages without a timestamp */
    rd_kafka_t *rk;
    part_t *part;       /* [n_part], indexed by partition id (Kafka numbers them 0..n-1) */
    int n_part;
    mmr_replay_kafka_msg_fn on_msg;
    void *opaque;
    mmr_replay_kafka_t *k;
} loader_t;

static mmr_status_t oom(mmr_err_t *err) { return mmr_err_set(err, MMR_ERR_NOMEM, "replay: out of memory reading Kafka"); }

static mmr_status_t check_src(const mmr_replay_io_kafka_t *s, mmr_err_t *err) {
    if (!s || !s->brokers || !*s->brokers || !s->topic || !*s->topic)
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: Kafka needs brokers and a topic");
    if (s->format != MMR_INGEST_FORMAT_PROTOBUF && s->format != MMR_INGEST_FORMAT_JSON)
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: unknown Kafka message format %d", (int)s->format);
    if ((s->from_ms != MMR_REPLAY_KAFKA_NO_BOUND && s->from_ms < 0) ||
        (s->to_ms != MMR_REPLAY_KAFKA_NO_BOUND && s->to_ms < 0))
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: Kafka time bounds must be >= 0 ms");
    if (s->from_ms != MMR_REPLAY_KAFKA_NO_BOUND && s->to_ms != MMR_REPLAY_KAFKA_NO_BOUND && s->from_ms >= s->to_ms)
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: from_ms %lld must be before to_ms %lld (the range is [from, to))",
                           (long long)s->from_ms, (long long)s->to_ms);
    if (s->timeout_ms < 0) return mmr_err_set(err, MMR_ERR_INVALID, "replay: Kafka timeout_ms is negative");
    return MMR_OK;
}

static mmr_status_t consumer_new(loader_t *l, mmr_err_t *err) {
    static const char *const props[][2] = {
        {"group.id", GROUP_ID},           {"enable.auto.commit", "false"}, {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"}, {"auto.offset.reset", "error"},  {"client.id", "mmrec-replay"},
    };
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    mmr_status_t st = mmr_kconf_set(c, "bootstrap.servers", l->src->brokers, err);
    for (size_t i = 0; st == MMR_OK && i < sizeof props / sizeof props[0]; i++)
        st = mmr_kconf_set(c, props[i][0], props[i][1], err);
    if (st != MMR_OK) {
        rd_kafka_conf_destroy(c);
        return st;
    }
    mmr_kconf_callbacks(c);
    char errstr[512];
    if (!(l->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr))) { /* c is ours again */
        rd_kafka_conf_destroy(c);
        return mmr_err_set(err, MMR_ERR_KAFKA, "kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(l->rk); /* error callbacks are served by consumer_poll */
    return MMR_OK;
}

/* The topic's partitions into l->part. */
static mmr_status_t list_partitions(loader_t *l, mmr_err_t *err) {
    const mmr_replay_io_kafka_t *s = l->src;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(l->rk, s->topic, NULL);
    if (!rkt) return mmr_err_set(err, MMR_ERR_KAFKA, "kafka topic %s: %s", s->topic, rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(l->rk, 0, rkt, &md, l->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    mmr_status_t st = MMR_OK;
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        return mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s: cannot reach the broker within %d ms (%s)", s->brokers,
                           l->timeout_ms, rd_kafka_err2str(e));
    if (e) return mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s: metadata of %s: %s", s->brokers, s->topic, rd_kafka_err2str(e));
    const struct rd_kafka_metadata_topic *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
    if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || (!t->err && t->partition_cnt == 0))
        st = mmr_err_set(err, MMR_ERR_NOT_FOUND, "kafka %s: topic %s does not exist", s->brokers, s->topic);
    else if (t->err)
        st = mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s: topic %s: %s", s->brokers, s->topic, rd_kafka_err2str(t->err));
    else if (!(l->part = calloc((size_t)t->partition_cnt, sizeof *l->part)))
        st = oom(err);
    else {
        l->n_part = t->partition_cnt;
        for (int i = 0; st == MMR_OK && i < t->partition_cnt; i++)
            if (t->partitions[i].id < 0 || t->partitions[i].id >= t->partition_cnt)
                st = mmr_err_set(err, MMR_ERR_KAFKA, "kafka topic %s: partition id %d out of 0..%d", s->topic,
                                 t->partitions[i].id, t->partition_cnt - 1);
    }
    rd_kafka_metadata_destroy(md);
    return st;
}

/* Sets every partition's start (is_end 0) or end (is_end 1) to the first offset whose
 * timestamp is ≥ ms, or its high watermark when there is none; kept within [lo, hi]. */
static mmr_status_t offsets_at(loader_t *l, int64_t ms, int is_end, mmr_err_t *err) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(l->n_part);
    for (int p = 0; p < l->n_part; p++) rd_kafka_topic_partition_list_add(list, l->src->topic, p)->offset = ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(l->rk, list, l->timeout_ms);
    mmr_status_t st = MMR_OK;
    if (e) st = mmr_err_set(err, MMR_ERR_KAFKA, "kafka topic %s: offsets for time %lld: %s", l->src->topic, (long long)ms,
                            rd_kafka_err2str(e));
    for (int i = 0; st == MMR_OK && i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        part_t *p = &l->part[tp->partition];
        if (tp->err) {
            st = mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s/%d: offset for time %lld: %s", l->src->topic, tp->partition,
                             (long long)ms, rd_kafka_err2str(tp->err));
            break;
        }
        int64_t off = tp->offset < 0 ? p->hi : tp->offset; /* -1: no message at or after ms */
        off = off < p->lo ? p->lo : off > p->hi ? p->hi : off;
        *(is_end ? &p->end : &p->start) = off;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

/* Watermarks, then the time bounds: each partition's [start, end). Returns the message
 * count the range holds at most (compaction and transaction markers leave gaps). */
static mmr_status_t resolve_range(loader_t *l, int64_t *n_max, mmr_err_t *err) {
    const mmr_replay_io_kafka_t *s = l->src;
    for (int i = 0; i < l->n_part; i++) {
        part_t *p = &l->part[i];
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(l->rk, s->topic, i, &p->lo, &p->hi, l->timeout_ms);
        if (e) return mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s/%d: watermarks: %s", s->topic, i, rd_kafka_err2str(e));
        p->start = p->lo;
        p->end = p->hi;
    }
    mmr_status_t st = MMR_OK;
    if (s->from_ms != MMR_REPLAY_KAFKA_NO_BOUND) st = offsets_at(l, s->from_ms, 0, err);
    if (st == MMR_OK && s->to_ms != MMR_REPLAY_KAFKA_NO_BOUND) st = offsets_at(l, s->to_ms, 1, err);
    *n_max = 0;
    for (int i = 0; st == MMR_OK && i < l->n_part; i++) {
        part_t *p = &l->part[i];
        if (p->end < p->start) p->end = p->start; /* producer timestamps out of order */
        p->pos = p->start;
        p->done = p->start == p->end;
        *n_max += p->end - p->start;
        mmr_log(MMR_LOG_DEBUG, LOG_MOD, "kafka %s/%d: watermarks [%lld, %lld), reading [%lld, %lld)", s->topic, i,
                (long long)p->lo, (long long)p->hi, (long long)p->start, (long long)p->end);
    }
    return st;
}

/* Appends s (with its NUL) to the pool; returns its offset, or 0 when out of memory. */
static size_t pool_add(mmr_replay_kafka_t *k, const char *s) {
    size_t n = strlen(s) + 1;
    if (k->len + n > k->pool_cap) {
        size_t cap = k->pool_cap ? k->pool_cap : 65536;
        while (cap < k->len + n) cap *= 2;
        char *p = realloc(k->pool, cap);
        if (!p) return 0;
        k->pool = p;
        k->pool_cap = cap;
    }
    memcpy(k->pool + k->len, s, n);
    k->len += n;
    return k->len - n;
}

static mmr_status_t add_event(mmr_replay_kafka_t *k, const mmr_ingest_decoded_t *d, int32_t partition, int64_t offset,
                              mmr_err_t *err) {
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4096;
        kev_t *ev = realloc(k->ev, cap * sizeof *ev);
        if (!ev) return oom(err);
        k->ev = ev;
        k->cap = cap;
    }
    kev_t *e = &k->ev[k->n];
    *e = (kev_t){.ts_ms = d->ev.ts_ms, .offset = offset, .partition = partition, .type = (uint8_t)d->ev.type,
                 .value = d->ev.value};
    if (!(e->user = pool_add(k, d->user_id)) || !(e->item = pool_add(k, d->item_id)) ||
        (d->request_id[0] && !(e->req = pool_add(k, d->request_id))))
        return oom(err);
    k->n++;
    return MMR_OK;
}

/* Marks a partition read to its end and pauses it: no fetching past the end. */
static void part_finish(loader_t *l, int32_t id, int *pending) {
    l->part[id].done = 1;
    (*pending)--;
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, l->src->topic, id);
    rd_kafka_pause_partitions(l->rk, one);
    rd_kafka_topic_partition_list_destroy(one);
}

/* One message: an end-of-partition marker, an error, or an event to decode and keep. */
static mmr_status_t on_message(loader_t *l, const rd_kafka_message_t *m, mmr_ingest_decoded_t *d, int *pending,
                               mmr_err_t *err) {
    const char *topic = l->src->topic;
    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return mmr_err_set(err, MMR_ERR_KAFKA, "kafka %s/%d@%lld: %s", topic, m->partition, (long long)m->offset,
                           rd_kafka_message_errstr(m));
    if (m->partition < 0 || m->partition >= l->n_part || l->part[m->partition].done) return MMR_OK;
    part_t *p = &l->part[m->partition];
    if (!m->err && m->offset < p->end) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        int64_t now = tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0 ? ts : l->start_ms;
        mmr_ingest_reason_t why;
        mmr_err_t derr = {0};
        int good = mmr_ingest_decode_event(l->src->format, m->payload, m->len, now, MMR_REPLAY_KAFKA_MAX_FUTURE_MS, d,
                                           &why, &derr) == MMR_OK;
        if (good) {
            mmr_status_t st = add_event(l->k, d, m->partition, m->offset, err);
            if (st != MMR_OK) return st;
        }
        char where[300] = "";
        if (!good) snprintf(where, sizeof where, "%s/%d", topic, m->partition);
        int rc = l->on_msg(l->opaque, where, m->offset, good ? NULL : derr.msg, err);
        if (rc < 0) return (mmr_status_t)-rc;
        p->pos = m->offset + 1;
    }
    /* EOF: the high watermark now, which is ≥ end; an offset past end: a gap (compaction) */
    if (m->err || p->pos >= p->end || m->offset >= p->end) part_finish(l, m->partition, pending);
    return MMR_OK;
}

/* Assigns every unfinished partition at its start and reads until each reaches its end. */
static mmr_status_t consume(loader_t *l, mmr_err_t *err) {
    rd_kafka_topic_partition_list_t *a = rd_kafka_topic_partition_list_new(l->n_part);
    int pending = 0;
    for (int i = 0; i < l->n_part; i++)
        if (!l->part[i].done) {
            rd_kafka_topic_partition_list_add(a, l->src->topic, i)->offset = l->part[i].start;
            pending++;
        }
    rd_kafka_resp_err_t e = pending ? rd_kafka_assign(l->rk, a) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(a);
    if (e) return mmr_err_set(err, MMR_ERR_KAFKA, "kafka topic %s: assign: %s", l->src->topic, rd_kafka_err2str(e));
    mmr_ingest_decoded_t *d = malloc(sizeof *d); /* ~1 KiB, reused for every message */
    if (!d) return oom(err);
    mmr_status_t st = MMR_OK;
    int64_t last = mmr_mono_ns();
    while (st == MMR_OK && pending > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(l->rk, POLL_MS);
        if (!m) {
            if (mmr_mono_ns() - last <= (int64_t)l->timeout_ms * 1000000) continue;
            int i = 0;
            while (l->part[i].done) i++;
            st = mmr_err_set(err, MMR_ERR_TIMEOUT,
                             "kafka %s/%d: no message for %d ms at offset %lld of [%lld, %lld) (%d partitions unfinished)",
                             l->src->topic, i, l->timeout_ms, (long long)l->part[i].pos, (long long)l->part[i].start,
                             (long long)l->part[i].end, pending);
            break;
        }
        last = mmr_mono_ns();
        st = on_message(l, m, d, &pending, err);
        rd_kafka_message_destroy(m);
    }
    free(d);
    return st;
}

static int cmp_kev(const void *a, const void *b) {
    const kev_t *x = a, *y = b;
    if (x->ts_ms != y->ts_ms) return x->ts_ms < y->ts_ms ? -1 : 1;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

mmr_status_t mmr_replay_kafka_read(const mmr_replay_io_kafka_t *src, mmr_replay_kafka_msg_fn on_msg, void *opaque,
                                   mmr_replay_kafka_t **out, mmr_err_t *err) {
    mmr_status_t st = check_src(src, err);
    if (st != MMR_OK) return st;
    loader_t l = {.src = src, .timeout_ms = src->timeout_ms ? src->timeout_ms : MMR_REPLAY_KAFKA_TIMEOUT_MS,
                  .start_ms = mmr_now_ms(), .on_msg = on_msg, .opaque = opaque};
    if ((l.k = calloc(1, sizeof *l.k))) pool_add(l.k, ""); /* offset 0 = "", so pool_add's 0 means failure */
    if (!l.k || !l.k->pool) st = oom(err);
    int64_t t0 = mmr_mono_ns(), n_max = 0;
    if (st == MMR_OK) st = consumer_new(&l, err);
    if (st == MMR_OK) st = list_partitions(&l, err);
    if (st == MMR_OK) st = resolve_range(&l, &n_max, err);
    if (st == MMR_OK) {
        mmr_log(MMR_LOG_INFO, LOG_MOD, "kafka %s: reading up to %lld messages from %d partitions", src->topic,
                (long long)n_max, l.n_part);
        st = consume(&l, err);
    }
    if (l.rk) {
        rd_kafka_consumer_close(l.rk); /* no group joined, nothing to commit: only unassigns */
        rd_kafka_destroy(l.rk);
    }
    free(l.part);
    if (st != MMR_OK) {
        mmr_replay_kafka_free(l.k);
        return st;
    }
    qsort(l.k->ev, l.k->n, sizeof *l.k->ev, cmp_kev);
    mmr_log(MMR_LOG_INFO, LOG_MOD, "kafka %s: read %zu events in %.1f s", src->topic, l.k->n,
            (double)(mmr_mono_ns() - t0) / 1e9);
    *out = l.k;
    return MMR_OK;
}

int mmr_replay_kafka_next(mmr_replay_kafka_t *k, mmr_replay_event_t *ev) {
    if (k->next == k->n) return 0;
    const kev_t *e = &k->ev[k->next++];
    ev->ev = (mmr_event_t){.user_id = k->pool + e->user, .item_id = k->pool + e->item,
                           .type = (mmr_event_type_t)e->type, .value = e->value, .ts_ms = e->ts_ms};
    ev->request_id = k->pool + e->req;
    ev->line = (long)k->next;
    return 1;
}

void mmr_replay_kafka_free(mmr_replay_kafka_t *k) {
    if (!k) return;
    free(k->ev);
    free(k->pool);
    free(k);
}
