#!/usr/bin/env bash
# cuda-check.sh — compile-checks the CUDA tower backend wherever nvcc exists. With cuBLAS in
# the toolkit: a full MMREC_CUDA=ON embedding build (compile + link). Without it (a
# compiler-only toolkit, like this project's CI machines): nvcc compiles tower_cuda.cu for
# sm_80 and sm_90 against tests/cuda/cublas_v2.h (declarations only), no link.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
nvcc=$(command -v nvcc || echo "$cuda/bin/nvcc")
[ -x "$nvcc" ] || { echo "cuda-check: no nvcc, skipped"; exit 0; }
if ls "$cuda"/include/cublas_v2.h "$cuda"/targets/*/include/cublas_v2.h >/dev/null 2>&1; then
  echo "cuda-check: full CUDA build (nvcc + cuBLAS)"
  cmake -S "$root" -B "$root/build-cuda" -DMMREC_CUDA=ON -DMMREC_EMBEDDING_ONLY=ON >/dev/null
  cmake --build "$root/build-cuda" -j"$(nproc)"
else
  echo "cuda-check: no cuBLAS in $cuda: compiling tower_cuda.cu only (sm_80, sm_90)"
  out=$(mktemp -d)
  "$nvcc" -std=c++17 -c "$root/embedding/tower_cuda.cu" -o "$out/tower_cuda.o" \
    -I"$root/tests/cuda" -I"$root/embedding" -I"$root/src/core" -DMMR_TOWER_HAVE_CUDA \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter -Werror=all-warnings
  rm -rf "$out"
fi
echo "cuda-check: ok"
