/* tower_cpu.c — the CPU reference backend: the specification of the tower math, forward
 * and backward, in plain C loops plus row-major GEMMs (tower_sgemm.h). Inputs arrive
 * validated (tower.c); optimizers live in tower.c. Other backends must match this file.
 *
 * Notation: B batch, H = d_hidden, D = d_out, L = hist_len, m in {text, image, video} with
 * width d_m, eps = 1e-12, sigma = logistic function, |x|_eps = sqrt(|x|^2 + eps).
 *
 * Item tower, per item (x_m, present_m, id):
 *   h_m = W_m x_m + b_m  if present_m, else e_m          (H)   W_m (H, d_m), e_m learned
 *   l   = G [h_text; h_image; h_video] + c                (3)   G (3, 3H)
 *   g   = softmax(l)                                      (3)   the gate, returned
 *   f   = sum_m g_m h_m                                   (H)
 *   z   = relu(W1 f + b1)                                 (H)   W1 (H, H)
 *   v   = W2 z + b2 + [id >= 0] E_item[id]                (D)   W2 (D, H), E_item (n_item_ids, D)
 *   y   = v / |v|_eps                                     (D)   the item vector
 *
 * User tower, per user (history item vectors k_0..k_{n-1}, type_j, age_j, id), n <= L:
 *   e   = E_user[id] if id >= 0, else 0                   (D)   E_user (n_user_ids, D)
 *   q   = W_q e + b_q                                     (D)   W_q (D, D)
 *   s_j = q.k_j / sqrt(D) + w_type[type_j] - lambda age_j      j < n
 *   a   = softmax_j(s)                                    (n)
 *   P   = sum_j a_j k_j  (0 when n = 0)                   (D)
 *   r   = W_u2 relu(W_u1 [P; e] + b_u1) + b_u2            (D)   W_u1 (H, 2D), W_u2 (D, H)
 *   u   = r / |r|_eps                                     (D)   the user vector
 *   w_type (T) and lambda are learned; ages are in the caller's unit. The k_j are inputs:
 *   no gradient flows back into the item tower through a history.
 *
 * Head and loss, per example (u, y, popularity pi, recency rho, label t in [0, 1]):
 *   phi  = [u.y, log1p(pi), rho, 1]                       (4)
 *   o    = w.phi,  p = sigma(o)                                 w (4), starts at [1,0,0,0]
 *   loss = (1/B) sum_b softplus(o) - t o                  = mean binary cross-entropy
 *
 * Backward is the chain rule through exactly these steps, written out in the backward
 * functions; the normalisation's Jacobian is (I - y y^T) / |v|_eps, a softmax's
 * diag(g) - g g^T. Gradients of the id tables go to row-wise sparse buffers. */
#include "tower_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tower_sgemm.h"

#define NORM_EPS 1e-12f
#ifdef MMR_TOWER_HAVE_BLAS
#define SGEMM_IMPL "cblas"
#else
#define SGEMM_IMPL "plain-c sgemm"
#endif

/* --- scratch ------------------------------------------------------------------------- */

/* A bump allocator over one block. With base == NULL it only counts, so the same layout
 * function sizes the block and then hands out its pieces. */
typedef struct arena { float *base; size_t used; } arena_t;

static float *take(arena_t *ar, size_t n) {
    float *p = ar->base ? ar->base + ar->used : NULL;
    ar->used += (n + 15) & ~(size_t)15; // 64-byte pieces
    return p;
}

typedef void (*layout_fn)(void *acts, arena_t *ar, const mmr_tower_config_t *c, int B);

/* Lays acts out in a fresh block and returns the block (free() it), or NULL. */
static float *scratch_new(layout_fn layout, void *acts, const mmr_tower_config_t *c, int B) {
    arena_t ar = {NULL, 0};
    layout(acts, &ar, c, B);
    ar.base = aligned_alloc(64, ar.used * sizeof(float));
    if (!ar.base) return NULL;
    ar.used = 0;
    layout(acts, &ar, c, B);
    return ar.base;
}

/* --- small helpers ------------------------------------------------------------------- */

static void add_bias(float *X, const float *bias, int B, int N) {
    for (int b = 0; b < B; b++)
        for (int k = 0; k < N; k++) X[(size_t)b * N + k] += bias[k];
}

/* db (N) += column sums of dX (B, N) with row stride ld. */
static void add_colsum(float *db, const float *dX, int B, int N, int ld) {
    for (int b = 0; b < B; b++)
        for (int k = 0; k < N; k++) db[k] += dX[(size_t)b * ld + k];
}

static float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* v (D) becomes v / |v|_eps; returns |v|_eps. */
static float l2_normalise(float *v, int D) {
    float n = sqrtf(dot(v, v, D) + NORM_EPS);
    for (int d = 0; d < D; d++) v[d] /= n;
    return n;
}

/* dv = (dy - y (y.dy)) / n for y = v / n. */
static void l2_normalise_backward(const float *y, float n, const float *dy, float *dv, int D) {
    float yd = dot(y, dy, D);
    for (int d = 0; d < D; d++) dv[d] = (dy[d] - y[d] * yd) / n;
}

/* x (n) becomes softmax(x). */
static void softmax(float *x, int n) {
    float mx = x[0], s = 0.0f;
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) s += (x[i] = expf(x[i] - mx));
    for (int i = 0; i < n; i++) x[i] /= s;
}

static float sigmoid(float o) {
    if (o >= 0) return 1.0f / (1.0f + expf(-o));
    float e = expf(o);
    return e / (1.0f + e);
}

/* log(1 + e^o) without overflow. */
static float softplus(float o) { return fmaxf(o, 0.0f) + log1pf(expf(-fabsf(o))); }

/* --- item tower ---------------------------------------------------------------------- */

typedef struct item_acts {
    float *xp[MMR_TOWER_N_MOD]; // xp[m] is (B, d_m): room to compact the present rows of x[m]
    const float *xs[MMR_TOWER_N_MOD]; // (P_m, d_m) the present rows: xp[m], or x[m] if all are
    float *hp;     // (B, H) W_m xp[m] for one modality at a time
    float *hcat;   // (B, 3H) [h_text; h_image; h_video]
    float *gate;   // (B, 3) logits, then softmax
    float *fused;  // (B, H)
    float *a1;     // (B, H) W1 f + b1
    float *z;      // (B, H) relu(a1)
    float *y;      // (B, D) item vectors
    float *nrm;    // (B) |v|_eps
    /* backward only (NULL in inference layouts) */
    float *dv;     // (B, D)
    float *dz;     // (B, H), becomes d a1 in place
    float *df;     // (B, H)
    float *dh;     // (B, 3H)
    float *dl;     // (B, 3)
} item_acts_t;

static void item_acts_layout_(item_acts_t *a, arena_t *ar, const mmr_tower_config_t *c, int B,
                              int train) {
    size_t H = (size_t)c->d_hidden, D = (size_t)c->d_out;
    memset(a, 0, sizeof *a);
    if (train) { // backward needs every modality's inputs
        for (int m = 0; m < MMR_TOWER_N_MOD; m++)
            a->xp[m] = take(ar, (size_t)B * tower_width(c, m));
    } else {     // inference reuses one buffer
        int w = c->d_text > c->d_image ? c->d_text : c->d_image;
        w = w > c->d_video ? w : c->d_video;
        a->xp[0] = a->xp[1] = a->xp[2] = take(ar, (size_t)B * w);
    }
    a->hp = take(ar, B * H);
    a->hcat = take(ar, B * 3 * H);
    a->gate = take(ar, (size_t)B * 3);
    a->fused = take(ar, B * H);
    a->a1 = take(ar, B * H);
    a->z = take(ar, B * H);
    a->y = take(ar, B * D);
    a->nrm = take(ar, (size_t)B);
    if (!train) return;
    a->dv = take(ar, B * D);
    a->dz = take(ar, B * H);
    a->df = take(ar, B * H);
    a->dh = take(ar, B * 3 * H);
    a->dl = take(ar, (size_t)B * 3);
}

static void item_acts_layout(void *a, arena_t *ar, const mmr_tower_config_t *c, int B) {
    item_acts_layout_(a, ar, c, B, 0);
}

static void item_forward(const mmr_tower_t *t, const mmr_tower_item_batch_t *ib, item_acts_t *a) {
    const mmr_tower_config_t *c = &t->cfg;
    int B = ib->n, H = c->d_hidden, H3 = 3 * H, D = c->d_out;
    // h_m: present rows through W_m, absent rows take the missing vector e_m
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        int dm = tower_width(c, m);
        const float *W = tower_param(t, PG_ITEM_W(m));    // W is (H, dm)
        const float *bias = tower_param(t, PG_ITEM_B(m)); // bias is (H)
        const float *e = tower_param(t, PG_ITEM_E(m));    // e is (H)
        int P = 0;
        for (int b = 0; b < B; b++) P += ib->present[b * 3 + m];
        a->xs[m] = P == B ? ib->x[m] : a->xp[m];
        if (P < B)
            for (int b = 0, p = 0; b < B; b++)
                if (ib->present[b * 3 + m])
                    memcpy(a->xp[m] + (size_t)p++ * dm, ib->x[m] + (size_t)b * dm,
                           (size_t)dm * sizeof(float));
        // hp (P, H) = xs (P, dm) W^T
        mmr_tower_sgemm(0, 1, P, H, dm, 1.0f, a->xs[m], dm, W, dm, 0.0f, a->hp, H);
        for (int b = 0, p = 0; b < B; b++) {
            float *h = a->hcat + (size_t)b * H3 + (size_t)m * H; // h is (H)
            if (ib->present[b * 3 + m]) {
                const float *hp = a->hp + (size_t)p++ * H;
                for (int k = 0; k < H; k++) h[k] = hp[k] + bias[k];
            } else {
                memcpy(h, e, (size_t)H * sizeof(float));
            }
        }
    }
    // gate (B, 3) = softmax(hcat (B, 3H) G^T + c)
    const float *G = tower_param(t, PG_ITEM_G); // G is (3, 3H)
    mmr_tower_sgemm(0, 1, B, 3, H3, 1.0f, a->hcat, H3, G, H3, 0.0f, a->gate, 3);
    add_bias(a->gate, tower_param(t, PG_ITEM_C), B, 3);
    for (int b = 0; b < B; b++) softmax(a->gate + (size_t)b * 3, 3);
    // fused (B, H) = sum_m g_m h_m
    for (int b = 0; b < B; b++) {
        const float *g = a->gate + (size_t)b * 3, *h = a->hcat + (size_t)b * H3;
        float *f = a->fused + (size_t)b * H;
        for (int k = 0; k < H; k++) f[k] = g[0] * h[k] + g[1] * h[H + k] + g[2] * h[2 * H + k];
    }
    // z (B, H) = relu(fused W1^T + b1)
    mmr_tower_sgemm(0, 1, B, H, H, 1.0f, a->fused, H, tower_param(t, PG_ITEM_W1), H, 0.0f,
                    a->a1, H);
    add_bias(a->a1, tower_param(t, PG_ITEM_B1), B, H);
    for (size_t i = 0; i < (size_t)B * H; i++) a->z[i] = a->a1[i] > 0.0f ? a->a1[i] : 0.0f;
    // v (B, D) = z W2^T + b2 + E_item[id]; y = v / |v|_eps
    mmr_tower_sgemm(0, 1, B, D, H, 1.0f, a->z, H, tower_param(t, PG_ITEM_W2), H, 0.0f, a->y, D);
    add_bias(a->y, tower_param(t, PG_ITEM_B2), B, D);
    const float *E = tower_param(t, PG_ITEM_EMB); // E is (n_item_ids, D)
    for (int b = 0; b < B; b++) {
        float *v = a->y + (size_t)b * D;
        if (ib->item_id[b] >= 0) {
            const float *row = E + (size_t)ib->item_id[b] * D;
            for (int d = 0; d < D; d++) v[d] += row[d];
        }
        a->nrm[b] = l2_normalise(v, D);
    }
}

/* Accumulates the gradients of every item-tower parameter given dy (B, D) = dloss/dy. */
static void item_backward(mmr_tower_t *t, const mmr_tower_item_batch_t *ib, item_acts_t *a,
                          const float *dy) {
    const mmr_tower_config_t *c = &t->cfg;
    int B = ib->n, H = c->d_hidden, H3 = 3 * H, D = c->d_out;
    // dv = (dy - y (y.dy)) / |v|_eps; the id row gets dv as is
    for (int b = 0; b < B; b++) {
        float *dv = a->dv + (size_t)b * D;
        l2_normalise_backward(a->y + (size_t)b * D, a->nrm[b], dy + (size_t)b * D, dv, D);
        if (ib->item_id[b] >= 0) {
            float *g = tower_sparse_grad_row(t, 0, ib->item_id[b]);
            for (int d = 0; d < D; d++) g[d] += dv[d];
        }
    }
    // dW2 (D, H) += dv^T z; db2 += colsum dv; dz (B, H) = dv W2, masked by relu
    const float *W2 = tower_param(t, PG_ITEM_W2);
    mmr_tower_sgemm(1, 0, D, H, B, 1.0f, a->dv, D, a->z, H, 1.0f, tower_grad(t, PG_ITEM_W2), H);
    add_colsum(tower_grad(t, PG_ITEM_B2), a->dv, B, D, D);
    mmr_tower_sgemm(0, 0, B, H, D, 1.0f, a->dv, D, W2, H, 0.0f, a->dz, H);
    for (size_t i = 0; i < (size_t)B * H; i++)
        if (a->a1[i] <= 0.0f) a->dz[i] = 0.0f;
    // dW1 (H, H) += da1^T fused; db1 += colsum da1; df (B, H) = da1 W1
    const float *W1 = tower_param(t, PG_ITEM_W1);
    mmr_tower_sgemm(1, 0, H, H, B, 1.0f, a->dz, H, a->fused, H, 1.0f, tower_grad(t, PG_ITEM_W1),
                    H);
    add_colsum(tower_grad(t, PG_ITEM_B1), a->dz, B, H, H);
    mmr_tower_sgemm(0, 0, B, H, H, 1.0f, a->dz, H, W1, H, 0.0f, a->df, H);
    // through f = sum g_m h_m: dh_m = g_m df, dg_m = df.h_m; then the softmax:
    // dl = g * (dg - g.dg)
    for (int b = 0; b < B; b++) {
        const float *g = a->gate + (size_t)b * 3, *h = a->hcat + (size_t)b * H3;
        const float *df = a->df + (size_t)b * H;
        float *dh = a->dh + (size_t)b * H3, *dl = a->dl + (size_t)b * 3;
        float dg[3], gdg = 0.0f;
        for (int m = 0; m < 3; m++) {
            dg[m] = dot(df, h + (size_t)m * H, H);
            gdg += g[m] * dg[m];
            for (int k = 0; k < H; k++) dh[(size_t)m * H + k] = g[m] * df[k];
        }
        for (int m = 0; m < 3; m++) dl[m] = g[m] * (dg[m] - gdg);
    }
    // dG (3, 3H) += dl^T hcat; dc += colsum dl; dh (B, 3H) += dl G
    const float *G = tower_param(t, PG_ITEM_G);
    mmr_tower_sgemm(1, 0, 3, H3, B, 1.0f, a->dl, 3, a->hcat, H3, 1.0f, tower_grad(t, PG_ITEM_G),
                    H3);
    add_colsum(tower_grad(t, PG_ITEM_C), a->dl, B, 3, 3);
    mmr_tower_sgemm(0, 0, B, H3, 3, 1.0f, a->dl, 3, G, H3, 1.0f, a->dh, H3);
    // per modality: present rows feed W_m and b_m, absent rows the missing vector e_m
    for (int m = 0; m < MMR_TOWER_N_MOD; m++) {
        int dm = tower_width(c, m), P = 0;
        float *db = tower_grad(t, PG_ITEM_B(m)), *de = tower_grad(t, PG_ITEM_E(m));
        for (int b = 0; b < B; b++) {
            const float *dh = a->dh + (size_t)b * H3 + (size_t)m * H; // dh is (H)
            if (ib->present[b * 3 + m]) {
                memcpy(a->hp + (size_t)P++ * H, dh, (size_t)H * sizeof(float)); // hp: dh rows
                for (int k = 0; k < H; k++) db[k] += dh[k];
            } else {
                for (int k = 0; k < H; k++) de[k] += dh[k];
            }
        }
        // dW_m (H, dm) += dh_present^T (H, P) xs (P, dm)
        mmr_tower_sgemm(1, 0, H, dm, P, 1.0f, a->hp, H, a->xs[m], dm, 1.0f,
                        tower_grad(t, PG_ITEM_W(m)), dm);
    }
}

/* --- user tower ---------------------------------------------------------------------- */

typedef struct user_acts {
    float *ui;    // (B, 2D) [P; e] per user
    float *q;     // (B, D)
    float *attn;  // (B, L) a_j, 0 past hist_len
    float *au;    // (B, H) W_u1 [P; e] + b_u1
    float *hu;    // (B, H) relu(au)
    float *u;     // (B, D) user vectors
    float *nrm;   // (B) |r|_eps
    /* backward only */
    float *dr;    // (B, D)
    float *dhu;   // (B, H), becomes d au in place
    float *dui;   // (B, 2D)
    float *dq;    // (B, D)
} user_acts_t;

static void user_acts_layout_(user_acts_t *a, arena_t *ar, const mmr_tower_config_t *c, int B,
                              int train) {
    size_t H = (size_t)c->d_hidden, D = (size_t)c->d_out, L = (size_t)c->hist_len;
    memset(a, 0, sizeof *a);
    a->ui = take(ar, B * 2 * D);
    a->q = take(ar, B * D);
    a->attn = take(ar, B * L);
    a->au = take(ar, B * H);
    a->hu = take(ar, B * H);
    a->u = take(ar, B * D);
    a->nrm = take(ar, (size_t)B);
    if (!train) return;
    a->dr = take(ar, B * D);
    a->dhu = take(ar, B * H);
    a->dui = take(ar, B * 2 * D);
    a->dq = take(ar, B * D);
}

static void user_acts_layout(void *a, arena_t *ar, const mmr_tower_config_t *c, int B) {
    user_acts_layout_(a, ar, c, B, 0);
}

static void user_forward(const mmr_tower_t *t, const mmr_tower_user_batch_t *ub, user_acts_t *a) {
    const mmr_tower_config_t *c = &t->cfg;
    int B = ub->n, H = c->d_hidden, D = c->d_out, D2 = 2 * D, L = c->hist_len;
    // e: the user-id row, or 0, into the second half of ui
    const float *E = tower_param(t, PG_USER_EMB); // E is (n_user_ids, D)
    for (int b = 0; b < B; b++) {
        float *e = a->ui + (size_t)b * D2 + D;
        if (ub->user_id[b] >= 0)
            memcpy(e, E + (size_t)ub->user_id[b] * D, (size_t)D * sizeof(float));
        else
            memset(e, 0, (size_t)D * sizeof(float));
    }
    // q (B, D) = e W_q^T + b_q
    mmr_tower_sgemm(0, 1, B, D, D, 1.0f, a->ui + D, D2, tower_param(t, PG_USER_WQ), D, 0.0f, a->q,
                    D);
    add_bias(a->q, tower_param(t, PG_USER_BQ), B, D);
    // attention pooling: P = sum_j softmax_j(q.k_j / sqrt(D) + w_type - lambda age) k_j
    const float *wtype = tower_param(t, PG_USER_WTYPE);
    float lambda = tower_param(t, PG_USER_LAMBDA)[0], inv_sqrt_d = 1.0f / sqrtf((float)D);
    for (int b = 0; b < B; b++) {
        int n = ub->hist_len[b];
        float *s = a->attn + (size_t)b * L, *P = a->ui + (size_t)b * D2;
        memset(s, 0, (size_t)L * sizeof(float));
        memset(P, 0, (size_t)D * sizeof(float));
        if (n == 0) continue; // hist may be NULL when no user has a history
        const float *K = ub->hist + (size_t)b * L * D, *q = a->q + (size_t)b * D; // K is (L, D)
        for (int j = 0; j < n; j++) {
            size_t bj = (size_t)b * L + j;
            s[j] = dot(q, K + (size_t)j * D, D) * inv_sqrt_d + wtype[ub->hist_type[bj]] -
                   lambda * ub->hist_age[bj];
        }
        softmax(s, n);
        for (int j = 0; j < n; j++)
            for (int d = 0; d < D; d++) P[d] += s[j] * K[(size_t)j * D + d];
    }
    // hu (B, H) = relu(ui W_u1^T + b_u1); r (B, D) = hu W_u2^T + b_u2; u = r / |r|_eps
    mmr_tower_sgemm(0, 1, B, H, D2, 1.0f, a->ui, D2, tower_param(t, PG_USER_W1), D2, 0.0f, a->au,
                    H);
    add_bias(a->au, tower_param(t, PG_USER_B1), B, H);
    for (size_t i = 0; i < (size_t)B * H; i++) a->hu[i] = a->au[i] > 0.0f ? a->au[i] : 0.0f;
    mmr_tower_sgemm(0, 1, B, D, H, 1.0f, a->hu, H, tower_param(t, PG_USER_W2), H, 0.0f, a->u, D);
    add_bias(a->u, tower_param(t, PG_USER_B2), B, D);
    for (int b = 0; b < B; b++) a->nrm[b] = l2_normalise(a->u + (size_t)b * D, D);
}

/* Accumulates the gradients of every user-tower parameter given du (B, D) = dloss/du. */
static void user_backward(mmr_tower_t *t, const mmr_tower_user_batch_t *ub, user_acts_t *a,
                          const float *du) {
    const mmr_tower_config_t *c = &t->cfg;
    int B = ub->n, H = c->d_hidden, D = c->d_out, D2 = 2 * D, L = c->hist_len;
    for (int b = 0; b < B; b++)
        l2_normalise_backward(a->u + (size_t)b * D, a->nrm[b], du + (size_t)b * D,
                              a->dr + (size_t)b * D, D);
    // dW_u2 (D, H) += dr^T hu; db_u2 += colsum dr; dhu (B, H) = dr W_u2, masked by relu
    mmr_tower_sgemm(1, 0, D, H, B, 1.0f, a->dr, D, a->hu, H, 1.0f, tower_grad(t, PG_USER_W2), H);
    add_colsum(tower_grad(t, PG_USER_B2), a->dr, B, D, D);
    const float *W2 = tower_param(t, PG_USER_W2), *W1 = tower_param(t, PG_USER_W1);
    mmr_tower_sgemm(0, 0, B, H, D, 1.0f, a->dr, D, W2, H, 0.0f, a->dhu, H);
    for (size_t i = 0; i < (size_t)B * H; i++)
        if (a->au[i] <= 0.0f) a->dhu[i] = 0.0f;
    // dW_u1 (H, 2D) += dau^T ui; db_u1 += colsum dau; dui (B, 2D) = dau W_u1
    mmr_tower_sgemm(1, 0, H, D2, B, 1.0f, a->dhu, H, a->ui, D2, 1.0f, tower_grad(t, PG_USER_W1),
                    D2);
    add_colsum(tower_grad(t, PG_USER_B1), a->dhu, B, H, H);
    mmr_tower_sgemm(0, 0, B, D2, H, 1.0f, a->dhu, H, W1, D2, 0.0f, a->dui, D2);
    // attention: with c_j = dP.k_j, ds_j = a_j (c_j - sum_i a_i c_i);
    // dq += ds_j k_j / sqrt(D), dw_type[type_j] += ds_j, dlambda -= ds_j age_j
    float *dwtype = tower_grad(t, PG_USER_WTYPE), *dlambda = tower_grad(t, PG_USER_LAMBDA);
    float inv_sqrt_d = 1.0f / sqrtf((float)D);
    for (int b = 0; b < B; b++) {
        int n = ub->hist_len[b];
        float *dq = a->dq + (size_t)b * D;
        memset(dq, 0, (size_t)D * sizeof(float));
        if (n == 0) continue;
        const float *K = ub->hist + (size_t)b * L * D, *s = a->attn + (size_t)b * L;
        const float *dP = a->dui + (size_t)b * D2;
        float cbar = 0.0f;
        for (int j = 0; j < n; j++) cbar += s[j] * dot(dP, K + (size_t)j * D, D);
        for (int j = 0; j < n; j++) {
            size_t bj = (size_t)b * L + j;
            float ds = s[j] * (dot(dP, K + (size_t)j * D, D) - cbar);
            for (int d = 0; d < D; d++) dq[d] += ds * inv_sqrt_d * K[(size_t)j * D + d];
            dwtype[ub->hist_type[bj]] += ds;
            dlambda[0] -= ds * ub->hist_age[bj];
        }
    }
    // dW_q (D, D) += dq^T e; db_q += colsum dq; de = dui[:, D:] + dq W_q → the id row
    const float *Wq = tower_param(t, PG_USER_WQ);
    mmr_tower_sgemm(1, 0, D, D, B, 1.0f, a->dq, D, a->ui + D, D2, 1.0f, tower_grad(t, PG_USER_WQ),
                    D);
    add_colsum(tower_grad(t, PG_USER_BQ), a->dq, B, D, D);
    mmr_tower_sgemm(0, 0, B, D, D, 1.0f, a->dq, D, Wq, D, 1.0f, a->dui + D, D2);
    for (int b = 0; b < B; b++) {
        if (ub->user_id[b] < 0) continue;
        float *g = tower_sparse_grad_row(t, 1, ub->user_id[b]);
        const float *de = a->dui + (size_t)b * D2 + D;
        for (int d = 0; d < D; d++) g[d] += de[d];
    }
}

/* --- head, loss and the training pass ------------------------------------------------ */

/* o = w.phi for phi = [u.y, log1p(pop), rec, 1]; phi (4) is filled in. */
static float head_logit(const mmr_tower_t *t, const float *u, const float *y, float pop,
                        float rec, float *phi) {
    const float *w = tower_param(t, PG_HEAD_W);
    phi[0] = dot(u, y, t->cfg.d_out);
    phi[1] = log1pf(pop);
    phi[2] = rec;
    phi[3] = 1.0f;
    return w[0] * phi[0] + w[1] * phi[1] + w[2] * phi[2] + w[3] * phi[3];
}

void mmr_tower_head_forward(const mmr_tower_t *t, int n, const float *user, const float *item,
                            const float *popularity, const float *recency, float *prob) {
    size_t D = (size_t)t->cfg.d_out;
    float phi[4];
    for (int i = 0; i < n; i++)
        prob[i] = sigmoid(head_logit(t, user, item + i * D, popularity[i], recency[i], phi));
}

typedef struct train_acts {
    item_acts_t item;
    user_acts_t user;
    float *dy;  // (B, D) dloss / d item vector
    float *du;  // (B, D) dloss / d user vector
} train_acts_t;

static void train_acts_layout(void *acts, arena_t *ar, const mmr_tower_config_t *c, int B) {
    train_acts_t *a = acts;
    item_acts_layout_(&a->item, ar, c, B, 1);
    user_acts_layout_(&a->user, ar, c, B, 1);
    a->dy = take(ar, (size_t)B * c->d_out);
    a->du = take(ar, (size_t)B * c->d_out);
}

static mmr_status_t cpu_forward_backward(mmr_tower_backend_t *be, mmr_tower_t *t,
                                         const mmr_tower_batch_t *batch, float *loss,
                                         mmr_err_t *err) {
    int B = batch->item.n, D = t->cfg.d_out;
    train_acts_t a;
    float *mem = scratch_new(train_acts_layout, &a, &t->cfg, B);
    if (!mem) return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for a batch of %d", B);
    item_forward(t, &batch->item, &a.item);
    user_forward(t, &batch->user, &a.user);
    // loss = mean softplus(o) - t o; do = (p - t) / B; dw += do phi; du = do w0 y; dy = do w0 u
    const float *w = tower_param(t, PG_HEAD_W);
    float *dw = tower_grad(t, PG_HEAD_W);
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *u = a.user.u + (size_t)b * D, *y = a.item.y + (size_t)b * D;
        float phi[4], lab = batch->label[b];
        float o = head_logit(t, u, y, batch->popularity[b], batch->recency[b], phi);
        total += softplus(o) - lab * o;
        float dout = (sigmoid(o) - lab) / (float)B;
        for (int k = 0; k < 4; k++) dw[k] += dout * phi[k];
        for (int d = 0; d < D; d++) {
            a.du[(size_t)b * D + d] = dout * w[0] * y[d];
            a.dy[(size_t)b * D + d] = dout * w[0] * u[d];
        }
    }
    *loss = (float)(total / B);
    item_backward(t, &batch->item, &a.item, a.dy);
    user_backward(t, &batch->user, &a.user, a.du);
    free(mem);
    return MMR_OK;
}

/* --- the backend --------------------------------------------------------------------- */

static mmr_status_t cpu_item_forward(mmr_tower_backend_t *be, const mmr_tower_t *t,
                                     const mmr_tower_item_batch_t *b, float *vec, float *gate,
                                     mmr_err_t *err) {
    item_acts_t a;
    float *mem = scratch_new(item_acts_layout, &a, &t->cfg, b->n);
    if (!mem) return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for %d items", b->n);
    item_forward(t, b, &a);
    memcpy(vec, a.y, (size_t)b->n * t->cfg.d_out * sizeof(float));
    if (gate) memcpy(gate, a.gate, (size_t)b->n * 3 * sizeof(float));
    free(mem);
    return MMR_OK;
}

static mmr_status_t cpu_user_forward(mmr_tower_backend_t *be, const mmr_tower_t *t,
                                     const mmr_tower_user_batch_t *b, float *vec, mmr_err_t *err) {
    user_acts_t a;
    float *mem = scratch_new(user_acts_layout, &a, &t->cfg, b->n);
    if (!mem) return mmr_err_set(err, MMR_ERR_NOMEM, "tower: out of memory for %d users", b->n);
    user_forward(t, b, &a);
    memcpy(vec, a.u, (size_t)b->n * t->cfg.d_out * sizeof(float));
    free(mem);
    return MMR_OK;
}

static mmr_tower_backend_t cpu_backend = {
    .name = "cpu (" SGEMM_IMPL ")",
    .item_forward = cpu_item_forward,
    .user_forward = cpu_user_forward,
    .forward_backward = cpu_forward_backward,
};

mmr_tower_backend_t *mmr_tower_backend_cpu(void) { return &cpu_backend; }
