/* test_tower_forward.c — CPU forward (item, user, head, loss) against the double reference
 * on random inputs at the default and at awkward dims; bad input is refused, not crashed on. */
#include <math.h>
#include <string.h>

#include "tower_test.h"

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; // NaN propagates
    }
    return m;
}

static void check_forward(mmr_tower_config_t cfg, int B, double present_p, uint64_t seed) {
    mmr_err_t err;
    mmr_tower_t *t;
    test_rng_t r = {seed};
    CHECK_OK(mmr_tower_new(&cfg, seed, &t, &err));
    test_params_noise(t, 0.05f, &r);
    test_batch_t tb;
    test_batch_random(&tb, &cfg, B, present_p, &r);
    int D = cfg.d_out;

    float *y = calloc((size_t)B * D, sizeof(float)), *gate = calloc((size_t)B * 3, sizeof(float));
    float *u = calloc((size_t)B * D, sizeof(float)), *p = calloc((size_t)B, sizeof(float));
    double *ry = calloc((size_t)B * D, sizeof(double)), *rg = calloc((size_t)B * 3, sizeof(double));
    double *ru = calloc((size_t)B * D, sizeof(double)), *rp = calloc((size_t)B, sizeof(double));
    double *P = test_params_double(t);
    double rloss = test_ref_eval(t, P, &tb.b, ry, rg, ru, rp, NULL);

    CHECK_OK(mmr_tower_item_forward(t, NULL, &tb.b.item, y, gate, &err));
    CHECK_OK(mmr_tower_user_forward(t, NULL, &tb.b.user, u, &err));
    for (int b = 0; b < B; b++) /* the head takes one user's items: pair by pair here */
        mmr_tower_head_forward(t, 1, u + (size_t)b * D, y + (size_t)b * D, tb.pop + b, tb.rec + b, p + b);
    float loss;
    CHECK_OK(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));

    double dy = max_abs_diff(y, ry, (size_t)B * D), dg = max_abs_diff(gate, rg, (size_t)B * 3);
    double du = max_abs_diff(u, ru, (size_t)B * D), dp = max_abs_diff(p, rp, (size_t)B);
    double dl = fabs(loss - rloss) / fmax(1e-3, fabs(rloss));
    printf("dims %d/%d/%d H=%d D=%d B=%d p=%.1f: |dy| %.2e |dgate| %.2e |du| %.2e |dp| %.2e "
           "loss %.6f (rel %.2e)\n", cfg.d_text, cfg.d_image, cfg.d_video, cfg.d_hidden, D, B,
           present_p, dy, dg, du, dp, loss, dl);
    CHECK_MSG(dy < 2e-5 && dg < 2e-5 && du < 2e-5 && dp < 2e-5 && dl < 1e-5, "forward differs");
    for (int b = 0; b < B; b++) { // unit vectors, gates on the simplex
        double n = 0, gs = 0;
        for (int d = 0; d < D; d++) n += (double)y[(size_t)b * D + d] * y[(size_t)b * D + d];
        for (int m = 0; m < 3; m++) gs += gate[b * 3 + m];
        CHECK_MSG(fabs(n - 1) < 1e-5 && fabs(gs - 1) < 1e-5, "item %d: |y|^2 %g, sum gate %g", b, n, gs);
    }

    free(y), free(gate), free(u), free(p), free(ry), free(rg), free(ru), free(rp), free(P);
    test_batch_free(&tb);
    mmr_tower_free(t);
}

/* Malformed input gets MMR_ERR_INVALID and a message, never a crash. */
static void check_refusals(void) {
    mmr_tower_config_t cfg = {.d_text = 5, .d_image = 4, .d_video = 3, .d_hidden = 6, .d_out = 4,
                              .n_item_ids = 10, .n_user_ids = 10, .hist_len = 3,
                              .n_event_types = 2};
    mmr_err_t err;
    mmr_tower_t *t;
    test_rng_t r = {7};
    CHECK_OK(mmr_tower_new(&cfg, 1, &t, &err));
    test_batch_t tb;
    test_batch_random(&tb, &cfg, 5, 0.5, &r);
    float out[5 * 4], loss;
    mmr_status_t st;

#define REFUSED(expr)                                                                        \
    do {                                                                                     \
        err.msg[0] = 0;                                                                      \
        st = (expr);                                                                         \
        CHECK_MSG(st == MMR_ERR_INVALID && err.msg[0], "%s accepted (%s)", #expr, mmr_status_str(st)); \
    } while (0)

    tb.item_id[2] = 10;
    REFUSED(mmr_tower_item_forward(t, NULL, &tb.b.item, out, NULL, &err));
    tb.item_id[2] = -2;
    REFUSED(mmr_tower_item_forward(t, NULL, &tb.b.item, out, NULL, &err));
    tb.item_id[2] = -1;
    uint8_t was = tb.present[3 * 3 + 1];
    tb.present[3 * 3 + 1] = 2;
    REFUSED(mmr_tower_item_forward(t, NULL, &tb.b.item, out, NULL, &err));
    tb.present[3 * 3 + 1] = was;
    tb.b.item.x[0] = NULL; // item 0 has text
    REFUSED(mmr_tower_item_forward(t, NULL, &tb.b.item, out, NULL, &err));
    tb.b.item.x[0] = tb.x[0];
    tb.hist_len[0] = 4;
    REFUSED(mmr_tower_user_forward(t, NULL, &tb.b.user, out, &err));
    tb.hist_len[0] = 3;
    tb.hist_type[1] = 2;
    REFUSED(mmr_tower_user_forward(t, NULL, &tb.b.user, out, &err));
    tb.hist_type[1] = 0;
    tb.hist_age[2] = -1.0f;
    REFUSED(mmr_tower_user_forward(t, NULL, &tb.b.user, out, &err));
    tb.hist_age[2] = 1.0f;
    tb.user_id[4] = 10;
    REFUSED(mmr_tower_user_forward(t, NULL, &tb.b.user, out, &err));
    tb.user_id[4] = 3;
    CHECK_OK(mmr_tower_item_forward(t, NULL, &tb.b.item, out, NULL, &err));
    CHECK_OK(mmr_tower_user_forward(t, NULL, &tb.b.user, out, &err));
    // training refuses what would poison the weights
    tb.label[0] = 2.0f;
    REFUSED(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    tb.label[0] = 1.0f;
    tb.x[0][0] = NAN; // item 0 has text
    REFUSED(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    tb.x[0][0] = 0.5f;
    tb.pop[1] = -1.0f;
    REFUSED(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    tb.pop[1] = 1.0f;
    tb.b.user.n = 4;
    REFUSED(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    tb.b.user.n = 5;
    CHECK_OK(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    mmr_tower_optim_t bad = {.kind = MMR_TOWER_OPT_ADAGRAD, .lr = 0.1f, .lr_sparse = 0.1f};
    REFUSED(mmr_tower_update(t, &bad, &err)); // adagrad_eps 0
    mmr_tower_config_t zero = cfg;
    zero.d_out = 0;
    mmr_tower_t *t2;
    REFUSED(mmr_tower_new(&zero, 1, &t2, &err));
    // no user has a history: the history arrays may be NULL
    int32_t lens[2] = {0, 0}, uids[2] = {-1, 4};
    mmr_tower_user_batch_t nohist = {.n = 2, .hist_len = lens, .user_id = uids};
    CHECK_OK(mmr_tower_user_forward(t, NULL, &nohist, out, &err));
    // ids hash into their buckets, the same way every time
    int32_t k1 = mmr_tower_id_bucket("item-42", 7, 1000), k2 = mmr_tower_id_bucket("item-42", 7, 1000);
    CHECK_MSG(k1 == k2 && k1 >= 0 && k1 < 1000 && mmr_tower_id_bucket("x", 1, 0) == -1, "id bucket");
    // an empty batch is fine and writes nothing
    mmr_tower_item_batch_t empty = {.n = 0};
    CHECK_OK(mmr_tower_item_forward(t, NULL, &empty, out, NULL, &err));
#undef REFUSED
    test_batch_free(&tb);
    mmr_tower_free(t);
}

int main(void) {
    printf("backend: %s\n", mmr_tower_backend_name(NULL));
    mmr_tower_config_t def = mmr_tower_config_default();
    def.n_item_ids = 1000, def.n_user_ids = 1000; // the reference copies all weights
    check_forward(def, 37, 0.6, 1);
    check_forward(def, 1, 0.6, 2);
    check_forward(def, 16, 1.0, 4); // every modality present: no compaction
    mmr_tower_config_t odd = {.d_text = 37, .d_image = 65, .d_video = 129, .d_hidden = 33,
                              .d_out = 17, .n_item_ids = 13, .n_user_ids = 11, .hist_len = 5,
                              .n_event_types = 4};
    check_forward(odd, 50, 0.6, 3);
    check_refusals();
    printf("ok\n");
    return 0;
}
