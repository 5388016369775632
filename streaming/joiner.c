/* joiner.c — the impression/positive join (rules in mmr_joiner.h).
 *
 * Held entries live in a chained hash keyed by (request_id, item_id) and, in arrival order,
 * in a FIFO. An entry is an unsettled impression, an early positive (settles a later
 * impression) or a dead entry (settled: left in the FIFO, gone from the hash, freed when
 * the FIFO reaches it). Expiry pops the FIFO head while it is older than the window, so
 * entries that arrive out of ts order wait for the ones before them: decisions can come
 * late, never early. One allocation per entry holds the struct and its strings. */
#include "mmr_joiner.h"

#include <stdlib.h>
#include <string.h>

#include "mmr_hash.h"
#include "mmr_rand.h"

enum { E_IMPRESSION, E_EARLY_POSITIVE, E_DEAD };

typedef struct entry {
    struct entry *hnext, *qnext;
    uint64_t h;
    int64_t ts_ms;
    uint64_t model_version;
    int kind;
    const char *req, *item, *user, *arm; /* point into the same allocation */
} entry_t;

struct mmr_joiner {
    mmr_joiner_conf_t conf;
    mmr_joiner_emit_fn emit;
    void *opaque;
    entry_t **buckets; /* [nbuckets], chained */
    size_t nbuckets;
    entry_t *qhead, *qtail;
    size_t held;       /* entries in the FIFO, dead ones included: the memory bound */
    int64_t now_ms;    /* largest event time seen */
    char **res;        /* [conf.reservoir] distinct item ids (owned), first res_n filled */
    size_t res_n;
    uint64_t *seen;    /* [nseen] open-addressing set of mmr_hash64 | 1 of ids already added */
    size_t nseen, seen_n;
    uint64_t rng;
    mmr_joiner_stats_t st;
};

mmr_status_t mmr_joiner_new(const mmr_joiner_conf_t *conf, mmr_joiner_emit_fn emit, void *opaque,
                            mmr_joiner_t **out, mmr_err_t *err) {
    mmr_joiner_conf_t c = conf ? *conf : (mmr_joiner_conf_t){0};
    if (!c.window_ms) c.window_ms = 30000;
    if (!c.max_pending) c.max_pending = (size_t)1 << 20;
    if (!c.reservoir) c.reservoir = 65536;
    if (!emit || c.window_ms < 0 || c.neg_per_pos < 0 || c.neg_per_pos > 64)
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "joiner: emit is required, window_ms >= 0, neg_per_pos in [0, 64]");
    mmr_joiner_t *j = calloc(1, sizeof *j);
    if (!j) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    j->conf = c;
    j->emit = emit;
    j->opaque = opaque;
    j->nbuckets = 1024;
    while (j->nbuckets < c.max_pending && j->nbuckets < ((size_t)1 << 20)) j->nbuckets <<= 1;
    j->buckets = calloc(j->nbuckets, sizeof *j->buckets);
    j->res = calloc(c.reservoir, sizeof *j->res);
    for (j->nseen = 1024; j->nseen < 4 * c.reservoir; j->nseen <<= 1) {}
    j->seen = calloc(j->nseen, sizeof *j->seen);
    j->rng = c.seed;
    if (!j->buckets || !j->res || !j->seen) {
        mmr_joiner_free(j);
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    *out = j;
    return MMR_OK;
}

void mmr_joiner_free(mmr_joiner_t *j) {
    if (!j) return;
    for (entry_t *e = j->qhead, *next; e; e = next) {
        next = e->qnext;
        free(e);
    }
    for (size_t i = 0; i < j->res_n; i++) free(j->res[i]);
    free(j->res);
    free(j->seen);
    free(j->buckets);
    free(j);
}

void mmr_joiner_get_stats(const mmr_joiner_t *j, mmr_joiner_stats_t *out) { *out = j->st; }

static uint64_t key_hash(const char *req, const char *item) {
    return mmr_hash64(req, strlen(req)) ^ (mmr_hash64(item, strlen(item)) * 0x9E3779B97F4A7C15ull);
}

static entry_t **find_slot(mmr_joiner_t *j, uint64_t h, const char *req, const char *item) {
    entry_t **p = &j->buckets[h & (j->nbuckets - 1)];
    while (*p && !((*p)->h == h && strcmp((*p)->req, req) == 0 && strcmp((*p)->item, item) == 0))
        p = &(*p)->hnext;
    return p;
}

static void emit(mmr_joiner_t *j, const char *user, const char *item, int64_t ts, float label,
                 uint64_t version, const char *arm, int sampled) {
    mmr_joined_t out = {.user_id = user, .item_id = item, .ts_ms = ts, .label = label,
                        .model_version = version, .arm = arm ? arm : "", .sampled = sampled};
    if (label > 0.5f) j->st.positives++;
    else j->st.negatives++;
    if (sampled) j->st.sampled++;
    j->emit(j->opaque, &out);
}

/* Decides the FIFO head: an unsettled impression becomes a negative; frees it. */
static void pop_head(mmr_joiner_t *j) {
    entry_t *e = j->qhead;
    j->qhead = e->qnext;
    if (!j->qhead) j->qtail = NULL;
    j->held--;
    if (e->kind != E_DEAD) { /* unlink e itself: impressions without request_id share a key */
        entry_t **p = &j->buckets[e->h & (j->nbuckets - 1)];
        while (*p != e) p = &(*p)->hnext;
        *p = e->hnext;
        j->st.pending--;
    }
    if (e->kind == E_IMPRESSION)
        emit(j, e->user, e->item, e->ts_ms, 0.0f, e->model_version, e->arm, 0);
    free(e);
}

static void advance(mmr_joiner_t *j, int64_t ts_ms) {
    if (ts_ms > j->now_ms) j->now_ms = ts_ms;
    while (j->qhead && (j->qhead->kind == E_DEAD || j->qhead->ts_ms + j->conf.window_ms < j->now_ms))
        pop_head(j);
}

void mmr_joiner_flush(mmr_joiner_t *j) {
    while (j->qhead) pop_head(j);
}

/* Appends a held entry (strings copied). */
static mmr_status_t hold(mmr_joiner_t *j, int kind, uint64_t h, const char *req, const char *item,
                         const char *user, const char *arm, uint64_t version, int64_t ts,
                         mmr_err_t *err) {
    while (j->held >= j->conf.max_pending) {
        if (j->qhead->kind == E_IMPRESSION) j->st.forced++;
        pop_head(j);
    }
    size_t lr = strlen(req) + 1, li = strlen(item) + 1, lu = strlen(user) + 1, la = strlen(arm) + 1;
    entry_t *e = malloc(sizeof *e + lr + li + lu + la);
    if (!e) return mmr_err_set(err, MMR_ERR_NOMEM, "joiner: out of memory");
    char *s = (char *)(e + 1);
    e->req = memcpy(s, req, lr);
    e->item = memcpy(s + lr, item, li);
    e->user = memcpy(s + lr + li, user, lu);
    e->arm = memcpy(s + lr + li + lu, arm, la);
    e->h = h;
    e->ts_ms = ts;
    e->model_version = version;
    e->kind = kind;
    entry_t **slot = &j->buckets[h & (j->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    e->qnext = NULL;
    if (j->qtail) j->qtail->qnext = e;
    else j->qhead = e;
    j->qtail = e;
    j->held++;
    j->st.pending++;
    return MMR_OK;
}

/* Sampled negatives come from DISTINCT items, uniformly: drawing them in proportion to
 * how often items appear in the stream would match the positives' popularity, and the
 * ranking head would learn that popularity says nothing. Each id enters the reservoir the
 * first time it is seen (a set of hashes remembers which were added; it is forgotten when
 * three quarters full); once the reservoir is full a new id replaces a random one. */
static void reservoir_add(mmr_joiner_t *j, const char *item) {
    if (!j->conf.neg_per_pos) return;
    uint64_t h = mmr_hash64(item, strlen(item)) | 1, mask = j->nseen - 1;
    size_t i = (size_t)(h & mask);
    while (j->seen[i] && j->seen[i] != h) i = (i + 1) & mask;
    if (j->seen[i]) return;
    if (4 * (j->seen_n + 1) > 3 * j->nseen) {
        memset(j->seen, 0, j->nseen * sizeof *j->seen);
        j->seen_n = 0;
        for (i = (size_t)(h & mask); j->seen[i]; i = (i + 1) & mask) {}
    }
    char *copy = strdup(item);
    if (!copy) return; /* sampling is best effort: a missed id only narrows the pool */
    j->seen[i] = h;
    j->seen_n++;
    size_t slot = j->res_n < j->conf.reservoir ? j->res_n++
                                               : (size_t)(mmr_rand_next(&j->rng) % j->conf.reservoir);
    free(j->res[slot]); /* NULL for a new slot (calloc) */
    j->res[slot] = copy;
}

void mmr_joiner_add_item(mmr_joiner_t *j, const char *item_id) { reservoir_add(j, item_id); }

size_t mmr_joiner_pool_capacity(const mmr_joiner_t *j) { return j->conf.reservoir; }

static void sample_negatives(mmr_joiner_t *j, const mmr_event_t *ev) {
    for (int k = 0; k < j->conf.neg_per_pos && j->res_n > 1; k++) {
        const char *item = NULL;
        for (int tries = 0; tries < 8 && !item; tries++) { /* the positive itself is no negative */
            const char *c = j->res[mmr_rand_next(&j->rng) % j->res_n];
            if (strcmp(c, ev->item_id) != 0) item = c;
        }
        if (item) emit(j, ev->user_id, item, ev->ts_ms, 0.0f, 0, "", 1);
    }
}

mmr_status_t mmr_joiner_event(mmr_joiner_t *j, const mmr_event_t *ev, const char *request_id,
                              mmr_err_t *err) {
    const char *req = request_id ? request_id : "";
    advance(j, ev->ts_ms);
    reservoir_add(j, ev->item_id);
    if (ev->type == MMR_EV_IMPRESSION) {
        const char *item = ev->item_id;
        return mmr_joiner_impression(j, req, ev->user_id, &item, 1, 0, "", ev->ts_ms, err);
    }
    if (ev->type == MMR_EV_SKIP) {
        emit(j, ev->user_id, ev->item_id, ev->ts_ms, 0.0f, 0, "", 0);
        return MMR_OK;
    }
    if (!mmr_event_is_positive(ev)) return MMR_OK;
    uint64_t version = 0;
    const char *arm = "";
    mmr_status_t st = MMR_OK;
    if (*req) {
        uint64_t h = key_hash(req, ev->item_id);
        entry_t **slot = find_slot(j, h, req, ev->item_id);
        entry_t *e = *slot;
        if (e && e->kind == E_IMPRESSION) { /* settle it: no negative for this showing */
            *slot = e->hnext;
            e->kind = E_DEAD;
            j->st.pending--;
            j->st.settled++;
            version = e->model_version;
            arm = e->arm;
        } else if (!e) {
            st = hold(j, E_EARLY_POSITIVE, h, req, ev->item_id, ev->user_id, "", 0, ev->ts_ms, err);
        }
    }
    emit(j, ev->user_id, ev->item_id, ev->ts_ms, 1.0f, version, arm, 0);
    sample_negatives(j, ev);
    return st;
}

mmr_status_t mmr_joiner_impression(mmr_joiner_t *j, const char *request_id, const char *user_id,
                                   const char *const *item_ids, size_t n, uint64_t model_version,
                                   const char *arm, int64_t ts_ms, mmr_err_t *err) {
    const char *req = request_id ? request_id : "";
    advance(j, ts_ms);
    for (size_t i = 0; i < n; i++) {
        reservoir_add(j, item_ids[i]);
        if (!*req) { /* nothing can settle it: a negative after the window, like any other */
            mmr_status_t st = hold(j, E_IMPRESSION, key_hash("", item_ids[i]), "", item_ids[i],
                                   user_id, arm ? arm : "",
                                   model_version, ts_ms, err);
            if (st != MMR_OK) return st;
            continue;
        }
        uint64_t h = key_hash(req, item_ids[i]);
        entry_t **slot = find_slot(j, h, req, item_ids[i]);
        entry_t *e = *slot;
        if (e) { /* settled in advance, or the same showing logged twice */
            if (e->kind == E_EARLY_POSITIVE) {
                *slot = e->hnext;
                e->kind = E_DEAD;
                j->st.pending--;
                j->st.settled++;
            }
            continue;
        }
        mmr_status_t st = hold(j, E_IMPRESSION, h, req, item_ids[i], user_id, arm ? arm : "",
                               model_version, ts_ms, err);
        if (st != MMR_OK) return st;
    }
    return MMR_OK;
}
