/* tower_encode.c — the encode helpers of mmr_trainer.h (item vectors of a list of items, one
 * user's vector) and the item gatherer they share with the trainer's pending batch. Thin
 * wrappers over mmr_tower_item_forward / mmr_tower_user_forward: no math, no caching. */
#include "tower_impl.h"

#include <stdlib.h>
#include <string.h>

mmr_status_t tower_gather_init(tower_gather_t *g, const mmr_tower_config_t *c, int cap,
                               mmr_err_t *err) {
    memset(g, 0, sizeof *g);
    for (int m = 0; m < MMR_TOWER_N_MOD; m++)
        if (!(g->x[m] = malloc((size_t)cap * tower_width(c, m) * sizeof(float)))) goto nomem;
    g->present = malloc((size_t)cap * MMR_TOWER_N_MOD);
    g->item_id = malloc((size_t)cap * sizeof(int32_t));
    if (!g->present || !g->item_id) goto nomem;
    g->cap = cap;
    return MMR_OK;
nomem:
    tower_gather_free(g);
    return mmr_err_set(err, MMR_ERR_NOMEM, "out of memory for a batch of %d items", cap);
}

void tower_gather_free(tower_gather_t *g) {
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) free(g->x[m]);
    free(g->present);
    free(g->item_id);
    memset(g, 0, sizeof *g);
}

void tower_gather_item(tower_gather_t *g, const mmr_tower_config_t *c, int row,
                       const mmr_tower_item_in_t *in) {
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        g->present[row * MMR_TOWER_N_MOD + m] = in->x[m] != NULL;
        if (in->x[m]) {
            size_t w = (size_t)tower_width(c, m);
            memcpy(g->x[m] + (size_t)row * w, in->x[m], w * sizeof(float));
        }
    }
    g->item_id[row] = in->id_bucket;
}

mmr_tower_item_batch_t tower_gather_batch(const tower_gather_t *g, int n) {
    return (mmr_tower_item_batch_t){.n = n, .x = {g->x[0], g->x[1], g->x[2]},
                                    .present = g->present, .item_id = g->item_id};
}

mmr_status_t tower_encode_items_with(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                     tower_gather_t *g, size_t n, const mmr_tower_item_in_t *items,
                                     float *vec, float *gate, mmr_err_t *err) {
    int D = t->cfg.d_out;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)g->cap) {
        int k = n - i0 < (size_t)g->cap ? (int)(n - i0) : g->cap;
        for (int r = 0; r < k; r++) tower_gather_item(g, &t->cfg, r, &items[i0 + r]);
        mmr_tower_item_batch_t b = tower_gather_batch(g, k);
        mmr_status_t st = mmr_tower_item_forward(t, be, &b, vec + i0 * D,
                                                 gate ? gate + i0 * MMR_TOWER_N_MOD : NULL, err);
        if (st != MMR_OK) return st;
    }
    return MMR_OK;
}

mmr_status_t mmr_tower_encode_items(const mmr_tower_t *t, mmr_tower_backend_t *be, size_t n,
                                    const mmr_tower_item_in_t *items, float *vec, float *gate,
                                    mmr_err_t *err) {
    if (!t || (n > 0 && (!items || !vec)))
        return mmr_err_set(err, MMR_ERR_INVALID, "encode_items: NULL argument");
    if (n == 0) return MMR_OK;
    tower_gather_t g;
    int cap = n < TOWER_ENCODE_CHUNK ? (int)n : TOWER_ENCODE_CHUNK;
    mmr_status_t st = tower_gather_init(&g, &t->cfg, cap, err);
    if (st == MMR_OK) st = tower_encode_items_with(t, be, &g, n, items, vec, gate, err);
    tower_gather_free(&g);
    return st;
}

mmr_status_t mmr_tower_encode_user(const mmr_tower_t *t, mmr_tower_backend_t *be, int hist_len,
                                   const float *hist, const int32_t *hist_type,
                                   const float *hist_age, int32_t user_bucket, float *vec,
                                   mmr_err_t *err) {
    if (!t) return mmr_err_set(err, MMR_ERR_INVALID, "encode_user: NULL argument");
    // one user: only row 0 of (1, L, D) is read, and only its first hist_len entries
    int32_t n = hist_len > t->cfg.hist_len ? t->cfg.hist_len : hist_len;
    mmr_tower_user_batch_t b = {.n = 1, .hist = hist, .hist_type = hist_type,
                                .hist_age = hist_age, .hist_len = &n, .user_id = &user_bucket};
    return mmr_tower_user_forward(t, be, &b, vec, err);
}
