/* tower_cuda.cu — the CUDA backend: the item-tower forward of tower_cpu.c (the spec) with
 * cuBLAS GEMMs and fused kernels (modality fill, gate softmax + fusion, bias + relu,
 * bias + id row + L2 normalise). One stream; inputs go through pinned staging buffers.
 * Device pointers never leave this file. Not here yet (the interface answers
 * MMR_ERR_UNSUPPORTED): the user tower, backward, top-K, fp16/bf16 storage. */
extern "C" { // the C headers have no C++ guards of their own
#include "cublas_dl.h"
#include "mmr_err.h"
}
#include "tower_impl.h"

#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* On failure: record file:line, the call and CUDA's message in err, and return
 * MMR_ERR_CUDA from the enclosing function (which has `mmr_err_t *err`, and for cuBLAS the
 * `cuda_ctx *c` holding the loaded table, in scope). This is
 * the one place cudaError_t and cublasStatus_t become mmrec status codes. */
#define cudaCheck(call)                                                                    \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess)                                                             \
            return mmr_err_set(err, MMR_ERR_CUDA, "%s:%d: %s: %s", __FILE__, __LINE__,     \
                               #call, cudaGetErrorString(e_));                             \
    } while (0)
#define cublasCheck(call)                                                                  \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                   \
            return mmr_err_set(err, MMR_ERR_CUDA, "%s:%d: %s: %s", __FILE__, __LINE__,     \
                               #call, c->cublas->status_string(s_));                          \
    } while (0)

#define NORM_EPS 1e-12f

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    const mmr_cublas_t *cublas; // loaded at run time (cublas_dl.h)
    cublasHandle_t blas;
    uint64_t gen;        // generation of the weights on the device, 0 = none
    size_t n_params;
    float *d_params;     // (n_params), same layout as mmr_tower_params()
    // batch buffers, sized for cap items of dims (H, D, dmax)
    int cap, H, D, dmax;
    float *d_block;      // one allocation holding the float buffers below
    float *d_x;          // (3, cap, dmax) present rows of each modality, compacted
    float *d_hp;         // (3, cap, H) W_m x for those rows
    float *d_hcat;       // (cap, 3H)
    float *d_logit;      // (cap, 3)
    float *d_gate;       // (cap, 3)
    float *d_fused;      // (cap, H)
    float *d_z;          // (cap, H)
    float *d_y;          // (cap, D)
    int32_t *d_iblock;   // one allocation: d_slot, d_id
    int32_t *d_slot;     // (3, cap) row of item b in d_x[m] / d_hp[m], or -1 if absent
    int32_t *d_id;       // (cap) item-id bucket or -1
    float *h_block;      // pinned: h_x, h_y, h_gate
    float *h_x;          // (3, cap, dmax)
    float *h_y;          // (cap, D)
    float *h_gate;       // (cap, 3)
    int32_t *h_iblock;   // pinned: h_slot, h_id
    int32_t *h_slot;     // (3, cap)
    int32_t *h_id;       // (cap)
};

/* --- kernels --------------------------------------------------------------------------- */

struct fill_args {
    const float *hp[3];      // hp[m] is (P_m, H)
    const float *bias[3];    // (H)
    const float *missing[3]; // (H) e_m
    const int32_t *slot[3];  // (B)
};

// hcat (B, 3H): h_m = hp_m[slot] + b_m for a present modality, e_m for a missing one
__global__ void fill_hidden_kernel(float *hcat, fill_args a, int B, int H) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * 3 * H) return;
    int b = idx / (3 * H), r = idx % (3 * H), m = r / H, k = r % H;
    int s = a.slot[m][b];
    hcat[idx] = s >= 0 ? a.hp[m][(size_t)s * H + k] + a.bias[m][k] : a.missing[m][k];
}

// g = softmax(logit + c) (B, 3); fused (B, H) = sum_m g_m h_m. One thread per (b, k).
__global__ void gate_fuse_kernel(float *fused, float *gate, const float *logit, const float *c,
                                 const float *hcat, int B, int H) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * H) return;
    int b = idx / H, k = idx % H;
    float l0 = logit[b * 3] + c[0], l1 = logit[b * 3 + 1] + c[1], l2 = logit[b * 3 + 2] + c[2];
    float mx = fmaxf(l0, fmaxf(l1, l2));
    float e0 = expf(l0 - mx), e1 = expf(l1 - mx), e2 = expf(l2 - mx), s = e0 + e1 + e2;
    float g0 = e0 / s, g1 = e1 / s, g2 = e2 / s;
    const float *h = hcat + (size_t)b * 3 * H;
    fused[idx] = g0 * h[k] + g1 * h[H + k] + g2 * h[2 * H + k];
    if (k == 0) gate[b * 3] = g0, gate[b * 3 + 1] = g1, gate[b * 3 + 2] = g2;
}

// x (B, N) = relu(x + bias)
__global__ void bias_relu_kernel(float *x, const float *bias, int B, int N) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * N) return;
    float v = x[idx] + bias[idx % N];
    x[idx] = v > 0.0f ? v : 0.0f;
}

// y (B, D): v = y + bias + E[id] (id >= 0), y = v / |v|_eps. One warp per row.
__global__ void bias_id_normalise_kernel(float *y, const float *bias, const float *E,
                                         const int32_t *id, int B, int D) {
    int b = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (b >= B) return;
    float *v = y + (size_t)b * D;
    const float *row = id[b] >= 0 ? E + (size_t)id[b] * D : NULL;
    float ss = 0.0f;
    for (int d = lane; d < D; d += 32) {
        float x = v[d] + bias[d] + (row ? row[d] : 0.0f);
        v[d] = x;
        ss += x * x;
    }
    for (int o = 16; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    float inv = 1.0f / sqrtf(ss + NORM_EPS);
    for (int d = lane; d < D; d += 32) v[d] *= inv;
}

static unsigned blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* --- host side ------------------------------------------------------------------------- */

// out (M, N) = inp (M, K) W^T, row-major, W is (N, K); ldi / ldo are row strides.
// cuBLAS is column-major: compute out^T (N, M) = W (N, K) . inp^T (K, M).
static mmr_status_t matmul_forward(cuda_ctx *c, float *out, int ldo, const float *inp, int ldi,
                                   const float *W, int M, int N, int K, mmr_err_t *err) {
    if (M == 0) return MMR_OK;
    const float one = 1.0f, zero = 0.0f;
    cublasCheck(c->cublas->sgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, W, K, inp, ldi,
                            &zero, out, ldo));
    return MMR_OK;
}

static const float *dparam(const cuda_ctx *c, const mmr_tower_t *t, int g) {
    return c->d_params + t->off[g];
}

/* Copies the weights to the device unless the device already holds this generation. */
static mmr_status_t sync_params(cuda_ctx *c, const mmr_tower_t *t, mmr_err_t *err) {
    if (c->gen == t->gen) return MMR_OK;
    if (c->n_params != t->n_params) {
        cudaFree(c->d_params);
        c->d_params = NULL, c->n_params = 0, c->gen = 0;
        cudaCheck(cudaMalloc(&c->d_params, t->n_params * sizeof(float)));
        c->n_params = t->n_params;
    }
    // on c->stream, so the kernels after it are ordered behind the copy
    cudaCheck(cudaMemcpyAsync(c->d_params, t->params, t->n_params * sizeof(float),
                              cudaMemcpyHostToDevice, c->stream));
    c->gen = t->gen;
    return MMR_OK;
}

static void buffers_free(cuda_ctx *c) {
    cudaFree(c->d_block), cudaFree(c->d_iblock);
    cudaFreeHost(c->h_block), cudaFreeHost(c->h_iblock);
    c->d_block = c->h_block = NULL, c->d_iblock = c->h_iblock = NULL, c->cap = 0;
}

/* Makes the batch buffers fit B items of config cfg. */
static mmr_status_t buffers_fit(cuda_ctx *c, const mmr_tower_config_t *cfg, int B, mmr_err_t *err) {
    int H = cfg->d_hidden, D = cfg->d_out;
    int dmax = cfg->d_text > cfg->d_image ? cfg->d_text : cfg->d_image;
    dmax = dmax > cfg->d_video ? dmax : cfg->d_video;
    if (B <= c->cap && H == c->H && D == c->D && dmax == c->dmax) return MMR_OK;
    buffers_free(c);
    size_t cap = ((size_t)B + 255) / 256 * 256;
    size_t nx = 3 * cap * dmax, nhp = 3 * cap * H, nh3 = cap * 3 * H, n3 = cap * 3;
    size_t nf = nx + nhp + nh3 + 2 * n3 + 2 * cap * H + cap * D;
    cudaCheck(cudaMalloc(&c->d_block, nf * sizeof(float)));
    cudaCheck(cudaMalloc(&c->d_iblock, 4 * cap * sizeof(int32_t)));
    cudaCheck(cudaMallocHost(&c->h_block, (nx + cap * D + n3) * sizeof(float)));
    cudaCheck(cudaMallocHost(&c->h_iblock, 4 * cap * sizeof(int32_t)));
    float *p = c->d_block;
    c->d_x = p, p += nx;
    c->d_hp = p, p += nhp;
    c->d_hcat = p, p += nh3;
    c->d_logit = p, p += n3;
    c->d_gate = p, p += n3;
    c->d_fused = p, p += cap * H;
    c->d_z = p, p += cap * H;
    c->d_y = p;
    c->d_slot = c->d_iblock, c->d_id = c->d_iblock + 3 * cap;
    c->h_x = c->h_block, c->h_y = c->h_block + nx, c->h_gate = c->h_y + cap * D;
    c->h_slot = c->h_iblock, c->h_id = c->h_iblock + 3 * cap;
    c->cap = (int)cap, c->H = H, c->D = D, c->dmax = dmax;
    return MMR_OK;
}

static mmr_status_t cuda_item_forward(mmr_tower_backend_t *be, const mmr_tower_t *t,
                                      const mmr_tower_item_batch_t *ib, float *vec, float *gate,
                                      mmr_err_t *err) {
    cuda_ctx *c = (cuda_ctx *)be->ctx;
    const mmr_tower_config_t *cfg = &t->cfg;
    int B = ib->n, H = cfg->d_hidden, H3 = 3 * H, D = cfg->d_out;
    mmr_status_t st;
    cudaCheck(cudaSetDevice(c->device));
    if ((st = sync_params(c, t, err)) != MMR_OK) return st;
    if ((st = buffers_fit(c, cfg, B, err)) != MMR_OK) return st;
    size_t cap = (size_t)c->cap, dmax = (size_t)c->dmax;
    // stage: present rows of each modality compacted, their slots, the ids
    int P[3];
    for (int m = 0; m < 3; m++) {
        int dm = tower_width(cfg, m);
        float *hx = c->h_x + m * cap * dmax; // hx is (P_m, dm)
        P[m] = 0;
        for (int b = 0; b < B; b++) {
            int s = ib->present[b * 3 + m] ? P[m]++ : -1;
            c->h_slot[m * cap + b] = s;
            if (s >= 0) memcpy(hx + (size_t)s * dm, ib->x[m] + (size_t)b * dm, (size_t)dm * sizeof(float));
        }
        if (P[m] > 0)
            cudaCheck(cudaMemcpyAsync(c->d_x + m * cap * dmax, hx, (size_t)P[m] * dm * sizeof(float),
                                      cudaMemcpyHostToDevice, c->stream));
    }
    memcpy(c->h_id, ib->item_id, (size_t)B * sizeof(int32_t));
    cudaCheck(cudaMemcpyAsync(c->d_slot, c->h_slot, 4 * cap * sizeof(int32_t),
                              cudaMemcpyHostToDevice, c->stream));
    // hp_m (P_m, H) = x_m W_m^T, then hcat (B, 3H)
    fill_args fa;
    for (int m = 0; m < 3; m++) {
        int dm = tower_width(cfg, m);
        float *hp = c->d_hp + m * cap * H;
        if ((st = matmul_forward(c, hp, H, c->d_x + m * cap * dmax, dm,
                                 dparam(c, t, PG_ITEM_W(m)), P[m], H, dm, err)) != MMR_OK)
            return st;
        fa.hp[m] = hp;
        fa.bias[m] = dparam(c, t, PG_ITEM_B(m));
        fa.missing[m] = dparam(c, t, PG_ITEM_E(m));
        fa.slot[m] = c->d_slot + m * cap;
    }
    fill_hidden_kernel<<<blocks((size_t)B * H3, 256), 256, 0, c->stream>>>(c->d_hcat, fa, B, H);
    cudaCheck(cudaGetLastError());
    // gate: logit (B, 3) = hcat G^T; softmax with c; fused (B, H)
    if ((st = matmul_forward(c, c->d_logit, 3, c->d_hcat, H3, dparam(c, t, PG_ITEM_G), B, 3, H3,
                             err)) != MMR_OK)
        return st;
    gate_fuse_kernel<<<blocks((size_t)B * H, 256), 256, 0, c->stream>>>(
        c->d_fused, c->d_gate, c->d_logit, dparam(c, t, PG_ITEM_C), c->d_hcat, B, H);
    cudaCheck(cudaGetLastError());
    // z (B, H) = relu(fused W1^T + b1)
    if ((st = matmul_forward(c, c->d_z, H, c->d_fused, H, dparam(c, t, PG_ITEM_W1), B, H, H,
                             err)) != MMR_OK)
        return st;
    bias_relu_kernel<<<blocks((size_t)B * H, 256), 256, 0, c->stream>>>(
        c->d_z, dparam(c, t, PG_ITEM_B1), B, H);
    cudaCheck(cudaGetLastError());
    // y (B, D) = normalise(z W2^T + b2 + E_item[id])
    if ((st = matmul_forward(c, c->d_y, D, c->d_z, H, dparam(c, t, PG_ITEM_W2), B, D, H, err)) !=
        MMR_OK)
        return st;
    bias_id_normalise_kernel<<<blocks((size_t)B * 32, 128), 128, 0, c->stream>>>(
        c->d_y, dparam(c, t, PG_ITEM_B2), dparam(c, t, PG_ITEM_EMB), c->d_id, B, D);
    cudaCheck(cudaGetLastError());
    cudaCheck(cudaMemcpyAsync(c->h_y, c->d_y, (size_t)B * D * sizeof(float),
                              cudaMemcpyDeviceToHost, c->stream));
    if (gate)
        cudaCheck(cudaMemcpyAsync(c->h_gate, c->d_gate, (size_t)B * 3 * sizeof(float),
                                  cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    memcpy(vec, c->h_y, (size_t)B * D * sizeof(float));
    if (gate) memcpy(gate, c->h_gate, (size_t)B * 3 * sizeof(float));
    return MMR_OK;
}

static void cuda_backend_free(mmr_tower_backend_t *be) {
    cuda_ctx *c = (cuda_ctx *)be->ctx;
    if (c) {
        cudaSetDevice(c->device);
        buffers_free(c);
        cudaFree(c->d_params);
        if (c->blas) c->cublas->destroy(c->blas);
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

static mmr_status_t cuda_ctx_init(mmr_tower_backend_t *be, cuda_ctx *c, mmr_err_t *err) {
    cudaDeviceProp prop;
    cudaCheck(cudaSetDevice(c->device));
    cudaCheck(cudaGetDeviceProperties(&prop, c->device));
    snprintf(be->name, sizeof be->name, "cuda:%d (%.100s)", c->device, prop.name);
    cudaCheck(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    mmr_status_t st = mmr_cublas_load(&c->cublas, err);
    if (st != MMR_OK) return st;
    cublasCheck(c->cublas->create(&c->blas));
    cublasCheck(c->cublas->set_stream(c->blas, c->stream));
    // fp32 GEMMs without TF32 (CUBLAS_TF32_TENSOR_OP_MATH), so results stay within fp32
    // rounding of the CPU reference
    cublasCheck(c->cublas->set_math_mode(c->blas, CUBLAS_DEFAULT_MATH));
    return MMR_OK;
}

extern "C" mmr_status_t mmr_tower_backend_cuda_new(int device, mmr_tower_backend_t **out,
                                                   mmr_err_t *err) {
    if (!out) return mmr_err_set(err, MMR_ERR_INVALID, "backend_cuda_new: out is NULL");
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError(); // reset the runtime's last-error state
        return mmr_err_set(err, MMR_ERR_UNSUPPORTED, "no CUDA device: %s",
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (device < 0 || device >= n)
        return mmr_err_set(err, MMR_ERR_INVALID, "CUDA device %d of %d", device, n);
    mmr_tower_backend_t *be = (mmr_tower_backend_t *)calloc(1, sizeof *be);
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be), free(c);
        return mmr_err_set(err, MMR_ERR_NOMEM, "backend_cuda_new: out of memory");
    }
    c->device = device;
    be->ctx = c;
    be->item_forward = cuda_item_forward;
    be->free = cuda_backend_free;
    mmr_status_t st = cuda_ctx_init(be, c, err);
    if (st != MMR_OK) {
        cuda_backend_free(be);
        return st;
    }
    *out = be;
    return MMR_OK;
}
