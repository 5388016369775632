#!/usr/bin/env bash
# run.sh — builds the libFuzzer harnesses and runs each for a bounded time; fails if any
# harness crashes (or leaks, times out, runs out of memory).
#
#   tests/fuzz/run.sh [SECONDS]       build, then run every harness SECONDS (default 20) each
#   tests/fuzz/run.sh --build         build only
#   tests/fuzz/run.sh --seeds         build, then regenerate tests/fuzz/corpus/ (committed)
#   FUZZERS="rank config" tests/fuzz/run.sh 60     only some harnesses
#
# How it builds: tests/fuzz/ is a standalone CMake project that add_subdirectory()s the
# whole tree, configured with CC=clang into build-fuzz/ (MMREC_SANITIZE=ON + -fsanitize=
# fuzzer-no-link on every object; the harnesses link -fsanitize=fuzzer). The top-level
# CMakeLists.txt knows nothing of it. Set MMREC_FUZZ_WNO_ERROR=ON in the environment to
# append -Wno-error to project targets should clang warn where gcc does not.
# Needs clang + libclang-rt-14-dev (scripts/deps.sh installs them).
#
# Each run works on a copy of tests/fuzz/corpus/<harness>/ in a temp dir, so the committed
# corpus does not grow; crash/leak/timeout/oom inputs are kept in build-fuzz/artifacts/.
# To replay one: build-fuzz/fuzz/fuzz_<harness> FILE. A crash found in project code goes
# into tests/fuzz/corpus/<harness>/ as a regression seed once fixed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD_FUZZ:-$repo/build-fuzz}
jobs=${JOBS:-$(nproc)}
all="decode_event decode_item tower_load config rank"
fuzzers=${FUZZERS:-$all}

mode=run; secs=20
case "${1:-}" in
  --build) mode=build ;;
  --seeds) mode=seeds ;;
  "") ;;
  *[!0-9]*) echo "usage: $0 [SECONDS|--build|--seeds]" >&2; exit 2 ;;
  *) secs=$1 ;;
esac

command -v clang >/dev/null || { echo "fuzz: clang not found (run scripts/deps.sh)" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMMREC_FUZZ_WNO_ERROR="${MMREC_FUZZ_WNO_ERROR:-OFF}" >/dev/null
fi
targets=(fuzz_make_seeds)
for f in $fuzzers; do targets+=("fuzz_$f"); done
mkdir -p "$build/artifacts"
if ! MAKEFLAGS= cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$build/artifacts/build.log" 2>&1; then
  tail -n 40 "$build/artifacts/build.log" >&2; echo "fuzz: build failed" >&2; exit 1
fi

case $mode in
  build) exit 0 ;;
  seeds)
    rm -rf "$here/corpus"
    "$build/fuzz/fuzz_make_seeds" "$here/corpus"
    du -sh "$here/corpus"; exit 0 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mmrec-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=()
for f in $fuzzers; do
  mkdir -p "$tmp/$f"
  [ -d "$here/corpus/$f" ] && cp -r "$here/corpus/$f/." "$tmp/$f/"
  log="$build/artifacts/$f.log"
  echo "fuzz: $f for ${secs}s (log $log)"
  # -fork would survive the first crash; a single process is enough for a smoke run.
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$build/fuzz/fuzz_$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
       -max_len=8192 -print_final_stats=1 -artifact_prefix="$build/artifacts/$f-" \
       "$tmp/$f" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' '; echo
  else
    echo "fuzz: $f FAILED — see $log; inputs under $build/artifacts/$f-*" >&2
    grep -E 'ERROR:|runtime error|SUMMARY' "$log" | head -5 >&2 || true
    failed+=("$f")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then echo "fuzz: failed: ${failed[*]}" >&2; exit 1; fi
echo "fuzz: all passed (${secs}s each)"
