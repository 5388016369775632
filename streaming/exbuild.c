/* exbuild.c — joined label → trainer example from the feature store (see mmr_exbuild.h). */
#include "mmr_exbuild.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_hash.h"

/* One cached catalog item; x[m] NULL = absent. One allocation: struct, floats, id. */
typedef struct citem {
    uint64_t key;
    int64_t created_ms;
    const float *x[MMR_TOWER_N_MOD];
    const char *id;
} citem_t;

struct mmr_exbuild {
    mmr_fstore_t *fs;
    mmr_tower_config_t cfg;
    int dim[MMR_TOWER_N_MOD];
    size_t cache_max, cache_n, nslots; /* open addressing, nslots = pow2 >= 2 * cache_max */
    citem_t **slots;
    /* The example being built: slot 0 is the target item, 1.. the history. */
    const char **ids;          /* [1 + L] */
    citem_t **rows;            /* [1 + L] */
    mmr_tower_item_in_t *in;   /* [1 + L] */
    int32_t *hist_type;        /* [L] */
    float *hist_age;           /* [L] */
    mmr_exbuild_stats_t st;
};

mmr_status_t mmr_exbuild_new(mmr_fstore_t *fs, const mmr_tower_config_t *tower,
                             size_t item_cache_max, mmr_exbuild_t **out, mmr_err_t *err) {
    if (!fs || !tower || tower->hist_len < 1)
        return mmr_err_set(err, MMR_ERR_INVALID, "exbuild: store and tower config required");
    mmr_exbuild_t *b = calloc(1, sizeof *b);
    if (!b) return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    b->fs = fs;
    b->cfg = *tower;
    b->dim[MMR_TOWER_TEXT] = tower->d_text;
    b->dim[MMR_TOWER_IMAGE] = tower->d_image;
    b->dim[MMR_TOWER_VIDEO] = tower->d_video;
    b->cache_max = item_cache_max ? item_cache_max : 65536;
    for (b->nslots = 16; b->nslots < 2 * b->cache_max; b->nslots <<= 1) {}
    size_t n = 1 + (size_t)tower->hist_len;
    b->slots = calloc(b->nslots, sizeof *b->slots);
    b->ids = calloc(n, sizeof *b->ids);
    b->rows = calloc(n, sizeof *b->rows);
    b->in = calloc(n, sizeof *b->in);
    b->hist_type = calloc(n, sizeof *b->hist_type);
    b->hist_age = calloc(n, sizeof *b->hist_age);
    if (!b->slots || !b->ids || !b->rows || !b->in || !b->hist_type || !b->hist_age) {
        mmr_exbuild_free(b);
        return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory");
    }
    *out = b;
    return MMR_OK;
}

void mmr_exbuild_invalidate(mmr_exbuild_t *b) {
    for (size_t i = 0; i < b->nslots; i++) {
        free(b->slots[i]);
        b->slots[i] = NULL;
    }
    b->cache_n = 0;
}

void mmr_exbuild_free(mmr_exbuild_t *b) {
    if (!b) return;
    if (b->slots) mmr_exbuild_invalidate(b);
    free(b->slots);
    free(b->ids);
    free(b->rows);
    free(b->in);
    free(b->hist_type);
    free(b->hist_age);
    free(b);
}

void mmr_exbuild_get_stats(const mmr_exbuild_t *b, mmr_exbuild_stats_t *out) { *out = b->st; }

/* The slot holding id, or the empty slot where it belongs. */
static citem_t **cache_slot(mmr_exbuild_t *b, uint64_t key, const char *id) {
    size_t i = key & (b->nslots - 1);
    while (b->slots[i] && !(b->slots[i]->key == key && strcmp(b->slots[i]->id, id) == 0))
        i = (i + 1) & (b->nslots - 1);
    return &b->slots[i];
}

/* Copies a store item (found or not) into the cache. */
static citem_t *cache_put(mmr_exbuild_t *b, citem_t **slot, uint64_t key, const char *id,
                          const mmr_item_t *it) {
    size_t floats = 0, idlen = strlen(id) + 1;
    int use[MMR_TOWER_N_MOD] = {0};
    for (int m = 0; it && m < MMR_TOWER_N_MOD; m++) {
        if (!it->emb_dim[m]) continue;
        if ((int)it->emb_dim[m] != b->dim[m]) { b->st.width_mismatch++; continue; }
        use[m] = 1;
        floats += it->emb_dim[m];
    }
    citem_t *c = malloc(sizeof *c + floats * sizeof(float) + idlen);
    if (!c) return NULL;
    float *f = (float *)(c + 1);
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        c->x[m] = NULL;
        if (!use[m]) continue;
        memcpy(f, it->emb[m], it->emb_dim[m] * sizeof(float));
        c->x[m] = f;
        f += it->emb_dim[m];
    }
    c->id = memcpy(f, id, idlen);
    c->key = key;
    c->created_ms = it ? it->created_ms : 0;
    *slot = c;
    b->cache_n++;
    return c;
}

/* rows[i] for ids[0..n): cached, else one MultiGet for the misses. */
static mmr_status_t load_items(mmr_exbuild_t *b, size_t n, mmr_err_t *err) {
    const char *miss[n];
    size_t nmiss = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = mmr_hash64(b->ids[i], strlen(b->ids[i]));
        citem_t *c = *cache_slot(b, key, b->ids[i]);
        b->rows[i] = c;
        if (c) b->st.cache_hits++;
        else miss[nmiss++] = b->ids[i];
    }
    if (!nmiss) return MMR_OK;
    b->st.cache_misses += nmiss;
    mmr_item_t *items = NULL;
    uint8_t found[n];
    mmr_status_t st = mmr_fstore_get_items(b->fs, nmiss, miss, &items, found, err);
    if (st != MMR_OK) return st;
    for (size_t k = 0; k < nmiss; k++) {
        uint64_t key = mmr_hash64(miss[k], strlen(miss[k]));
        citem_t **slot = cache_slot(b, key, miss[k]);
        if (!*slot && !cache_put(b, slot, key, miss[k], found[k] ? &items[k] : NULL)) {
            mmr_fstore_items_free(items);
            return mmr_err_set(err, MMR_ERR_NOMEM, "exbuild: out of memory");
        }
    }
    mmr_fstore_items_free(items);
    for (size_t i = 0; i < n; i++)
        if (!b->rows[i]) b->rows[i] = *cache_slot(b, mmr_hash64(b->ids[i], strlen(b->ids[i])), b->ids[i]);
    return MMR_OK;
}

mmr_status_t mmr_exbuild_make(mmr_exbuild_t *b, const mmr_joined_t *j, mmr_example_t *ex,
                              mmr_err_t *err) {
    /* Emptied before any lookup, so no row of this example is freed under it. */
    if (b->cache_n + 1 + (size_t)b->cfg.hist_len > b->cache_max) mmr_exbuild_invalidate(b);

    mmr_user_t *user = NULL;
    mmr_status_t st = mmr_fstore_get_user(b->fs, j->user_id, &user, err);
    if (st != MMR_OK && st != MMR_ERR_NOT_FOUND) return st;
    b->ids[0] = j->item_id;
    int h = mmr_user_history(user, j->ts_ms, b->cfg.hist_len, b->ids + 1, b->hist_type, b->hist_age);
    mmr_item_stats_t s;
    uint8_t found = 0;
    if ((st = load_items(b, 1 + (size_t)h, err)) != MMR_OK ||
        (st = mmr_fstore_get_item_stats(b->fs, 1, &j->item_id, &s, &found, err)) != MMR_OK) {
        mmr_user_free(user);
        return st;
    }
    for (int i = 0; i <= h; i++) {
        const citem_t *c = b->rows[i];
        b->in[i] = (mmr_tower_item_in_t){.key = c->key, .id_bucket = mmr_tower_id_bucket(c->id, strlen(c->id), b->cfg.n_item_ids)};
        memcpy(b->in[i].x, c->x, sizeof c->x);
    }
    const citem_t *target = b->rows[0];
    double age_h = target->created_ms > 0 && j->ts_ms > target->created_ms
                       ? (double)(j->ts_ms - target->created_ms) / 3.6e6 : 0.0;
    *ex = (mmr_example_t){
        .item = b->in[0],
        .hist_len = h,
        .hist = b->in + 1,
        .hist_type = b->hist_type,
        .hist_age = b->hist_age,
        .user_bucket = mmr_tower_id_bucket(j->user_id, strlen(j->user_id), b->cfg.n_user_ids),
        .popularity = found ? (float)mmr_fstore_popularity_at(b->fs, &s, j->ts_ms) : 0.0f,
        .recency = (float)log1p(age_h),
        .label = j->label,
    };
    /* ids[1..] point into user's records; nothing of them is read after this point. */
    mmr_user_free(user);
    b->st.examples++;
    return MMR_OK;
}
