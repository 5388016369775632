/* ann.c — IVF-Flat approximate top-K by dot product (see mmr_ann.h), and the exact top-K
 * scan it shares with mmr_model_retrieve. Not a general vector database: no compression,
 * no inserts, one metric.
 *
 * Why our own and not FAISS (measured 2026-11-23 on this 2-core AMD EPYC, D = 64, random
 * unit vectors, one query at a time as the Rank path issues them): Debian's libfaiss-dev
 * 1.7.3 installs, but ships only a static C++ libfaiss.a (its c_api headers without the
 * libfaiss_c library), so it would need a C++ shim, C++ in the build, OpenMP, LAPACK and a
 * deps.sh change. Its IndexIVFFlat (nlist = sqrt N, 1 thread) took 186 us/query at nprobe 8
 * over 100k items and 0.87 s to build, i.e. no faster per query than our exact scan, with
 * its per-call overhead and without our exclusion contract (IDSelector would be needed).
 * The same algorithm in ~300 lines of C has no new dependency, keeps the contract and the
 * exact scan's tie order, and is measured by ranking/bench_retrieve.c (docs/PERFORMANCE.md).
 *
 * The index: spherical k-means (fixed seed, centroids = normalised means, empty lists split
 * off the largest) over a sample of the rows; every row goes to the list of its best
 * centroid by dot product; each list's rows and vectors are stored contiguously (rows
 * ascending within a list). A query scores all centroids, probes lists best first and
 * re-scores their vectors exactly. nprobe is calibrated at build: the recall of probing
 * the first p lists is the share of the exact top-k lying in them (re-scoring is exact),
 * which costs one exact scan per calibration query. Random directions in 64-D have no
 * cluster structure, so there the calibration picks a large nprobe and the model may
 * prefer exact (mmr_model.h); real embeddings are clustered and need few lists. */
#include "mmr_ann.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_rand.h"
#include "mmr_time.h"

#define TILE 8 /* centroids per register tile; ct rows are padded to a multiple of it */

struct mmr_ann {
    int D;
    size_t n;
    uint32_t nlist, lp;  /* lp = nlist rounded up to TILE */
    float *ct;           /* (lp / TILE, D, TILE) centroids in tiles of TILE, transposed
                          * within a tile; padding centroids 0 */
    uint32_t *off;       /* (nlist + 1) start of each list in ids / vec */
    uint32_t *ids;       /* (n) rows, list by list */
    float *vec;          /* (n, D) the rows' vectors in the same order */
    mmr_ann_info_t info;
};

mmr_ann_opts_t mmr_ann_opts_default(void) {
    return (mmr_ann_opts_t){.target_recall = 0.97f, .calib_k = 100, .calib_queries = 32,
                            .iters = 10, .train_per_list = 64, .seed = 1};
}

/* --- exact scan ------------------------------------------------------------------------ */

/* u·v with 8 independent lanes, so the compiler vectorises it without reassociating. */
static float dot_portable(const float *u, const float *v, size_t D) {
    float acc[8] = {0};
    size_t k = 0;
    for (; k + 8 <= D; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += u[k + l] * v[k + l];
    float s = 0.0f;
    for (; k < D; k++) s += u[k] * v[k];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_DOT_AVX2 1

/* The same dot with AVX2 fused multiply-adds, chosen at run time where the CPU has them:
 * the build targets baseline x86-64 (SSE2), where the scan ran about one multiply-add per
 * cycle; with FMA it is several times that (docs/PERFORMANCE.md, retrieval). Its rounding
 * differs from dot_portable's, so one process uses one of them for every score. */
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *u, const float *v, size_t D) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= D; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(u + k), _mm256_loadu_ps(v + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(u + k + 8), _mm256_loadu_ps(v + k + 8), a1);
    }
    if (k + 8 <= D) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(u + k), _mm256_loadu_ps(v + k), a0);
        k += 8;
    }
    __m256 a = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float s = _mm_cvtss_f32(h);
    for (; k < D; k++) s += u[k] * v[k];
    return s;
}
#endif

/* 1 when dot_avx2 is used (cached after the first call; every thread computes the same). */
static int use_avx2(void) {
#ifdef HAVE_DOT_AVX2
    static atomic_int cached = -1;
    int c = atomic_load_explicit(&cached, memory_order_relaxed);
    if (c < 0) {
        c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        atomic_store_explicit(&cached, c, memory_order_relaxed);
    }
    return c;
#else
    return 0;
#endif
}

static float dot(const float *u, const float *v, size_t D) {
#ifdef HAVE_DOT_AVX2
    if (use_avx2()) return dot_avx2(u, v, D);
#endif
    return dot_portable(u, v, D);
}

/* a ranks below b: lower dot, or equal dot and a higher row */
static int worse(float da, int64_t ra, float db, int64_t rb) { return da < db || (da == db && ra > rb); }

static void sift_down(int64_t *rows, float *dots, size_t n, size_t i) {
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && worse(dots[l], rows[l], dots[w], rows[w])) w = l;
        if (r < n && worse(dots[r], rows[r], dots[w], rows[w])) w = r;
        if (w == i) return;
        float td = dots[i]; dots[i] = dots[w]; dots[w] = td;
        int64_t tr = rows[i]; rows[i] = rows[w]; rows[w] = tr;
        i = w;
    }
}

static int excluded(const int64_t *ex, size_t n, int64_t r) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ex[mid] < r) lo = mid + 1; else hi = mid;
    }
    return lo < n && ex[lo] == r;
}

void mmr_ann_topk_scan(mmr_ann_topk_t *t, const float *q, const float *vec, size_t n, int D,
                       const uint32_t *ids, int64_t row0) {
    int64_t *rows = t->rows;
    float *dots = t->dots;
    size_t h = t->h, k = t->k;
    /* rows/dots hold a min-heap of the best h so far (root = the worst of them) */
    for (size_t i = 0; k && i < n; i++) {
        float d = dot(q, vec + i * (size_t)D, (size_t)D);
        int64_t r = ids ? (int64_t)ids[i] : row0 + (int64_t)i;
        if (h == k && !worse(dots[0], rows[0], d, r)) continue;
        if (t->n_ex && excluded(t->ex, t->n_ex, r)) continue;
        if (h < k) {
            size_t j = h++; /* sift up */
            while (j && worse(d, r, dots[(j - 1) / 2], rows[(j - 1) / 2])) {
                dots[j] = dots[(j - 1) / 2];
                rows[j] = rows[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            dots[j] = d;
            rows[j] = r;
        } else {
            dots[0] = d;
            rows[0] = r;
            sift_down(rows, dots, h, 0);
        }
    }
    t->h = h;
}

void mmr_ann_topk_sort(mmr_ann_topk_t *t) {
    /* heap sort: repeatedly move the worst to the end → best first */
    for (size_t e = t->h; e > 1; e--) {
        float td = t->dots[0]; t->dots[0] = t->dots[e - 1]; t->dots[e - 1] = td;
        int64_t tr = t->rows[0]; t->rows[0] = t->rows[e - 1]; t->rows[e - 1] = tr;
        sift_down(t->rows, t->dots, e - 1, 0);
    }
}

/* --- centroid scores --------------------------------------------------------------------- */

/* Centroid scoring and assignment are written for the vectoriser (TILE independent lanes);
 * where the toolchain can, they are also built for AVX2 and picked at load time. Each lane
 * still adds in the same order, so both builds give the same bits. Not under sanitizers:
 * the clones' ifunc resolver runs before ThreadSanitizer's runtime is up and crashes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__SANITIZE_ADDRESS__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* s (lp) = q (D) · every centroid of ct, vectorised over the TILE centroids of a tile. */
VECTOR_CLONES static void score1(const float *ct, uint32_t lp, int D, const float *q, float *s) {
    for (uint32_t c0 = 0; c0 < lp; c0 += TILE) {
        const float *c = ct + (size_t)c0 * D;
        float a[TILE] = {0};
        for (int d = 0; d < D; d++)
            for (int j = 0; j < TILE; j++) a[j] += q[d] * c[d * TILE + j];
        memcpy(s + c0, a, sizeof a);
    }
}

/* best (m) = the list of the best centroid of each vector x[sel[i]] (sel NULL: x[i]), ties
 * by the lower list. 4 vectors × TILE centroids per register tile; s is (4, lp) scratch. */
VECTOR_CLONES static void assign(const float *ct, uint32_t lp, uint32_t nlist, int D, const float *x,
                   const uint32_t *sel, size_t m, uint32_t *best, float *s) {
    for (size_t i0 = 0; i0 < m; i0 += 4) {
        const float *xp[4];
        for (size_t p = 0; p < 4; p++) {
            size_t i = i0 + p < m ? i0 + p : m - 1; /* pad the last tile with its last row */
            xp[p] = x + (sel ? sel[i] : i) * (size_t)D;
        }
        for (uint32_t c0 = 0; c0 < lp; c0 += TILE) {
            float a0[TILE] = {0}, a1[TILE] = {0}, a2[TILE] = {0}, a3[TILE] = {0};
            for (int d = 0; d < D; d++) {
                const float *c = ct + (size_t)c0 * D + d * TILE;
                float x0 = xp[0][d], x1 = xp[1][d], x2 = xp[2][d], x3 = xp[3][d];
                for (int j = 0; j < TILE; j++) {
                    a0[j] += x0 * c[j];
                    a1[j] += x1 * c[j];
                    a2[j] += x2 * c[j];
                    a3[j] += x3 * c[j];
                }
            }
            memcpy(s + c0, a0, sizeof a0);
            memcpy(s + lp + c0, a1, sizeof a1);
            memcpy(s + 2 * (size_t)lp + c0, a2, sizeof a2);
            memcpy(s + 3 * (size_t)lp + c0, a3, sizeof a3);
        }
        for (size_t p = 0; p < 4 && i0 + p < m; p++) {
            const float *sp = s + p * lp;
            uint32_t b = 0;
            for (uint32_t j = 1; j < nlist; j++)
                if (sp[j] > sp[b]) b = j;
            best[i0 + p] = b;
        }
    }
}

/* --- list order for one query: a max-heap of list indices by (score desc, index asc) ---- */

static int before(const float *s, uint16_t a, uint16_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); }

static void lh_down(uint16_t *h, size_t n, size_t i, const float *s) {
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && before(s, h[l], h[w])) w = l;
        if (r < n && before(s, h[r], h[w])) w = r;
        if (w == i) return;
        uint16_t t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static void lh_init(uint16_t *h, uint32_t nlist, const float *s) {
    for (uint32_t j = 0; j < nlist; j++) h[j] = (uint16_t)j;
    for (size_t i = nlist / 2; i-- > 0;) lh_down(h, nlist, i, s);
}

/* Removes and returns the best list; *n is the heap size (> 0). */
static uint16_t lh_pop(uint16_t *h, size_t *n, const float *s) {
    uint16_t top = h[0];
    h[0] = h[--*n];
    lh_down(h, *n, 0, s);
    return top;
}

void mmr_ann_search(const mmr_ann_t *a, const float *q, size_t k, uint32_t nprobe,
                    const int64_t *exclude_rows, size_t n_exclude, int64_t *rows, float *dots,
                    size_t *n_out) {
    float s[MMR_ANN_MAX_NLIST];    /* (lp) centroid scores */
    uint16_t h[MMR_ANN_MAX_NLIST]; /* (nlist) lists not probed yet */
    mmr_ann_topk_t t = {.k = k, .rows = rows, .dots = dots, .ex = exclude_rows, .n_ex = n_exclude};
    *n_out = 0;
    if (!k) return;
    if (!nprobe) nprobe = a->info.nprobe;
    score1(a->ct, a->lp, a->D, q, s);
    lh_init(h, a->nlist, s);
    size_t left = a->nlist;
    for (uint32_t probed = 0; left && (probed < nprobe || t.h < k); probed++) {
        uint16_t l = lh_pop(h, &left, s);
        size_t o = a->off[l];
        mmr_ann_topk_scan(&t, q, a->vec + o * (size_t)a->D, a->off[l + 1] - o, a->D, a->ids + o, 0);
    }
    mmr_ann_topk_sort(&t);
    *n_out = t.h;
}

/* --- build ------------------------------------------------------------------------------ */

static void normalise(float *v, int D) {
    double ss = 0.0;
    for (int d = 0; d < D; d++) ss += (double)v[d] * v[d];
    if (ss <= 0.0) return;
    float inv = (float)(1.0 / sqrt(ss));
    for (int d = 0; d < D; d++) v[d] *= inv;
}

/* cen (nlist, D) row-major → a->ct (lp / TILE, D, TILE) */
static void transpose(mmr_ann_t *a, const float *cen) {
    for (uint32_t j = 0; j < a->nlist; j++)
        for (int d = 0; d < a->D; d++)
            a->ct[(size_t)(j / TILE * TILE) * a->D + d * TILE + j % TILE] = cen[(size_t)j * a->D + d];
}

/* Spherical k-means over the sampled rows vec[perm[0..ns)]; leaves the centroids in a->ct. */
static void kmeans(mmr_ann_t *a, const float *vec, const uint32_t *perm, size_t ns,
                   uint32_t iters, float *cen, uint32_t *cnt, uint32_t *best, float *s) {
    int D = a->D;
    uint32_t L = a->nlist;
    for (uint32_t j = 0; j < L; j++) memcpy(cen + (size_t)j * D, vec + (size_t)perm[j] * D, D * sizeof(float));
    for (uint32_t it = 0; it < iters; it++) {
        transpose(a, cen);
        assign(a->ct, a->lp, L, D, vec, perm, ns, best, s);
        memset(cen, 0, (size_t)L * D * sizeof *cen);
        memset(cnt, 0, L * sizeof *cnt);
        for (size_t i = 0; i < ns; i++) {
            const float *x = vec + (size_t)perm[i] * D;
            float *c = cen + (size_t)best[i] * D;
            for (int d = 0; d < D; d++) c[d] += x[d];
            cnt[best[i]]++;
        }
        for (uint32_t j = 0; j < L; j++) normalise(cen + (size_t)j * D, D);
        /* an empty list takes half of the largest: both centroids nudged apart */
        for (uint32_t j = 0; j < L; j++) {
            if (cnt[j]) continue;
            uint32_t big = 0;
            for (uint32_t b = 1; b < L; b++)
                if (cnt[b] > cnt[big]) big = b;
            float *cj = cen + (size_t)j * D, *cb = cen + (size_t)big * D;
            for (int d = 0; d < D; d++) {
                float e = (d & 1 ? 1.0f : -1.0f) / 1024.0f;
                cj[d] = cb[d] + e;
                cb[d] -= e;
            }
            normalise(cj, D);
            normalise(cb, D);
            cnt[j] = cnt[big] / 2;
            cnt[big] -= cnt[j];
        }
    }
    transpose(a, cen);
}

/* Calibration: per query set (sampled item vectors, random directions), the mean recall
 * of probing the first p lists, for every p; picks nprobe and fills a->info. list_of (n)
 * is each row's list. */
static mmr_status_t calibrate(mmr_ann_t *a, const float *vec, const uint32_t *list_of,
                              const mmr_ann_opts_t *o, uint64_t *rng, mmr_err_t *err) {
    uint32_t L = a->nlist, nq = o->calib_queries ? o->calib_queries : 1;
    size_t k = o->calib_k && o->calib_k < a->n ? o->calib_k : a->n;
    int D = a->D;
    /* one block: recall (2, L) | scanned (L) as doubles, then rows (k) | hits (L) | q (D)
     * | dots (k) | s (lp) | heap (L) */
    size_t bytes = 3 * (size_t)L * sizeof(double) + k * sizeof(int64_t) + L * sizeof(uint32_t) +
                   (D + k + a->lp) * sizeof(float) + L * sizeof(uint16_t);
    double *rec = calloc(1, bytes), *scanned = rec + 2 * (size_t)L;
    if (!rec) return mmr_err_set(err, MMR_ERR_NOMEM, "ann: out of memory (calibration)");
    int64_t *rows = (int64_t *)(scanned + L);
    uint32_t *hits = (uint32_t *)(rows + k);
    float *q = (float *)(hits + L), *dots = q + D, *s = dots + k;
    uint16_t *h = (uint16_t *)(s + a->lp);
    for (int set = 0; set < 2; set++) {
        for (uint32_t i = 0; i < nq; i++) {
            if (set == 0) {
                memcpy(q, vec + (mmr_rand_next(rng) % a->n) * (size_t)D, D * sizeof(float));
            } else {
                for (int d = 0; d < D; d++) q[d] = (float)(2.0 * mmr_rand_uniform(rng) - 1.0);
                normalise(q, D);
            }
            mmr_ann_topk_t t = {.k = k, .rows = rows, .dots = dots};
            mmr_ann_topk_scan(&t, q, vec, a->n, D, NULL, 0);
            memset(hits, 0, L * sizeof *hits);
            for (size_t r = 0; r < t.h; r++) hits[list_of[rows[r]]]++;
            score1(a->ct, a->lp, D, q, s);
            lh_init(h, L, s);
            size_t left = L, found = 0, seen = 0;
            for (uint32_t p = 0; p < L; p++) {
                uint16_t l = lh_pop(h, &left, s);
                found += hits[l];
                seen += a->off[l + 1] - a->off[l];
                rec[(size_t)set * L + p] += (double)found / (double)k / nq;
                scanned[p] += (double)seen / (double)a->n / (2.0 * nq);
            }
        }
    }
    uint32_t p = o->nprobe ? (o->nprobe < L ? o->nprobe : L) : 1;
    if (!o->nprobe)
        while (p < L && fmin(rec[p - 1], rec[L + p - 1]) < o->target_recall) p++;
    a->info.nprobe = p;
    a->info.recall = (float)fmin(rec[p - 1], rec[L + p - 1]);
    a->info.scan_frac = (float)scanned[p - 1];
    free(rec);
    return MMR_OK;
}

mmr_status_t mmr_ann_new(const float *vec, size_t n, int D, const mmr_ann_opts_t *opts,
                         mmr_ann_t **out, mmr_err_t *err) {
    mmr_ann_opts_t o = opts ? *opts : mmr_ann_opts_default();
    *out = NULL;
    if (n == 0 || n >= UINT32_MAX || D < 1)
        return mmr_err_set(err, MMR_ERR_INVALID, "ann: bad shape (%zu, %d)", n, D);
    if (o.nlist > MMR_ANN_MAX_NLIST)
        return mmr_err_set(err, MMR_ERR_INVALID, "ann: nlist %u over %d", o.nlist, MMR_ANN_MAX_NLIST);
    int64_t t0 = mmr_mono_ns();
    uint32_t L = o.nlist ? o.nlist : (uint32_t)fmin(lround(sqrt((double)n)), MMR_ANN_MAX_NLIST);
    if (L > n) L = (uint32_t)n;
    if (L < 1) L = 1;
    mmr_ann_t *a = calloc(1, sizeof *a);
    if (!a) return mmr_err_set(err, MMR_ERR_NOMEM, "ann: out of memory");
    a->D = D;
    a->n = n;
    a->nlist = L;
    a->lp = (L + TILE - 1) / TILE * TILE;
    size_t ns = (size_t)L * (o.train_per_list ? o.train_per_list : 1);
    if (ns > n) ns = n;
    a->ct = calloc((size_t)D * a->lp, sizeof *a->ct);
    a->off = calloc(L + 1, sizeof *a->off);
    a->ids = malloc(n * sizeof *a->ids);
    a->vec = malloc(n * (size_t)D * sizeof *a->vec);
    uint32_t *perm = malloc(n * sizeof *perm);     /* (n) rows, the first ns a random sample */
    uint32_t *list_of = malloc(n * sizeof *list_of); /* (n) each row's list */
    float *cen = malloc((size_t)L * D * sizeof *cen);  /* (L, D) */
    uint32_t *cnt = malloc(L * sizeof *cnt);           /* (L) */
    float *s = malloc(4 * (size_t)a->lp * sizeof *s);  /* (4, lp) */
    mmr_status_t st = MMR_OK;
    if (!a->ct || !a->off || !a->ids || !a->vec || !perm || !list_of || !cen || !cnt || !s) {
        st = mmr_err_set(err, MMR_ERR_NOMEM, "ann: out of memory (index of %zu rows)", n);
        goto out;
    }
    uint64_t rng = o.seed;
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = 0; i < ns; i++) { /* partial Fisher-Yates */
        size_t j = i + mmr_rand_next(&rng) % (n - i);
        uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    kmeans(a, vec, perm, ns, o.iters, cen, cnt, list_of, s);
    assign(a->ct, a->lp, L, D, vec, NULL, n, list_of, s);
    /* counting sort by list; rows stay ascending within a list */
    for (size_t i = 0; i < n; i++) a->off[list_of[i] + 1]++;
    for (uint32_t j = 0; j < L; j++) a->off[j + 1] += a->off[j];
    memcpy(cnt, a->off, L * sizeof *cnt); /* next free slot per list */
    for (size_t i = 0; i < n; i++) {
        uint32_t at = cnt[list_of[i]]++;
        a->ids[at] = (uint32_t)i;
        memcpy(a->vec + (size_t)at * D, vec + i * (size_t)D, D * sizeof(float));
    }
    a->info.nlist = L;
    st = calibrate(a, vec, list_of, &o, &rng, err);
    a->info.build_s = (double)(mmr_mono_ns() - t0) / 1e9;
out:
    free(perm);
    free(list_of);
    free(cen);
    free(cnt);
    free(s);
    if (st != MMR_OK) {
        mmr_ann_free(a);
        return st;
    }
    *out = a;
    return MMR_OK;
}

void mmr_ann_free(mmr_ann_t *a) {
    if (!a) return;
    free(a->ct);
    free(a->off);
    free(a->ids);
    free(a->vec);
    free(a);
}

void mmr_ann_get_info(const mmr_ann_t *a, mmr_ann_info_t *out) { *out = a->info; }
