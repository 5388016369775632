/* tower_test.c — test support (see tower_test.h). The reference below is written from the
 * spec comment of embedding/tower_cpu.c, one example at a time, in double, without GEMMs. */
#include "tower_test.h"

#include <math.h>
#include <string.h>

#include "mmr_rand.h"

uint64_t test_rng_u64(test_rng_t *r) { return mmr_rand_next(&r->s); }

double test_rng_uniform(test_rng_t *r) { return (double)(test_rng_u64(r) >> 11) / 9007199254740992.0; }

float test_rng_sym(test_rng_t *r) { return (float)(2.0 * test_rng_uniform(r) - 1.0); }

void test_params_noise(mmr_tower_t *t, float scale, test_rng_t *r) {
    float *p = mmr_tower_params(t);
    for (size_t i = 0; i < mmr_tower_param_count(t); i++) p[i] += scale * test_rng_sym(r);
    mmr_tower_params_changed(t);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    CHECK_MSG(p, "out of memory");
    return p;
}

static void unit_random(float *v, int D, test_rng_t *r) {
    double s = 0;
    for (int d = 0; d < D; d++) {
        v[d] = test_rng_sym(r);
        s += (double)v[d] * v[d];
    }
    for (int d = 0; d < D; d++) v[d] = (float)(v[d] / sqrt(s + 1e-12));
}

void test_batch_random(test_batch_t *tb, const mmr_tower_config_t *c, int B, double present_p,
                       test_rng_t *r) {
    memset(tb, 0, sizeof *tb);
    int L = c->hist_len, D = c->d_out;
    const int width[3] = {c->d_text, c->d_image, c->d_video};
    tb->present = xcalloc((size_t)B * 3, 1);
    for (int b = 0; b < B; b++)
        for (int m = 0; m < 3; m++)
            tb->present[b * 3 + m] = b == 0 || present_p >= 1 ? 1
                                     : b == 1 ? 0 : test_rng_uniform(r) < present_p;
    for (int m = 0; m < 3; m++) {
        int any = 0;
        for (int b = 0; b < B; b++) any |= tb->present[b * 3 + m];
        if (!any) continue;
        tb->x[m] = xcalloc((size_t)B * width[m], sizeof(float));
        for (int b = 0; b < B; b++)
            for (int k = 0; k < width[m]; k++)
                tb->x[m][(size_t)b * width[m] + k] = tb->present[b * 3 + m] ? test_rng_sym(r) : NAN;
    }
    tb->item_id = xcalloc((size_t)B, sizeof(int32_t));
    tb->user_id = xcalloc((size_t)B, sizeof(int32_t));
    tb->hist_len = xcalloc((size_t)B, sizeof(int32_t));
    tb->hist = xcalloc((size_t)B * L * D, sizeof(float));
    tb->hist_type = xcalloc((size_t)B * L, sizeof(int32_t));
    tb->hist_age = xcalloc((size_t)B * L, sizeof(float));
    tb->pop = xcalloc((size_t)B, sizeof(float));
    tb->rec = xcalloc((size_t)B, sizeof(float));
    tb->label = xcalloc((size_t)B, sizeof(float));
    for (int b = 0; b < B; b++) {
        tb->item_id[b] = b == 0 ? 0 : b == 1 || test_rng_uniform(r) < 0.4
                             ? -1 : (int32_t)(test_rng_u64(r) % (uint64_t)c->n_item_ids);
        tb->user_id[b] = b == 1 || test_rng_uniform(r) < 0.2
                             ? -1 : (int32_t)(test_rng_u64(r) % (uint64_t)c->n_user_ids);
        tb->hist_len[b] = b == 0 ? L : b == 1 ? 0 : (int32_t)(test_rng_u64(r) % (uint64_t)(L + 1));
        for (int j = 0; j < L; j++) {
            size_t bj = (size_t)b * L + j;
            if (j < tb->hist_len[b]) {
                unit_random(tb->hist + bj * D, D, r);
                tb->hist_type[bj] = (int32_t)(test_rng_u64(r) % (uint64_t)c->n_event_types);
                tb->hist_age[bj] = (float)(3.0 * test_rng_uniform(r));
            } else {
                for (int d = 0; d < D; d++) tb->hist[bj * D + d] = NAN;
                tb->hist_type[bj] = -7; // never read
                tb->hist_age[bj] = NAN;
            }
        }
        tb->pop[b] = (float)(50.0 * test_rng_uniform(r));
        tb->rec[b] = test_rng_sym(r);
        tb->label[b] = test_rng_uniform(r) < 0.5 ? 1.0f : 0.0f;
    }
    tb->b = (mmr_tower_batch_t){
        .item = {.n = B, .x = {tb->x[0], tb->x[1], tb->x[2]}, .present = tb->present,
                 .item_id = tb->item_id},
        .user = {.n = B, .hist = tb->hist, .hist_type = tb->hist_type,
                 .hist_age = tb->hist_age, .hist_len = tb->hist_len, .user_id = tb->user_id},
        .popularity = tb->pop, .recency = tb->rec, .label = tb->label};
}

void test_batch_free(test_batch_t *tb) {
    for (int m = 0; m < 3; m++) free(tb->x[m]);
    free(tb->present), free(tb->item_id), free(tb->user_id), free(tb->hist_len);
    free(tb->hist), free(tb->hist_type), free(tb->hist_age);
    free(tb->pop), free(tb->rec), free(tb->label);
    memset(tb, 0, sizeof *tb);
}

double *test_params_double(mmr_tower_t *t) {
    size_t n = mmr_tower_param_count(t);
    const float *p = mmr_tower_params(t);
    double *P = xcalloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) P[i] = p[i];
    return P;
}

/* --- reference ------------------------------------------------------------------------ */

/* Weights of group `name` inside P. */
static const double *grp(const mmr_tower_t *t, const double *P, const char *name) {
    mmr_tower_param_info_t in;
    for (int g = 0; g < mmr_tower_param_group_count(); g++) {
        mmr_tower_param_group(t, g, &in);
        if (strcmp(in.name, name) == 0) return P + in.offset;
    }
    CHECK_MSG(0, "no parameter group %s", name);
    return NULL;
}

static double relu_sig(uint64_t *sig, double a) {
    *sig = *sig * 1099511628211ull + (a > 0 ? 2 : 1);
    return a > 0 ? a : 0;
}

static void ref_normalise(double *v, int D) {
    double s = 0;
    for (int d = 0; d < D; d++) s += v[d] * v[d];
    s = sqrt(s + 1e-12);
    for (int d = 0; d < D; d++) v[d] /= s;
}

static void ref_softmax(double *x, int n) {
    double mx = x[0], s = 0;
    for (int i = 1; i < n; i++) mx = fmax(mx, x[i]);
    for (int i = 0; i < n; i++) s += (x[i] = exp(x[i] - mx));
    for (int i = 0; i < n; i++) x[i] /= s;
}

double test_ref_eval(const mmr_tower_t *t, const double *P, const mmr_tower_batch_t *bt,
                     double *y_out, double *gate_out, double *u_out, double *prob,
                     uint64_t *sig_out) {
    const mmr_tower_config_t *c = mmr_tower_get_config(t);
    int H = c->d_hidden, D = c->d_out, L = c->hist_len, B = bt->item.n;
    const int width[3] = {c->d_text, c->d_image, c->d_video};
    static const char *const wn[3] = {"item.W_text", "item.W_image", "item.W_video"};
    static const char *const bn[3] = {"item.b_text", "item.b_image", "item.b_video"};
    static const char *const en[3] = {"item.e_text", "item.e_image", "item.e_video"};
    const double *G = grp(t, P, "item.G"), *cg = grp(t, P, "item.c");
    const double *W1 = grp(t, P, "item.W1"), *b1 = grp(t, P, "item.b1");
    const double *W2 = grp(t, P, "item.W2"), *b2 = grp(t, P, "item.b2");
    const double *Ei = grp(t, P, "item.E_id"), *Eu = grp(t, P, "user.E_id");
    const double *Wq = grp(t, P, "user.W_q"), *bq = grp(t, P, "user.b_q");
    const double *wt = grp(t, P, "user.w_type"), *lam = grp(t, P, "user.lambda");
    const double *U1 = grp(t, P, "user.W1"), *ub1 = grp(t, P, "user.b1");
    const double *U2 = grp(t, P, "user.W2"), *ub2 = grp(t, P, "user.b2");
    const double *w = grp(t, P, "head.w");
    double *h = xcalloc((size_t)3 * H, sizeof(double)), *f = xcalloc((size_t)H, sizeof(double));
    double *z = xcalloc((size_t)H, sizeof(double)), *y = xcalloc((size_t)D, sizeof(double));
    double *e = xcalloc((size_t)D, sizeof(double)), *q = xcalloc((size_t)D, sizeof(double));
    double *s = xcalloc((size_t)L, sizeof(double)), *ui = xcalloc((size_t)2 * D, sizeof(double));
    double *hu = xcalloc((size_t)H, sizeof(double)), *u = xcalloc((size_t)D, sizeof(double));
    uint64_t sig = 1469598103934665603ull;
    double loss = 0;
    for (int b = 0; b < B; b++) {
        // item tower
        const mmr_tower_item_batch_t *ib = &bt->item;
        for (int m = 0; m < 3; m++) {
            const double *Wm = grp(t, P, wn[m]), *bm = grp(t, P, bn[m]), *em = grp(t, P, en[m]);
            for (int k = 0; k < H; k++) {
                if (!ib->present[b * 3 + m]) { h[m * H + k] = em[k]; continue; }
                double a = bm[k];
                for (int i = 0; i < width[m]; i++)
                    a += Wm[(size_t)k * width[m] + i] * ib->x[m][(size_t)b * width[m] + i];
                h[m * H + k] = a;
            }
        }
        double g[3];
        for (int m = 0; m < 3; m++) {
            g[m] = cg[m];
            for (int j = 0; j < 3 * H; j++) g[m] += G[(size_t)m * 3 * H + j] * h[j];
        }
        ref_softmax(g, 3);
        for (int k = 0; k < H; k++) f[k] = g[0] * h[k] + g[1] * h[H + k] + g[2] * h[2 * H + k];
        for (int k = 0; k < H; k++) {
            double a = b1[k];
            for (int j = 0; j < H; j++) a += W1[(size_t)k * H + j] * f[j];
            z[k] = relu_sig(&sig, a);
        }
        for (int d = 0; d < D; d++) {
            double a = b2[d];
            for (int k = 0; k < H; k++) a += W2[(size_t)d * H + k] * z[k];
            if (ib->item_id[b] >= 0) a += Ei[(size_t)ib->item_id[b] * D + d];
            y[d] = a;
        }
        ref_normalise(y, D);
        // user tower
        const mmr_tower_user_batch_t *ub = &bt->user;
        for (int d = 0; d < D; d++) e[d] = ub->user_id[b] >= 0 ? Eu[(size_t)ub->user_id[b] * D + d] : 0;
        for (int d = 0; d < D; d++) {
            q[d] = bq[d];
            for (int i = 0; i < D; i++) q[d] += Wq[(size_t)d * D + i] * e[i];
        }
        int n = ub->hist_len[b];
        const float *K = ub->hist + (size_t)b * L * D;
        for (int j = 0; j < n; j++) {
            double dq = 0;
            for (int d = 0; d < D; d++) dq += q[d] * K[(size_t)j * D + d];
            s[j] = dq / sqrt((double)D) + wt[ub->hist_type[(size_t)b * L + j]] -
                   lam[0] * ub->hist_age[(size_t)b * L + j];
        }
        if (n > 0) ref_softmax(s, n);
        for (int d = 0; d < D; d++) {
            ui[d] = 0;
            for (int j = 0; j < n; j++) ui[d] += s[j] * K[(size_t)j * D + d];
            ui[D + d] = e[d];
        }
        for (int k = 0; k < H; k++) {
            double a = ub1[k];
            for (int i = 0; i < 2 * D; i++) a += U1[(size_t)k * 2 * D + i] * ui[i];
            hu[k] = relu_sig(&sig, a);
        }
        for (int d = 0; d < D; d++) {
            u[d] = ub2[d];
            for (int k = 0; k < H; k++) u[d] += U2[(size_t)d * H + k] * hu[k];
        }
        ref_normalise(u, D);
        // head and loss
        double dot = 0;
        for (int d = 0; d < D; d++) dot += u[d] * y[d];
        double o = w[0] * dot + w[1] * log1p((double)bt->popularity[b]) +
                   w[2] * bt->recency[b] + w[3];
        double lab = bt->label[b];
        loss += fmax(o, 0) + log1p(exp(-fabs(o))) - lab * o;
        if (y_out) memcpy(y_out + (size_t)b * D, y, (size_t)D * sizeof(double));
        if (u_out) memcpy(u_out + (size_t)b * D, u, (size_t)D * sizeof(double));
        if (gate_out) memcpy(gate_out + (size_t)b * 3, g, sizeof g);
        if (prob) prob[b] = 1 / (1 + exp(-o));
    }
    free(h), free(f), free(z), free(y), free(e), free(q), free(s), free(ui), free(hu), free(u);
    if (sig_out) *sig_out = sig;
    return B > 0 ? loss / B : 0;
}
