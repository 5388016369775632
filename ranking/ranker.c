/* ranker.c — Rank: validation, model selection (registry, experiments, pins), feature
 * reads, scoring by the model or the statistics baseline, response and impression (see
 * mmr_ranker.h). Model math lives in model.c, versions in registry.c. */
#include "mmr_ranker.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_hash.h"
#include "mmr_log.h"
#include "mmr_time.h"
#include "mmrec/v1/ranking.pb-c.h"

struct mmr_ranker {
    mmr_fstore_t *fs;
    uint32_t max_candidates, default_top_k;
    mmr_ranker_impression_fn impression_fn;
    void *impression_opaque;
    mmr_registry_t *registry;
    atomic_uint_fast64_t requests, invalid, unknown, cold, model_scored;
    atomic_uint_fast64_t request_seq;
};

typedef struct scored {
    const char *item_id;
    float score;
    const float *gate; /* (3) modality weights, or NULL */
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
    r->registry = conf->registry;
    *out = r;
    return MMR_OK;
}

void mmr_ranker_free(mmr_ranker_t *r) { free(r); }

void mmr_ranker_get_stats(mmr_ranker_t *r, mmr_ranker_stats_t *out) {
    out->requests = atomic_load(&r->requests);
    out->invalid = atomic_load(&r->invalid);
    out->unknown_candidates = atomic_load(&r->unknown);
    out->cold_start = atomic_load(&r->cold);
    out->model_scored = atomic_load(&r->model_scored);
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

/* Best first; a NaN score (a broken model) ranks last, so the order stays total. */
static int scored_cmp(const void *a, const void *b) {
    const scored_t *x = a, *y = b;
    int xn = isnan(x->score), yn = isnan(y->score);
    if (xn || yn) return xn - yn ? xn - yn : strcmp(x->item_id, y->item_id);
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return strcmp(x->item_id, y->item_id);
}

/* Heap order for best_first: the root is the worst of the kept k. */
static void sift_down(scored_t *h, size_t k, size_t i) {
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < k && scored_cmp(&h[l], &h[w]) > 0) w = l;
        if (r < k && scored_cmp(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        scored_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Moves the k best of sc[0..m) to sc[0..k), best first (scored_cmp order); returns k.
 * O(m log k): a Rank asks for a top-k of many more candidates. */
static size_t best_first(scored_t *sc, size_t m, size_t k) {
    if (k < m) {
        for (size_t i = k / 2; i-- > 0;) sift_down(sc, k, i);
        for (size_t i = k; i < m; i++)
            if (k && scored_cmp(&sc[i], &sc[0]) < 0) {
                sc[0] = sc[i];
                sift_down(sc, k, 0);
            }
    }
    qsort(sc, k, sizeof *sc, scored_cmp);
    return k;
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
    if (q->retrieve_k > r->max_candidates) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "retrieve_k %u, the limit is %u", q->retrieve_k,
             r->max_candidates);
        return 0;
    }
    if (q->model_version && *q->experiment) {
        fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "give either model_version or experiment, not both");
        return 0;
    }
    if (q->retrieve_k) return 1;
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

/* The request's candidates without repeats (a repeated id is scored once), in request
 * order, into *ids; returns their count, or 0 when out of memory. A hash set of indexes
 * (open addressing, load <= 1/2) keeps this linear in the candidate count. */
static size_t unique_candidates(const Mmrec__V1__RankRequest *q, mmr_arena_t *a, const char ***ids) {
    size_t n = q->n_candidates, cap = 16;
    while (cap < 2 * n) cap <<= 1;
    const char **v = mmr_arena_alloc(a, (n ? n : 1) * sizeof *v);
    size_t *set = mmr_arena_alloc(a, cap * sizeof *set); /* index + 1; 0 = empty */
    if (!v || !set) return 0;
    memset(set, 0, cap * sizeof *set);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = q->candidates[i];
        size_t k = (size_t)mmr_hash64(id, strlen(id)) & (cap - 1);
        while (set[k] && strcmp(v[set[k] - 1], id) != 0) k = (k + 1) & (cap - 1);
        if (set[k]) continue;
        v[u] = id;
        set[k] = ++u;
    }
    *ids = v;
    return u;
}

static int seen_by(const mmr_user_t *user, const char *item_id) {
    for (uint32_t j = 0; user && j < user->n; j++)
        if (strcmp(user->recent[j].item_id, item_id) == 0) return 1;
    return 0;
}

/* The statistics baseline over the request's candidates into sc; returns the count
 * scored, or -1 with reply filled. */
static long score_baseline(mmr_ranker_t *r, const Mmrec__V1__RankRequest *q, const mmr_user_t *user,
                           const mmr_rpc_request_t *req, int64_t now_ms, scored_t **out,
                           uint32_t *unknown, mmr_rpc_reply_t *reply) {
    const char **ids = NULL;
    size_t n = unique_candidates(q, req->arena, &ids);
    mmr_item_summary_t *sum = mmr_arena_alloc(req->arena, n * sizeof *sum);
    scored_t *sc = mmr_arena_alloc(req->arena, n * sizeof *sc);
    if (!n || !sum || !sc) {
        fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    /* A candidate is known when the catalog has it or events have touched it; deleted
     * catalog items are never served. Flags and counters come from the hot-item cache. */
    mmr_err_t err = {0};
    if (mmr_fstore_get_item_summaries(r->fs, n, ids, sum, &err) != MMR_OK) {
        fail(r, reply, MMR_RPC_INTERNAL, "feature store: %s", err.msg);
        return -1;
    }
    if (mmr_mono_ns() > req->deadline_ns) {
        fail(r, reply, MMR_RPC_DEADLINE_EXCEEDED, "deadline expired while reading features");
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (sum[i].in_catalog && sum[i].deleted) continue;
        if (!sum[i].has_stats && !sum[i].in_catalog) { (*unknown)++; continue; }
        float affinity = 0.0f;
        for (uint32_t j = 0; user && j < user->n; j++)
            if (strcmp(user->recent[j].item_id, ids[i]) == 0) affinity += interaction_weight(&user->recent[j]);
        if (q->exclude_seen && seen_by(user, ids[i])) continue;
        sc[m].item_id = ids[i];
        double pop = sum[i].has_stats ? mmr_fstore_popularity_at(r->fs, &sum[i].stats, now_ms) : 0.0;
        sc[m].score = affinity + 0.1f * (float)log1p(pop);
        m++;
    }
    *out = sc;
    return (long)m;
}

static int row_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Scores with model: candidates from the request or the index (retrieve_k), into sc;
 * returns the count scored, or -1 with reply filled. Ids in sc live in the arena. */
static long score_model(mmr_ranker_t *r, const Mmrec__V1__RankRequest *q, const mmr_user_t *user,
                        const mmr_model_t *model, const mmr_rpc_request_t *req, int64_t now_ms,
                        scored_t **out, uint32_t *unknown, mmr_rpc_reply_t *reply) {
    mmr_arena_t *a = req->arena;
    mmr_err_t err = {0};
    size_t D = (size_t)mmr_tower_get_config(mmr_model_tower(model))->d_out;
    float *uvec = mmr_arena_alloc(a, D * sizeof *uvec); /* (D) */
    if (!uvec) { fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory"); return -1; }
    if (mmr_model_encode_user(model, q->user_id, user, now_ms, uvec, &err) != MMR_OK) {
        fail(r, reply, MMR_RPC_INTERNAL, "encode user: %s", err.msg);
        return -1;
    }
    const char **ids = NULL;
    size_t n = 0;
    if (q->retrieve_k) {
        /* excluded rows: the user's recent items that the index holds, sorted */
        int64_t *ex = mmr_arena_alloc(a, (user && q->exclude_seen ? user->n : 0) * sizeof *ex + 1);
        int64_t *rows = mmr_arena_alloc(a, q->retrieve_k * sizeof *rows); /* (k) */
        float *dots = mmr_arena_alloc(a, q->retrieve_k * sizeof *dots);   /* (k) */
        ids = mmr_arena_alloc(a, q->retrieve_k * sizeof *ids);
        if (!ex || !rows || !dots || !ids) { fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory"); return -1; }
        size_t nex = 0;
        for (uint32_t j = 0; user && q->exclude_seen && j < user->n; j++) {
            int64_t row = mmr_model_find(model, user->recent[j].item_id);
            if (row >= 0) ex[nex++] = row;
        }
        qsort(ex, nex, sizeof *ex, row_cmp);
        mmr_model_retrieve(model, uvec, q->retrieve_k, ex, nex, rows, dots, &n);
        for (size_t i = 0; i < n; i++) ids[i] = mmr_arena_strdup(a, mmr_model_item_id(model, (size_t)rows[i]));
    } else {
        n = unique_candidates(q, a, &ids);
        if (!n) { fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory"); return -1; }
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!q->exclude_seen || !seen_by(user, ids[i])) ids[k++] = ids[i];
        n = k;
    }
    if (mmr_mono_ns() > req->deadline_ns) {
        fail(r, reply, MMR_RPC_DEADLINE_EXCEEDED, "deadline expired before scoring");
        return -1;
    }
    float *score = mmr_arena_alloc(a, n * sizeof *score + 1);          /* (n) */
    float *gate = q->explain ? mmr_arena_alloc(a, n * 3 * sizeof *gate + 1) : NULL; /* (n, 3) */
    uint8_t *status = mmr_arena_alloc(a, n + 1);                        /* (n) */
    scored_t *sc = mmr_arena_alloc(a, n * sizeof *sc + 1);
    if (!score || (q->explain && !gate) || !status || !sc) {
        fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    if (mmr_model_score(model, uvec, n, ids, now_ms, score, gate, status, &err) != MMR_OK) {
        fail(r, reply, MMR_RPC_INTERNAL, "score: %s", err.msg);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (status[i] == MMR_MODEL_UNKNOWN) (*unknown)++;
        if (status[i] != MMR_MODEL_SCORED) continue;
        sc[m++] = (scored_t){ids[i], score[i], gate ? gate + 3 * i : NULL};
    }
    atomic_fetch_add(&r->model_scored, 1);
    *out = sc;
    return (long)m;
}

void mmr_ranker_handle_rank(void *opaque, const mmr_rpc_request_t *req, mmr_rpc_reply_t *reply) {
    mmr_ranker_t *r = opaque;
    atomic_fetch_add(&r->requests, 1);
    Mmrec__V1__RankRequest *q = mmrec__v1__rank_request__unpack(NULL, req->len, req->data);
    if (!q) { fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "undecodable RankRequest"); return; }
    mmr_model_ref_t ref = {0};
    mmr_user_t *user = NULL;
    if (!validate(r, q, reply)) goto out;

    /* which model: the pinned version, the experiment arm's, or the serving one */
    mmr_err_t err = {0};
    mmr_registry_arm_t arm = {0};
    char arm_tag[2 * 64 + 2] = "";
    uint64_t want = q->model_version;
    if (*q->experiment) {
        if (!r->registry || mmr_registry_assign(r->registry, q->experiment, q->user_id, &arm, &err) != MMR_OK) {
            fail(r, reply, MMR_RPC_INVALID_ARGUMENT, "unknown experiment '%.64s'", q->experiment);
            goto out;
        }
        want = arm.version;
        snprintf(arm_tag, sizeof arm_tag, "%s/%s", arm.experiment, arm.arm);
    }
    if (r->registry && mmr_registry_acquire(r->registry, want, &ref, &err) != MMR_OK && want) {
        fail(r, reply, MMR_RPC_NOT_FOUND, "%s", err.msg);
        goto out;
    }
    if (!r->registry && want) {
        fail(r, reply, MMR_RPC_NOT_FOUND, "model version %llu: no model registry", (unsigned long long)want);
        goto out;
    }
    if (!ref.model && q->retrieve_k) {
        fail(r, reply, MMR_RPC_UNIMPLEMENTED, "retrieve_k needs a serving model");
        goto out;
    }

    mmr_status_t st = mmr_fstore_get_user(r->fs, q->user_id, &user, &err);
    if (st == MMR_ERR_NOT_FOUND) atomic_fetch_add(&r->cold, 1);
    else if (st != MMR_OK) { fail(r, reply, MMR_RPC_INTERNAL, "feature store: %s", err.msg); goto out; }

    int64_t now_ms = mmr_now_ms();
    uint32_t unknown = 0;
    scored_t *sc = NULL;
    long scored = ref.model ? score_model(r, q, user, ref.model, req, now_ms, &sc, &unknown, reply)
                            : score_baseline(r, q, user, req, now_ms, &sc, &unknown, reply);
    if (scored < 0) goto out;
    size_t m = (size_t)scored;
    atomic_fetch_add(&r->unknown, unknown);
    uint32_t top_k = q->top_k ? q->top_k : r->default_top_k;
    m = best_first(sc, m, top_k && m > top_k ? top_k : m);

    Mmrec__V1__RankResponse *resp = mmr_arena_alloc(req->arena, sizeof *resp);
    Mmrec__V1__ScoredItem **items = mmr_arena_alloc(req->arena, (m ? m : 1) * sizeof *items);
    Mmrec__V1__ScoredItem *pool = mmr_arena_alloc(req->arena, (m ? m : 1) * sizeof *pool);
    Mmrec__V1__ModalityWeights *mw = q->explain ? mmr_arena_alloc(req->arena, (m ? m : 1) * sizeof *mw) : NULL;
    if (!resp || !items || !pool || (q->explain && !mw)) {
        fail(r, reply, MMR_RPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    mmrec__v1__rank_response__init(resp);
    for (size_t i = 0; i < m; i++) {
        mmrec__v1__scored_item__init(&pool[i]);
        pool[i].item_id = mmr_arena_strdup(req->arena, sc[i].item_id);
        pool[i].score = sc[i].score;
        if (mw && sc[i].gate) {
            mmrec__v1__modality_weights__init(&mw[i]);
            mw[i].text = sc[i].gate[0];
            mw[i].image = sc[i].gate[1];
            mw[i].video = sc[i].gate[2];
            pool[i].modality_weights = &mw[i];
        }
        items[i] = &pool[i];
    }
    resp->n_items = m;
    resp->items = items;
    resp->unknown_candidates = unknown;
    resp->model_version = ref.model ? ref.version : 0;
    if (*q->request_id) {
        resp->request_id = mmr_arena_strdup(req->arena, q->request_id);
    } else {
        char rid[32];
        snprintf(rid, sizeof rid, "r%016llx-%llu", (unsigned long long)mmr_now_ms(),
                 (unsigned long long)atomic_fetch_add(&r->request_seq, 1));
        resp->request_id = mmr_arena_strdup(req->arena, rid);
    }
    if (*arm_tag && m) mmr_registry_count_impressions(r->registry, arm_tag, m);
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
            imp.experiment_arm = arm_tag;
            imp.ts_ms = now_ms;
            r->impression_fn(r->impression_opaque, &imp);
        }
    }
    reply->status = MMR_RPC_OK;
    reply->msg = &resp->base;
out:
    if (ref.model) mmr_registry_release(r->registry, &ref);
    mmr_user_free(user);
    mmrec__v1__rank_request__free_unpacked(q, NULL);
}
