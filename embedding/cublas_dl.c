/* cublas_dl.c — run-time loading of cuBLAS (see cublas_dl.h). */
#include "cublas_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static mmr_cublas_t api;
static mmr_err_t load_err;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *const names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12",
                                        "libcublas.so.11"};
    const char *env = getenv("MMREC_CUBLAS");
    void *h = NULL;
    if (env && *env) h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    for (size_t i = 0; !h && !(env && *env) && i < sizeof names / sizeof names[0]; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        mmr_err_set(&load_err, MMR_ERR_UNSUPPORTED, "cuBLAS not found (%s): %s",
                    env && *env ? env : "libcublas.so{,.13,.12,.11}; set MMREC_CUBLAS", dlerror());
        return;
    }
    struct { void **fn; const char *sym; } syms[] = {
        {(void **)&api.create, "cublasCreate_v2"},
        {(void **)&api.destroy, "cublasDestroy_v2"},
        {(void **)&api.set_stream, "cublasSetStream_v2"},
        {(void **)&api.set_math_mode, "cublasSetMathMode"},
        {(void **)&api.status_string, "cublasGetStatusString"},
        {(void **)&api.sgemm, "cublasSgemm_v2"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].sym);
        if (!*syms[i].fn) {
            mmr_err_set(&load_err, MMR_ERR_UNSUPPORTED, "cuBLAS lacks %s: %s", syms[i].sym, dlerror());
            return;
        }
    }
    load_err.code = MMR_OK;
}

mmr_status_t mmr_cublas_load(const mmr_cublas_t **out, mmr_err_t *err) {
    pthread_once(&once, load);
    if (load_err.code != MMR_OK) {
        if (err) *err = load_err;
        return load_err.code;
    }
    *out = &api;
    return MMR_OK;
}
