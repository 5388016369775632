/* ann.c — IVF-SQ8 approximate top-K by dot product (see mmr_ann.h), and the exact top-K
 * scan it shares with mmr_model_retrieve. Not a general vector database: no inserts, one
 * metric.
 *
 * Why our own and not FAISS (measured 2026-11-23 on this 2-core AMD EPYC, D = 64, random
 * unit vectors, one query at a time as the Rank path issues them): Debian's libfaiss-dev
 * 1.7.3 installs, but ships only a static C++ libfaiss.a (its c_api headers without the
 * libfaiss_c library), so it would need a C++ shim, C++ in the build, OpenMP, LAPACK and a
 * deps.sh change. Its IndexIVFFlat (nlist = sqrt N, 1 thread) took 186 us/query at nprobe 8
 * over 100k items and 0.87 s to build, i.e. no faster per query than our exact scan, with
 * its per-call overhead and without our exclusion contract (IDSelector would be needed).
 * The same kind of index in a few hundred lines of C has no new dependency, keeps the
 * contract and the exact scan's tie order, and is measured by ranking/bench_retrieve.c
 * (docs/PERFORMANCE.md).
 *
 * The index: spherical k-means (fixed seed, centroids = normalised means, empty lists split
 * off the largest) over a sample of the rows; every row goes to the list of its best
 * centroid by dot product; each list's rows and their 8-bit codes are stored contiguously
 * (rows ascending within a list). A code is the row's residual (vector - its centroid)
 * quantised per dimension onto 256 steps between that dimension's residual minimum and
 * maximum over the catalog: a quarter of the bytes of the floats, which is what a probe
 * over a million items costs. A query scores all centroids, probes lists best first,
 * scores their codes with integer multiply-adds against the query rounded to 16 bits (plus
 * the list's centroid score), keeps the best rerank * k (a threshold and a buffer of twice
 * that, cut by quickselect), and re-scores those exactly from the caller's float vectors,
 * so every score returned is the exact scan's. nprobe is calibrated at build: first from
 * the share of the exact top-k lying in the first p lists (an upper bound on recall, one
 * exact scan per calibration query), then raised until the searches themselves,
 * quantisation and re-scoring included, reach the target. Random
 * directions in 64-D have no cluster structure, so there the calibration picks a large
 * nprobe and the model may prefer exact (mmr_model.h); real embeddings are clustered and
 * need few lists. */
#include "mmr_ann.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mmr_rand.h"
#include "mmr_time.h"

#define TILE 8        /* centroids per register tile; ct rows are padded to a multiple of it */
#define CODE_ALIGN 16 /* code rows are padded to a multiple of it (one AVX2 load of 16 codes) */
#define CAND_CAP 4096 /* approximate candidates buffered on the stack (more: on the heap) */

struct mmr_ann {
    int D, Dp;           /* Dp = D rounded up to CODE_ALIGN */
    size_t n;
    uint32_t nlist, lp;  /* lp = nlist rounded up to TILE */
    uint32_t rerank;
    float *ct;           /* (lp / TILE, D, TILE) centroids in tiles of TILE, transposed
                          * within a tile; padding centroids 0 */
    uint32_t *off;       /* (nlist + 1) start of each list in ids / codes */
    uint32_t *ids;       /* (n) rows, list by list */
    uint8_t *codes;      /* (n, Dp) the rows' codes in the same order; padding 0 */
    float *lo, *step;    /* (D) the quantiser: x[d] ≈ lo[d] + code * step[d] */
    const float *vec;    /* (n, D) the caller's vectors by row, for re-scoring */
    mmr_ann_info_t info;
};

mmr_ann_opts_t mmr_ann_opts_default(void) {
    return (mmr_ann_opts_t){.target_recall = 0.97f, .rerank = 2, .calib_k = 100, .calib_queries = 32,
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

/* Offers row r with dot d to the running top-k t. */
static void offer(mmr_ann_topk_t *t, float d, int64_t r) {
    int64_t *rows = t->rows;
    float *dots = t->dots;
    /* rows/dots hold a min-heap of the best h so far (root = the worst of them) */
    if (t->h == t->k && (!t->k || !worse(dots[0], rows[0], d, r))) return;
    if (t->n_ex && excluded(t->ex, t->n_ex, r)) return;
    if (t->h < t->k) {
        size_t j = t->h++; /* sift up */
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
        sift_down(rows, dots, t->h, 0);
    }
}

void mmr_ann_topk_scan(mmr_ann_topk_t *t, const float *q, const float *vec, size_t n, int D,
                       const uint32_t *ids, int64_t row0) {
    for (size_t i = 0; t->k && i < n; i++)
        offer(t, dot(q, vec + i * (size_t)D, (size_t)D), ids ? (int64_t)ids[i] : row0 + (int64_t)i);
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

/* --- codes -------------------------------------------------------------------------- */

/* The code (Dp) of row x (D) in the list of centroid cen (D): each dimension of the
 * residual x - cen rounded onto its 256 steps, clamped; padding 0. */
static void encode(const mmr_ann_t *a, const float *x, const float *cen, uint8_t *c) {
    for (int d = 0; d < a->D; d++) {
        float u = (x[d] - cen[d] - a->lo[d]) / a->step[d];
        c[d] = !(u > 0.0f) ? 0 : u >= 255.0f ? 255 : (uint8_t)(u + 0.5f);
    }
    memset(c + a->D, 0, (size_t)(a->Dp - a->D));
}

/* A query as the codes see it: qi = q · step rounded onto 16 bits, so that q · x ≈ q · cen
 * + Σ qi[d] code[d] · inv + q · lo, the last term the same for every row. Scaled so that no
 * sum over Dp codes can overflow 32 bits; padding 0. */
typedef struct qcode {
    int16_t qi[MMR_ANN_MAX_D]; /* (Dp) */
    int Dp;
    float inv;
} qcode_t;

static void quantise_query(const mmr_ann_t *a, const float *q, qcode_t *qc) {
    float m = 0.0f;
    for (int d = 0; d < a->D; d++) {
        float w = fabsf(q[d] * a->step[d]);
        if (w > m) m = w;
    }
    double lim = fmin(32767.0, floor((double)INT32_MAX / (255.0 * a->Dp)));
    float sc = m > 0.0f ? (float)fmin(lim / m, FLT_MAX) : 0.0f; /* m may be subnormal */
    for (int d = 0; d < a->D; d++) {
        float v = q[d] * a->step[d] * sc;
        qc->qi[d] = v > (float)lim ? (int16_t)lim : v < (float)-lim ? (int16_t)-lim : v == v ? (int16_t)lrintf(v) : 0;
    }
    memset(qc->qi + a->D, 0, (size_t)(a->Dp - a->D) * sizeof *qc->qi);
    qc->Dp = a->Dp;
    qc->inv = sc > 0.0f ? 1.0f / sc : 0.0f;
}

/* The approximate candidates of one search: every offered row scoring at least thr is
 * buffered; when the buffer is full, the best keep stay (cand_select) and thr rises to the
 * worst of them. Cheaper than a heap of keep rows, which re-sorts on every better row. */
typedef struct cand {
    int64_t *rows;
    float *sc;
    size_t n, keep, cap; /* keep < cap */
    float thr;
    const int64_t *ex;   /* (n_ex) excluded rows, sorted */
    size_t n_ex;
} cand_t;

static void cand_swap(cand_t *c, size_t i, size_t j) {
    float s = c->sc[i]; c->sc[i] = c->sc[j]; c->sc[j] = s;
    int64_t r = c->rows[i]; c->rows[i] = c->rows[j]; c->rows[j] = r;
}

/* Quickselect: the best keep of the n buffered (by score, then the lower row) to the front;
 * n = keep and thr = the keep-th best score. The kept set does not depend on the order. */
static void cand_select(cand_t *c) {
    if (c->n <= c->keep) return;
    size_t lo = 0, hi = c->n, m = c->keep - 1;
    while (lo < hi) { /* m in [lo, hi) */
        size_t mid = lo + (hi - lo) / 2, st = lo;
        cand_swap(c, mid, hi - 1);
        float ps = c->sc[hi - 1];
        int64_t pr = c->rows[hi - 1];
        for (size_t i = lo; i < hi - 1; i++)
            if (worse(ps, pr, c->sc[i], c->rows[i])) cand_swap(c, i, st++);
        cand_swap(c, st, hi - 1); /* [lo, st) better than the pivot, now at st */
        if (st == m) break;
        if (st < m) lo = st + 1; else hi = st;
    }
    c->n = c->keep;
    c->thr = c->sc[m];
}

static void cand_offer(cand_t *c, float s, int64_t r) {
    if (!(s >= c->thr) || (c->n_ex && excluded(c->ex, c->n_ex, r))) return;
    if (c->n == c->cap) {
        cand_select(c);
        if (!(s >= c->thr)) return;
    }
    c->rows[c->n] = r;
    c->sc[c->n++] = s;
}

/* Offers the n rows ids (n) of one list, codes c (n, Dp), scored base + inv · Σ qi code
 * (base = the query's dot with the list's centroid). The integer sums are the same on
 * every path, and so are the scores (no fused multiply-add). */
static void scan_codes_portable(cand_t *t, const qcode_t *qc, float base, const uint8_t *c,
                                const uint32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *x = c + i * (size_t)qc->Dp;
        int32_t s = 0;
        for (int d = 0; d < qc->Dp; d++) s += (int32_t)x[d] * qc->qi[d];
        cand_offer(t, (float)s * qc->inv + base, ids[i]);
    }
}

#ifdef HAVE_DOT_AVX2
/* The same, 8 rows at a time: 16 codes widened to 16 bits and multiply-added per step, the
 * 8 rows' sums reduced together, and only rows at or above the threshold offered. */
__attribute__((target("avx2"))) static void scan_codes_avx2(cand_t *t, const qcode_t *qc, float base,
                                                            const uint8_t *c, const uint32_t *ids, size_t n) {
    int Dp = qc->Dp;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint8_t *b = c + i * (size_t)Dp;
        __m256i acc[8];
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) acc[v] = _mm256_setzero_si256();
        for (int d = 0; d < Dp; d += CODE_ALIGN) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(qc->qi + d));
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + (size_t)v * Dp + d)));
                acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(x, qv));
            }
        }
        /* hadd twice: [row v's low-half sum for v < 4 | its high-half sum], rows 4-7 alike */
        __m256i s03 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
        __m256i s47 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[4], acc[5]), _mm256_hadd_epi32(acc[6], acc[7]));
        __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(s03, s47, 0x20),
                                       _mm256_permute2x128_si256(s03, s47, 0x31));
        __m256 f = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(qc->inv)),
                                 _mm256_set1_ps(base));
        int m = _mm256_movemask_ps(_mm256_cmp_ps(f, _mm256_set1_ps(t->thr), _CMP_GE_OQ));
        if (!m) continue;
        float sc[8];
        _mm256_storeu_ps(sc, f);
        for (; m; m &= m - 1) {
            int v = __builtin_ctz((unsigned)m);
            cand_offer(t, sc[v], ids[i + (size_t)v]);
        }
    }
    scan_codes_portable(t, qc, base, c + i * (size_t)Dp, ids + i, n - i);
}
#endif

static void scan_codes(cand_t *t, const qcode_t *qc, float base, const uint8_t *c, const uint32_t *ids,
                       size_t n) {
#ifdef HAVE_DOT_AVX2
    if (use_avx2()) {
        scan_codes_avx2(t, qc, base, c, ids, n);
        return;
    }
#endif
    scan_codes_portable(t, qc, base, c, ids, n);
}

void mmr_ann_search(const mmr_ann_t *a, const float *q, size_t k, uint32_t nprobe,
                    const int64_t *exclude_rows, size_t n_exclude, int64_t *rows, float *dots,
                    size_t *n_out) {
    float s[MMR_ANN_MAX_NLIST];    /* (lp) centroid scores */
    uint16_t h[MMR_ANN_MAX_NLIST]; /* (nlist) lists not probed yet */
    qcode_t qc;                    /* the query rounded for the codes */
    int64_t crow[CAND_CAP];        /* the candidates, when they fit */
    float csc[CAND_CAP];
    mmr_ann_topk_t t = {.k = k, .rows = rows, .dots = dots};
    *n_out = 0;
    if (!k) return;
    if (!nprobe) nprobe = a->info.nprobe;
    /* keep the best R = rerank * k by code (at least k, at most every row) in a buffer of 2 R */
    size_t R = k > CAND_CAP / 2 / a->rerank ? (k > CAND_CAP / 2 ? k : CAND_CAP / 2) : k * a->rerank;
    if (R > a->n) R = a->n;
    cand_t c = {.rows = crow, .sc = csc, .keep = R, .cap = 2 * R, .thr = -INFINITY,
                .ex = exclude_rows, .n_ex = n_exclude};
    if (c.cap > CAND_CAP) {
        c.rows = malloc(c.cap * (sizeof *c.rows + sizeof *c.sc));
        if (!c.rows) { /* no memory for a large k: answer exactly */
            t.ex = exclude_rows;
            t.n_ex = n_exclude;
            mmr_ann_topk_scan(&t, q, a->vec, a->n, a->D, NULL, 0);
            mmr_ann_topk_sort(&t);
            *n_out = t.h;
            return;
        }
        c.sc = (float *)(c.rows + c.cap);
    }
    quantise_query(a, q, &qc);
    score1(a->ct, a->lp, a->D, q, s);
    lh_init(h, a->nlist, s);
    size_t left = a->nlist;
    for (uint32_t probed = 0; left && (probed < nprobe || c.n < k); probed++) {
        uint16_t l = lh_pop(h, &left, s);
        size_t o = a->off[l];
        scan_codes(&c, &qc, s[l], a->codes + o * (size_t)a->Dp, a->ids + o, a->off[l + 1] - o);
    }
    cand_select(&c);
    for (size_t i = 0; i < c.n; i++) offer(&t, dot(q, a->vec + (size_t)c.rows[i] * a->D, (size_t)a->D), c.rows[i]);
    mmr_ann_topk_sort(&t);
    *n_out = t.h;
    if (c.rows != crow) free(c.rows);
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

/* The worse over the two query sets of the mean recall@k of searches at nprobe p: qs (2 nq,
 * D) the calibration queries, ex (2 nq, k) their exact top-k; rows, dots (k) scratch. */
static double search_recall(const mmr_ann_t *a, const float *qs, const int64_t *ex, uint32_t nq,
                            size_t k, uint32_t p, int64_t *rows, float *dots) {
    double worst = 1.0;
    for (size_t set = 0; set < 2; set++) {
        size_t hit = 0;
        for (size_t i = set * nq; i < (set + 1) * nq; i++) {
            size_t got = 0;
            mmr_ann_search(a, qs + i * a->D, k, p, NULL, 0, rows, dots, &got);
            for (size_t r = 0; r < got; r++)
                for (size_t j = 0; j < k; j++)
                    if (rows[r] == ex[i * k + j]) { hit++; break; }
        }
        worst = fmin(worst, (double)hit / ((double)k * nq));
    }
    return worst;
}

/* Calibration over two query sets (sampled item vectors, random directions): the mean share
 * of the exact top-k in the first p lists, for every p, gives the smallest p that could
 * reach the target; p then grows until the searches do. Fills a->info. list_of (n) is each
 * row's list. */
static mmr_status_t calibrate(mmr_ann_t *a, const float *vec, const uint32_t *list_of,
                              const mmr_ann_opts_t *o, uint64_t *rng, mmr_err_t *err) {
    uint32_t L = a->nlist, nq = o->calib_queries ? o->calib_queries : 1;
    size_t k = o->calib_k && o->calib_k < a->n ? o->calib_k : a->n;
    int D = a->D;
    /* one block: rec (2, L) | scanned (L) as doubles, then ex (2 nq, k) | rows (k) | hits (L)
     * | qs (2 nq, D) | dots (k) | s (lp) | heap (L) */
    size_t bytes = 3 * (size_t)L * sizeof(double) + (2 * (size_t)nq + 1) * k * sizeof(int64_t) +
                   L * sizeof(uint32_t) + (2 * (size_t)nq * D + k + a->lp) * sizeof(float) +
                   L * sizeof(uint16_t);
    double *rec = calloc(1, bytes), *scanned = rec + 2 * (size_t)L;
    if (!rec) return mmr_err_set(err, MMR_ERR_NOMEM, "ann: out of memory (calibration)");
    int64_t *ex = (int64_t *)(scanned + L), *rows = ex + 2 * (size_t)nq * k;
    uint32_t *hits = (uint32_t *)(rows + k);
    float *qs = (float *)(hits + L), *dots = qs + 2 * (size_t)nq * D, *s = dots + k;
    uint16_t *h = (uint16_t *)(s + a->lp);
    for (size_t set = 0; set < 2; set++) {
        for (size_t i = 0; i < nq; i++) {
            float *q = qs + (set * nq + i) * D;
            if (set == 0) {
                memcpy(q, vec + (mmr_rand_next(rng) % a->n) * (size_t)D, D * sizeof(float));
            } else {
                for (int d = 0; d < D; d++) q[d] = (float)(2.0 * mmr_rand_uniform(rng) - 1.0);
                normalise(q, D);
            }
            mmr_ann_topk_t t = {.k = k, .rows = ex + (set * nq + i) * k, .dots = dots};
            mmr_ann_topk_scan(&t, q, vec, a->n, D, NULL, 0);
            memset(hits, 0, L * sizeof *hits);
            for (size_t r = 0; r < t.h; r++) hits[list_of[t.rows[r]]]++;
            score1(a->ct, a->lp, D, q, s);
            lh_init(h, L, s);
            size_t left = L, found = 0, seen = 0;
            for (uint32_t p = 0; p < L; p++) {
                uint16_t l = lh_pop(h, &left, s);
                found += hits[l];
                seen += a->off[l + 1] - a->off[l];
                rec[set * L + p] += (double)found / (double)k / nq;
                scanned[p] += (double)seen / (double)a->n / (2.0 * nq);
            }
        }
    }
    uint32_t p = o->nprobe ? (o->nprobe < L ? o->nprobe : L) : 1;
    if (!o->nprobe)
        while (p < L && fmin(rec[p - 1], rec[L + p - 1]) < o->target_recall) p++;
    double r = search_recall(a, qs, ex, nq, k, p, rows, dots);
    while (!o->nprobe && r < o->target_recall && p < L) {
        p += p / 8 ? p / 8 : 1;
        if (p > L) p = L;
        r = search_recall(a, qs, ex, nq, k, p, rows, dots);
    }
    a->info.nprobe = p;
    a->info.recall = (float)r;
    a->info.scan_frac = (float)scanned[p - 1];
    free(rec);
    return MMR_OK;
}

/* a->lo, a->step from each dimension's range of the residuals (row - its list's centroid:
 * cen (nlist, D), list_of (n)) over the n rows of vec; a constant dimension gets step 1. */
static void quantiser(mmr_ann_t *a, const float *vec, const float *cen, const uint32_t *list_of) {
    int D = a->D;
    float *hi = a->step;
    for (int d = 0; d < D; d++) {
        a->lo[d] = INFINITY;
        hi[d] = -INFINITY;
    }
    for (size_t i = 0; i < a->n; i++)
        for (int d = 0; d < D; d++) {
            float x = vec[i * (size_t)D + d] - cen[(size_t)list_of[i] * D + d];
            if (x < a->lo[d]) a->lo[d] = x;
            if (x > hi[d]) hi[d] = x;
        }
    for (int d = 0; d < D; d++) {
        if (!(hi[d] > a->lo[d])) hi[d] = a->lo[d] = isfinite(a->lo[d]) ? a->lo[d] : 0.0f;
        a->step[d] = hi[d] > a->lo[d] ? (hi[d] - a->lo[d]) / 255.0f : 1.0f;
    }
}

mmr_status_t mmr_ann_new(const float *vec, size_t n, int D, const mmr_ann_opts_t *opts,
                         mmr_ann_t **out, mmr_err_t *err) {
    mmr_ann_opts_t o = opts ? *opts : mmr_ann_opts_default();
    *out = NULL;
    if (n == 0 || n >= UINT32_MAX || D < 1 || D > MMR_ANN_MAX_D)
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
    a->Dp = (D + CODE_ALIGN - 1) / CODE_ALIGN * CODE_ALIGN;
    a->n = n;
    a->rerank = o.rerank ? o.rerank : 1;
    a->vec = vec;
    a->nlist = L;
    a->lp = (L + TILE - 1) / TILE * TILE;
    size_t ns = (size_t)L * (o.train_per_list ? o.train_per_list : 1);
    if (ns > n) ns = n;
    a->ct = calloc((size_t)D * a->lp, sizeof *a->ct);
    a->off = calloc(L + 1, sizeof *a->off);
    a->ids = malloc(n * sizeof *a->ids);
    a->codes = malloc(n * (size_t)a->Dp);
    a->lo = malloc(2 * (size_t)D * sizeof *a->lo);
    a->step = a->lo ? a->lo + D : NULL;
    uint32_t *perm = malloc(n * sizeof *perm);     /* (n) rows, the first ns a random sample */
    uint32_t *list_of = malloc(n * sizeof *list_of); /* (n) each row's list */
    float *cen = malloc((size_t)L * D * sizeof *cen);  /* (L, D) */
    uint32_t *cnt = malloc(L * sizeof *cnt);           /* (L) */
    float *s = malloc(4 * (size_t)a->lp * sizeof *s);  /* (4, lp) */
    mmr_status_t st = MMR_OK;
    if (!a->ct || !a->off || !a->ids || !a->codes || !a->lo || !perm || !list_of || !cen || !cnt || !s) {
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
    quantiser(a, vec, cen, list_of);
    /* counting sort by list; rows stay ascending within a list */
    for (size_t i = 0; i < n; i++) a->off[list_of[i] + 1]++;
    for (uint32_t j = 0; j < L; j++) a->off[j + 1] += a->off[j];
    memcpy(cnt, a->off, L * sizeof *cnt); /* next free slot per list */
    for (size_t i = 0; i < n; i++) {
        uint32_t at = cnt[list_of[i]]++;
        a->ids[at] = (uint32_t)i;
        encode(a, vec + i * (size_t)D, cen + (size_t)list_of[i] * D, a->codes + (size_t)at * a->Dp);
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
    free(a->codes);
    free(a->lo);
    free(a);
}

void mmr_ann_get_info(const mmr_ann_t *a, mmr_ann_info_t *out) { *out = a->info; }
