/* ranker.c — Rank: validation, feature reads, statistics-baseline scoring (see mmr_ranker.h). */
#include "mmr_ranker.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_log.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"

struct mmr_ranker {
    mmr_fstore_t *fs;
    uint32_t max_candidates, default_top_k;
    mmr_ranker_impression_fn impression_fn;
    void *impression_opaque;
    atomic_uint_fast64_t requests, invalid, unknown, cold;
    atomic_uint_fast64_t request_seq;
};

typedef struct scored {
    const char *item_id;
    float score;
} scored_t;

mmr_status_t mmr_ranker_new(const mmr_ranker_conf_t *conf, mmr_fstore_t *fs, mmr_ranker_t **out,
                            mmr_err_t *err) {
    mmr_ranker_t *r = calloc(1, sizeof *r);
    if (!r) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    r->fs = fs;
    r->max_candidates = conf->max_candidates ? conf->max_candidates : 10000;
    r->default_top_k = conf->default_top_k;
    r->impression_fn = conf->impression_fn;
    r->impression_opaque = conf->impression_opaque;
    *out = r;
    return MMR_OK;
}

void mmr_ranker_free(mmr_ranker_t *r) { free(r); }

void mmr_ranker_get_stats(mmr_ranker_t *r, mmr_ranker_stats_t *out) {
    out->requests = atomic_load(&r->requests);
    out->invalid = atomic_load(&r->invalid);
    out->unknown_candidates = atomic_load(&r->unknown);
    out->cold_start = atomic_load(&r->cold);
}

static float interaction_weight(const mmr_interaction_t *it) {
    switch (it->type) {
    case MMR_EV_CLICK: return 1.0f;
    case MMR_EV_LIKE:
    case MMR_EV_SHARE: return 2.0f;
    case MMR_EV_PURCHASE: return 3.0f;
    case MMR_EV_WATCH: return fminf(it->value / 30.0f, 2.0f);
    case MMR_EV_RATING: return (it->value - 3.0f) / 2.0f;
    case MMR_EV_SKIP: return -1.0f;
    case MMR_EV_IMPRESSION: return -0.05f;
    default: return 0.0f;
    }
}

static int scored_cmp(const void *a, const void *b) {
    const scored_t *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return strcmp(x->item_id, y->item_id);
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void fail(mmr_ranker_t *r, mmr_rpc_reply_t *reply, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(mmr_ranker_t *r, mmr_rpc_reply_t *reply, int status, const char *fmt, ...) {
    if (status == MMR_RPC_INVALID_ARGUMENT) atomic_fetch_add(&r->invalid, 1);
    reply->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

/* Checks the request; on failure fills reply and returns 0. */
static int validate(mmr_ranker_t *r, const Mmrec__V1__RankRequest *q, mmr_rpc_reply_t *reply) {
    size_t ulen = strlen(q->user_id);
    if (ulen == 0) { fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "user_id is required"); return 0; }
    if (ulen > MMR_ID_MAX) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "user_id longer than %d bytes", MMR_ID_MAX);
        return 0;
    }
    if (q->n_candidates && q->retrieve_k) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "give either candidates or retrieve_k, not both");
        return 0;
    }
    if (q->retrieve_k) {
        fail(r, reply, MMR_RPC_UNIMPLEMENTED, "retrieve_k needs the item index, not built yet");
        return 0;
    }
    if (q->n_candidates == 0) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "no candidates given");
        return 0;
    }
    if (q->n_candidates > r->max_candidates) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "%zu candidates, the limit is %u",
             q->n_candidates, r->max_candidates);
        return 0;
    }
    for (size_t i = 0; i < q->n_candidates; i++) {
        size_t n = strlen(q->candidates[i]);
        if (n == 0 || n > MMR_ID_MAX) {
            fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "candidate %zu: item id empty or longer than %d bytes",
                 i, MMR_ID_MAX);
            return 0;
        }
    }
    return 1;
}

void mmr_ranker_handle_rank(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    mmr_ranker_t *r = opaque;
    atomic_fetch_add(&r->requests, 1);
    Mmrec__V1__RankRequest *q = mmrec__v1__rank_request__unpack(NULL, req->len, req->data);
    if (!q) { fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "undecodable RankRequest"); return; }
    if (!validate(r, q, reply)) goto out;

    /* Unique candidates, sorted: duplicates are scored once. ids are (n). */
    size_t n = q->n_candidates;
    const char **ids = mmr_arena_alloc(req->arena, n * sizeof *ids);
    mmr_item_stats_t *stats = mmr_arena_alloc(req->arena, n * sizeof *stats);
    uint8_t *found = mmr_arena_alloc(req->arena, n);
    uint8_t *in_catalog = mmr_arena_alloc(req->arena, n);
    mmr_item_t *items_rec = NULL;
    scored_t *sc = mmr_arena_alloc(req->arena, n * sizeof *sc);
    if (!ids || !stats || !found || !in_catalog || !sc) { fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory"); goto out; }
    for (size_t i = 0; i < n; i++) ids[i] = q->candidates[i];
    qsort(ids, n, sizeof *ids, str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(ids[u - 1], ids[i]) != 0) ids[u++] = ids[i];
    n = u;

    mmr_err_t err = {0};
    mmr_user_t *user = NULL;
    mmr_status_t st = mmr_fstore_get_user(r->fs, q->user_id, &user, &err);
    if (st == MMR_ERR_NOT_FOUND) atomic_fetch_add(&r->cold, 1);
    else if (st != MMR_OK) { fail(r, reply, MMR_RPC_INTERNAL, "feature store: %s", err.msg); goto out; }
    /* A candidate is known when the catalog has it or events have touched it; deleted
     * catalog items are never served. Cost: this reads each candidate's whole item record,
     * embeddings included, from RocksDB on every request (no hot-item cache yet). */
    if (mmr_fstore_get_item_stats(r->fs, n, ids, stats, found, &err) != MMR_OK ||
        mmr_fstore_get_items(r->fs, n, ids, &items_rec, in_catalog, &err) != MMR_OK) {
        fail(r, reply, MMR_RPC_INTERNAL, "feature store: %s", err.msg);
        goto out_user;
    }
    if (mmr_mono_ns() > req->deadline_ns) {
        fail(r, reply, MMR_RPC_DEADLINE_EXCEEDED, "deadline expired while reading features");
        goto out_user;
    }

    size_t m = 0;
    uint32_t unknown = 0;
    int64_t now_ms = mmr_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (in_catalog[i] && items_rec[i].deleted) continue;
        if (!found[i] && !in_catalog[i]) { unknown++; continue; }
        float affinity = 0.0f;
        int seen = 0;
        for (uint32_t j = 0; user && j < user->n; j++)
            if (strcmp(user->recent[j].item_id, ids[i]) == 0) {
                affinity += interaction_weight(&user->recent[j]);
                seen = 1;
            }
        if (seen && q->exclude_seen) continue;
        sc[m].item_id = ids[i];
        double pop = found[i] ? mmr_fstore_popularity_at(r->fs, &stats[i], now_ms) : 0.0;
        sc[m].score = affinity + 0.1f * (float)log1p(pop);
        m++;
    }
    atomic_fetch_add(&r->unknown, unknown);
    qsort(sc, m, sizeof *sc, scored_cmp);
    uint32_t top_k = q->top_k ? q->top_k : r->default_top_k;
    if (top_k && m > top_k) m = top_k;

    Mmrec__V1__RankResponse *resp = mmr_arena_alloc(req->arena, sizeof *resp);
    Mmrec__V1__ScoredItem **items = mmr_arena_alloc(req->arena, (m ? m : 1) * sizeof *items);
    Mmrec__V1__ScoredItem *pool = mmr_arena_alloc(req->arena, (m ? m : 1) * sizeof *pool);
    if (!resp || !items || !pool) { fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory"); goto out_user; }
    mmrec__v1__rank_response__init(resp);
    for (size_t i = 0; i < m; i++) {
        mmrec__v1__scored_item__init(&pool[i]);
        pool[i].item_id = mmr_arena_strdup(req->arena, sc[i].item_id);
        pool[i].score = sc[i].score;
        items[i] = &pool[i];
    }
    resp->n_items = m;
    resp->items = items;
    resp->unknown_candidates = unknown;
    if (*q->request_id) {
        resp->request_id = mmr_arena_strdup(req->arena, q->request_id);
    } else {
        char rid[32];
        snprintf(rid, sizeof rid, "r%016llx-%llu", (unsigned long long)mmr_now_ms(),
                 (unsigned long long)atomic_fetch_add(&r->request_seq, 1));
        resp->request_id = mmr_arena_strdup(req->arena, rid);
    }
    if (r->impression_fn && m) {
        char **shown = mmr_arena_alloc(req->arena, m * sizeof *shown);
        if (shown) {
            for (size_t i = 0; i < m; i++) shown[i] = pool[i].item_id;
            Mmrec__V1__Impression imp = MMREC__V1__IMPRESSION__INIT;
            imp.request_id = resp->request_id;
            imp.user_id = q->user_id;
            imp.item_ids = shown;
            imp.n_item_ids = m;
            imp.model_version = resp->model_version;
            imp.experiment_arm = q->experiment;
            imp.ts_ms = now_ms;
            r->impression_fn(r->impression_opaque, &imp);
        }
    }
    reply->status = MMR_RPC_OK;
    reply->msg = &resp->base;
out_user:
    mmr_fstore_items_free(items_rec);
    mmr_user_free(user);
out:
    mmrec__v1__rank_request__free_unpacked(q, NULL);
}
