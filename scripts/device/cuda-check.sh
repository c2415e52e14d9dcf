#!/usr/bin/env bash
# On the GPU machine, through .device/boot.sh: builds the addon with CUDA and the TypeScript,
# runs the CUDA tests (fixtures from .device/fixtures) and the op benchmark. Full logs go to
# $OUT; the end of the output is a short summary.
# Usage: bash scripts/device/cuda-check.sh [--no-bench] [--quick-bench] [--moe-bench] [--worktree-cpu] [--sanitize]
set -uo pipefail
out=${OUT:-/tmp/kt-out}
mkdir -p "$out"
bench=1
head_cpu=1
sanitize=0
moe_bench=0
bench_args=()
for a in "$@"; do
  case $a in
    --no-bench) bench=0 ;;
    --quick-bench) bench_args+=(--quick) ;;
    --worktree-cpu) head_cpu=0 ;;
    --sanitize) sanitize=1 ;;
    --moe-bench) moe_bench=1 ;;
  esac
done

# The CPU backend is the op tests' reference: by default build it from HEAD (carried in
# .device/head by pack-cuda.sh), not from whatever half-done edits others have in the tree.
if [ "$head_cpu" = 1 ] && [ -d .device/head/native/cpu ]; then
  rm -rf native/cpu native/napi native/core && cp -r .device/head/native/cpu .device/head/native/napi native/
  [ -d .device/head/native/core ] && cp -r .device/head/native/core native/
  echo "CPU side: HEAD's native/cpu, native/napi and native/core"
fi


t0=$(date +%s)
if ! KT_CUDA=1 npm run build:native > "$out/build.log" 2>&1; then
  grep -E "error|FAILED" "$out/build.log" | head -20
  if grep -E "FAILED.*native/(cpu|napi|core)/" "$out/build.log" > /dev/null && [ -d .device/head/native ]; then
    # Someone's half-done edit of the CPU side: build with HEAD's native/cpu, native/napi and native/core.
    echo "CPU sources failed to build: retrying with HEAD's native/cpu, native/napi and native/core"
    rm -rf native/cpu native/napi native/core && cp -r .device/head/native/cpu .device/head/native/napi native/
    [ -d .device/head/native/core ] && cp -r .device/head/native/core native/
    KT_CUDA=1 npm run build:native > "$out/build2.log" 2>&1 || { grep -E "error|FAILED" "$out/build2.log" | head -40; exit 1; }
  else
    tail -20 "$out/build.log"
    exit 1
  fi
fi
npx tsc -p tsconfig.json > "$out/tsc.log" 2>&1 || echo "tsc reported errors (it still emits): $(grep -c 'error TS' "$out/tsc.log")"
echo "build: $(( $(date +%s) - t0 )) s"

export KT_FIXTURES=$PWD/.device/fixtures
tests=""
for f in ${KT_CUDA_TESTS-ops devices moe-ops attention-prefill model-logits sample penalties engine-graphs}; do
  node --test "dist/test/cuda/$f.test.js" > "$out/test-$f.log" 2>&1
  tests+="test $f: rc=$? $(grep -E '^# (pass|fail|skipped)' "$out/test-$f.log" | tr '\n' ' ')"$'\n'
  tests+="$(grep -E "^ *not ok|NMSE|max abs diff|Error|cuda (f32|bf16)|matmul bf16|pool:|diverge|sampl" "$out/test-$f.log" | grep -v "^ *# Subtest" | head -40)"$'\n'
done
echo "$tests"

if [ "$bench" = 1 ]; then
  node dist/bench/cuda-ops.js --json "$out/bench.json" "${bench_args[@]}" > "$out/bench.log" 2>&1
  echo "bench rc=$?"
  grep -E "^device|copy:" "$out/bench.log"
  sed -n '/== summary/,$p' "$out/bench.log"
fi

if [ "$moe_bench" = 1 ]; then
  # The MoE expert FFN at Qwen3-30B-A3B's layer shape (bench/moe-cuda.ts): µs and GB/s per T and path.
  node dist/bench/moe-cuda.js --json "$out/moe-bench.json" "${bench_args[@]}" > "$out/moe-bench.log" 2>&1
  echo "moe bench rc=$?"
  grep -E "^device|copy:|^shape" "$out/moe-bench.log"
  sed -n '/== summary/,$p' "$out/moe-bench.log"
fi

if [ "$sanitize" = 1 ]; then
  # memcheck over the op tests: out-of-bounds and misaligned accesses the results may not show.
  for f in ${KT_SANITIZE_TESTS-ops moe-ops}; do
    timeout 300 compute-sanitizer --tool memcheck --print-limit 20 node --test "dist/test/cuda/$f.test.js" > "$out/memcheck-$f.log" 2>&1
    echo "memcheck $f rc=$?: $(grep -E 'ERROR SUMMARY' "$out/memcheck-$f.log" | tail -1)"
    grep -E "Invalid|out of bounds|misaligned" "$out/memcheck-$f.log" | head -10 || true
  done
fi

echo "== tests (again, after the long output) =="
echo "$tests"
exit 0
