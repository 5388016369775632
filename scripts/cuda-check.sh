#!/usr/bin/env bash
# cuda-check.sh — builds the towers with the CUDA backend (MMREC_CUDA=ON, embedding only:
# compile and link, sm_80 + sm_90) wherever nvcc exists. cuBLAS is loaded at run time, so
# no cuBLAS is needed to build. Running the GPU tests needs a GPU host (ctest -L gpu).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
if ! command -v nvcc >/dev/null && [ ! -x "$cuda/bin/nvcc" ]; then
  echo "cuda-check: no nvcc, skipped"
  exit 0
fi
cmake -S "$root" -B "$root/build-cuda" -DMMREC_CUDA=ON -DMMREC_EMBEDDING_ONLY=ON >/dev/null
cmake --build "$root/build-cuda" -j"$(nproc)"
cd "$root/build-cuda" && ctest --output-on-failure -j2
echo "cuda-check: ok"
