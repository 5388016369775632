/* model.c — a servable model version: the item index over the catalog, user encoding,
 * candidate scoring with the ranking head, top-K retrieval (exact, or the approximate index
 * of ann.c over large catalogs; see mmr_model.h). Not the registry or hot swap
 * (registry.c), not the RPC (ranker.c). Scratch memory is per call. */
#include "mmr_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_hash.h"
#include "mmr_log.h"

#define BUILD_CHUNK 1024 /* items gathered per encode call while building */
#define MS_PER_HOUR 3.6e6

struct mmr_model {
    mmr_tower_t *tower;            /* owned */
    mmr_tower_backend_t *be;       /* borrowed, NULL = CPU */
    mmr_fstore_t *fs;              /* borrowed */
    int D;
    size_t n;                      /* items indexed */
    float *vec;                    /* (n, D) unit item vectors */
    float *gate;                   /* (n, 3) modality weights */
    uint64_t *hash;                /* (n) mmr_hash64 of the id */
    size_t *id_off;                /* (n) offsets of NUL-terminated ids in id_pool */
    char *id_pool;
    uint32_t *slots;               /* (slot_mask + 1) open addressing: row + 1, 0 = empty */
    size_t slot_mask;
    mmr_ann_t *ann;                /* owned; NULL = exact retrieval */
};

/* --- ids → tower inputs ------------------------------------------------------------- */

int32_t mmr_model_user_bucket(const mmr_tower_config_t *c, const char *user_id) {
    return mmr_tower_id_bucket(user_id, strlen(user_id), c->n_user_ids);
}

void mmr_model_item_input(const mmr_tower_config_t *c, const mmr_item_t *item,
                          mmr_tower_item_in_t *out) {
    const int width[MMR_TOWER_N_MOD] = {c->d_text, c->d_image, c->d_video};
    size_t len = strlen(item->item_id);
    memset(out, 0, sizeof *out);
    out->key = mmr_hash64(item->item_id, len);
    out->id_bucket = mmr_tower_id_bucket(item->item_id, len, c->n_item_ids);
    for (int m = 0; m < MMR_TOWER_N_MOD; m++)
        if (item->emb[m] && item->emb_dim[m] == (uint32_t)width[m]) out->x[m] = item->emb[m];
}

/* --- the id → row map ---------------------------------------------------------------- */

const char *mmr_model_item_id(const mmr_model_t *m, size_t r) { return m->id_pool + m->id_off[r]; }
const float *mmr_model_item_vec(const mmr_model_t *m, size_t r) { return m->vec + r * (size_t)m->D; }
const mmr_tower_t *mmr_model_tower(const mmr_model_t *m) { return m->tower; }
size_t mmr_model_item_count(const mmr_model_t *m) { return m->n; }
const mmr_ann_t *mmr_model_ann(const mmr_model_t *m) { return m->ann; }

int64_t mmr_model_find(const mmr_model_t *m, const char *item_id) {
    uint64_t h = mmr_hash64(item_id, strlen(item_id));
    for (size_t s = h & m->slot_mask;; s = (s + 1) & m->slot_mask) {
        uint32_t v = m->slots[s];
        if (!v) return -1;
        if (m->hash[v - 1] == h && strcmp(mmr_model_item_id(m, v - 1), item_id) == 0) return v - 1;
    }
}

static mmr_status_t build_map(mmr_model_t *m, mmr_err_t *err) {
    size_t cap = 16;
    while (cap < 2 * m->n) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory (id map)");
    m->slot_mask = cap - 1;
    for (size_t r = 0; r < m->n; r++) {
        size_t s = m->hash[r] & m->slot_mask;
        while (m->slots[s]) s = (s + 1) & m->slot_mask;
        m->slots[s] = (uint32_t)(r + 1);
    }
    return MMR_OK;
}

/* --- building the index -------------------------------------------------------------- */

typedef struct build {
    mmr_model_t *m;
    const mmr_tower_config_t *c;
    size_t cap;                         /* rows allocated in m */
    size_t pool_len, pool_cap;
    size_t width;                       /* d_text + d_image + d_video */
    float *content;                     /* (BUILD_CHUNK, width) copies of the chunk's embeddings */
    mmr_tower_item_in_t in[BUILD_CHUNK];
    size_t pending;                     /* items of the chunk not encoded yet */
    mmr_status_t st;
    mmr_err_t *err;
} build_t;

static int grow(void **p, size_t n, size_t elem) {
    void *q = realloc(*p, n * elem);
    if (!q) return 0;
    *p = q;
    return 1;
}

static void build_flush(build_t *b) {
    if (!b->pending || b->st != MMR_OK) return;
    size_t r0 = b->m->n - b->pending;
    b->st = mmr_tower_encode_items(b->m->tower, b->m->be, b->pending, b->in,
                                   b->m->vec + r0 * (size_t)b->m->D, b->m->gate + r0 * 3, b->err);
    b->pending = 0;
}

static int build_add(void *opaque, const mmr_item_t *item) {
    build_t *b = opaque;
    mmr_model_t *m = b->m;
    if (m->n == UINT32_MAX - 1) {
        b->st = mmr_err_set(b->err, MMR_ERR_INVALID, "model: catalog over %u items", UINT32_MAX - 1);
        return 1;
    }
    size_t idl = strlen(item->item_id) + 1;
    if (m->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        if (!grow((void **)&m->vec, cap * m->D, sizeof(float)) || !grow((void **)&m->gate, cap * 3, sizeof(float)) ||
            !grow((void **)&m->hash, cap, sizeof(uint64_t)) ||
            !grow((void **)&m->id_off, cap, sizeof(size_t))) {
            b->st = mmr_err_set(b->err, MMR_ERR_NOMEM, "model: out of memory (index of %zu items)", cap);
            return 1;
        }
        b->cap = cap;
    }
    if (b->pool_len + idl > b->pool_cap) {
        size_t cap = b->pool_cap ? 2 * b->pool_cap : 65536;
        while (cap < b->pool_len + idl) cap *= 2;
        if (!grow((void **)&m->id_pool, cap, 1)) {
            b->st = mmr_err_set(b->err, MMR_ERR_NOMEM, "model: out of memory (item ids)");
            return 1;
        }
        b->pool_cap = cap;
    }
    memcpy(m->id_pool + b->pool_len, item->item_id, idl);
    m->id_off[m->n] = b->pool_len;
    b->pool_len += idl;
    m->hash[m->n] = mmr_hash64(item->item_id, idl - 1);

    /* item and its arrays die after this call: copy the modalities the tower reads */
    mmr_tower_item_in_t *in = &b->in[b->pending];
    mmr_model_item_input(b->c, item, in);
    float *dst = b->content + b->pending * b->width;
    for (int k = 0; k < MMR_TOWER_N_MOD; k++) {
        if (!in->x[k]) continue;
        memcpy(dst, in->x[k], item->emb_dim[k] * sizeof(float));
        in->x[k] = dst;
        dst += item->emb_dim[k];
    }
    m->n++;
    if (++b->pending == BUILD_CHUNK) build_flush(b);
    return b->st != MMR_OK;
}

mmr_model_opts_t mmr_model_opts_default(void) {
    return (mmr_model_opts_t){.ann = MMR_MODEL_ANN_AUTO, .ann_min_items = 20000,
                              .ann_max_scan = 0.5f, .ann_opts = mmr_ann_opts_default()};
}

/* Builds m->ann when opts ask for it (see mmr_model_opts_t). */
static mmr_status_t build_ann(mmr_model_t *m, const mmr_model_opts_t *o, mmr_err_t *err) {
    if (o->ann == MMR_MODEL_ANN_OFF || m->n == 0) return MMR_OK;
    if (o->ann == MMR_MODEL_ANN_AUTO && (m->n < o->ann_min_items || m->D > MMR_ANN_MAX_D)) return MMR_OK;
    mmr_status_t st = mmr_ann_new(m->vec, m->n, m->D, &o->ann_opts, &m->ann, err);
    if (st != MMR_OK) return st;
    mmr_ann_info_t i;
    mmr_ann_get_info(m->ann, &i);
    int keep = o->ann == MMR_MODEL_ANN_ON || i.scan_frac <= o->ann_max_scan;
    mmr_log(MMR_LOG_INFO, "model",
            "ann over %zu items: nlist %u nprobe %u recall %.3f scan %.1f%% build %.2f s%s", m->n,
            i.nlist, i.nprobe, i.recall, 100.0 * i.scan_frac, i.build_s, keep ? "" : " -> exact kept");
    if (!keep) {
        mmr_ann_free(m->ann);
        m->ann = NULL;
    }
    return MMR_OK;
}

mmr_status_t mmr_model_new(mmr_tower_t *tower, mmr_fstore_t *fs, mmr_tower_backend_t *be,
                           mmr_model_t **out, mmr_err_t *err) {
    return mmr_model_new_opts(tower, fs, be, NULL, out, err);
}

mmr_status_t mmr_model_new_opts(mmr_tower_t *tower, mmr_fstore_t *fs, mmr_tower_backend_t *be,
                                const mmr_model_opts_t *opts, mmr_model_t **out, mmr_err_t *err) {
    mmr_model_opts_t o = opts ? *opts : mmr_model_opts_default();
    *out = NULL;
    mmr_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        mmr_tower_free(tower);
        return mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory");
    }
    m->tower = tower;
    m->be = be;
    m->fs = fs;
    const mmr_tower_config_t *c = mmr_tower_get_config(tower);
    m->D = c->d_out;
    build_t b = {.m = m, .c = c, .width = (size_t)c->d_text + c->d_image + c->d_video, .err = err};
    b.content = malloc(BUILD_CHUNK * b.width * sizeof(float));
    mmr_status_t st = b.content ? MMR_OK : mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory");
    if (st == MMR_OK) st = mmr_fstore_iter_items(fs, build_add, &b, err);
    if (st == MMR_OK) build_flush(&b);
    if (st == MMR_OK) st = b.st;
    if (st == MMR_OK) st = build_map(m, err);
    free(b.content);
    if (st == MMR_OK) st = build_ann(m, &o, err);
    if (st != MMR_OK) {
        mmr_model_free(m);
        return st;
    }
    *out = m;
    return MMR_OK;
}

void mmr_model_free(mmr_model_t *m) {
    if (!m) return;
    mmr_tower_free(m->tower);
    mmr_ann_free(m->ann); /* reads vec until freed */
    free(m->vec);
    free(m->gate);
    free(m->hash);
    free(m->id_off);
    free(m->id_pool);
    free(m->slots);
    free(m);
}

/* --- serving ------------------------------------------------------------------------- */

/* Encodes the items ids[0..n) (all missing from the index) from their store records into
 * vec (n, D) and gate (n, 3) (may be NULL); items without a record get no content. */
static mmr_status_t encode_from_store(const mmr_model_t *m, size_t n, const char *const *ids,
                                      float *vec, float *gate, mmr_err_t *err) {
    const mmr_tower_config_t *c = mmr_tower_get_config(m->tower);
    mmr_item_t *rec = NULL;
    mmr_tower_item_in_t *in = malloc(n * (sizeof *in + 1));
    if (!in) return mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory");
    uint8_t *found = (uint8_t *)(in + n);
    mmr_status_t st = mmr_fstore_get_items(m->fs, n, ids, &rec, found, err);
    for (size_t i = 0; st == MMR_OK && i < n; i++) {
        mmr_item_t bare = {.item_id = ids[i]};
        mmr_model_item_input(c, found[i] ? &rec[i] : &bare, &in[i]);
    }
    if (st == MMR_OK) st = mmr_tower_encode_items(m->tower, m->be, n, in, vec, gate, err);
    mmr_fstore_items_free(rec);
    free(in);
    return st;
}

mmr_status_t mmr_model_encode_user(const mmr_model_t *m, const char *user_id,
                                   const mmr_user_t *u, int64_t now_ms, float *vec,
                                   mmr_err_t *err) {
    const mmr_tower_config_t *c = mmr_tower_get_config(m->tower);
    size_t L = (size_t)c->hist_len, D = (size_t)m->D;
    /* one block: ids (L) | miss (L) | miss_at (L) | hist (L, D) | enc (L, D) | ages (L)
     *            | types (L) */
    void *blk = malloc(L * (2 * sizeof(char *) + sizeof(size_t) + sizeof(float) + sizeof(int32_t)) +
                       2 * L * D * sizeof(float) + 1);
    if (!blk) return mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory");
    const char **ids = blk, **miss = ids + L;
    size_t *miss_at = (size_t *)(miss + L);
    float *hist = (float *)(miss_at + L), *enc = hist + L * D, *ages = enc + L * D;
    int32_t *types = (int32_t *)(ages + L);
    int n = mmr_user_history(u, now_ms + 1, c->hist_len, ids, types, ages); /* up to now */
    size_t nm = 0;
    for (int j = 0; j < n; j++) {
        int64_t r = mmr_model_find(m, ids[j]);
        if (r >= 0) {
            memcpy(hist + (size_t)j * D, mmr_model_item_vec(m, (size_t)r), D * sizeof(float));
        } else {
            miss_at[nm] = (size_t)j;
            miss[nm++] = ids[j];
        }
    }
    mmr_status_t st = nm ? encode_from_store(m, nm, miss, enc, NULL, err) : MMR_OK;
    for (size_t i = 0; st == MMR_OK && i < nm; i++)
        memcpy(hist + miss_at[i] * D, enc + i * D, D * sizeof(float));
    if (st == MMR_OK)
        st = mmr_tower_encode_user(m->tower, m->be, n, hist, types, ages,
                                   mmr_model_user_bucket(c, user_id), vec, err);
    free(blk);
    return st;
}

mmr_status_t mmr_model_score(const mmr_model_t *m, const float *user_vec, size_t n,
                             const char *const *item_ids, int64_t now_ms, float *score,
                             float *gate, uint8_t *status, mmr_err_t *err) {
    size_t D = (size_t)m->D;
    memset(score, 0, n * sizeof *score);
    if (gate) memset(gate, 0, n * 3 * sizeof *gate);
    if (n == 0) return MMR_OK;
    /* one block: summaries (n) | at (n) | miss_idx (n) | miss (n) | items (n, D) | pop (n)
     *            | recency (n) | prob (n) | g (n, 3) */
    size_t bytes = n * (sizeof(mmr_item_summary_t) + 2 * sizeof(size_t) + sizeof(char *)) +
                   n * (D + 6) * sizeof(float);
    char *blk = malloc(bytes);
    if (!blk) return mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory");
    mmr_item_summary_t *sum = (mmr_item_summary_t *)blk;
    size_t *at = (size_t *)(sum + n), *miss_idx = at + n;
    const char **miss = (const char **)(miss_idx + n);
    float *items = (float *)(miss + n), *pop = items + n * D;
    float *recency = pop + n, *prob = recency + n, *g = prob + n;

    /* catalog flags and stats from the hot-item cache; content only for unindexed items */
    mmr_status_t st = mmr_fstore_get_item_summaries(m->fs, n, item_ids, sum, err);
    if (st != MMR_OK) goto out;

    /* compact the servable candidates into slots k = 0..ns-1; at[k] = candidate index */
    size_t ns = 0, nm = 0;
    for (size_t i = 0; i < n; i++) {
        if (sum[i].in_catalog && sum[i].deleted) { status[i] = MMR_MODEL_DELETED; continue; }
        if (!sum[i].in_catalog && !sum[i].has_stats) { status[i] = MMR_MODEL_UNKNOWN; continue; }
        status[i] = MMR_MODEL_SCORED;
        pop[ns] = sum[i].has_stats ? (float)mmr_fstore_popularity_at(m->fs, &sum[i].stats, now_ms) : 0.0f;
        double age_ms = sum[i].in_catalog && now_ms > sum[i].created_ms ? (double)(now_ms - sum[i].created_ms) : 0.0;
        recency[ns] = (float)log1p(age_ms / MS_PER_HOUR);
        int64_t r = mmr_model_find(m, item_ids[i]);
        if (r >= 0) {
            memcpy(items + ns * D, mmr_model_item_vec(m, (size_t)r), D * sizeof(float));
            memcpy(g + ns * 3, m->gate + (size_t)r * 3, 3 * sizeof(float));
        } else { /* not indexed: gathered for one encode call */
            miss_idx[nm] = ns;
            miss[nm++] = item_ids[i];
        }
        at[ns++] = i;
    }
    if (nm) {
        float *enc = malloc(nm * (D + 3) * sizeof(float));
        if (!enc) { st = mmr_err_set(err, MMR_ERR_NOMEM, "model: out of memory"); goto out; }
        st = encode_from_store(m, nm, miss, enc, enc + nm * D, err);
        for (size_t j = 0; st == MMR_OK && j < nm; j++) {
            memcpy(items + miss_idx[j] * D, enc + j * D, D * sizeof(float));
            memcpy(g + miss_idx[j] * 3, enc + nm * D + j * 3, 3 * sizeof(float));
        }
        free(enc);
        if (st != MMR_OK) goto out;
    }
    mmr_tower_head_forward(m->tower, (int)ns, user_vec, items, pop, recency, prob);
    for (size_t k = 0; k < ns; k++) {
        score[at[k]] = prob[k];
        if (gate) memcpy(gate + at[k] * 3, g + k * 3, 3 * sizeof(float));
    }
out:
    free(blk);
    return st;
}

/* --- top-K ----------------------------------------------------------------------------- */

void mmr_model_retrieve_exact(const mmr_model_t *m, const float *user_vec, size_t k,
                              const int64_t *exclude_rows, size_t n_exclude, int64_t *rows,
                              float *dots, size_t *n_out) {
    mmr_ann_topk_t t = {.k = k, .rows = rows, .dots = dots, .ex = exclude_rows, .n_ex = n_exclude};
    mmr_ann_topk_scan(&t, user_vec, m->vec, m->n, m->D, NULL, 0);
    mmr_ann_topk_sort(&t);
    *n_out = t.h;
}

void mmr_model_retrieve(const mmr_model_t *m, const float *user_vec, size_t k,
                        const int64_t *exclude_rows, size_t n_exclude, int64_t *rows,
                        float *dots, size_t *n_out) {
    if (m->ann)
        mmr_ann_search(m->ann, user_vec, k, 0, exclude_rows, n_exclude, rows, dots, n_out);
    else
        mmr_model_retrieve_exact(m, user_vec, k, exclude_rows, n_exclude, rows, dots, n_out);
}
