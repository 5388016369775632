/* tower.c — the tower object: parameter layout and initialisation, input validation,
 * dispatch to a backend, gradient bookkeeping and the optimizers (SGD, Adagrad dense and
 * row-wise sparse). The math itself is in tower_cpu.c (and tower_cuda.cu). */
#include "tower_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mmr_crc32c.h"
#include "mmr_rand.h"

/* Limits on dims: keep every index in int and a model under 16 GiB of floats. */
#define MAX_WIDTH (1 << 16)
#define MAX_IDS (1 << 26)
#define MAX_HIST 4096
#define MAX_TYPES 1024
#define MAX_PARAMS ((size_t)1 << 32)

static const char *const group_names[PG_COUNT] = {
    "item.W_text", "item.b_text", "item.e_text", "item.W_image", "item.b_image",
    "item.e_image", "item.W_video", "item.b_video", "item.e_video", "item.G", "item.c",
    "item.W1", "item.b1", "item.W2", "item.b2", "user.W_q", "user.b_q", "user.w_type",
    "user.lambda", "user.W1", "user.b1", "user.W2", "user.b2", "head.w", "item.E_id",
    "user.E_id",
};

static atomic_uint_fast64_t gen_counter;

mmr_tower_config_t mmr_tower_config_default(void) {
    return (mmr_tower_config_t){.d_text = 384, .d_image = 512, .d_video = 512, .d_hidden = 128,
                                .d_out = 64, .n_item_ids = 1 << 18, .n_user_ids = 1 << 18,
                                .hist_len = 32, .n_event_types = 9};
}

mmr_status_t tower_config_check(const mmr_tower_config_t *c, mmr_status_t code, mmr_err_t *err) {
    if (!c) return mmr_err_set(err, MMR_ERR_INVALID, "tower config is NULL");
    const struct { const char *name; int v, max; } f[] = {
        {"d_text", c->d_text, MAX_WIDTH},       {"d_image", c->d_image, MAX_WIDTH},
        {"d_video", c->d_video, MAX_WIDTH},     {"d_hidden", c->d_hidden, MAX_WIDTH},
        {"d_out", c->d_out, MAX_WIDTH},         {"n_item_ids", c->n_item_ids, MAX_IDS},
        {"n_user_ids", c->n_user_ids, MAX_IDS}, {"hist_len", c->hist_len, MAX_HIST},
        {"n_event_types", c->n_event_types, MAX_TYPES},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < 1 || f[i].v > f[i].max)
            return mmr_err_set(err, code, "tower config: %s = %d, want 1..%d", f[i].name, f[i].v,
                               f[i].max);
    return MMR_OK;
}

/* Shapes of every group for config c; offsets follow in group order. */
static void tower_layout(mmr_tower_t *t) {
    const mmr_tower_config_t *c = &t->cfg;
    int H = c->d_hidden, D = c->d_out;
    for (int g = 0; g < PG_COUNT; g++) t->rows[g] = 1;
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        t->rows[PG_ITEM_W(m)] = H, t->cols[PG_ITEM_W(m)] = tower_width(c, m);
        t->cols[PG_ITEM_B(m)] = H;
        t->cols[PG_ITEM_E(m)] = H;
    }
    t->rows[PG_ITEM_G] = 3, t->cols[PG_ITEM_G] = 3 * H;
    t->cols[PG_ITEM_C] = 3;
    t->rows[PG_ITEM_W1] = H, t->cols[PG_ITEM_W1] = H;
    t->cols[PG_ITEM_B1] = H;
    t->rows[PG_ITEM_W2] = D, t->cols[PG_ITEM_W2] = H;
    t->cols[PG_ITEM_B2] = D;
    t->rows[PG_USER_WQ] = D, t->cols[PG_USER_WQ] = D;
    t->cols[PG_USER_BQ] = D;
    t->cols[PG_USER_WTYPE] = c->n_event_types;
    t->cols[PG_USER_LAMBDA] = 1;
    t->rows[PG_USER_W1] = H, t->cols[PG_USER_W1] = 2 * D;
    t->cols[PG_USER_B1] = H;
    t->rows[PG_USER_W2] = D, t->cols[PG_USER_W2] = H;
    t->cols[PG_USER_B2] = D;
    t->cols[PG_HEAD_W] = 4;
    t->rows[PG_ITEM_EMB] = c->n_item_ids, t->cols[PG_ITEM_EMB] = D;
    t->rows[PG_USER_EMB] = c->n_user_ids, t->cols[PG_USER_EMB] = D;
    t->off[0] = 0;
    for (int g = 0; g < PG_COUNT; g++)
        t->off[g + 1] = t->off[g] + (size_t)t->rows[g] * (size_t)t->cols[g];
    t->n_params = t->off[PG_COUNT];
    t->n_dense = t->off[PG_DENSE_COUNT];
}

size_t tower_config_param_count(const mmr_tower_config_t *cfg) {
    mmr_tower_t t = {.cfg = *cfg};
    tower_layout(&t);
    return t.n_params;
}

int tower_config_equal(const mmr_tower_config_t *a, const mmr_tower_config_t *b) {
    return a->d_text == b->d_text && a->d_image == b->d_image && a->d_video == b->d_video &&
           a->d_hidden == b->d_hidden && a->d_out == b->d_out && a->n_item_ids == b->n_item_ids &&
           a->n_user_ids == b->n_user_ids && a->hist_len == b->hist_len &&
           a->n_event_types == b->n_event_types;
}

void tower_touch(mmr_tower_t *t) { t->gen = atomic_fetch_add(&gen_counter, 1) + 1; }

/* Weights of large towers sit on 2 MiB-aligned memory marked for transparent huge pages:
 * the trainer's snapshot copy of a 134 MB model then faults 64 pages instead of 33,000
 * (80 → 20 ms on the 2-core VM, docs/PERFORMANCE.md), and id-embedding lookups miss the
 * TLB less. Without THP the advice is ignored and the pages stay small. */
#define HUGE_PAGE ((size_t)2 << 20)

static float *params_alloc(size_t n, int zero) {
    size_t bytes = n * sizeof(float);
    if (bytes < HUGE_PAGE) return zero ? calloc(n, sizeof(float)) : malloc(bytes);
    size_t len = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    float *p = aligned_alloc(HUGE_PAGE, len);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    if (zero) memset(p, 0, bytes);
    return p;
}

mmr_status_t tower_alloc(const mmr_tower_config_t *cfg, int zero, mmr_tower_t **out, mmr_err_t *err) {
    *out = NULL;
    mmr_tower_t *t = calloc(1, sizeof *t);
    if (!t) return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory");
    t->cfg = *cfg;
    tower_layout(t);
    if (t->n_params > MAX_PARAMS) {
        size_t n = t->n_params;
        free(t);
        return mmr_err_set(err, MMR_ERR_INVALID, "tower config: %zu parameters, limit %zu", n,
                           MAX_PARAMS);
    }
    t->params = params_alloc(t->n_params, zero);
    if (!t->params) {
        size_t n = t->n_params;
        free(t);
        return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for %zu parameters", n);
    }
    tower_touch(t);
    *out = t;
    return MMR_OK;
}


static void fill_uniform(float *p, size_t n, float limit, uint64_t *s) {
    for (size_t i = 0; i < n; i++)
        p[i] = limit * (2.0f * (float)(mmr_rand_next(s) >> 40) / (float)(1 << 24) - 1.0f);
}

mmr_status_t mmr_tower_new(const mmr_tower_config_t *cfg, uint64_t seed, mmr_tower_t **out,
                           mmr_err_t *err) {
    if (!out) return mmr_err_set(err, MMR_ERR_INVALID, "tower_new: out is NULL");
    *out = NULL;
    mmr_status_t st = tower_config_check(cfg, MMR_ERR_INVALID, err);
    if (st != MMR_OK) return st;
    mmr_tower_t *t;
    if ((st = tower_alloc(cfg, 1, &t, err)) != MMR_OK) return st;
    static const int matrices[] = {PG_ITEM_W_TEXT, PG_ITEM_W_IMAGE, PG_ITEM_W_VIDEO,
                                   PG_ITEM_G,      PG_ITEM_W1,      PG_ITEM_W2,
                                   PG_USER_WQ,     PG_USER_W1,      PG_USER_W2};
    uint64_t s = seed;
    for (size_t i = 0; i < sizeof matrices / sizeof matrices[0]; i++) {
        int g = matrices[i];
        float limit = sqrtf(6.0f / (float)(t->rows[g] + t->cols[g])); // Glorot uniform
        fill_uniform(tower_param(t, g), (size_t)t->rows[g] * t->cols[g], limit, &s);
    }
    for (int m = 0; m < MMR_TOWER_N_MOD; m++)
        fill_uniform(tower_param(t, PG_ITEM_E(m)), (size_t)cfg->d_hidden, 0.1f, &s);
    tower_param(t, PG_HEAD_W)[0] = 1.0f; // p = sigmoid(u·v) to start with
    *out = t;
    return MMR_OK;
}

mmr_status_t mmr_tower_clone(const mmr_tower_t *t, mmr_tower_t **out, mmr_err_t *err) {
    if (!t || !out) return mmr_err_set(err, MMR_ERR_INVALID, "tower_clone: NULL argument");
    mmr_status_t st = tower_alloc(&t->cfg, 0, out, err);
    if (st != MMR_OK) return st;
    memcpy((*out)->params, t->params, t->n_params * sizeof(float));
    return MMR_OK;
}

void mmr_tower_free(mmr_tower_t *t) {
    if (!t) return;
    for (int k = 0; k < 2; k++) {
        free(t->sgrad[k].rows);
        free(t->sgrad[k].vals);
        free(t->sgrad[k].slot);
        free(t->acc_rows[k]);
    }
    free(t->acc);
    free(t->grads);
    free(t->params);
    free(t);
}

const mmr_tower_config_t *mmr_tower_get_config(const mmr_tower_t *t) { return &t->cfg; }

int32_t mmr_tower_id_bucket(const void *id, size_t len, int n_buckets) {
    if (n_buckets < 1) return -1;
    return (int32_t)(mmr_crc32c(0, id, len) % (uint32_t)n_buckets);
}

/* --- validation ------------------------------------------------------------------------ */

static int bad_float(float x) { return !isfinite(x); }

static mmr_status_t check_item_batch(const mmr_tower_config_t *c, const mmr_tower_item_batch_t *b,
                                     int finite, mmr_err_t *err) {
    if (!b || b->n < 0) return mmr_err_set(err, MMR_ERR_INVALID, "item batch: NULL or n < 0");
    if (b->n == 0) return MMR_OK;
    if (!b->present || !b->item_id)
        return mmr_err_set(err, MMR_ERR_INVALID, "item batch: present or item_id is NULL");
    for (int i = 0; i < b->n; i++) {
        for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
            uint8_t p = b->present[i * MMR_TOWER_N_MOD + m];
            if (p > 1)
                return mmr_err_set(err, MMR_ERR_INVALID, "item %d: present[%d] = %u, want 0|1",
                                   i, m, p);
            if (!p) continue;
            if (!b->x[m])
                return mmr_err_set(err, MMR_ERR_INVALID, "item %d: modality %d present, x NULL",
                                   i, m);
            if (finite) {
                int w = tower_width(c, m);
                for (int k = 0; k < w; k++)
                    if (bad_float(b->x[m][(size_t)i * w + k]))
                        return mmr_err_set(err, MMR_ERR_INVALID,
                                           "item %d: modality %d has a non-finite value", i, m);
            }
        }
        if (b->item_id[i] < -1 || b->item_id[i] >= c->n_item_ids)
            return mmr_err_set(err, MMR_ERR_INVALID, "item %d: item_id %d outside [-1, %d)", i,
                               b->item_id[i], c->n_item_ids);
    }
    return MMR_OK;
}

static mmr_status_t check_user_batch(const mmr_tower_config_t *c, const mmr_tower_user_batch_t *b,
                                     int finite, mmr_err_t *err) {
    if (!b || b->n < 0) return mmr_err_set(err, MMR_ERR_INVALID, "user batch: NULL or n < 0");
    if (b->n == 0) return MMR_OK;
    if (!b->hist_len || !b->user_id)
        return mmr_err_set(err, MMR_ERR_INVALID, "user batch: hist_len or user_id is NULL");
    int L = c->hist_len, D = c->d_out;
    for (int i = 0; i < b->n; i++) {
        int n = b->hist_len[i];
        if (n < 0 || n > L)
            return mmr_err_set(err, MMR_ERR_INVALID, "user %d: hist_len %d outside [0, %d]", i, n,
                               L);
        if (n > 0 && (!b->hist || !b->hist_type || !b->hist_age))
            return mmr_err_set(err, MMR_ERR_INVALID, "user %d: history arrays are NULL", i);
        for (int j = 0; j < n; j++) {
            size_t ij = (size_t)i * L + j;
            if (b->hist_type[ij] < 0 || b->hist_type[ij] >= c->n_event_types)
                return mmr_err_set(err, MMR_ERR_INVALID, "user %d: event type %d outside [0, %d)",
                                   i, b->hist_type[ij], c->n_event_types);
            if (bad_float(b->hist_age[ij]) || b->hist_age[ij] < 0)
                return mmr_err_set(err, MMR_ERR_INVALID, "user %d: age %g is not finite and >= 0",
                                   i, (double)b->hist_age[ij]);
            if (finite)
                for (int k = 0; k < D; k++)
                    if (bad_float(b->hist[ij * D + k]))
                        return mmr_err_set(err, MMR_ERR_INVALID,
                                           "user %d: history vector %d is not finite", i, j);
        }
        if (b->user_id[i] < -1 || b->user_id[i] >= c->n_user_ids)
            return mmr_err_set(err, MMR_ERR_INVALID, "user %d: user_id %d outside [-1, %d)", i,
                               b->user_id[i], c->n_user_ids);
    }
    return MMR_OK;
}

static mmr_status_t check_batch(const mmr_tower_config_t *c, const mmr_tower_batch_t *b,
                                mmr_err_t *err) {
    if (!b) return mmr_err_set(err, MMR_ERR_INVALID, "batch is NULL");
    if (b->item.n != b->user.n)
        return mmr_err_set(err, MMR_ERR_INVALID, "batch: %d items but %d users", b->item.n,
                           b->user.n);
    mmr_status_t st = check_item_batch(c, &b->item, 1, err);
    if (st == MMR_OK) st = check_user_batch(c, &b->user, 1, err);
    if (st != MMR_OK || b->item.n == 0) return st;
    if (!b->popularity || !b->recency || !b->label)
        return mmr_err_set(err, MMR_ERR_INVALID, "batch: popularity, recency or label is NULL");
    for (int i = 0; i < b->item.n; i++) {
        if (bad_float(b->popularity[i]) || b->popularity[i] < 0 || bad_float(b->recency[i]))
            return mmr_err_set(err, MMR_ERR_INVALID, "example %d: bad popularity or recency", i);
        if (!(b->label[i] >= 0 && b->label[i] <= 1))
            return mmr_err_set(err, MMR_ERR_INVALID, "example %d: label %g outside [0, 1]", i,
                               (double)b->label[i]);
    }
    return MMR_OK;
}

/* --- dispatch ------------------------------------------------------------------------ */

static mmr_tower_backend_t *backend_or_cpu(mmr_tower_backend_t *be) {
    return be ? be : mmr_tower_backend_cpu();
}

static mmr_status_t unsupported(const mmr_tower_backend_t *be, const char *what, mmr_err_t *err) {
    return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "backend %s has no %s", be->name, what);
}

mmr_status_t mmr_tower_item_forward(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                    const mmr_tower_item_batch_t *b, float *vec, float *gate,
                                    mmr_err_t *err) {
    if (!t || !vec) return mmr_err_set(err, MMR_ERR_INVALID, "item_forward: NULL argument");
    mmr_status_t st = check_item_batch(&t->cfg, b, 0, err);
    if (st != MMR_OK || b->n == 0) return st;
    be = backend_or_cpu(be);
    if (!be->item_forward) return unsupported(be, "item tower", err);
    return be->item_forward(be, t, b, vec, gate, err);
}

mmr_status_t mmr_tower_user_forward(const mmr_tower_t *t, mmr_tower_backend_t *be,
                                    const mmr_tower_user_batch_t *b, float *vec, mmr_err_t *err) {
    if (!t || !vec) return mmr_err_set(err, MMR_ERR_INVALID, "user_forward: NULL argument");
    mmr_status_t st = check_user_batch(&t->cfg, b, 0, err);
    if (st != MMR_OK || b->n == 0) return st;
    be = backend_or_cpu(be);
    if (!be->user_forward) return unsupported(be, "user tower", err);
    return be->user_forward(be, t, b, vec, err);
}

/* --- gradients ----------------------------------------------------------------------- */

/* Allocates the gradient buffers on first use, makes room for B rows per id table and
 * zeroes everything the last batch wrote. */
static mmr_status_t grads_reset(mmr_tower_t *t, int B, mmr_err_t *err) {
    const int n_ids[2] = {t->cfg.n_item_ids, t->cfg.n_user_ids};
    int D = t->cfg.d_out;
    if (!t->grads && !(t->grads = calloc(t->n_dense, sizeof(float)))) goto nomem;
    memset(t->grads, 0, t->n_dense * sizeof(float));
    for (int k = 0; k < 2; k++) {
        tower_sparse_grad_t *sg = &t->sgrad[k];
        if (!sg->slot) {
            if (!(sg->slot = malloc((size_t)n_ids[k] * sizeof(int32_t)))) goto nomem;
            for (int r = 0; r < n_ids[k]; r++) sg->slot[r] = -1;
        }
        for (int e = 0; e < sg->n; e++) sg->slot[sg->rows[e]] = -1;
        sg->n = 0;
        if (sg->cap < B) {
            int32_t *rows = realloc(sg->rows, (size_t)B * sizeof *rows);
            if (!rows) goto nomem;
            sg->rows = rows;
            float *vals = realloc(sg->vals, (size_t)B * D * sizeof *vals);
            if (!vals) goto nomem;
            sg->vals = vals;
            sg->cap = B;
        }
    }
    return MMR_OK;
nomem:
    return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for gradients");
}

float *tower_sparse_grad_row(mmr_tower_t *t, int tab, int32_t row) {
    tower_sparse_grad_t *sg = &t->sgrad[tab];
    int D = t->cfg.d_out;
    int e = sg->slot[row];
    if (e < 0) { // first touch; grads_reset made room for a batch's worth of rows
        e = sg->n++;
        sg->slot[row] = e;
        sg->rows[e] = row;
        memset(sg->vals + (size_t)e * D, 0, (size_t)D * sizeof(float));
    }
    return sg->vals + (size_t)e * D;
}

mmr_status_t mmr_tower_forward_backward(mmr_tower_t *t, mmr_tower_backend_t *be,
                                        const mmr_tower_batch_t *b, float *loss, mmr_err_t *err) {
    if (!t || !loss) return mmr_err_set(err, MMR_ERR_INVALID, "forward_backward: NULL argument");
    mmr_status_t st = check_batch(&t->cfg, b, err);
    if (st != MMR_OK) return st;
    be = backend_or_cpu(be);
    if (!be->forward_backward) return unsupported(be, "training", err);
    if ((st = grads_reset(t, b->item.n, err)) != MMR_OK) return st;
    *loss = 0.0f;
    if (b->item.n == 0) return MMR_OK;
    return be->forward_backward(be, t, b, loss, err);
}

void mmr_tower_grad_read(const mmr_tower_t *t, int g, float *dst) {
    size_t n = t->off[g + 1] - t->off[g];
    memset(dst, 0, n * sizeof(float));
    if (!t->grads) return;
    if (g < PG_DENSE_COUNT) {
        memcpy(dst, tower_grad(t, g), n * sizeof(float));
        return;
    }
    const tower_sparse_grad_t *sg = &t->sgrad[g - PG_ITEM_EMB];
    int D = t->cfg.d_out;
    for (int e = 0; e < sg->n; e++)
        memcpy(dst + (size_t)sg->rows[e] * D, sg->vals + (size_t)e * D, (size_t)D * sizeof(float));
}

/* --- optimizers ---------------------------------------------------------------------- */

mmr_status_t tower_optim_check(const mmr_tower_optim_t *o, mmr_err_t *err) {
    if ((o->kind != MMR_TOWER_OPT_SGD && o->kind != MMR_TOWER_OPT_ADAGRAD) ||
        !(o->lr >= 0 && o->lr < INFINITY) || !(o->lr_sparse >= 0 && o->lr_sparse < INFINITY) ||
        (o->kind == MMR_TOWER_OPT_ADAGRAD && !(o->adagrad_eps > 0 && o->adagrad_init >= 0)))
        return mmr_err_set(err, MMR_ERR_INVALID, "bad optimizer settings (kind %d, lr %g, "
                           "lr_sparse %g, adagrad init %g eps %g)", (int)o->kind, (double)o->lr,
                           (double)o->lr_sparse, (double)o->adagrad_init, (double)o->adagrad_eps);
    return MMR_OK;
}

mmr_status_t tower_adagrad_alloc(mmr_tower_t *t, float init, mmr_err_t *err) {
    if (t->acc) return MMR_OK;
    const int n_ids[2] = {t->cfg.n_item_ids, t->cfg.n_user_ids};
    float *acc = malloc(t->n_dense * sizeof(float));
    float *rows0 = malloc((size_t)n_ids[0] * sizeof(float));
    float *rows1 = malloc((size_t)n_ids[1] * sizeof(float));
    if (!acc || !rows0 || !rows1) {
        free(acc), free(rows0), free(rows1);
        return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for Adagrad state");
    }
    for (size_t i = 0; i < t->n_dense; i++) acc[i] = init;
    for (int r = 0; r < n_ids[0]; r++) rows0[r] = init;
    for (int r = 0; r < n_ids[1]; r++) rows1[r] = init;
    t->acc = acc, t->acc_rows[0] = rows0, t->acc_rows[1] = rows1;
    return MMR_OK;
}

mmr_status_t mmr_tower_update(mmr_tower_t *t, const mmr_tower_optim_t *o, mmr_err_t *err) {
    if (!t || !o) return mmr_err_set(err, MMR_ERR_INVALID, "tower_update: NULL argument");
    if (!t->grads) return mmr_err_set(err, MMR_ERR_INVALID, "tower_update: no gradients yet");
    mmr_status_t st = tower_optim_check(o, err);
    if (st != MMR_OK) return st;
    int adagrad = o->kind == MMR_TOWER_OPT_ADAGRAD;
    if (adagrad && (st = tower_adagrad_alloc(t, o->adagrad_init, err)) != MMR_OK) return st;
    float *p = t->params, *g = t->grads;
    for (size_t i = 0; i < t->n_dense; i++) {
        if (adagrad) {
            t->acc[i] += g[i] * g[i];
            p[i] -= o->lr * g[i] / (sqrtf(t->acc[i]) + o->adagrad_eps);
        } else {
            p[i] -= o->lr * g[i];
        }
    }
    int D = t->cfg.d_out;
    for (int k = 0; k < 2; k++) {
        const tower_sparse_grad_t *sg = &t->sgrad[k];
        float *table = tower_param(t, PG_ITEM_EMB + k); // (n_ids, D)
        for (int e = 0; e < sg->n; e++) {
            float *row = table + (size_t)sg->rows[e] * D; // row is (D)
            const float *gr = sg->vals + (size_t)e * D;   // gr is (D)
            float step = o->lr_sparse;
            if (adagrad) {
                float ms = 0.0f;
                for (int d = 0; d < D; d++) ms += gr[d] * gr[d];
                float *acc = &t->acc_rows[k][sg->rows[e]];
                *acc += ms / (float)D;
                step = o->lr_sparse / (sqrtf(*acc) + o->adagrad_eps);
            }
            for (int d = 0; d < D; d++) row[d] -= step * gr[d];
        }
    }
    tower_touch(t);
    return MMR_OK;
}

mmr_status_t mmr_tower_train_step(mmr_tower_t *t, mmr_tower_backend_t *be,
                                  const mmr_tower_batch_t *b, const mmr_tower_optim_t *opt,
                                  float *loss, mmr_err_t *err) {
    mmr_status_t st = mmr_tower_forward_backward(t, be, b, loss, err);
    if (st != MMR_OK) return st;
    return mmr_tower_update(t, opt, err);
}

/* --- parameters ---------------------------------------------------------------------- */

int mmr_tower_param_group_count(void) { return PG_COUNT; }

void mmr_tower_param_group(const mmr_tower_t *t, int g, mmr_tower_param_info_t *out) {
    out->name = group_names[g];
    out->offset = t->off[g];
    out->rows = t->rows[g];
    out->cols = t->cols[g];
    out->sparse = g >= PG_DENSE_COUNT;
}

float *mmr_tower_params(mmr_tower_t *t) { return t->params; }
size_t mmr_tower_param_count(const mmr_tower_t *t) { return t->n_params; }
void mmr_tower_params_changed(mmr_tower_t *t) { tower_touch(t); }

/* --- backends ------------------------------------------------------------------------ */

void mmr_tower_backend_free(mmr_tower_backend_t *be) {
    if (be && be->free) be->free(be);
}

const char *mmr_tower_backend_name(const mmr_tower_backend_t *be) {
    return be ? be->name : mmr_tower_backend_cpu()->name;
}

#ifndef MMR_TOWER_HAVE_CUDA
mmr_status_t mmr_tower_backend_cuda_new(int device, mmr_tower_backend_t **out, mmr_err_t *err) {
    if (out) *out = NULL;
    return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "mmrec was built without CUDA");
}
#endif
