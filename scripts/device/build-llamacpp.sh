#!/usr/bin/env bash
# On the GPU machine: builds llama.cpp's llama-batched-bench and llama-server (CUDA, sm_90) from
# .device/llamacpp-src.tar.xz (made here by pack-llamacpp.sh) and copies them into DEST.
#
# Usage: bash scripts/device/build-llamacpp.sh DEST
# Env (all optional):
#   LLAMACPP_TARBALL  source tarball (default .device/llamacpp-src.tar.xz of this repo)
#   LLAMACPP_SRC      where it is unpacked (default /tmp/llamacpp-src; reused while it matches)
#   LLAMACPP_BUILD    build dir (default /tmp/llamacpp-build-cuda or -cpu; reused, so a run cut
#                     off by the call's time limit resumes where it stopped)
#   LLAMACPP_CUDA     ON (default) or OFF, for a CPU-only build that checks the tarball anywhere
#   LLAMACPP_CUDA_ARCH  CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200)
#   LLAMACPP_JOBS     parallel jobs (default nproc)
#   LLAMACPP_LOG      full configure/build log (default /tmp/llamacpp-build.log; on failure a
#                     gzipped copy goes to $OUT when that is set)
#   LLAMACPP_TARGETS  targets to build (default "llama-batched-bench llama-server"; only these two
#                     are copied to DEST)
#   LLAMACPP_CMAKE_ARGS  extra cmake arguments, split on spaces
set -euo pipefail

dest=${1:?usage: build-llamacpp.sh DEST}
root=$(cd "$(dirname "$0")/../.." && pwd)
tarball=${LLAMACPP_TARBALL:-$root/.device/llamacpp-src.tar.xz}
src=${LLAMACPP_SRC:-/tmp/llamacpp-src}
cuda=${LLAMACPP_CUDA:-ON}
build=${LLAMACPP_BUILD:-/tmp/llamacpp-build-$([ "$cuda" = ON ] && echo cuda || echo cpu)}
arch=${LLAMACPP_CUDA_ARCH:-90}
jobs=${LLAMACPP_JOBS:-$(nproc)}
log=${LLAMACPP_LOG:-/tmp/llamacpp-build.log}
read -r -a targets <<< "${LLAMACPP_TARGETS:-llama-batched-bench llama-server}"
read -r -a extra_args <<< "${LLAMACPP_CMAKE_ARGS:-}"

t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }
# The full log goes to a file (it would drown the call's output); on failure show its errors.
fail() {
  echo "build-llamacpp: FAILED: $1 (after $(elapsed); full log: $log)" >&2
  grep -E -i "error|fatal|FAILED|not found" "$log" | grep -v -i -e warning -e ccache -e "git " | head -30 >&2 || true
  tail -15 "$log" >&2
  if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then gzip -c "$log" > "$OUT/llamacpp-build.log.gz" || true; fi
  exit 1
}

[ -s "$tarball" ] || { echo "build-llamacpp: no tarball at $tarball (run scripts/device/pack-llamacpp.sh here first)" >&2; exit 1; }
mkdir -p "$(dirname "$log")" "$dest"
: > "$log"

# Unpack, or reuse an earlier unpack of the same tarball. A changed tarball also invalidates the
# build dir: make would not see every changed source otherwise.
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ -f "$src/.tarball-sha256" ] && [ "$(cat "$src/.tarball-sha256")" = "$sum" ]; then
  echo "source: reusing $src"
else
  rm -rf "$src" "$build"
  mkdir -p "$src"
  tar -xJf "$tarball" -C "$src" --strip-components=1 --touch
  echo "$sum" > "$src/.tarball-sha256"
  echo "source: unpacked to $src ($(elapsed))"
fi
echo "llama.cpp: $(head -1 "$src/YARDSTICK" 2>/dev/null || echo unknown)"

# The yardstick's one change. llama-server runs every generated text through its chat parser, also
# on /v1/completions, and ends the request when that text is not valid UTF-8, which a random-weights
# model's byte tokens often produce ("does not match the expected Content-only format"). Here such
# text is passed through as plain content instead. It only skips work, so it cannot slow the server.
python3 - "$src/common/chat.cpp" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
needle = 'throw std::runtime_error(std::string("The model produced output that does not match the expected ")'
done = 'plain.content = input; return plain;'
if done not in text:
    if needle not in text:
        sys.exit('build-llamacpp: the chat-parser patch found nothing to change')
    text = text.replace(needle, '{ common_chat_msg plain; plain.role = "assistant"; ' + done + ' } ' + needle, 1)
    open(path, 'w').write(text)
    print('patched: common/chat.cpp passes text that is not valid UTF-8 through as content')
PY

cmake_args=(
  -S "$src" -B "$build"
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF           # self-contained binaries: only CUDA's own libs stay dynamic
  -DGGML_NATIVE=ON
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF  # not packed
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF  # no npm, no network: server without web UI
  -DLLAMA_OPENSSL=OFF               # this snapshot has no LLAMA_CURL; HTTPS would need OpenSSL
  -DLLAMA_BUILD_COMMIT="$(head -c 8 "$src/YARDSTICK" 2>/dev/null || echo unknown)"
)
if command -v ninja > /dev/null; then cmake_args+=(-G Ninja); fi
if [ "$cuda" = ON ]; then
  if ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
  fi
  command -v nvcc > /dev/null || { echo "build-llamacpp: nvcc not found" >&2; exit 1; }
  cmake_args+=(
    -DGGML_CUDA=ON
    -DCMAKE_CUDA_ARCHITECTURES="$arch"
    -DGGML_CUDA_FA=ON
    -DGGML_CUDA_FA_ALL_QUANTS=OFF   # 4 fattn-vec instances (f16, bf16, q4_0, q8_0 KV) instead of 49
    -DGGML_CUDA_NCCL=OFF            # one GPU per run; skips the NCCL lookup
    -DGGML_CUDA_COMPRESSION_MODE=none  # do not compress fat binaries: less build work
  )
else
  cmake_args+=(-DGGML_CUDA=OFF)
fi

cmake_args+=("${extra_args[@]}")
echo "configure: cuda=$cuda arch=$arch jobs=$jobs targets=${targets[*]}"
cmake "${cmake_args[@]}" >> "$log" 2>&1 || fail "cmake configure"
echo "configured ($(elapsed))"

cmake --build "$build" --target "${targets[@]}" -j "$jobs" >> "$log" 2>&1 || fail "build"
echo "built ($(elapsed))"

copied=()
for t in "${targets[@]}"; do
  case $t in llama-batched-bench|llama-server) ;; *) continue ;; esac
  cp "$build/bin/$t" "$dest/"
  copied+=("$dest/$t")
  # Anything dynamic must resolve here (cudart/cublas through the toolkit's RPATH or ld.so.conf).
  if ldd "$dest/$t" | grep -q "not found"; then
    ldd "$dest/$t" | grep "not found" >&2
    echo "build-llamacpp: $dest/$t has unresolved shared libraries" >&2
    exit 1
  fi
done
[ ${#copied[@]} -gt 0 ] || { echo "build-llamacpp: built ${targets[*]}; no binary to copy"; exit 0; }
"${copied[0]}" --version 2>&1 | tail -3 || { echo "build-llamacpp: ${copied[0]} --version failed" >&2; exit 1; }
ls -la "${copied[@]}"
echo "build-llamacpp: done in $(elapsed) -> $dest"
