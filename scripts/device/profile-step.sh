#!/usr/bin/env bash
# On the GPU machine (after gpu-bench.sh check wrote the Q4_K_M file): every kernel's duration in
# a short B = 1 run under ncu (graph kernels profiled one by one), as CSV in $OUT/ncu-<name>.csv; the
# last decode step's kernels are summed per name here. ncu runs each kernel alone, caches as the
# previous kernel left them: the sum shows the kernels' own time, the step time minus it the gaps.
# Usage: bash scripts/device/profile-step.sh [model.gguf] [name]
set -uo pipefail
out=${OUT:-/tmp/kt-out}
mkdir -p "$out"
f=${1:-/tmp/ktwork/llama-3.1-8b-Q4_K_M.gguf}
name=${2:-q4}
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
[ -n "$ncu" ] || { echo "no ncu"; exit 1; }
timeout 400 "$ncu" --csv --page raw --metrics gpu__time_duration.sum --cache-control none --clock-control none --target-processes all \
  node dist/src/cli/main.js bench engine --backend cuda --model "$f" --npp 32 --ntg 3 --npl 1 --no-warmup > "$out/ncu-$name.csv" 2> "$out/ncu-$name.err"
echo "ncu rc=$? rows=$(wc -l < "$out/ncu-$name.csv")"
tail -3 "$out/ncu-$name.err"
