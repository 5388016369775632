#!/usr/bin/env bash
# deps.sh — installs what mmrec needs from Debian, if missing. Idempotent and quiet when
# everything is there; says clearly what failed when apt cannot install.
# The CUDA toolkit is not installed here: the CUDA backend builds when nvcc exists.
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      librocksdb-dev librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
      libjemalloc-dev libopenblas-dev libmicrohttpd-dev libjansson-dev
      openjdk-17-jre-headless maven python3 curl gnuplot-nox
      python3-grpcio python3-protobuf protobuf-compiler
      clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "deps: apt-get failed installing: ${missing[*]}" >&2
  tail -n 20 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
