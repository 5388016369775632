/* tower_sgemm.c — row-major SGEMM: cblas_sgemm, or a plain-C fallback for hosts without a
 * BLAS (a GPU host may have only the CUDA toolkit). The fallback is one blocked loop nest
 * (about 10x slower than OpenBLAS on the tower shapes): correct, small, vectorisable. */
#include "tower_sgemm.h"

#include <stddef.h>

#ifdef MMR_TOWER_HAVE_BLAS
#include <cblas.h>
#endif
#ifdef MMR_TOWER_OPENBLAS
#include <pthread.h>

/* OpenBLAS threads spin (sched_yield) between calls; the towers' GEMMs are small and the
 * engine brings its own parallelism (serving threads, replay variants), so its pool only
 * burns the cores those need: measured 3x slower training with it. One thread, once. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
#endif

void mmr_tower_sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) { // C = beta C
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
    // c[i,:] += alpha A(i,p) B(p,:), the inner loop along a contiguous row. When B is stored
    // (N, K), 64 x 64 blocks of it are transposed first so that row is contiguous too.
    float bt[64][64]; // bt[p][j] = B(p0 + p, j0 + j)
    for (int j0 = 0; j0 < N; j0 += 64) {
        int nj = N - j0 < 64 ? N - j0 : 64;
        for (int p0 = 0; p0 < K; p0 += 64) {
            int np = K - p0 < 64 ? K - p0 : 64;
            if (tb)
                for (int j = 0; j < nj; j++)
                    for (int p = 0; p < np; p++) bt[p][j] = B[(size_t)(j0 + j) * ldb + p0 + p];
            for (int i = 0; i < M; i++) {
                float *restrict c = C + (size_t)i * ldc + j0; // c is (nj)
                for (int p = 0; p < np; p++) {
                    size_t ip = ta ? (size_t)(p0 + p) * lda + i : (size_t)i * lda + p0 + p;
                    float a = alpha * A[ip];
                    const float *restrict b = tb ? bt[p] : B + (size_t)(p0 + p) * ldb + j0;
                    for (int j = 0; j < nj; j++) c[j] += a * b[j];
                }
            }
        }
    }
}

void mmr_tower_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef MMR_TOWER_HAVE_BLAS
    if (K <= 0) { // C = beta C; cblas would reject lda < 1 here
        mmr_tower_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef MMR_TOWER_OPENBLAS
    pthread_once(&blas_once, blas_single_thread);
#endif
    if (M == 1) { /* one row (serving one user): GEMV, without GEMM's packing of B */
        if (tb) /* B is (N, K): c = B a */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        else    /* B is (K, N): c = B^T a */
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    mmr_tower_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
