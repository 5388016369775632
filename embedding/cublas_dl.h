/* cublas_dl.h — the slice of cuBLAS the CUDA backend uses, loaded at run time with dlopen
 * (private to embedding/). Why: a CUDA build then needs only nvcc and the CUDA runtime, so
 * it compiles and links on toolkits without cuBLAS (like this project's build machines),
 * and one binary runs on GPU hosts whatever cuBLAS version (11, 12, 13) they carry. The
 * types and signatures are cuBLAS's stable v2 ABI; the symbols are the exported *_v2 names.
 * MMREC_CUBLAS=/path/libcublas.so.N overrides the library searched for. */
#ifndef MMR_CUBLAS_DL_H
#define MMR_CUBLAS_DL_H

#include <cuda_runtime.h>

#include "mmr_err.h"

typedef struct cublasContext *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0 } cublasMath_t;

typedef struct mmr_cublas {
    cublasStatus_t (*create)(cublasHandle_t *handle);
    cublasStatus_t (*destroy)(cublasHandle_t handle);
    cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
    cublasStatus_t (*set_math_mode)(cublasHandle_t handle, cublasMath_t mode);
    const char *(*status_string)(cublasStatus_t status);
    cublasStatus_t (*sgemm)(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const float *alpha,
                            const float *A, int lda, const float *B, int ldb, const float *beta,
                            float *C, int ldc);
} mmr_cublas_t;

/* Loads cuBLAS once per process (thread-safe); later calls return the same table. Errors:
 * MMR_ERR_UNSUPPORTED naming the libraries tried and dlerror()'s message. */
mmr_status_t mmr_cublas_load(const mmr_cublas_t **out, mmr_err_t *err);

#endif
