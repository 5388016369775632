/* test_tower_sgemm.c — mmr_tower_sgemm (cblas when the build found one) and the plain-C
 * fallback mmr_tower_sgemm_ref agree with a double triple loop, and with each other, for
 * every transpose, awkward sizes, padded strides, alpha/beta (beta = 0 must not read C). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mmr_tower.h"
#include "tower_sgemm.h"

static uint64_t rng = 88172645463325252ull;
static float sym(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

int main(void) {
    const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {37, 65, 129}, {64, 33, 1}, {2, 3, 0},
                            {128, 3, 384}, {1, 64, 128}, {100, 100, 100}};
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.0f, 0.25f}};
    int cases = 0;
    printf("backend: %s\n", mmr_tower_backend_name(NULL));
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t k = 0; k < sizeof ab / sizeof ab[0]; k++) {
                    int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    int lda = ac + 3, ldb = bc + 1, ldc = N + 2;
                    float alpha = ab[k][0], beta = ab[k][1];
                    float *A = malloc(sizeof(float) * ((size_t)ar * lda + 1));
                    float *B = malloc(sizeof(float) * ((size_t)br * ldb + 1));
                    float *C0 = malloc(sizeof(float) * (size_t)M * ldc);
                    float *C1 = malloc(sizeof(float) * (size_t)M * ldc);
                    float *C2 = malloc(sizeof(float) * (size_t)M * ldc);
                    for (int i = 0; i < ar * lda + 1; i++) A[i] = sym();
                    for (int i = 0; i < br * ldb + 1; i++) B[i] = sym();
                    for (int i = 0; i < M * ldc; i++)
                        C0[i] = C1[i] = C2[i] = beta == 0.0f ? NAN : sym();
                    mmr_tower_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
                    mmr_tower_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
                    double worst = 0, cross = 0;
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double acc = 0, mag = 0;
                            for (int p = 0; p < K; p++) {
                                double a = ta ? A[p * lda + i] : A[i * lda + p];
                                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                                acc += a * b, mag += fabs(a * b);
                            }
                            double c0 = beta == 0.0f ? 0 : C0[i * ldc + j];
                            double want = alpha * acc + beta * c0;
                            double scale = fabs(alpha) * mag + fabs(beta * c0) + 1e-30;
                            double e1 = fabs(C1[i * ldc + j] - want) / scale;
                            double e2 = fabs(C2[i * ldc + j] - want) / scale;
                            double e12 = fabs((double)C1[i * ldc + j] - C2[i * ldc + j]) / scale;
                            worst = fmax(worst, fmax(e1, e2));
                            if (!(e1 <= 1e-6 && e2 <= 1e-6)) worst = INFINITY;
                            cross = fmax(cross, e12);
                        }
                    for (int i = 0; i < M; i++) // padding columns untouched
                        for (int j = N; j < ldc; j++)
                            if (!(C1[i * ldc + j] == C0[i * ldc + j] ||
                                  (isnan(C1[i * ldc + j]) && isnan(C0[i * ldc + j]))) ||
                                !(C2[i * ldc + j] == C0[i * ldc + j] ||
                                  (isnan(C2[i * ldc + j]) && isnan(C0[i * ldc + j])))) {
                                fprintf(stderr, "padding written\n");
                                return 1;
                            }
                    if (!(worst <= 1e-6)) {
                        fprintf(stderr, "M=%d N=%d K=%d ta=%d tb=%d alpha=%g beta=%g: error %g\n",
                                M, N, K, ta, tb, alpha, beta, worst);
                        return 1;
                    }
                    if (!(cross <= 2e-6)) {
                        fprintf(stderr, "sgemm vs fallback differ by %g\n", cross);
                        return 1;
                    }
                    free(A), free(B), free(C0), free(C1), free(C2);
                    cases++;
                }
    printf("%d cases ok\n", cases);
    return 0;
}
