/* bench_retrieve.c — timings, not a test: top-100 retrieval at D = 64 over a catalog of N
 * items encoded by a random tower, exact (mmr_model_retrieve_exact) against the approximate
 * index (mmr_ann, default options: calibrated nprobe) with its recall@100 and build time;
 * the same on raw random unit vectors and on 64 clusters; and the Rank path's model
 * scoring of 100 candidates (mmr_model_encode_user + mmr_model_score) against a temporary
 * store. Usage: bench_retrieve [N ...]  (default 10000 100000) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_model.h"
#include "mmr_rand.h"
#include "mmr_time.h"

#define D 64
#define DT 32

#define K 100
#define NQ 200

/* Exact vs approximate over NQ random queries (uniform in [-0.5, 0.5)^D, as user vectors
 * are not unit): prints us/query of both and the ANN's recall@K. vec (n, D). */
static void compare(const char *what, const float *vec, size_t n, const mmr_ann_t *a, uint64_t *rng) {
    float *q = malloc(NQ * D * sizeof *q);      /* (NQ, D) */
    int64_t *er = malloc(NQ * K * sizeof *er);  /* (NQ, K) exact rows */
    int64_t ar[K];
    float dots[K];
    size_t got = 0, hit = 0;
    if (!q || !er) exit(1);
    for (int i = 0; i < NQ * D; i++) q[i] = (float)mmr_rand_uniform(rng) - 0.5f;
    int64_t t0 = mmr_mono_ns();
    for (int i = 0; i < NQ; i++) {
        mmr_ann_topk_t t = {.k = K, .rows = er + i * K, .dots = dots};
        mmr_ann_topk_scan(&t, q + i * D, vec, n, D, NULL, 0);
        mmr_ann_topk_sort(&t);
    }
    double ex_us = (double)(mmr_mono_ns() - t0) / 1e3 / NQ;
    t0 = mmr_mono_ns();
    for (int i = 0; i < NQ; i++) mmr_ann_search(a, q + i * D, K, 0, NULL, 0, ar, dots, &got);
    double ann_us = (double)(mmr_mono_ns() - t0) / 1e3 / NQ;
    for (int i = 0; i < NQ; i++) {
        mmr_ann_search(a, q + i * D, K, 0, NULL, 0, ar, dots, &got);
        for (size_t r = 0; r < got; r++)
            for (int j = 0; j < K; j++)
                if (ar[r] == er[i * K + j]) { hit++; break; }
    }
    mmr_ann_info_t info;
    mmr_ann_get_info(a, &info);
    printf("  %-24s exact %8.1f us/query | ann %7.1f us/query, recall@%d %.3f "
           "(nlist %u, nprobe %u, scan %.1f%%, build %.2f s)\n",
           what, ex_us, ann_us, K, (double)hit / (NQ * K), info.nlist, info.nprobe,
           100.0 * info.scan_frac, info.build_s);
    free(q);
    free(er);
}

/* n unit vectors (n, D): random directions (clusters 0) or around 64 random centres. */
static float *make_vecs(size_t n, int clusters, uint64_t *rng) {
    float *v = malloc(n * D * sizeof *v), cen[64 * D];
    if (!v) exit(1);
    for (int i = 0; i < 64 * D; i++) cen[i] = (float)mmr_rand_uniform(rng) - 0.5f;
    for (size_t i = 0; i < n; i++) {
        float *x = v + i * D, ss = 0.0f;
        const float *c = cen + (mmr_rand_next(rng) % 64) * D;
        for (int k = 0; k < D; k++) {
            x[k] = (clusters ? c[k] : 0.0f) + ((float)mmr_rand_uniform(rng) - 0.5f) * (clusters ? 0.15f : 1.0f);
            ss += x[k] * x[k];
        }
        for (int k = 0; k < D; k++) x[k] /= sqrtf(ss);
    }
    return v;
}

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
        mmr_model_opts_t mo = mmr_model_opts_default();
        mo.ann = MMR_MODEL_ANN_ON;
        int64_t t0 = mmr_mono_ns();
        if (mmr_tower_new(&c, 7, &t, &err) != MMR_OK || mmr_model_new_opts(t, fs, NULL, &mo, &m, &err) != MMR_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double build_s = (double)(mmr_mono_ns() - t0) / 1e9;
        size_t n = mmr_model_item_count(m);
        printf("retrieve top-%d of %zu items, D=%d (model build with ANN %.2f s):\n", K, n, D, build_s);
        compare("tower item vectors", mmr_model_item_vec(m, 0), n, mmr_model_ann(m), &rng);
        for (int clusters = 0; clusters <= 64; clusters += 64) {
            float *v = make_vecs(n, clusters, &rng);
            mmr_ann_t *a = NULL;
            if (mmr_ann_new(v, n, D, NULL, &a, &err) != MMR_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
            compare(clusters ? "64 clusters, unit" : "random unit vectors", v, n, a, &rng);
            mmr_ann_free(a);
            free(v);
        }
        float u[D];

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
        int q = 2000;
        t0 = mmr_mono_ns();
        for (int i = 0; i < q; i++) {
            if (mmr_model_encode_user(m, "u1", user, mmr_now_ms(), u, &err) != MMR_OK ||
                mmr_model_score(m, u, 100, cand, mmr_now_ms(), score, NULL, status, &err) != MMR_OK) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
        }
        double us = (double)(mmr_mono_ns() - t0) / 1e3 / q;
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
