/* test_tower_encode.c — mmr_tower_encode_items over 300 items (two chunks, the second
 * short) equals mmr_tower_item_forward on the same chunks of a hand-built batch, bit for bit,
 * gates included (and one call on all 300 to 1e-6: a BLAS may round a row differently in a
 * batch of another size); mmr_tower_encode_user equals mmr_tower_user_forward on a hand-built
 * batch; the argument errors. Default dims, random weights with noise on every group. */
#include <math.h>
#include <string.h>

#include "mmr_trainer.h"
#include "tower_test.h"

enum { N = 300 };

int main(void) {
    mmr_tower_config_t cfg = mmr_tower_config_default();
    cfg.n_item_ids = 4096, cfg.n_user_ids = 4096; // keep the test small; widths are default
    const int width[3] = {cfg.d_text, cfg.d_image, cfg.d_video}, D = cfg.d_out, L = cfg.hist_len;
    test_rng_t r = {42};
    mmr_err_t err;
    mmr_tower_t *t;
    CHECK_OK(mmr_tower_new(&cfg, 7, &t, &err));
    test_params_noise(t, 0.05f, &r);

    // items: each modality present with p = 0.7, every third item cold
    test_batch_t tb;
    test_batch_random(&tb, &cfg, N, 0.7, &r);
    mmr_tower_item_in_t items[N];
    for (int i = 0; i < N; i++) {
        items[i] = (mmr_tower_item_in_t){.key = (uint64_t)i, .id_bucket = tb.item_id[i]};
        for (int m = 0; m < 3; m++)
            items[i].x[m] = tb.present[i * 3 + m] ? tb.x[m] + (size_t)i * width[m] : NULL;
    }
    float *want = calloc((size_t)N * D, sizeof(float)), *got = calloc((size_t)N * D, sizeof(float));
    float *want_g = calloc((size_t)N * 3, sizeof(float));
    float *got_g = calloc((size_t)N * 3, sizeof(float));
    CHECK(want && got && want_g && got_g);
    CHECK_OK(mmr_tower_encode_items(t, NULL, N, items, got, got_g, &err));
    // the same chunks by hand: [0, 256) and [256, 300) of the hand-built batch
    for (int i0 = 0; i0 < N; i0 += 256) {
        int k = N - i0 < 256 ? N - i0 : 256;
        mmr_tower_item_batch_t chunk = {.n = k, .present = tb.present + i0 * 3,
                                        .item_id = tb.item_id + i0};
        for (int m = 0; m < 3; m++) chunk.x[m] = tb.x[m] ? tb.x[m] + (size_t)i0 * width[m] : NULL;
        CHECK_OK(mmr_tower_item_forward(t, NULL, &chunk, want + (size_t)i0 * D, want_g + i0 * 3,
                                        &err));
    }
    CHECK_MSG(memcmp(want, got, (size_t)N * D * sizeof(float)) == 0, "item vectors differ");
    CHECK_MSG(memcmp(want_g, got_g, (size_t)N * 3 * sizeof(float)) == 0, "gates differ");
    // against one call on all 300: a BLAS may round a row differently in another batch size
    float *whole = calloc((size_t)N * D, sizeof(float));
    CHECK(whole);
    CHECK_OK(mmr_tower_item_forward(t, NULL, &tb.b.item, whole, NULL, &err));
    for (int i = 0; i < N * D; i++)
        CHECK_MSG(fabsf(whole[i] - got[i]) < 1e-6f, "row %d: %g vs %g", i / D, whole[i], got[i]);
    free(whole);
    memset(got, 0, (size_t)N * D * sizeof(float));
    CHECK_OK(mmr_tower_encode_items(t, NULL, N, items, got, NULL, &err));
    CHECK(memcmp(want, got, (size_t)N * D * sizeof(float)) == 0);
    CHECK_OK(mmr_tower_encode_items(t, NULL, 0, NULL, NULL, NULL, &err));
    CHECK(mmr_tower_encode_items(t, NULL, 3, NULL, got, NULL, &err) == MMR_ERR_INVALID);
    items[257].id_bucket = cfg.n_item_ids; // in the second chunk
    CHECK(mmr_tower_encode_items(t, NULL, N, items, got, NULL, &err) == MMR_ERR_INVALID);
    printf("encode_items: %d items == item_forward on the same chunks, bit for bit\n", N);

    // users: the random batch's histories (user 0 full, user 1 empty, the rest random)
    enum { U = 5 };
    test_batch_t ub;
    test_batch_random(&ub, &cfg, U, 0.7, &r);
    float uwant[U * 64], ugot[64], user0[64];
    CHECK(D <= 64);
    CHECK_OK(mmr_tower_user_forward(t, NULL, &ub.b.user, uwant, &err));
    for (int b = 0; b < U; b++) {
        // encode_user's view of user b must match row b of the batch call
        mmr_tower_user_batch_t one = {.n = 1, .hist = ub.hist + (size_t)b * L * D,
                                      .hist_type = ub.hist_type + (size_t)b * L,
                                      .hist_age = ub.hist_age + (size_t)b * L,
                                      .hist_len = ub.hist_len + b, .user_id = ub.user_id + b};
        float one_vec[64];
        CHECK_OK(mmr_tower_user_forward(t, NULL, &one, one_vec, &err));
        CHECK_OK(mmr_tower_encode_user(t, NULL, ub.hist_len[b], one.hist, one.hist_type,
                                       one.hist_age, ub.user_id[b], ugot, &err));
        CHECK_MSG(memcmp(ugot, one_vec, (size_t)D * sizeof(float)) == 0, "user %d differs", b);
        if (b == 0) memcpy(user0, ugot, sizeof user0);
        for (int d = 0; d < D; d++)
            CHECK_MSG(fabsf(ugot[d] - uwant[b * D + d]) < 1e-5f, "user %d vs batch row", b);
    }
    // more history than L: the first L are used
    CHECK_OK(mmr_tower_encode_user(t, NULL, L + 9, ub.hist, ub.hist_type, ub.hist_age,
                                   ub.user_id[0], ugot, &err));
    CHECK(ub.hist_len[0] == L);
    CHECK(memcmp(ugot, user0, (size_t)D * sizeof(float)) == 0);
    CHECK(mmr_tower_encode_user(t, NULL, -1, NULL, NULL, NULL, -1, ugot, &err) ==
          MMR_ERR_INVALID);
    CHECK(mmr_tower_encode_user(t, NULL, 0, NULL, NULL, NULL, cfg.n_user_ids, ugot, &err) ==
          MMR_ERR_INVALID);
    printf("encode_user: %d users == user_forward, bit for bit (batch of %d: to 1e-5)\n", U, U);

    test_batch_free(&ub);
    test_batch_free(&tb);
    free(want), free(got), free(want_g), free(got_g);
    mmr_tower_free(t);
    return 0;
}
