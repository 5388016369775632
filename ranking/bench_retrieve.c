/* bench_retrieve.c — timings, not a test: exact top-K over N random unit item vectors at
 * D = 64 (mmr_model_retrieve), and the Rank path's model scoring of 100 candidates
 * (mmr_model_encode_user + mmr_model_score) against a temporary store.
 * Usage: bench_retrieve [N ...]  (default 10000 100000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_model.h"
#include "mmr_rand.h"
#include "mmr_time.h"

#define D 64
#define DT 32

/* A catalog of n items with one 32-wide text embedding each, in a fresh store at dir. */
static mmr_fstore_t *make_store(char *dir, size_t n, uint64_t *rng) {
    mmr_fstore_opts_t o = {.path = dir};
    mmr_fstore_t *fs = NULL;
    mmr_err_t err = {0};
    if (mmr_fstore_open(&o, &fs, &err) != MMR_OK) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    float emb[DT];
    char id[32];
    for (size_t i = 0; i < n;) {
        mmr_fstore_batch_t *b = mmr_fstore_batch_new(fs);
        for (size_t j = 0; j < 10000 && i < n; j++, i++) {
            for (int k = 0; k < DT; k++) emb[k] = (float)mmr_rand_uniform(rng) - 0.5f;
            snprintf(id, sizeof id, "item%zu", i);
            mmr_item_t it = {.item_id = id, .created_ms = mmr_now_ms() - (int64_t)i * 1000,
                             .emb_dim = {DT, 0, 0}, .emb = {emb}};
            mmr_fstore_batch_put_item(b, &it, NULL);
        }
        if (mmr_fstore_batch_commit(b, &err) != MMR_OK) { fprintf(stderr, "%s\n", err.msg); exit(1); }
        mmr_fstore_batch_free(b);
    }
    return fs;
}

int main(int argc, char **argv) {
    size_t sizes[8] = {10000, 100000};
    int ns = 2;
    if (argc > 1) for (ns = 0; ns < argc - 1 && ns < 8; ns++) sizes[ns] = strtoull(argv[ns + 1], NULL, 10);
    uint64_t rng = 42;
    mmr_tower_config_t c = mmr_tower_config_default();
    c.d_text = DT; c.d_image = 8; c.d_video = 8; c.d_hidden = 64; c.d_out = D;
    c.n_item_ids = 1 << 16; c.n_user_ids = 1 << 16;
    for (int s = 0; s < ns; s++) {
        char dir[] = "/tmp/mmrec-bench-XXXXXX";
        if (!mkdtemp(dir)) return 1;
        mmr_fstore_t *fs = make_store(dir, sizes[s], &rng);
        mmr_tower_t *t = NULL;
        mmr_model_t *m = NULL;
        mmr_err_t err = {0};
        int64_t t0 = mmr_mono_ns();
        if (mmr_tower_new(&c, 7, &t, &err) != MMR_OK || mmr_model_new(t, fs, NULL, &m, &err) != MMR_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double build_s = (double)(mmr_mono_ns() - t0) / 1e9;
        float u[D];
        int64_t rows[100];
        float dots[100];
        size_t got = 0;
        int q = 200;
        t0 = mmr_mono_ns();
        for (int i = 0; i < q; i++) {
            for (int k = 0; k < D; k++) u[k] = (float)mmr_rand_uniform(&rng) - 0.5f;
            mmr_model_retrieve(m, u, 100, NULL, 0, rows, dots, &got);
        }
        double us = (double)(mmr_mono_ns() - t0) / 1e3 / q;
        printf("retrieve top-100 of %zu items, D=%d: %.1f us/query (index build %.2f s)\n",
               mmr_model_item_count(m), D, us, build_s);

        /* Rank path with a model: encode the user (history of 32 indexed items) + score 100 */
        const char *cand[100];
        char names[100][32];
        for (int i = 0; i < 100; i++) {
            snprintf(names[i], sizeof names[i], "item%zu", (size_t)(mmr_rand_next(&rng) % sizes[s]));
            cand[i] = names[i];
        }
        mmr_user_t *user = calloc(1, sizeof *user + 32 * sizeof *user->recent);
        user->recent = (mmr_interaction_t *)(user + 1);
        user->n = 32;
        for (int j = 0; j < 32; j++) {
            snprintf(user->recent[j].item_id, sizeof user->recent[j].item_id, "item%d", j * 7);
            user->recent[j].type = MMR_EV_CLICK;
            user->recent[j].ts_ms = mmr_now_ms() - (32 - j) * 60000;
        }
        float score[100];
        uint8_t status[100];
        q = 2000;
        t0 = mmr_mono_ns();
        for (int i = 0; i < q; i++) {
            if (mmr_model_encode_user(m, "u1", user, mmr_now_ms(), u, &err) != MMR_OK ||
                mmr_model_score(m, u, 100, cand, mmr_now_ms(), score, NULL, status, &err) != MMR_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
        }
        us = (double)(mmr_mono_ns() - t0) / 1e3 / q;
        printf("rank path, model: encode user + score 100 candidates (store reads included): %.1f us/request\n", us);
        free(user);
        mmr_model_free(m);
        mmr_fstore_close(fs);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) return 1;
    }
    return 0;
}
