#!/usr/bin/env bash
# ThreadPool under ThreadSanitizer: builds the pool and its stress in a dedicated
# binary (the addon cannot load TSan's runtime into Node) and runs it.
#   scripts/tsan-thread-pool.sh [loops] [threads] [seed]    (defaults 200000 4 12345)
# Exits non-zero on a data race report or a failed check. Needs g++ with libtsan.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${TMPDIR:-/tmp}/ktserve-tsan"
mkdir -p "$out"
g++ -std=c++17 -O1 -g -fsanitize=thread -pthread -I"$root/native" \
  "$root/native/cpu/thread_pool.cpp" "$root/native/cpu/thread_pool_stress.cpp" \
  "$root/native/tools/thread_pool_stress_main.cpp" -o "$out/thread_pool_stress"
TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" "$out/thread_pool_stress" "${1:-200000}" "${2:-4}" "${3:-12345}"
