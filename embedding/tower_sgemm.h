/* tower_sgemm.h — private: the one GEMM the CPU towers use, row-major.
 * mmr_tower_sgemm is cblas_sgemm when the build found a BLAS (MMR_TOWER_HAVE_BLAS) and the
 * plain-C mmr_tower_sgemm_ref otherwise; the choice is made at build time. */
#ifndef MMR_TOWER_SGEMM_H
#define MMR_TOWER_SGEMM_H

#ifdef __cplusplus
extern "C" {
#endif

/* C (M, N) = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is (M, K): A is (M, K)
 * with row stride lda, or (K, M) when ta. op(B) is (K, N): B is (K, N), or (N, K) when tb.
 * beta == 0 overwrites C without reading it (BLAS semantics). */
void mmr_tower_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The plain-C implementation: same contract. */
void mmr_tower_sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc);

#ifdef __cplusplus
}
#endif

#endif
