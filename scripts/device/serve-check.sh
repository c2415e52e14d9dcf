#!/usr/bin/env bash
# On the GPU machine after cuda-check.sh built everything: the server on the CUDA backend answers
# the same greedy requests as on the CPU backend (fixture llama, f32 safetensors), and a first
# engine benchmark on the GPU. Usage: bash scripts/device/serve-check.sh
set -uo pipefail
out=${OUT:-/tmp/kt-out}
mkdir -p "$out"
model=${KT_FIXTURES:-$PWD/.device/fixtures}/llama
start() { # backend port
  node dist/src/cli/main.js serve --model_path "$model" --backend "$1" --port "$2" --cache_lens 8192 --max_new_tokens 64 > "$out/serve-$1.log" 2>&1 &
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$2/health" > /dev/null && return 0; sleep 0.2; done
  echo "server on $1 did not start"; tail -5 "$out/serve-$1.log"; return 1
}
start cpu 18101 && start cuda 18102 || exit 0
grep -h "loaded\|KV cache" "$out"/serve-*.log
same=0; total=0
for p in "import os" "def parse(text):" "class Reader:" "for i in range(10):" "while True:" "return None" "x = [1, 2, 3]" "print(1)"; do
  body=$(printf '{"prompt":"%s","max_tokens":24,"temperature":0}' "$p")
  a=$(curl -s http://127.0.0.1:18101/v1/completions -H 'content-type: application/json' -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
  b=$(curl -s http://127.0.0.1:18102/v1/completions -H 'content-type: application/json' -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
  total=$((total + 1)); [ "$a" = "$b" ] && same=$((same + 1))
done
echo "greedy completions equal on cpu and cuda: $same of $total"
kill %1 %2 2>/dev/null; wait 2>/dev/null
node dist/src/cli/main.js bench engine --backend cuda --model_path "$model" --npp 128 --ntg 64 --npl 1,4,16,64 --out "$out/bench-engine-cuda.json" 2>&1 | tail -8
