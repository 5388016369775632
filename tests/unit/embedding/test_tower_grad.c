/* test_tower_grad.c — the analytic gradients of forward_backward against central finite
 * differences of the double reference, for EVERY parameter group: all coordinates at tiny
 * dims, a random subset at the default dims. Batches mix missing modalities, cold and warm
 * items, unknown users and empty histories. A difference whose two sides land on different
 * sides of a relu kink is skipped (and counted). */
#include <math.h>
#include <string.h>

#include "tower_test.h"

static void check_grads(mmr_tower_config_t cfg, int B, double present_p, int per_group,
                        uint64_t seed) {
    mmr_err_t err;
    mmr_tower_t *t;
    test_rng_t r = {seed};
    CHECK_OK(mmr_tower_new(&cfg, seed, &t, &err));
    test_params_noise(t, 0.3f, &r);
    test_batch_t tb;
    test_batch_random(&tb, &cfg, B, present_p, &r);
    float loss;
    CHECK_OK(mmr_tower_forward_backward(t, NULL, &tb.b, &loss, &err));
    double *P = test_params_double(t);
    const double h = 1e-5;
    int checked = 0, kinks = 0, fails = 0;
    printf("dims %d/%d/%d H=%d D=%d B=%d p=%.1f loss %.5f\n", cfg.d_text, cfg.d_image,
           cfg.d_video, cfg.d_hidden, cfg.d_out, B, present_p, loss);
    for (int g = 0; g < mmr_tower_param_group_count(); g++) {
        mmr_tower_param_info_t in;
        mmr_tower_param_group(t, g, &in);
        size_t n = (size_t)in.rows * in.cols;
        float *ana = calloc(n, sizeof(float));
        mmr_tower_grad_read(t, g, ana);
        double gmax = 0, nmax = 0, worst = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(ana[i]));
        // coordinates: all, or a random subset; id tables only in rows the batch uses
        size_t count = per_group ? (size_t)per_group : n;
        for (size_t k = 0; k < count; k++) {
            size_t i = per_group ? test_rng_u64(&r) % n : k;
            if (per_group && in.sparse) {
                const int32_t *ids = strcmp(in.name, "item.E_id") == 0 ? tb.item_id : tb.user_id;
                int32_t row = ids[test_rng_u64(&r) % (uint64_t)B];
                if (row < 0) row = ids[0] >= 0 ? ids[0] : 0;
                i = (size_t)row * in.cols + test_rng_u64(&r) % (uint64_t)in.cols;
            }
            double *p = P + in.offset + i, save = *p;
            uint64_t sp, sm;
            *p = save + h;
            double lp = test_ref_eval(t, P, &tb.b, NULL, NULL, NULL, NULL, &sp);
            *p = save - h;
            double lm = test_ref_eval(t, P, &tb.b, NULL, NULL, NULL, NULL, &sm);
            *p = save;
            if (sp != sm) { kinks++; continue; }
            double num = (lp - lm) / (2 * h), a = ana[i];
            double diff = fabs(a - num), tol = 1e-3 * fmax(fabs(a), fabs(num)) + 1e-4 * gmax + 1e-9;
            nmax = fmax(nmax, fabs(num));
            worst = fmax(worst, diff / (fmax(fabs(a), fabs(num)) + 1e-4 * gmax + 1e-9));
            checked++;
            if (diff > tol) {
                fails++;
                fprintf(stderr, "  %s[%zu]: analytic %.8g numeric %.8g\n", in.name, i, a, num);
            }
        }
        printf("  %-13s %6zu coords, max|grad| %.3e, worst rel err %.2e\n", in.name, count,
               gmax, worst);
        if (present_p >= 1 && strncmp(in.name, "item.e_", 7) == 0) // no missing modality
            CHECK_MSG(gmax == 0, "group %s: gradient without a missing modality", in.name);
        else
            CHECK_MSG(nmax > 1e-8, "group %s: gradient is zero in every checked coordinate", in.name);
        free(ana);
    }
    printf("  checked %d, skipped at relu kinks %d, failed %d\n", checked, kinks, fails);
    CHECK_MSG(fails == 0, "%d gradient coordinates disagree", fails);
    CHECK_MSG(kinks * 50 <= checked, "too many kinks: %d", kinks);
    free(P);
    test_batch_free(&tb);
    mmr_tower_free(t);
}

int main(void) {
    mmr_tower_config_t tiny = {.d_text = 7, .d_image = 5, .d_video = 6, .d_hidden = 4,
                               .d_out = 3, .n_item_ids = 5, .n_user_ids = 4, .hist_len = 4,
                               .n_event_types = 3};
    check_grads(tiny, 9, 0.5, 0, 11);
    check_grads(tiny, 4, 1.0, 0, 13); // every modality present (the e_m see no gradient)
    mmr_tower_config_t def = mmr_tower_config_default();
    def.n_item_ids = 50, def.n_user_ids = 50;
    check_grads(def, 5, 0.5, 12, 12);
    printf("ok\n");
    return 0;
}
