/* replay.c — `mmrec replay` as a library (contract and protocols in mmr_replay.h): loads and
 * splits the log in memory, runs one task per model variant (its own temporary store,
 * joiner, example builder, trainer and models), scores every catalog item per query, and
 * writes the report. Not the argument parsing or the progress display (cli_replay.c).
 *
 * Memory: the events are held as interned ids, 32 bytes each (1M events ≈ 32 MB), plus one
 * store per running variant. Queries (one per evaluated user and window) hold their
 * targets, masks and impressions as item indices in one shared pool. */
#include "mmr_replay.h"

#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmr_exbuild.h"
#include "mmr_fstore.h"
#include "mmr_hash.h"
#include "mmr_log.h"
#include "mmr_model.h"
#include "mmr_time.h"
#include "replay_io.h"

#define LOG_MOD "replay"
#define STORE_RING 256     /* interactions kept per user: impressions share the ring */
#define CATALOG_BATCH 1024 /* items per store batch when loading the catalog */
#define HEAD_BLOCK 256     /* items per ranking-head call */
#define PROGRESS_EVERY 2048
#define MS_PER_HOUR 3.6e6
#define NONE UINT32_MAX

enum { ROLE_TRAIN = 0, ROLE_VALID, ROLE_TEST };
/* untrained: the fused towers at their initial weights, fed the same store (history and
 * popularity) but never trained: what learning adds. */
enum { V_FUSED = 0, V_POPULARITY, V_UNTRAINED, V_NO_TEXT, V_NO_IMAGE, V_NO_VIDEO };
static const char *const variant_name[MMR_REPLAY_MODELS_MAX] = {"fused", "popularity", "untrained",
                                                               "no_text", "no_image", "no_video"};

/* --- interned ids ---------------------------------------------------------------------- */

typedef struct strtab {
    char *pool;         /* NUL-terminated strings back to back */
    size_t len, cap;
    size_t *off;        /* [n] offset of string i */
    size_t n, ncap;
    uint32_t *slot;     /* [nslot] open addressing: index + 1, 0 = free */
    size_t nslot;
} strtab_t;

static const char *strtab_str(const strtab_t *t, uint32_t i) { return t->pool + t->off[i]; }

/* Index of s (added when add is 1), NONE when absent or out of memory (*oom set). */
static uint32_t strtab_find(strtab_t *t, const char *s, int add, int *oom) {
    size_t n = strlen(s);
    if (add && 2 * (t->n + 1) > t->nslot) {
        size_t ns = t->nslot ? 2 * t->nslot : 4096;
        uint32_t *slot = calloc(ns, sizeof *slot);
        if (!slot) { *oom = 1; return NONE; }
        for (size_t i = 0; i < t->n; i++) {
            const char *o = strtab_str(t, (uint32_t)i);
            size_t h = mmr_hash64(o, strlen(o)) & (ns - 1);
            while (slot[h]) h = (h + 1) & (ns - 1);
            slot[h] = (uint32_t)i + 1;
        }
        free(t->slot);
        t->slot = slot;
        t->nslot = ns;
    }
    if (!t->nslot) return NONE;
    size_t h = mmr_hash64(s, n) & (t->nslot - 1);
    for (; t->slot[h]; h = (h + 1) & (t->nslot - 1))
        if (!strcmp(strtab_str(t, t->slot[h] - 1), s)) return t->slot[h] - 1;
    if (!add) return NONE;
    if (t->n == t->ncap) {
        size_t nc = t->ncap ? 2 * t->ncap : 4096;
        size_t *off = realloc(t->off, nc * sizeof *off);
        if (!off) { *oom = 1; return NONE; }
        t->off = off;
        t->ncap = nc;
    }
    if (t->len + n + 1 > t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 65536;
        while (nc < t->len + n + 1) nc *= 2;
        char *p = realloc(t->pool, nc);
        if (!p) { *oom = 1; return NONE; }
        t->pool = p;
        t->cap = nc;
    }
    memcpy(t->pool + t->len, s, n + 1);
    t->off[t->n] = t->len;
    t->len += n + 1;
    t->slot[h] = (uint32_t)t->n + 1;
    return (uint32_t)t->n++;
}

static void strtab_free(strtab_t *t) {
    free(t->pool);
    free(t->off);
    free(t->slot);
}

/* --- the loaded log -------------------------------------------------------------------- */

typedef struct rev {
    int64_t ts_ms;
    uint32_t user, item;
    size_t req;         /* offset in reqs, 0 = no request id */
    float value;
    uint8_t type, role;
    uint8_t positive;
    long line;          /* file order, the tie-break of equal timestamps */
} rev_t;

/* One ranking question: a user at a time, its targets, masked items and (prequential)
 * impressions, as item indices into ctx.pool. */
typedef struct query {
    uint32_t user;
    int64_t now_ms;
    size_t targets, n_targets;
    size_t masked, n_masked;
    size_t imp, n_imp;   /* impression items; imp_label in ctx.labels at the same offsets */
} query_t;

typedef struct ctx {
    const mmr_replay_conf_t *conf;
    mmr_tower_config_t tower;  /* with the catalog's widths */
    strtab_t users, items, reqs_tab;
    char *reqs;                /* request id pool; reqs[0] = "" */
    size_t reqs_len, reqs_cap;
    rev_t *ev;                 /* [n_ev] in (ts, line) order */
    size_t n_ev;
    int64_t *created_ms;       /* [items.n] catalog creation time (0 = none) */
    uint8_t *in_catalog;       /* [items.n] 1 = a non-deleted catalog item (a candidate) */
    uint32_t *cand;            /* [n_cand] item index of candidate c, ascending */
    uint32_t *cand_of;         /* [items.n] candidate index or NONE */
    size_t n_cand;
    uint32_t *train, *valid;   /* LOO: event indices in order */
    size_t n_train, n_valid;
    size_t *win;               /* prequential: [windows + 1] event index bounds */
    int n_win;
    query_t *q;                /* [n_q], window by window */
    size_t n_q, q_cap;
    size_t *win_q;             /* [n_win + 1] query bounds per window (LOO: one "window") */
    uint32_t *pool;            /* item indices of queries */
    uint8_t *labels;           /* [pool_len] impression labels, same offsets as pool */
    size_t pool_len, pool_cap;
    int64_t eval_now_ms;
    int n_variants;
    int variant[MMR_REPLAY_MODELS_MAX];
    /* results, one slot per variant (tasks write only their own) */
    mmr_eval_acc_t *acc[MMR_REPLAY_MODELS_MAX];
    mmr_eval_acc_t **wacc;     /* [n_win][n_variants] prequential */
    double gauc_sum[MMR_REPLAY_MODELS_MAX], gauc_w[MMR_REPLAY_MODELS_MAX]; /* LOO GAUC */
    long gauc_users[MMR_REPLAY_MODELS_MAX];
    uint64_t examples[MMR_REPLAY_MODELS_MAX];
    float loss[MMR_REPLAY_MODELS_MAX];
    double learn_s[MMR_REPLAY_MODELS_MAX], eval_s[MMR_REPLAY_MODELS_MAX];
    mmr_status_t st[MMR_REPLAY_MODELS_MAX];
    mmr_err_t err[MMR_REPLAY_MODELS_MAX];
    /* tasks and progress */
    atomic_int next_task;
    pthread_mutex_t mu;
    uint64_t done, total, last_report;
} ctx_t;

static void progress(ctx_t *c, uint64_t units) {
    if (!c->conf->progress) return;
    pthread_mutex_lock(&c->mu);
    c->done += units;
    if (c->done - c->last_report >= PROGRESS_EVERY || c->done >= c->total) {
        c->last_report = c->done;
        c->conf->progress(c->conf->opaque, "replay", c->done, c->total);
    }
    pthread_mutex_unlock(&c->mu);
}

static mmr_status_t oom(mmr_err_t *err) { return mmr_err_set(err, MMR_ERR_NOMEM, "replay: out of memory"); }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

static double secs_since(int64_t t0) { return (double)(mmr_mono_ns() - t0) / 1e9; }

static void quiet_bad(void *opaque, const char *file, long line, const char *reason) {}

/* Catalog: interns the ids, records creation times, deletions and the widths. */
static mmr_status_t load_items(ctx_t *c, long *bad, mmr_err_t *err) {
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = c->conf->max_bad_fraction;
    o.dims[0] = (uint32_t)c->conf->trainer.tower.d_text;
    o.dims[1] = (uint32_t)c->conf->trainer.tower.d_image;
    o.dims[2] = (uint32_t)c->conf->trainer.tower.d_video;
    mmr_replay_io_items_t *r = NULL;
    mmr_status_t st = mmr_replay_io_items_new(c->conf->items_path, &o, &r, err);
    if (st != MMR_OK) return st;
    int widths[MMR_MODALITY_COUNT] = {o.dims[0], o.dims[1], o.dims[2]}, rc, nomem = 0;
    size_t cap_cr = 0, cap_cat = 0;
    mmr_replay_item_t it;
    while ((rc = mmr_replay_io_items_next(r, &it, err)) == 1) {
        uint32_t i = strtab_find(&c->items, it.item.item_id, 1, &nomem);
        if (nomem || !grow((void **)&c->created_ms, &cap_cr, c->items.n, sizeof(int64_t)) ||
            !grow((void **)&c->in_catalog, &cap_cat, c->items.n, 1)) {
            rc = -MMR_ERR_NOMEM;
            break;
        }
        c->created_ms[i] = it.item.created_ms;
        c->in_catalog[i] = !it.item.deleted;
        for (int m = 0; m < MMR_MODALITY_COUNT; m++)
            if (!widths[m] && it.item.emb_dim[m]) widths[m] = (int)it.item.emb_dim[m];
    }
    mmr_replay_io_stats_t s;
    mmr_replay_io_items_stats(r, &s);
    *bad += s.bad;
    mmr_replay_io_items_free(r);
    if (rc == -MMR_ERR_NOMEM) return oom(err);
    if (rc < 0) return (mmr_status_t)-rc;
    /* a modality no item has: width 1, always absent */
    c->tower.d_text = widths[0] ? widths[0] : 1;
    c->tower.d_image = widths[1] ? widths[1] : 1;
    c->tower.d_video = widths[2] ? widths[2] : 1;
    return MMR_OK;
}

static int cmp_ev(const void *a, const void *b) {
    const rev_t *x = a, *y = b;
    if (x->ts_ms != y->ts_ms) return x->ts_ms < y->ts_ms ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static mmr_status_t load_events(ctx_t *c, long *bad, mmr_err_t *err) {
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = c->conf->max_bad_fraction;
    const mmr_replay_io_kafka_t *k = c->conf->events_kafka;
    mmr_replay_io_events_t *r = NULL;
    mmr_status_t st = k ? mmr_replay_io_events_new_kafka(k, &o, &r, err)
                        : mmr_replay_io_events_new(c->conf->events_path, &o, &r, err);
    if (st != MMR_OK) return st;
    size_t cap = 0;
    int rc = 0, nomem = 0;
    if (grow((void **)&c->reqs, &c->reqs_cap, 1, 1)) c->reqs[c->reqs_len++] = '\0';
    else nomem = 1;
    mmr_replay_event_t e;
    while (!nomem && (rc = mmr_replay_io_events_next(r, &e, err)) == 1) {
        size_t rl = strlen(e.request_id);
        if (!grow((void **)&c->ev, &cap, c->n_ev + 1, sizeof(rev_t)) ||
            !grow((void **)&c->reqs, &c->reqs_cap, c->reqs_len + rl + 1, 1)) {
            nomem = 1;
            break;
        }
        rev_t *v = &c->ev[c->n_ev++];
        *v = (rev_t){.ts_ms = e.ev.ts_ms, .value = e.ev.value, .type = (uint8_t)e.ev.type, .line = e.line,
                     .positive = (uint8_t)mmr_event_is_positive(&e.ev)};
        v->user = strtab_find(&c->users, e.ev.user_id, 1, &nomem);
        v->item = strtab_find(&c->items, e.ev.item_id, 1, &nomem);
        if (rl) {
            v->req = c->reqs_len;
            memcpy(c->reqs + c->reqs_len, e.request_id, rl + 1);
            c->reqs_len += rl + 1;
        }
    }
    mmr_replay_io_stats_t s;
    mmr_replay_io_events_stats(r, &s);
    *bad += s.bad;
    mmr_replay_io_events_free(r);
    if (nomem) return oom(err);
    if (rc < 0) return (mmr_status_t)-rc;
    if (!c->n_ev)
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: %s%s holds no event", k ? "the range of topic " : "",
                           k ? k->topic : c->conf->events_path);
    if (!s.sorted) qsort(c->ev, c->n_ev, sizeof *c->ev, cmp_ev);
    /* items seen only in events are no candidates */
    uint8_t *cat = realloc(c->in_catalog, c->items.n ? c->items.n : 1);
    int64_t *cr = realloc(c->created_ms, (c->items.n ? c->items.n : 1) * sizeof *cr);
    if (cat) c->in_catalog = cat;
    if (cr) c->created_ms = cr;
    if (!cat || !cr) return oom(err);
    return MMR_OK;
}

static mmr_status_t build_candidates(ctx_t *c, size_t n_catalog_ids, mmr_err_t *err) {
    for (size_t i = n_catalog_ids; i < c->items.n; i++) {
        c->in_catalog[i] = 0;
        c->created_ms[i] = 0;
    }
    c->cand = malloc((c->items.n + 1) * sizeof *c->cand);
    c->cand_of = malloc((c->items.n + 1) * sizeof *c->cand_of);
    if (!c->cand || !c->cand_of) return oom(err);
    for (size_t i = 0; i < c->items.n; i++) {
        c->cand_of[i] = c->in_catalog[i] ? (uint32_t)c->n_cand : NONE;
        if (c->in_catalog[i]) c->cand[c->n_cand++] = (uint32_t)i;
    }
    if (!c->n_cand) return mmr_err_set(err, MMR_ERR_INVALID, "replay: %s holds no servable item", c->conf->items_path);
    return MMR_OK;
}

/* --- splits and queries ---------------------------------------------------------------- */

/* A (user << 32 | item) pair and the event index of its first positive. */
typedef struct pair {
    uint64_t key;
    uint32_t first; /* event index of the pair's first positive */
} pair_t;

static int cmp_pair(const void *a, const void *b) {
    const pair_t *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* Distinct positive (user, item) pairs with their first positive event, sorted by key. */
static mmr_status_t positive_pairs(const ctx_t *c, int skip_test, pair_t **out, size_t *n_out, mmr_err_t *err) {
    size_t n = 0;
    pair_t *p = malloc((c->n_ev + 1) * sizeof *p);
    if (!p) return oom(err);
    for (size_t e = 0; e < c->n_ev; e++)
        if (c->ev[e].positive && !(skip_test && c->ev[e].role == ROLE_TEST))
            p[n++] = (pair_t){(uint64_t)c->ev[e].user << 32 | c->ev[e].item, (uint32_t)e};
    qsort(p, n, sizeof *p, cmp_pair);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || p[w - 1].key != p[i].key) p[w++] = p[i];
    *out = p;
    *n_out = w;
    return MMR_OK;
}

/* First pair of user u in p[n] (sorted). */
static size_t pairs_lower(const pair_t *p, size_t n, uint64_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int pool_push(ctx_t *c, uint32_t item, uint8_t label) {
    size_t cap = c->pool_cap;
    if (!grow((void **)&c->pool, &cap, c->pool_len + 1, sizeof *c->pool)) return 0;
    size_t lcap = c->pool_cap;
    if (!grow((void **)&c->labels, &lcap, c->pool_len + 1, 1)) return 0;
    c->pool_cap = cap;
    c->pool[c->pool_len] = item;
    c->labels[c->pool_len++] = label;
    return 1;
}

static query_t *query_add(ctx_t *c, uint32_t user, int64_t now_ms) {
    if (!grow((void **)&c->q, &c->q_cap, c->n_q + 1, sizeof *c->q)) return NULL;
    query_t *q = &c->q[c->n_q++];
    *q = (query_t){.user = user, .now_ms = now_ms};
    return q;
}

/* Masks of user u: its pairs whose first positive is before event index `before`. */
static int add_masks(ctx_t *c, query_t *q, const pair_t *p, size_t n, uint32_t before) {
    q->masked = c->pool_len;
    for (size_t i = pairs_lower(p, n, (uint64_t)q->user << 32); i < n && p[i].key >> 32 == q->user; i++)
        if (p[i].first < before) {
            if (!pool_push(c, (uint32_t)p[i].key, 0)) return 0;
            q->n_masked++;
        }
    return 1;
}

typedef struct ustate {
    uint32_t last, prev;  /* last two new positive items, NONE = none */
    uint32_t last_e;      /* event index of last's first positive */
    uint32_t n_new;       /* distinct positive items */
} ustate_t;

static mmr_status_t split_loo(ctx_t *c, mmr_err_t *err) {
    ustate_t *us = malloc((c->users.n + 1) * sizeof *us);
    pair_t *p = NULL;
    size_t np = 0;
    if (!us) return oom(err);
    for (size_t u = 0; u < c->users.n; u++) us[u] = (ustate_t){NONE, NONE, 0, 0};
    mmr_status_t st = positive_pairs(c, 0, &p, &np, err);
    if (st != MMR_OK) { free(us); return st; }
    /* pairs sorted by key: replay them in first-event order per user via the event list */
    for (size_t e = 0; e < c->n_ev; e++) {
        const rev_t *v = &c->ev[e];
        if (!v->positive) continue;
        size_t i = pairs_lower(p, np, (uint64_t)v->user << 32 | v->item);
        if (p[i].first != e) continue; /* not the pair's first positive */
        ustate_t *s = &us[v->user];
        s->prev = s->last;
        s->last = v->item;
        s->last_e = (uint32_t)e;
        s->n_new++;
    }
    free(p);
    c->train = malloc((c->n_ev + 1) * sizeof *c->train);
    c->valid = malloc((c->n_ev + 1) * sizeof *c->valid);
    if (!c->train || !c->valid) { free(us); return oom(err); }
    for (size_t e = 0; e < c->n_ev; e++) {
        rev_t *v = &c->ev[e];
        const ustate_t *s = &us[v->user];
        v->role = s->n_new < 3 ? ROLE_TRAIN : v->item == s->last ? ROLE_TEST : v->item == s->prev ? ROLE_VALID : ROLE_TRAIN;
        if (v->role == ROLE_TRAIN) c->train[c->n_train++] = (uint32_t)e;
        else if (v->role == ROLE_VALID) c->valid[c->n_valid++] = (uint32_t)e;
    }
    /* queries: test users in user order; masks = all their non-test positive items */
    st = positive_pairs(c, 1, &p, &np, err);
    for (size_t u = 0; st == MMR_OK && u < c->users.n; u++) {
        if (us[u].n_new < 3) continue;
        query_t *q = query_add(c, (uint32_t)u, c->ev[us[u].last_e].ts_ms);
        if (!q) { st = oom(err); break; }
        q->targets = c->pool_len;
        q->n_targets = 1;
        if (!pool_push(c, us[u].last, 0) || !add_masks(c, q, p, np, UINT32_MAX)) st = oom(err);
    }
    free(p);
    free(us);
    c->n_win = 1;
    c->win_q = malloc(2 * sizeof *c->win_q);
    if (st == MMR_OK && !c->win_q) st = oom(err);
    if (st == MMR_OK) { c->win_q[0] = 0; c->win_q[1] = c->n_q; }
    c->eval_now_ms = c->ev[c->n_ev - 1].ts_ms;
    return st;
}

static int cmp_user_then_index(const void *a, const void *b, void *evs) {
    const rev_t *ev = evs;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (ev[x].user != ev[y].user) return ev[x].user < ev[y].user ? -1 : 1;
    return (x > y) - (x < y);
}

static mmr_status_t split_prequential(ctx_t *c, mmr_err_t *err) {
    int W = c->conf->windows;
    if ((size_t)W > c->n_ev) W = (int)c->n_ev;
    c->n_win = W;
    c->win = malloc((size_t)(W + 1) * sizeof *c->win);
    c->win_q = malloc((size_t)(W + 1) * sizeof *c->win_q);
    uint32_t *idx = malloc((c->n_ev + 1) * sizeof *idx);
    pair_t *p = NULL;
    size_t np = 0;
    mmr_status_t st = c->win && c->win_q && idx ? positive_pairs(c, 0, &p, &np, err) : oom(err);
    for (int w = 0; w <= W; w++) if (c->win) c->win[w] = c->n_ev * (size_t)w / (size_t)W;
    for (int w = 0; st == MMR_OK && w < W; w++) {
        c->win_q[w] = c->n_q;
        size_t lo = c->win[w], hi = c->win[w + 1], n = hi - lo;
        for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)(lo + i);
        qsort_r(idx, n, sizeof *idx, cmp_user_then_index, c->ev);
        for (size_t a = 0, b; st == MMR_OK && a < n; a = b) {
            uint32_t u = c->ev[idx[a]].user;
            for (b = a; b < n && c->ev[idx[b]].user == u; b++) {}
            query_t *q = query_add(c, u, c->ev[lo].ts_ms);
            if (!q) { st = oom(err); break; }
            q->targets = c->pool_len;
            for (size_t k = a; k < b; k++) {
                const rev_t *v = &c->ev[idx[k]];
                if (!v->positive) continue;
                size_t i = pairs_lower(p, np, (uint64_t)u << 32 | v->item);
                if (p[i].first != idx[k]) continue; /* not new to the user */
                if (!pool_push(c, v->item, 0)) { st = oom(err); break; }
                q->n_targets++;
            }
            q->imp = c->pool_len;
            for (size_t k = a; st == MMR_OK && k < b; k++) {
                const rev_t *v = &c->ev[idx[k]];
                if (v->type != MMR_EV_IMPRESSION) continue;
                uint8_t label = 0;
                for (size_t k2 = a; k2 < b && !label; k2++)
                    label = c->ev[idx[k2]].positive && c->ev[idx[k2]].item == v->item;
                if (!pool_push(c, v->item, label)) { st = oom(err); break; }
                q->n_imp++;
            }
            if (st == MMR_OK && !add_masks(c, q, p, np, (uint32_t)lo)) st = oom(err);
            if (st == MMR_OK && !q->n_targets && !q->n_imp) { c->n_q--; c->pool_len = q->targets; }
        }
    }
    if (c->win_q) c->win_q[W] = c->n_q;
    c->n_train = c->n_ev;
    free(idx);
    free(p);
    return st;
}

/* --- one variant: store, trainer, models ----------------------------------------------- */

typedef struct pipe {
    ctx_t *c;
    int k;                  /* variant slot */
    int drop;               /* modality left out, -1 none */
    char dir[4096];
    mmr_fstore_t *fs;
    mmr_trainer_t *tr;
    mmr_exbuild_t *xb;
    mmr_joiner_t *jn;
    uint64_t example_errors;
    double *pop_count;      /* popularity variant: [items.n] positives so far */
} pipe_t;

static void on_joined(void *opaque, const mmr_joined_t *j) {
    pipe_t *p = opaque;
    mmr_example_t ex;
    mmr_err_t err = {0};
    mmr_status_t st = mmr_exbuild_make(p->xb, j, &ex, &err);
    if (st == MMR_OK) st = mmr_trainer_add(p->tr, &ex, &err);
    if (st == MMR_OK) return;
    uint64_t n = ++p->example_errors;
    if ((n & (n - 1)) == 0) /* 1, 2, 4, 8...: visible without flooding the log */
        mmr_log(MMR_LOG_WARN, LOG_MOD, "%s: example %s/%s skipped (%llu so far): %s", variant_name[p->k],
                j->user_id, j->item_id, (unsigned long long)n, err.msg);
}

static mmr_event_t event_of(const ctx_t *c, const rev_t *v) {
    return (mmr_event_t){.user_id = strtab_str(&c->users, v->user), .item_id = strtab_str(&c->items, v->item),
                         .type = (mmr_event_type_t)v->type, .value = v->value, .ts_ms = v->ts_ms};
}

static mmr_status_t pipe_catalog(pipe_t *p, mmr_err_t *err) {
    const ctx_t *c = p->c;
    mmr_replay_io_opts_t o = mmr_replay_io_opts_default();
    o.max_bad_fraction = 1.0; /* already checked and reported by load_items */
    o.on_bad = quiet_bad;
    mmr_replay_io_items_t *r = NULL;
    mmr_status_t st = mmr_replay_io_items_new(c->conf->items_path, &o, &r, err);
    mmr_fstore_batch_t *b = NULL;
    mmr_replay_item_t it;
    int rc = 0;
    size_t in_batch = 0;
    while (st == MMR_OK && (rc = mmr_replay_io_items_next(r, &it, err)) == 1) {
        if (p->drop >= 0) {
            it.item.emb_dim[p->drop] = 0;
            it.item.emb[p->drop] = NULL;
        }
        if (!b && !(b = mmr_fstore_batch_new(p->fs))) { st = oom(err); break; }
        st = mmr_fstore_batch_put_item(b, &it.item, err);
        if (st == MMR_OK && ++in_batch == CATALOG_BATCH) {
            st = mmr_fstore_batch_commit(b, err);
            mmr_fstore_batch_free(b);
            b = NULL;
            in_batch = 0;
        }
    }
    if (st == MMR_OK && rc < 0) st = (mmr_status_t)-rc;
    if (st == MMR_OK && b) st = mmr_fstore_batch_commit(b, err);
    mmr_fstore_batch_free(b);
    mmr_replay_io_items_free(r);
    return st;
}

static mmr_status_t pipe_new(ctx_t *c, int k, pipe_t *p, mmr_err_t *err) {
    *p = (pipe_t){.c = c, .k = k, .drop = c->variant[k] >= V_NO_TEXT ? c->variant[k] - V_NO_TEXT : -1};
    if (c->variant[k] == V_POPULARITY) {
        p->pop_count = calloc(c->items.n + 1, sizeof *p->pop_count);
        return p->pop_count ? MMR_OK : oom(err);
    }
    const char *tmp = c->conf->tmp_dir ? c->conf->tmp_dir : getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/mmrec-replay-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", variant_name[c->variant[k]]);
    if (!mkdtemp(p->dir)) {
        p->dir[0] = '\0';
        return mmr_err_set(err, MMR_ERR_IO, "replay: mkdtemp under %s: %s", tmp && *tmp ? tmp : "/tmp", strerror(errno));
    }
    mmr_fstore_opts_t fo = {.path = p->dir, .user_ring = STORE_RING};
    mmr_trainer_conf_t tc = c->conf->trainer;
    tc.tower = c->tower;
    tc.seed = c->conf->seed;
    mmr_status_t st = mmr_fstore_open(&fo, &p->fs, err);
    if (st == MMR_OK) st = pipe_catalog(p, err);
    if (st == MMR_OK) st = mmr_trainer_new(&tc, NULL, &p->tr, err);
    if (st == MMR_OK) st = mmr_exbuild_new(p->fs, &c->tower, 0, &p->xb, err);
    return st;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path) == 0 ? 0 : -1;
}

/* Removes the temporary store's folder tree (no links are followed). */
static void remove_tree(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        mmr_log(MMR_LOG_WARN, LOG_MOD, "could not remove %s: %s", dir, strerror(errno));
}

static void pipe_free(pipe_t *p) {
    mmr_joiner_free(p->jn);
    mmr_exbuild_free(p->xb);
    mmr_trainer_free(p->tr);
    mmr_fstore_close(p->fs);
    free(p->pop_count);
    if (p->dir[0]) {
        if (p->c->conf->keep_store) mmr_log(MMR_LOG_INFO, LOG_MOD, "%s: store kept at %s", variant_name[p->c->variant[p->k]], p->dir);
        else remove_tree(p->dir);
    }
}

/* Events ev_idx[n] (in order) into the store (write) and/or the learner (learn): per chunk,
 * commit first, then join → example → train (the within-chunk look-ahead of mmr_replay.h). */
static mmr_status_t pipe_learn(pipe_t *p, const uint32_t *ev_idx, size_t n, int write, int learn, mmr_err_t *err) {
    ctx_t *c = p->c;
    if (p->pop_count) {
        for (size_t i = 0; write && i < n; i++)
            if (c->ev[ev_idx[i]].positive) p->pop_count[c->ev[ev_idx[i]].item] += 1;
        progress(c, n);
        return MMR_OK;
    }
    mmr_joiner_conf_t jc = c->conf->join;
    jc.seed = c->conf->seed;
    mmr_status_t st = MMR_OK;
    if (learn && !p->jn) {
        st = mmr_joiner_new(&jc, on_joined, p, &p->jn, err);
        /* Negatives are sampled from the whole catalog, as LOO ranks against all of it. */
        for (size_t i = 0; st == MMR_OK && i < c->n_cand; i++)
            mmr_joiner_add_item(p->jn, strtab_str(&c->items, c->cand[i]));
    }
    for (size_t lo = 0; st == MMR_OK && lo < n; lo += c->conf->chunk) {
        size_t hi = lo + c->conf->chunk < n ? lo + c->conf->chunk : n;
        if (write) {
            mmr_fstore_batch_t *b = mmr_fstore_batch_new(p->fs);
            if (!b) return oom(err);
            for (size_t i = lo; i < hi && st == MMR_OK; i++) {
                mmr_event_t ev = event_of(c, &c->ev[ev_idx[i]]);
                int rc = mmr_fstore_batch_add_event(b, &ev, err);
                if (rc < 0) st = (mmr_status_t)-rc;
            }
            if (st == MMR_OK) st = mmr_fstore_batch_commit(b, err);
            mmr_fstore_batch_free(b);
        }
        for (size_t i = lo; learn && i < hi && st == MMR_OK; i++) {
            const rev_t *v = &c->ev[ev_idx[i]];
            mmr_event_t ev = event_of(c, v);
            st = mmr_joiner_event(p->jn, &ev, c->reqs + v->req, err);
        }
        /* mmrecd publishes every trainer.publish_interval_ms, and each publish makes its
         * trainer encode history items with the new weights: without this, every user would
         * be trained against the history vectors of the initial weights. */
        if (learn && st == MMR_OK) st = mmr_trainer_refresh(p->tr, err);
        progress(c, hi - lo);
    }
    return st;
}

/* Ends a pass: decides the held impressions (a new pass restarts event time). */
static void pipe_end_pass(pipe_t *p) {
    if (!p->jn) return;
    mmr_joiner_flush(p->jn);
    mmr_joiner_free(p->jn);
    p->jn = NULL;
}

/* A scorer: what a variant knows at one evaluation time. */
typedef struct scorer {
    pipe_t *p;
    mmr_model_t *m;          /* NULL for popularity */
    int D;
    uint32_t *row_of;        /* [n_cand] model row of candidate c (NONE: not indexed) */
    float *vec;              /* (n_cand, D) item vectors in candidate order */
    float *pop, *rec;        /* (n_cand) head features at now */
    float *uvec;             /* (D) */
} scorer_t;

static void scorer_free(scorer_t *s) {
    mmr_model_free(s->m);
    free(s->row_of);
    free(s->vec);
    free(s->pop);
    free(s->rec);
    free(s->uvec);
}

static mmr_status_t scorer_new(pipe_t *p, int64_t now_ms, scorer_t *s, mmr_err_t *err) {
    ctx_t *c = p->c;
    size_t n = c->n_cand;
    *s = (scorer_t){.p = p};
    if (p->pop_count) return MMR_OK;
    mmr_tower_t *t = NULL;
    mmr_status_t st = mmr_trainer_snapshot(p->tr, &t, err);
    mmr_model_opts_t mo = mmr_model_opts_default();
    mo.ann = MMR_MODEL_ANN_OFF; /* every item is scored: no retrieval index needed */
    if (st == MMR_OK) st = mmr_model_new_opts(t, p->fs, NULL, &mo, &s->m, err);
    if (st != MMR_OK) return st;
    size_t D = (size_t)(s->D = mmr_tower_get_config(mmr_model_tower(s->m))->d_out);
    s->row_of = malloc(n * sizeof *s->row_of);
    s->vec = calloc(n * D, sizeof *s->vec);
    s->pop = malloc(n * sizeof *s->pop);
    s->rec = malloc(n * sizeof *s->rec);
    s->uvec = malloc(D * sizeof *s->uvec);
    const char **ids = malloc(n * sizeof *ids);
    mmr_item_stats_t *stats = malloc(n * sizeof *stats);
    uint8_t *found = malloc(n);
    if (!s->row_of || !s->vec || !s->pop || !s->rec || !s->uvec || !ids || !stats || !found) {
        st = oom(err);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        ids[k] = strtab_str(&c->items, c->cand[k]);
        int64_t r = mmr_model_find(s->m, ids[k]);
        s->row_of[k] = r < 0 ? NONE : (uint32_t)r;
        if (r >= 0) memcpy(s->vec + k * D, mmr_model_item_vec(s->m, (size_t)r), D * sizeof(float));
    }
    /* one batched read of every candidate's stats; popularity and recency at now_ms */
    st = mmr_fstore_get_item_stats(p->fs, n, ids, stats, found, err);
    for (size_t k = 0; st == MMR_OK && k < n; k++) {
        s->pop[k] = found[k] ? (float)mmr_fstore_popularity_at(p->fs, &stats[k], now_ms) : 0.0f;
        int64_t cr = c->created_ms[c->cand[k]];
        s->rec[k] = (float)log1p(now_ms > cr ? (double)(now_ms - cr) / MS_PER_HOUR : 0.0);
    }
out:
    free(ids);
    free(stats);
    free(found);
    return st;
}

/* scores (n_cand) of every candidate for user u at now_ms. */
static mmr_status_t scorer_score(scorer_t *s, uint32_t u, int64_t now_ms, float *scores, mmr_err_t *err) {
    ctx_t *c = s->p->c;
    size_t n = c->n_cand, D = (size_t)s->D;
    if (!s->m) {
        for (size_t k = 0; k < n; k++) scores[k] = (float)s->p->pop_count[c->cand[k]];
        return MMR_OK;
    }
    const char *uid = strtab_str(&c->users, u);
    mmr_user_t *rec = NULL;
    mmr_status_t st = mmr_fstore_get_user(s->p->fs, uid, &rec, err);
    if (st == MMR_ERR_NOT_FOUND) st = MMR_OK;
    if (st == MMR_OK) st = mmr_model_encode_user(s->m, uid, rec, now_ms, s->uvec, err);
    mmr_user_free(rec);
    if (st != MMR_OK) return st;
    for (size_t lo = 0; lo < n; lo += HEAD_BLOCK) {
        int nb = (int)(n - lo < HEAD_BLOCK ? n - lo : HEAD_BLOCK);
        mmr_tower_head_forward(mmr_model_tower(s->m), nb, s->uvec, s->vec + lo * D, s->pop + lo, s->rec + lo,
                               scores + lo);
    }
    for (size_t k = 0; k < n; k++)
        if (s->row_of[k] == NONE) scores[k] = -INFINITY;
    return MMR_OK;
}

/* The best kmax unmasked candidates, best first (ties: lower index first), into top. */
static size_t top_k(const float *scores, const uint8_t *masked, size_t n, size_t kmax, uint32_t *top) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (masked[i] || (m == kmax && scores[i] <= scores[top[m - 1]])) continue;
        size_t j = m < kmax ? m++ : m - 1;
        while (j > 0 && scores[top[j - 1]] < scores[i]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (uint32_t)i;
    }
    return m;
}

typedef struct evalbuf {
    float *scores;     /* (n_cand) */
    uint8_t *masked;   /* (n_cand) */
    uint32_t *top;     /* (kmax) */
    size_t *tgt;       /* (n_cand) target candidates */
    long *ranks;       /* (n_cand) */
    float *pos, *neg;  /* (n_cand) impression scores by label */
} evalbuf_t;

/* Evaluates queries [q0, q1) with s into acc (and the LOO GAUC sums of slot k). */
static mmr_status_t eval_queries(scorer_t *s, evalbuf_t *b, size_t q0, size_t q1, mmr_eval_acc_t *acc, mmr_err_t *err) {
    ctx_t *c = s->p->c;
    int k = s->p->k;
    size_t n = c->n_cand, kmax = (size_t)c->conf->ks[c->conf->n_ks - 1];
    for (size_t qi = q0; qi < q1; qi++) {
        const query_t *q = &c->q[qi];
        mmr_status_t st = scorer_score(s, q->user, q->now_ms, b->scores, err);
        if (st != MMR_OK) return st;
        for (size_t i = 0; i < q->n_masked; i++) {
            uint32_t cd = c->cand_of[c->pool[q->masked + i]];
            if (cd != NONE) b->masked[cd] = 1;
        }
        if (q->n_targets) {
            size_t nt = 0;
            for (size_t i = 0; i < q->n_targets; i++) {
                uint32_t cd = c->cand_of[c->pool[q->targets + i]];
                if (cd != NONE) b->tgt[nt++] = cd;
            }
            mmr_eval_ranks_of(b->scores, b->masked, n, b->tgt, nt, b->ranks);
            for (size_t i = nt; i < q->n_targets; i++) b->ranks[i] = -1; /* not in the catalog */
            mmr_eval_acc_add_ranks(acc, b->ranks, q->n_targets);
            size_t m = top_k(b->scores, b->masked, n, kmax, b->top);
            if ((st = mmr_eval_acc_add_topk(acc, b->top, m, err)) != MMR_OK) return st;
        }
        if (c->conf->protocol == MMR_REPLAY_LOO && q->n_targets == 1 && c->cand_of[c->pool[q->targets]] != NONE) {
            /* one target: AUC is a count (the accumulator's sort would cost O(n log n)) */
            float t = b->scores[b->tgt[0]];
            double below = 0, nn = 0;
            for (size_t i = 0; i < n; i++) {
                if (b->masked[i] || i == b->tgt[0]) continue;
                nn += 1;
                below += b->scores[i] < t ? 1.0 : b->scores[i] == t ? 0.5 : 0.0;
            }
            if (nn > 0) {
                c->gauc_sum[k] += below / nn * (nn + 1);
                c->gauc_w[k] += nn + 1;
                c->gauc_users[k]++;
            }
        }
        if (q->n_imp) {
            size_t np = 0, nn = 0;
            for (size_t i = 0; i < q->n_imp; i++) {
                uint32_t cd = c->cand_of[c->pool[q->imp + i]];
                if (cd == NONE) continue;
                if (c->labels[q->imp + i]) b->pos[np++] = b->scores[cd];
                else b->neg[nn++] = b->scores[cd];
            }
            if ((st = mmr_eval_acc_add_auc(acc, b->pos, np, b->neg, nn, err)) != MMR_OK) return st;
        }
        for (size_t i = 0; i < q->n_masked; i++) {
            uint32_t cd = c->cand_of[c->pool[q->masked + i]];
            if (cd != NONE) b->masked[cd] = 0;
        }
        progress(c, 1);
    }
    return MMR_OK;
}

/* One variant, start to end. */
static mmr_status_t run_variant(ctx_t *c, int k, mmr_err_t *err) {
    pipe_t p;
    evalbuf_t b = {0};
    size_t n = c->n_cand, imp_max = 0;
    for (size_t i = 0; i < c->n_q; i++) if (c->q[i].n_imp > imp_max) imp_max = c->q[i].n_imp;
    mmr_status_t st = pipe_new(c, k, &p, err);
    b.scores = malloc(n * sizeof *b.scores);
    b.masked = calloc(n, 1);
    b.top = malloc((size_t)c->conf->ks[c->conf->n_ks - 1] * sizeof *b.top);
    b.tgt = malloc(n * sizeof *b.tgt);
    b.ranks = malloc((n + 1) * sizeof *b.ranks);
    b.pos = malloc((imp_max + 1) * sizeof *b.pos);
    b.neg = malloc((imp_max + 1) * sizeof *b.neg);
    if (st == MMR_OK && (!b.scores || !b.masked || !b.top || !b.tgt || !b.ranks || !b.pos || !b.neg)) st = oom(err);
    for (int w = 0; st == MMR_OK && w < c->n_win; w++) {
        int64_t t0 = mmr_mono_ns();
        if (c->conf->protocol == MMR_REPLAY_LOO) {
            for (int pass = 0; st == MMR_OK && pass < c->conf->passes; pass++) {
                st = pipe_learn(&p, c->train, c->n_train, pass == 0, c->variant[k] != V_UNTRAINED, err);
                pipe_end_pass(&p);
            }
            if (st == MMR_OK) st = pipe_learn(&p, c->valid, c->n_valid, 1, 0, err);
        }
        c->learn_s[k] += secs_since(t0);
        t0 = mmr_mono_ns();
        int64_t now = c->conf->protocol == MMR_REPLAY_LOO ? c->eval_now_ms : c->ev[c->win[w]].ts_ms;
        scorer_t s;
        if (st == MMR_OK) st = scorer_new(&p, now, &s, err);
        mmr_eval_acc_t *acc = c->conf->protocol == MMR_REPLAY_LOO ? c->acc[k] : c->wacc[(size_t)w * c->n_variants + k];
        if (st == MMR_OK) st = eval_queries(&s, &b, c->win_q[w], c->win_q[w + 1], acc, err);
        if (st == MMR_OK && c->conf->protocol == MMR_REPLAY_PREQUENTIAL) st = mmr_eval_acc_merge(c->acc[k], acc, err);
        scorer_free(&s);
        c->eval_s[k] += secs_since(t0);
        t0 = mmr_mono_ns();
        if (st == MMR_OK && c->conf->protocol == MMR_REPLAY_PREQUENTIAL) {
            size_t lo = c->win[w], hi = c->win[w + 1];
            uint32_t *idx = malloc((hi - lo + 1) * sizeof *idx);
            if (!idx) st = oom(err);
            for (size_t i = lo; idx && i < hi; i++) idx[i - lo] = (uint32_t)i;
            if (idx) st = pipe_learn(&p, idx, hi - lo, 1, c->variant[k] != V_UNTRAINED, err);
            free(idx);
        }
        c->learn_s[k] += secs_since(t0);
    }
    if (p.tr) {
        pipe_end_pass(&p);
        mmr_trainer_stats_t ts;
        if (st == MMR_OK) st = mmr_trainer_flush(p.tr, err);
        mmr_trainer_get_stats(p.tr, &ts);
        c->examples[k] = ts.examples;
        c->loss[k] = ts.loss_ewma;
    }
    pipe_free(&p);
    free(b.scores);
    free(b.masked);
    free(b.top);
    free(b.tgt);
    free(b.ranks);
    free(b.pos);
    free(b.neg);
    return st;
}

static void *worker(void *arg) {
    ctx_t *c = arg;
    for (int k; (k = atomic_fetch_add(&c->next_task, 1)) < c->n_variants;)
        c->st[k] = run_variant(c, k, &c->err[k]);
    return NULL;
}

/* --- run ------------------------------------------------------------------------------- */

mmr_replay_conf_t mmr_replay_conf_default(void) {
    mmr_replay_conf_t c = {.protocol = MMR_REPLAY_LOO, .windows = 10, .passes = 1, .n_ks = 5,
                           .ks = {1, 5, 10, 20, 50}, .seed = 42, .ablations = 1, .threads = 1,
                           .max_bad_fraction = MMR_REPLAY_IO_MAX_BAD_DEFAULT, .chunk = 4096};
    c.trainer.tower = mmr_tower_config_default();
    c.trainer.tower.d_text = c.trainer.tower.d_image = c.trainer.tower.d_video = 0;
    c.trainer.tower.d_hidden = 64;
    c.trainer.tower.d_out = 32;
    c.trainer.tower.hist_len = 16;
    c.trainer.tower.n_item_ids = c.trainer.tower.n_user_ids = 1 << 16;
    c.trainer.optim = (mmr_tower_optim_t){.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.05f, .lr_sparse = 0.05f,
                                          .adagrad_init = 0.1f, .adagrad_eps = 1e-8f};
    c.trainer.batch_size = 256;
    c.join = (mmr_joiner_conf_t){.window_ms = 30000, .neg_per_pos = 4, .reservoir = 65536};
    return c;
}

static mmr_status_t check_conf(const mmr_replay_conf_t *c, mmr_err_t *err) {
    if (!c->events_path == !c->events_kafka || !c->items_path)
        return mmr_err_set(err, MMR_ERR_INVALID,
                           "replay: an items file and exactly one event source (a file or a Kafka topic) are required");
    if (c->windows < 1 || c->passes < 1 || c->threads < 1 || c->chunk < 1 || c->n_ks < 1 || c->n_ks > MMR_EVAL_K_MAX)
        return mmr_err_set(err, MMR_ERR_INVALID, "replay: windows, passes, threads, chunk >= 1 and 1..%d K values",
                           MMR_EVAL_K_MAX);
    for (size_t i = 0; i < c->n_ks; i++)
        if (c->ks[i] < 1 || (i && c->ks[i] <= c->ks[i - 1]))
            return mmr_err_set(err, MMR_ERR_INVALID, "replay: K values must be >= 1 and ascending");
    return MMR_OK;
}

static void ctx_free(ctx_t *c) {
    strtab_free(&c->users);
    strtab_free(&c->items);
    free(c->reqs);
    free(c->ev);
    free(c->created_ms);
    free(c->in_catalog);
    free(c->cand);
    free(c->cand_of);
    free(c->train);
    free(c->valid);
    free(c->win);
    free(c->q);
    free(c->win_q);
    free(c->pool);
    free(c->labels);
    for (int k = 0; k < MMR_REPLAY_MODELS_MAX; k++) mmr_eval_acc_free(c->acc[k]);
    for (int i = 0; c->wacc && i < c->n_win * c->n_variants; i++) mmr_eval_acc_free(c->wacc[i]);
    free(c->wacc);
    pthread_mutex_destroy(&c->mu);
}

static mmr_status_t read_oracle(const char *path, char **out, mmr_err_t *err) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) return mmr_err_set(err, MMR_ERR_INVALID, "replay: oracle %s:%d: %s", path, je.line, je.text);
    *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    json_decref(o);
    return *out ? MMR_OK : oom(err);
}

mmr_status_t mmr_replay_run(const mmr_replay_conf_t *conf, mmr_replay_report_t *rep, mmr_err_t *err) {
    memset(rep, 0, sizeof *rep);
    mmr_status_t st = check_conf(conf, err);
    if (st != MMR_OK) return st;
    int64_t t_start = mmr_mono_ns();
    ctx_t c = {.conf = conf, .tower = conf->trainer.tower};
    pthread_mutex_init(&c.mu, NULL);
    rep->protocol = conf->protocol;
    snprintf(rep->backend, sizeof rep->backend, "%s", mmr_tower_backend_name(mmr_tower_backend_cpu()));
    long bad = 0;
    st = load_items(&c, &bad, err);
    size_t n_catalog_ids = c.items.n;
    if (st == MMR_OK) st = load_events(&c, &bad, err);
    if (st == MMR_OK) st = build_candidates(&c, n_catalog_ids, err);
    if (st == MMR_OK) st = conf->protocol == MMR_REPLAY_LOO ? split_loo(&c, err) : split_prequential(&c, err);
    if (st == MMR_OK && conf->oracle_path) st = read_oracle(conf->oracle_path, &rep->oracle_json, err);
    rep->timing.load_s = secs_since(t_start);

    c.variant[c.n_variants++] = V_FUSED;
    c.variant[c.n_variants++] = V_POPULARITY;
    c.variant[c.n_variants++] = V_UNTRAINED;
    for (int v = V_NO_TEXT; conf->ablations && v <= V_NO_VIDEO; v++) c.variant[c.n_variants++] = v;
    for (int k = 0; st == MMR_OK && k < c.n_variants; k++) st = mmr_eval_acc_new(conf->ks, conf->n_ks, c.n_cand, &c.acc[k], err);
    if (st == MMR_OK && conf->protocol == MMR_REPLAY_PREQUENTIAL) {
        c.wacc = calloc((size_t)c.n_win * c.n_variants, sizeof *c.wacc);
        if (!c.wacc) st = oom(err);
        for (int i = 0; st == MMR_OK && i < c.n_win * c.n_variants; i++)
            st = mmr_eval_acc_new(conf->ks, conf->n_ks, c.n_cand, &c.wacc[i], err);
    }
    if (st == MMR_OK) {
        uint64_t learn = conf->protocol == MMR_REPLAY_LOO ? (uint64_t)conf->passes * c.n_train + c.n_valid : c.n_ev;
        c.total = (uint64_t)c.n_variants * (learn + c.n_q);
        int nt = conf->threads < c.n_variants ? conf->threads : c.n_variants;
        pthread_t th[MMR_REPLAY_MODELS_MAX];
        int started = 0;
        for (; started < nt - 1; started++)
            if (pthread_create(&th[started], NULL, worker, &c) != 0) break;
        worker(&c);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        for (int k = 0; st == MMR_OK && k < c.n_variants; k++)
            if (c.st[k] != MMR_OK) {
                if (err) *err = c.err[k];
                st = c.st[k];
            }
    }
    if (st == MMR_OK) {
        rep->events = (long)c.n_ev;
        rep->items = (long)c.n_cand;
        rep->users = (long)c.users.n;
        rep->train_events = (long)c.n_train;
        rep->valid_events = (long)c.n_valid;
        rep->test_events = conf->protocol == MMR_REPLAY_LOO ? (long)(c.n_ev - c.n_train - c.n_valid) : 0;
        rep->test_users = conf->protocol == MMR_REPLAY_LOO ? (long)c.n_q : 0;
        rep->train_only_users = conf->protocol == MMR_REPLAY_LOO ? (long)(c.users.n - c.n_q) : 0;
        rep->eval_now_ms = c.eval_now_ms;
        rep->n_models = (size_t)c.n_variants;
        for (int k = 0; k < c.n_variants; k++) {
            mmr_replay_model_t *m = &rep->model[k];
            snprintf(m->name, sizeof m->name, "%s", variant_name[c.variant[k]]);
            mmr_eval_acc_results(c.acc[k], &m->res);
            if (conf->protocol == MMR_REPLAY_LOO) {
                m->res.gauc = c.gauc_w[k] > 0 ? c.gauc_sum[k] / c.gauc_w[k] : 0;
                m->res.gauc_users = c.gauc_users[k];
                m->res.gauc_skipped = m->res.users - c.gauc_users[k];
            }
            m->examples = c.examples[k];
            m->loss = c.loss[k];
            rep->timing.learn_s += c.learn_s[k];
            rep->timing.eval_s += c.eval_s[k];
        }
        if (conf->protocol == MMR_REPLAY_PREQUENTIAL) {
            rep->n_windows = c.n_win;
            rep->window_start_ms = malloc((size_t)c.n_win * sizeof *rep->window_start_ms);
            rep->window_events = malloc((size_t)c.n_win * sizeof *rep->window_events);
            rep->window = malloc((size_t)c.n_win * c.n_variants * sizeof *rep->window);
            if (!rep->window_start_ms || !rep->window_events || !rep->window) st = oom(err);
            for (int w = 0; st == MMR_OK && w < c.n_win; w++) {
                rep->window_start_ms[w] = c.ev[c.win[w]].ts_ms;
                rep->window_events[w] = (long)(c.win[w + 1] - c.win[w]);
                for (int k = 0; k < c.n_variants; k++)
                    mmr_eval_acc_results(c.wacc[(size_t)w * c.n_variants + k], &rep->window[(size_t)w * c.n_variants + k]);
            }
        }
    }
    rep->bad_lines = bad;
    rep->timing.total_s = secs_since(t_start);
    rep->timing.events_per_s = rep->timing.total_s > 0 ? (double)c.n_ev / rep->timing.total_s : 0;
    ctx_free(&c);
    return st;
}

void mmr_replay_report_clear(mmr_replay_report_t *rep) {
    if (!rep) return;
    free(rep->window_start_ms);
    free(rep->window_events);
    free(rep->window);
    free(rep->oracle_json);
    memset(rep, 0, sizeof *rep);
}

/* --- output ---------------------------------------------------------------------------- */

static json_t *results_json(const mmr_eval_results_t *r) {
    json_t *recall = json_object(), *ndcg = json_object(), *cov = json_object();
    for (size_t j = 0; j < r->n_ks; j++) {
        char k[16];
        snprintf(k, sizeof k, "%d", r->ks[j]);
        json_object_set_new(recall, k, json_real(r->recall[j]));
        json_object_set_new(ndcg, k, json_real(r->ndcg[j]));
        json_object_set_new(cov, k, json_real(r->coverage[j]));
    }
    return json_pack("{s:o, s:o, s:o, s:f, s:f, s:I, s:I, s:I, s:I}", "recall", recall, "ndcg", ndcg, "coverage",
                     cov, "mrr", r->mrr, "gauc", r->gauc, "users", (json_int_t)r->users, "users_empty",
                     (json_int_t)r->users_empty, "gauc_users", (json_int_t)r->gauc_users, "gauc_skipped",
                     (json_int_t)r->gauc_skipped);
}

/* The Kafka source as config.events_kafka (bounds null when absent). */
static json_t *kafka_json(const mmr_replay_io_kafka_t *k) {
    json_t *bound[2];
    const int64_t ms[2] = {k->from_ms, k->to_ms};
    for (int i = 0; i < 2; i++) bound[i] = ms[i] == MMR_REPLAY_KAFKA_NO_BOUND ? json_null() : json_integer(ms[i]);
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "brokers", k->brokers, "topic", k->topic, "format",
                     k->format == MMR_INGEST_FORMAT_JSON ? "json" : "protobuf", "from_ms", bound[0], "to_ms", bound[1]);
}

static json_t *report_json(const mmr_replay_conf_t *conf, const mmr_replay_report_t *rep) {
    const mmr_tower_config_t *t = &conf->trainer.tower;
    json_t *ks = json_array();
    for (size_t i = 0; i < conf->n_ks; i++) json_array_append_new(ks, json_integer(conf->ks[i]));
    json_t *config = json_pack(
        "{s:s?, s:o?, s:s, s:s?, s:s, s:i, s:i, s:o, s:I, s:b, s:I, s:f, s:s,"
        " s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:s, s:f, s:f, s:i},"
        " s:{s:I, s:i, s:I}, s:i}",
        "events", conf->events_path, "events_kafka", conf->events_kafka ? kafka_json(conf->events_kafka) : NULL,
        "items", conf->items_path, "oracle", conf->oracle_path, "protocol",
        conf->protocol == MMR_REPLAY_LOO ? "leave-one-out" : "prequential", "windows", conf->windows, "passes",
        conf->passes, "k", ks, "seed", (json_int_t)conf->seed, "ablations", conf->ablations, "chunk",
        (json_int_t)conf->chunk, "max_bad_fraction", conf->max_bad_fraction, "popularity_baseline",
        "count of earlier positive events, not decayed", "tower", "d_text", t->d_text, "d_image", t->d_image,
        "d_video", t->d_video, "d_hidden", t->d_hidden, "d_out", t->d_out, "hist_len", t->hist_len, "n_item_ids",
        t->n_item_ids, "n_user_ids", t->n_user_ids, "optim", "kind",
        conf->trainer.optim.kind == MMR_TOWER_OPT_ADAGRAD ? "adagrad" : "sgd", "lr", conf->trainer.optim.lr,
        "lr_sparse", conf->trainer.optim.lr_sparse, "batch_size", conf->trainer.batch_size, "join", "window_ms",
        (json_int_t)conf->join.window_ms, "neg_per_pos", conf->join.neg_per_pos, "reservoir",
        (json_int_t)conf->join.reservoir, "store_user_ring", STORE_RING);
    json_t *models = json_object();
    for (size_t k = 0; k < rep->n_models; k++) {
        json_t *m = results_json(&rep->model[k].res);
        json_object_set_new(m, "examples", json_integer((json_int_t)rep->model[k].examples));
        json_object_set_new(m, "loss", json_real(rep->model[k].loss));
        json_object_set_new(models, rep->model[k].name, m);
    }
    json_t *windows = json_array();
    for (int w = 0; w < rep->n_windows; w++) {
        json_t *wm = json_object();
        for (size_t k = 0; k < rep->n_models; k++)
            json_object_set_new(wm, rep->model[k].name, results_json(&rep->window[(size_t)w * rep->n_models + k]));
        json_array_append_new(windows, json_pack("{s:I, s:I, s:o}", "start_ms", (json_int_t)rep->window_start_ms[w],
                                                 "events", (json_int_t)rep->window_events[w], "models", wm));
    }
    json_t *oracle = rep->oracle_json ? json_loads(rep->oracle_json, 0, NULL) : NULL;
    return json_pack(
        "{s:o, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o,"
        " s:{s:f, s:f, s:f, s:f, s:f, s:i, s:s}}",
        "config", config, "input", "events", (json_int_t)rep->events, "bad_lines", (json_int_t)rep->bad_lines,
        "items", (json_int_t)rep->items, "users", (json_int_t)rep->users, "split", "train_events",
        (json_int_t)rep->train_events, "valid_events", (json_int_t)rep->valid_events, "test_events",
        (json_int_t)rep->test_events, "test_users", (json_int_t)rep->test_users, "train_only_users",
        (json_int_t)rep->train_only_users, "eval_now_ms", (json_int_t)rep->eval_now_ms, "models", models,
        "windows", windows, "oracle", oracle ? oracle : json_null(), "timing", "load_s", rep->timing.load_s,
        "learn_s", rep->timing.learn_s, "eval_s", rep->timing.eval_s, "total_s", rep->timing.total_s,
        "events_per_s", rep->timing.events_per_s, "threads", conf->threads, "backend", rep->backend);
}

/* Index of the K closest to 10 (the headline cut-off). */
static size_t headline_k(const mmr_replay_conf_t *conf) {
    size_t best = 0;
    for (size_t i = 1; i < conf->n_ks; i++)
        if (abs(conf->ks[i] - 10) < abs(conf->ks[best] - 10)) best = i;
    return best;
}

static void summary_row(FILE *f, const char *name, const mmr_replay_conf_t *conf, const double *recall,
                        const double *ndcg_h, const double *mrr, const double *gauc, const double *cov_h) {
    fprintf(f, "%-11s", name);
    for (size_t i = 0; i < conf->n_ks; i++) {
        if (recall) fprintf(f, " %7.4f", recall[i]);
        else fprintf(f, " %7s", "-");
    }
    double v[4] = {ndcg_h ? *ndcg_h : 0, mrr ? *mrr : 0, gauc ? *gauc : 0, cov_h ? *cov_h : 0};
    const double *has[4] = {ndcg_h, mrr, gauc, cov_h};
    for (int i = 0; i < 4; i++) {
        if (has[i]) fprintf(f, " %7.4f", v[i]);
        else fprintf(f, " %7s", "-");
    }
    fputc('\n', f);
}

static void write_summary(FILE *f, const mmr_replay_conf_t *conf, const mmr_replay_report_t *rep, const char *plot_note) {
    size_t h = headline_k(conf);
    if (rep->protocol == MMR_REPLAY_LOO)
        fprintf(f, "mmrec replay: leave-one-out, %d pass(es); %ld events (%ld bad lines), %ld items, %ld users\n"
                   "split: %ld train / %ld validation / %ld test events; %ld test users, %ld training-only\n",
                conf->passes, rep->events, rep->bad_lines, rep->items, rep->users, rep->train_events,
                rep->valid_events, rep->test_events, rep->test_users, rep->train_only_users);
    else
        fprintf(f, "mmrec replay: prequential, %d windows; %ld events (%ld bad lines), %ld items, %ld users\n",
                rep->n_windows, rep->events, rep->bad_lines, rep->items, rep->users);
    fprintf(f, "%-11s", "model");
    for (size_t i = 0; i < conf->n_ks; i++) {
        char col[16];
        snprintf(col, sizeof col, "R@%d", conf->ks[i]);
        fprintf(f, " %7s", col);
    }
    char nd[16], cv[16];
    snprintf(nd, sizeof nd, "N@%d", conf->ks[h]);
    snprintf(cv, sizeof cv, "Cov@%d", conf->ks[h]);
    fprintf(f, " %7s %7s %7s %7s\n", nd, "MRR", "GAUC", cv);
    for (size_t k = 0; k < rep->n_models; k++) {
        const mmr_eval_results_t *r = &rep->model[k].res;
        summary_row(f, rep->model[k].name, conf, r->recall, &r->ndcg[h], &r->mrr, &r->gauc, &r->coverage[h]);
    }
    json_t *o = rep->oracle_json ? json_loads(rep->oracle_json, 0, NULL) : NULL;
    json_t *or = json_object_get(o, "oracle");
    if (or) {
        double rec[MMR_EVAL_K_MAX] = {0}, ndcg = 0, mrr = json_real_value(json_object_get(or, "mrr"));
        int all = 1;
        for (size_t i = 0; i < conf->n_ks; i++) {
            char k[16];
            snprintf(k, sizeof k, "%d", conf->ks[i]);
            json_t *v = json_object_get(json_object_get(or, "recall"), k);
            all &= v != NULL;
            rec[i] = json_number_value(v);
            if (i == h) ndcg = json_number_value(json_object_get(json_object_get(or, "ndcg"), k));
        }
        summary_row(f, "oracle", conf, all ? rec : NULL, &ndcg, &mrr, NULL, NULL);
        fprintf(f, "(oracle: from %s, its own leave-one-out over the generator's truth)\n", conf->oracle_path);
    }
    json_decref(o);
    fprintf(f, "popularity = count of earlier positive events (not decayed); GAUC: %s\n",
            rep->protocol == MMR_REPLAY_LOO ? "target vs all unmasked items" : "over each window's impressions");
    fprintf(f, "time: %.1f s (load %.1f, learn %.1f, eval %.1f, summed over variants), %.0f events/s\n",
            rep->timing.total_s, rep->timing.load_s, rep->timing.learn_s, rep->timing.eval_s, rep->timing.events_per_s);
    fprintf(f, "%s\n", plot_note);
}

/* plot.dat + gnuplot → plot.png. Returns a one-line note for the summary. */
static const char *write_plot(const mmr_replay_conf_t *conf, const mmr_replay_report_t *rep, const char *dir) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) return "plot: gnuplot not found, no plot.png (apt-get install gnuplot-nox)";
    size_t h = headline_k(conf);
    char path[4200];
    snprintf(path, sizeof path, "%s/plot.dat", dir);
    FILE *d = fopen(path, "w");
    if (!d) return "plot: cannot write plot.dat";
    if (rep->protocol == MMR_REPLAY_LOO) {
        for (size_t k = 0; k < rep->n_models; k++) fprintf(d, "%s %g\n", rep->model[k].name, rep->model[k].res.recall[h]);
    } else {
        for (int w = 0; w < rep->n_windows; w++) {
            fprintf(d, "%d", w);
            for (size_t k = 0; k < rep->n_models; k++) fprintf(d, " %g", rep->window[(size_t)w * rep->n_models + k].recall[h]);
            fputc('\n', d);
        }
    }
    fclose(d);
    snprintf(path, sizeof path, "gnuplot 2>/dev/null");
    FILE *g = popen(path, "w");
    if (!g) return "plot: cannot run gnuplot";
    fprintf(g, "set terminal png noenhanced size 900,500\nset output '%s/plot.png'\nset ylabel 'Recall@%d'\nset grid\n", dir,
            conf->ks[h]);
    if (rep->protocol == MMR_REPLAY_LOO) {
        fprintf(g, "set style fill solid 0.6\nset boxwidth 0.6\nset yrange [0:*]\nset title 'leave-one-out'\n"
                   "plot '%s/plot.dat' using 0:2:xtic(1) with boxes notitle\n", dir);
    } else {
        fprintf(g, "set xlabel 'window'\nset xtics 1\nset title 'prequential'\nplot ");
        for (size_t k = 0; k < rep->n_models; k++)
            fprintf(g, "%s'%s/plot.dat' using 1:%zu with linespoints title '%s'", k ? ", " : "", dir, k + 2,
                    rep->model[k].name);
        fputc('\n', g);
    }
    return pclose(g) == 0 ? "plot: plot.png" : "plot: gnuplot failed, no plot.png";
}

mmr_status_t mmr_replay_write(const mmr_replay_conf_t *conf, const mmr_replay_report_t *rep, const char *dir,
                              FILE *summary, mmr_err_t *err) {
    if (!dir) {
        write_summary(summary, conf, rep, "plot: no output folder (--out), no files written");
        return MMR_OK;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return mmr_err_set(err, MMR_ERR_IO, "replay: mkdir %s: %s", dir, strerror(errno));
    char path[4200];
    json_t *root = report_json(conf, rep);
    if (!root) return oom(err);
    snprintf(path, sizeof path, "%s/report.json", dir);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0) return mmr_err_set(err, MMR_ERR_IO, "replay: cannot write %s", path);
    const char *note = write_plot(conf, rep, dir);
    snprintf(path, sizeof path, "%s/summary.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return mmr_err_set(err, MMR_ERR_IO, "replay: cannot write %s: %s", path, strerror(errno));
    write_summary(f, conf, rep, note);
    if (fclose(f) != 0) return mmr_err_set(err, MMR_ERR_IO, "replay: cannot write %s", path);
    if (summary) write_summary(summary, conf, rep, note);
    return MMR_OK;
}
