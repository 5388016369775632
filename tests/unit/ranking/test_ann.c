/* test_ann.c — the approximate index (mmr_ann) against the exact scan: recall@100 ≥ 0.95
 * with the default (calibrated) nprobe at N = 20,000, D = 64 on random unit vectors and on
 * 64 clusters, with fresh queries, every returned score exactly the exact scan's; exclusions;
 * k > N, N = 1, duplicate vectors; k beyond the stack's candidate buffer; widths that are
 * not a multiple of the code block, a constant dimension and the widest D; the same seed
 * giving the same index and answers; and mmr_model choosing exact or ANN by option. */
#include <math.h>

#include "mmr_ann.h"
#include "mmr_model.h"
#include "model_test.h"

#define N 20000
#define D 64
#define K 100
#define NQ 50

static void unit(float *v, int d) {
    double ss = 0.0;
    for (int j = 0; j < d; j++) ss += (double)v[j] * v[j];
    for (int j = 0; j < d; j++) v[j] = (float)(v[j] / sqrt(ss));
}

/* n unit vectors (n, D): random directions (clusters 0), or around `clusters` random
 * centres with noise of 0.15 per coordinate. */
static float *make_vecs(size_t n, int clusters, uint64_t *rng) {
    float *v = malloc(n * D * sizeof *v), cen[64][D];
    CHECK(v && clusters <= 64);
    for (int c = 0; c < clusters; c++) {
        for (int j = 0; j < D; j++) cen[c][j] = (float)mmr_rand_uniform(rng) - 0.5f;
        unit(cen[c], D);
    }
    for (size_t i = 0; i < n; i++) {
        float *x = v + i * D;
        int c = clusters ? (int)(mmr_rand_next(rng) % (uint64_t)clusters) : 0;
        for (int j = 0; j < D; j++)
            x[j] = (clusters ? cen[c][j] : 0.0f) + (float)(mmr_rand_uniform(rng) - 0.5) * (clusters ? 0.15f : 1.0f);
        unit(x, D);
    }
    return v;
}

/* Exact top-k (rows (k), dots (k)) by the shared scan. */
static size_t exact(const float *v, size_t n, const float *q, size_t k, const int64_t *ex,
                    size_t nex, int64_t *rows, float *dots) {
    mmr_ann_topk_t t = {.k = k, .rows = rows, .dots = dots, .ex = ex, .n_ex = nex};
    mmr_ann_topk_scan(&t, q, v, n, D, NULL, 0);
    mmr_ann_topk_sort(&t);
    return t.h;
}

/* Mean recall@K of a over NQ fresh queries (half random directions, half perturbed items). */
static double recall(const mmr_ann_t *a, const float *v, uint64_t *rng) {
    int64_t er[K], ar[K];
    float ed[K], ad[K], q[D];
    size_t hit = 0, got = 0;
    for (int i = 0; i < NQ; i++) {
        const float *base = v + (mmr_rand_next(rng) % N) * D;
        for (int j = 0; j < D; j++)
            q[j] = (float)(mmr_rand_uniform(rng) - 0.5) * (i % 2 ? 1.0f : 0.2f) + (i % 2 ? 0.0f : base[j]);
        unit(q, D);
        CHECK(exact(v, N, q, K, NULL, 0, er, ed) == K);
        mmr_ann_search(a, q, K, 0, NULL, 0, ar, ad, &got);
        CHECK(got == K);
        for (int r = 1; r < K; r++) CHECK(ad[r - 1] > ad[r] || (ad[r - 1] == ad[r] && ar[r - 1] < ar[r]));
        for (int r = 0; r < K; r++)
            for (int s = 0; s < K; s++)
                if (ar[r] == er[s]) {
                    CHECK_MSG(ad[r] == ed[s], "row %lld: %.9g, exact %.9g", (long long)ar[r], ad[r], ed[s]);
                    hit++;
                    break;
                }
    }
    return (double)hit / (NQ * K);
}

static void test_recall(int clusters) {
    uint64_t rng = 11 + (uint64_t)clusters;
    float *v = make_vecs(N, clusters, &rng);
    mmr_ann_t *a = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_ann_new(v, N, D, NULL, &a, &err), &err);
    mmr_ann_info_t i;
    mmr_ann_get_info(a, &i);
    double r = recall(a, v, &rng);
    printf("recall@%d %s: %.3f (nlist %u, nprobe %u, scan %.1f%%, calibrated %.3f, build %.2f s)\n", K,
           clusters ? "64 clusters" : "random", r, i.nlist, i.nprobe, 100.0 * i.scan_frac, i.recall, i.build_s);
    CHECK_MSG(r >= 0.95, "recall %.3f", r);
    if (clusters) CHECK_MSG(i.scan_frac < 0.25f, "clustered data should need few lists: %.3f", i.scan_frac);

    /* exclusions (sorted, with duplicates): never returned, still K results, and the
     * answer equals a search whose exact top rows are excluded */
    int64_t ex[60], rows[K], er[K];
    float dots[K], ed[K];
    size_t got = 0;
    const float *q = v + 123 * D;
    CHECK(exact(v, N, q, 30, NULL, 0, er, ed) == 30);
    for (int j = 0; j < 30; j++) ex[2 * j] = ex[2 * j + 1] = er[j];
    for (int j = 1; j < 60; j++) /* insertion sort */
        for (int l = j; l > 0 && ex[l - 1] > ex[l]; l--) { int64_t t = ex[l]; ex[l] = ex[l - 1]; ex[l - 1] = t; }
    mmr_ann_search(a, q, K, 0, ex, 60, rows, dots, &got);
    CHECK(got == K);
    for (size_t r = 0; r < got; r++)
        for (int j = 0; j < 30; j++) CHECK(rows[r] != er[j]);
    CHECK(dots[0] <= ed[29]);
    mmr_ann_free(a);
    free(v);
}

static void test_edges(void) {
    uint64_t rng = 5;
    mmr_err_t err = {0};
    mmr_ann_t *a = NULL;
    int64_t rows[2 * K], er[2 * K];
    float dots[2 * K], ed[2 * K];
    size_t got = 0;

    /* N = 1 */
    float *one = make_vecs(1, 0, &rng);
    CHECK_OK(mmr_ann_new(one, 1, D, NULL, &a, &err), &err);
    mmr_ann_search(a, one, K, 0, NULL, 0, rows, dots, &got);
    CHECK(got == 1 && rows[0] == 0 && fabsf(dots[0] - 1.0f) < 1e-5f);
    int64_t ex0 = 0;
    mmr_ann_search(a, one, K, 0, &ex0, 1, rows, dots, &got);
    CHECK(got == 0);
    mmr_ann_search(a, one, 0, 0, NULL, 0, rows, dots, &got);
    CHECK(got == 0);
    mmr_ann_free(a);
    free(one);

    /* k > N: every row, exactly the exact order; with exclusions N - excluded */
    size_t n = 150;
    float *v = make_vecs(n, 4, &rng);
    mmr_ann_opts_t o = mmr_ann_opts_default();
    o.nprobe = 1;
    CHECK_OK(mmr_ann_new(v, n, D, &o, &a, &err), &err);
    mmr_ann_search(a, v + 7 * D, 2 * K, 0, NULL, 0, rows, dots, &got);
    CHECK(got == n && exact(v, n, v + 7 * D, 2 * K, NULL, 0, er, ed) == n);
    CHECK(memcmp(rows, er, n * sizeof *rows) == 0 && memcmp(dots, ed, n * sizeof *dots) == 0);
    int64_t ex[3] = {0, 7, 149};
    mmr_ann_search(a, v + 7 * D, 2 * K, 0, ex, 3, rows, dots, &got);
    CHECK(got == n - 3);
    /* k > the probed list: more lists are probed until k rows are found */
    mmr_ann_search(a, v + 7 * D, K, 1, NULL, 0, rows, dots, &got);
    CHECK(got == K);
    mmr_ann_free(a);

    /* duplicates: all rows the same vector → ties broken by the lower row */
    for (size_t i = 1; i < n; i++) memcpy(v + i * D, v, D * sizeof *v);
    CHECK_OK(mmr_ann_new(v, n, D, NULL, &a, &err), &err);
    mmr_ann_search(a, v, 10, 0, NULL, 0, rows, dots, &got);
    CHECK(got == 10);
    for (int r = 0; r < 10; r++) CHECK(rows[r] == r);
    mmr_ann_free(a);
    free(v);

    /* bad shapes */
    CHECK(mmr_ann_new(NULL, 0, D, NULL, &a, &err) == MMR_ERR_INVALID && a == NULL);
    o = mmr_ann_opts_default();
    o.nlist = MMR_ANN_MAX_NLIST + 1;
    float x[D] = {1.0f};
    CHECK(mmr_ann_new(x, 1, D, &o, &a, &err) == MMR_ERR_INVALID && a == NULL);
    mmr_ann_free(NULL);
    printf("edges: N = 1, k > N, exclusions, duplicates, bad shapes ok\n");
}

/* k = 2,500: more candidates than the stack holds; exclusions still apply, and with every
 * list probed (nprobe is calibrated for k = 100) the answer is nearly the exact one. */
static void test_large_k(void) {
    enum { KL = 2500 };
    uint64_t rng = 17;
    float *v = make_vecs(N, 64, &rng);
    int64_t *rows = malloc(2 * KL * sizeof *rows), *er = rows + KL, ex[3];
    float *dots = malloc(2 * KL * sizeof *dots), *ed = dots + KL;
    CHECK(rows && dots);
    mmr_ann_t *a = NULL;
    mmr_err_t err = {0};
    CHECK_OK(mmr_ann_new(v, N, D, NULL, &a, &err), &err);
    const float *q = v + 4242 * D;
    CHECK(exact(v, N, q, KL, NULL, 0, er, ed) == KL);
    ex[0] = er[0]; ex[1] = er[1]; ex[2] = er[2];
    for (int j = 1; j < 3; j++)
        for (int l = j; l > 0 && ex[l - 1] > ex[l]; l--) { int64_t t = ex[l]; ex[l] = ex[l - 1]; ex[l - 1] = t; }
    size_t got = 0, hit = 0;
    mmr_ann_search(a, q, KL, MMR_ANN_MAX_NLIST, ex, 3, rows, dots, &got);
    CHECK(got == KL);
    for (size_t r = 0; r < got; r++) {
        CHECK(rows[r] != ex[0] && rows[r] != ex[1] && rows[r] != ex[2]);
        if (r) CHECK(dots[r - 1] > dots[r] || (dots[r - 1] == dots[r] && rows[r - 1] < rows[r]));
        for (size_t s = 3; s < KL; s++)
            if (rows[r] == er[s]) { hit++; break; }
    }
    CHECK_MSG(hit >= 0.99 * (KL - 3), "recall %.3f at k %d", (double)hit / (KL - 3), KL);
    mmr_ann_free(a);
    free(rows);
    free(dots);
    free(v);
    printf("large k: %d results, recall %.3f, exclusions kept out\n", KL, (double)hit / (KL - 3));
}

/* Widths: 20 (codes padded) with one constant dimension, and MMR_ANN_MAX_D (the largest
 * integer sums, from a row at the maximum of every dimension and a positive query); every
 * list probed, the answer is the exact one. One over the cap is refused. */
static void test_widths(void) {
    static const int dims[] = {20, MMR_ANN_MAX_D};
    size_t n = 600;
    uint64_t rng = 23;
    for (int w = 0; w < 2; w++) {
        int d = dims[w];
        float *v = malloc(n * d * sizeof *v), *q = malloc(d * sizeof *q);
        CHECK(v && q);
        for (size_t i = 0; i < n * d; i++) v[i] = (float)mmr_rand_uniform(&rng) - 0.5f;
        for (size_t i = 0; i < n; i++) v[i * d + 5] = 0.25f;
        for (int j = 0; j < d; j++) q[j] = (float)mmr_rand_uniform(&rng);
        /* row 9 at every dimension's maximum against a positive query: the largest sums */
        for (int j = 0; j < d; j++) v[9 * d + j] = j == 5 ? 0.25f : 0.5f;
        mmr_ann_opts_t o = mmr_ann_opts_default();
        o.nprobe = MMR_ANN_MAX_NLIST;
        o.rerank = 8;
        mmr_ann_t *a = NULL;
        mmr_err_t err = {0};
        CHECK_OK(mmr_ann_new(v, n, d, &o, &a, &err), &err);
        int64_t rows[20], er[20];
        float dots[20], ed[20];
        size_t got = 0;
        mmr_ann_search(a, q, 20, 0, NULL, 0, rows, dots, &got);
        mmr_ann_topk_t t = {.k = 20, .rows = er, .dots = ed};
        mmr_ann_topk_scan(&t, q, v, n, d, NULL, 0);
        mmr_ann_topk_sort(&t);
        CHECK(er[0] == 9);
        CHECK_MSG(got == 20 && memcmp(rows, er, sizeof rows) == 0 && memcmp(dots, ed, sizeof dots) == 0,
                  "D %d: the approximate answer differs from the exact one", d);
        mmr_ann_free(a);
        free(v);
        free(q);
    }
    mmr_err_t err = {0};
    mmr_ann_t *a = NULL;
    float x[MMR_ANN_MAX_D + 1] = {0};
    CHECK(mmr_ann_new(x, 1, MMR_ANN_MAX_D + 1, NULL, &a, &err) == MMR_ERR_INVALID && a == NULL);
    printf("widths: D 20 and %d equal exact with every list probed; %d refused\n", MMR_ANN_MAX_D,
           MMR_ANN_MAX_D + 1);
}

static void test_determinism(void) {
    uint64_t rng = 9;
    size_t n = 5000;
    float *v = make_vecs(n, 16, &rng);
    mmr_ann_t *a = NULL, *b = NULL, *c = NULL;
    mmr_err_t err = {0};
    mmr_ann_opts_t o = mmr_ann_opts_default();
    CHECK_OK(mmr_ann_new(v, n, D, &o, &a, &err), &err);
    CHECK_OK(mmr_ann_new(v, n, D, &o, &b, &err), &err);
    o.seed = 2;
    CHECK_OK(mmr_ann_new(v, n, D, &o, &c, &err), &err);
    mmr_ann_info_t ia, ib;
    mmr_ann_get_info(a, &ia);
    mmr_ann_get_info(b, &ib);
    CHECK(ia.nprobe == ib.nprobe && ia.recall == ib.recall && ia.scan_frac == ib.scan_frac);
    int64_t ra[K], rb[K], rc[K];
    float da[K], db[K], dc[K];
    size_t ga, gb, gc;
    int differs = 0;
    for (int i = 0; i < 20; i++) {
        const float *q = v + (size_t)(i * 97) * D;
        mmr_ann_search(a, q, K, 1, NULL, 0, ra, da, &ga);
        mmr_ann_search(b, q, K, 1, NULL, 0, rb, db, &gb);
        mmr_ann_search(c, q, K, 1, NULL, 0, rc, dc, &gc);
        CHECK(ga == gb && memcmp(ra, rb, ga * sizeof *ra) == 0 && memcmp(da, db, ga * sizeof *da) == 0);
        differs |= gc != ga || memcmp(ra, rc, ga * sizeof *ra) != 0;
    }
    CHECK_MSG(differs, "another seed should give another partition");
    mmr_ann_free(a);
    mmr_ann_free(b);
    mmr_ann_free(c);
    free(v);
    printf("determinism: same seed, same index and answers\n");
}

/* mmr_model: AUTO stays exact under the threshold, ON builds the index and retrieve
 * answers from it, OFF never does; the answers match the exact scan on a small catalog
 * (every list probed). */
static void test_model(void) {
    char dir[64];
    mmr_fstore_t *fs = mt_store(dir);
    mmr_err_t err = {0};
    uint64_t rng = 3;
    mt_put_items(fs, 0, 400, &rng);
    mmr_model_t *m = NULL;
    CHECK_OK(mmr_model_new(mt_tower(1), fs, NULL, &m, &err), &err);
    CHECK(mmr_model_ann(m) == NULL);
    mmr_model_free(m);
    mmr_model_opts_t o = mmr_model_opts_default();
    o.ann = MMR_MODEL_ANN_ON;
    o.ann_opts.nprobe = MMR_ANN_MAX_NLIST;
    CHECK_OK(mmr_model_new_opts(mt_tower(1), fs, NULL, &o, &m, &err), &err);
    CHECK(mmr_model_ann(m) != NULL);
    float u[16];
    for (int j = 0; j < 16; j++) u[j] = (float)mmr_rand_uniform(&rng) - 0.5f;
    int64_t ex[2] = {3, 5}, ra[20], re[20];
    float da[20], de[20];
    size_t ga, ge;
    mmr_model_retrieve(m, u, 20, ex, 2, ra, da, &ga);
    mmr_model_retrieve_exact(m, u, 20, ex, 2, re, de, &ge);
    CHECK(ga == 20 && ge == 20 && memcmp(ra, re, sizeof ra) == 0 && memcmp(da, de, sizeof da) == 0);
    mmr_model_free(m);
    o.ann = MMR_MODEL_ANN_OFF;
    o.ann_min_items = 1;
    CHECK_OK(mmr_model_new_opts(mt_tower(1), fs, NULL, &o, &m, &err), &err);
    CHECK(mmr_model_ann(m) == NULL);
    mmr_model_free(m);
    mmr_fstore_close(fs);
    mt_rmdir(dir);
    printf("model: AUTO / ON / OFF, ANN with every list probed equals exact\n");
}

int main(void) {
    test_edges();
    test_determinism();
    test_large_k();
    test_widths();
    test_recall(0);
    test_recall(64);
    test_model();
    return 0;
}
