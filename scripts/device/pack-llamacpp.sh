#!/usr/bin/env bash
# Here, before a device call: packs a trimmed llama.cpp source tree (the yardstick we compare
# ktserve with on the GPU) into .device/llamacpp-src.tar.xz, for build-llamacpp.sh on the device.
#
# Only what the llama-batched-bench and llama-server targets need with CUDA on (sm_90) and on
# x86-64 is kept: CMake adds every backend directory only when its GGML_<NAME> option is on, and
# every tools/ subdirectory unconditionally, so those stay (without their tests, docs and media).
# Nothing of llama.cpp lands in our repo; .device/ is git-ignored.
#
# Usage: scripts/device/pack-llamacpp.sh [GIT_DIR [REV]]
#   GIT_DIR  bare llama.cpp git dir (default /work/.mirror/unslothai+llama.cpp/repo)
#   REV      commit to pack (default HEAD)
# Env: LLAMACPP_TRIM_CUDA=0 keeps every ggml-cuda template instance (see trim_cuda_instances).
set -euo pipefail

root=$(git rev-parse --show-toplevel)
gitdir=${1:-/work/.mirror/unslothai+llama.cpp/repo}
rev=${2:-HEAD}
out="$root/.device/llamacpp-src.tar.xz"
trim_cuda=${LLAMACPP_TRIM_CUDA:-1}

[ -d "$gitdir" ] || { echo "pack-llamacpp: no git dir at $gitdir" >&2; exit 1; }
commit=$(git --git-dir="$gitdir" rev-parse --verify "$rev^{commit}")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/llamacpp-src"
mkdir -p "$src"

# What CMake reads for our targets, as literal paths: a wildcard pathspec makes git archive walk
# the whole tree, and this snapshot lacks some blobs (docs/ops/*.csv, models/*.gguf) that it then
# trips over. ggml/src's own files are listed one by one so that its other backends stay out
# (CMake enters ggml-<backend>/ only when GGML_<BACKEND> is on).
keep=(
  CMakeLists.txt LICENSE cmake licenses include src common vendor
  scripts/ui-assets.cmake
  ggml/CMakeLists.txt ggml/cmake ggml/include ggml/src/ggml-cpu ggml/src/ggml-cuda
  tools/CMakeLists.txt
  tools/ui/CMakeLists.txt tools/ui/embed.cpp tools/ui/sources.cmake
  tools/batched-bench tools/gguf-split tools/imatrix tools/llama-bench tools/completion
  tools/perplexity tools/quantize tools/cli tools/server tools/tokenize tools/parser tools/tts
  tools/mtmd tools/cvector-generator tools/export-lora tools/fit-params tools/results
)
while IFS= read -r f; do keep+=("$f"); done < <(
  git --git-dir="$gitdir" ls-tree "$commit" ggml/src/ | awk -F'\t' '$1 ~ / blob / { print $2 }')

# git archive indexes the whole tree and reports this snapshot's absent blobs (none of them ours)
# while still exiting 0; hide just those lines, and count that every file we asked for arrived.
git --git-dir="$gitdir" archive --format=tar -o "$work/src.tar" "$commit" -- "${keep[@]}" \
  2> >(grep -v "^error: invalid object [0-9]* [0-9a-f]* for 'docs/ops/" >&2)
want=$(git --git-dir="$gitdir" ls-tree -r --name-only "$commit" -- "${keep[@]}" | wc -l)
got=$(tar -tf "$work/src.tar" | grep -vc '/$')
[ "$want" = "$got" ] || { echo "pack-llamacpp: archived $got of $want files" >&2; exit 1; }
tar -xf "$work/src.tar" -C "$src"
rm "$work/src.tar"

# Then drop, inside those, what no target of ours compiles or CMake reads on x86-64: other CPU
# architectures, the fattn-vec instances beyond the four that GGML_CUDA_FA_ALL_QUANTS=OFF names,
# tests, benches, docs, sample media.
(
  cd "$src"
  shopt -s nullglob
  rm -rf ggml/src/ggml-cpu/arch/{arm,loongarch,powerpc,riscv,s390,wasm} \
         ggml/src/ggml-cpu/kleidiai ggml/src/ggml-cpu/spacemit \
         ggml/src/ggml-cuda/template-instances/*.py \
         tools/server/tests tools/server/bench tools/server/public* \
         tools/mtmd/tests tools/mtmd/legacy-models tools/mtmd/test-* tools/mtmd/tests.sh \
         tools/mtmd/requirements.txt \
         tools/*/README* tools/*/*.md tools/*/*.py tools/*/*.sh tools/*/*.png tools/*/*.jpg \
         vendor/*/README*
  for f in ggml/src/ggml-cuda/template-instances/fattn-vec-instance-*.cu; do
    case "$f" in
      */fattn-vec-instance-f16-f16.cu|*/fattn-vec-instance-q4_0-q4_0.cu| \
      */fattn-vec-instance-q8_0-q8_0.cu|*/fattn-vec-instance-bf16-bf16.cu) ;;
      *) rm -f "$f" ;;
    esac
  done
)

# Fail here, not on the device, if the snapshot moved files that the build names.
for f in CMakeLists.txt ggml/src/CMakeLists.txt ggml/src/ggml-cuda/CMakeLists.txt \
         ggml/src/ggml-cuda/template-instances/fattn-vec-instance-f16-f16.cu \
         ggml/src/ggml-cuda/template-instances/fattn-vec-instance-bf16-bf16.cu \
         tools/server/CMakeLists.txt tools/batched-bench/CMakeLists.txt tools/ui/embed.cpp \
         scripts/ui-assets.cmake; do
  [ -f "$src/$f" ] || { echo "pack-llamacpp: $f missing from $commit" >&2; exit 1; }
done

# ggml-cuda compiles each template instance file it finds (file(GLOB) in its CMakeLists). Kernels
# for quant types we never benchmark (F16/BF16, Q4_K/Q6_K and the legacy/K-quant fallbacks that
# *_K_M mixes contain) are replaced by a stub of the same symbol that aborts with a clear message,
# so the link still resolves and a model that needed one fails loudly instead of mis-measuring.
trim_cuda_instances() {
  local ti="$src/ggml/src/ggml-cuda/template-instances" n=0 f t
  for t in IQ1_S IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ4_NL IQ4_XS MXFP4 NVFP4 Q1_0 Q2_0; do
    f="$ti/mmq-instance-$(echo "$t" | tr 'A-Z' 'a-z').cu"
    [ -f "$f" ] || continue
    grep -q "DECL_MMQ_CASE(GGML_TYPE_$t)" "$f" ||
      { echo "pack-llamacpp: unexpected content in $f; rerun with LLAMACPP_TRIM_CUDA=0" >&2; exit 1; }
    cat > "$f" <<EOF
// Replaced by ktserve's scripts/device/pack-llamacpp.sh: the yardstick build leaves out the MMQ
// kernels for GGML_TYPE_$t. Same symbol as the explicit instantiation in mmq.cuh, but declared
// here without mmq.cuh so that no extern-template declaration precedes the specialization.
#include "../common.cuh"
struct mmq_args;
template <ggml_type type>
void mul_mat_q_case(ggml_backend_cuda_context & ctx, const mmq_args & args, cudaStream_t stream);
template <>
void mul_mat_q_case<GGML_TYPE_$t>(ggml_backend_cuda_context &, const mmq_args &, cudaStream_t) {
    GGML_ABORT("llama.cpp yardstick: MMQ for GGML_TYPE_$t was not built (LLAMACPP_TRIM_CUDA=0 keeps it)");
}
EOF
    n=$((n + 1))
  done
  echo "trimmed: $n mmq template instances replaced by aborting stubs"
}
[ "$trim_cuda" = 1 ] && trim_cuda_instances

# GCC up to at least 12 declares only 8 bytes as the memory input of _tile_loadconfig's asm, so
# it drops the stores of rows[]/colsb[] into the stack tile config in ggml's AMX code and the first
# tile instruction raises SIGILL on AMX CPUs (notes/llama-cpp-check.md). A compiler barrier
# before the load keeps those stores; it costs nothing elsewhere, so it goes in for every compiler.
amx="$src/ggml/src/ggml-cpu/amx/mmq.cpp"
if [ -f "$amx" ]; then
  [ "$(grep -c '^    _tile_loadconfig(&tc);$' "$amx")" = 1 ] ||
    { echo "pack-llamacpp: AMX tile-config anchor not found once in $amx" >&2; exit 1; }
  sed -i 's|^    _tile_loadconfig(&tc);$|    __asm__ __volatile__("" : : "r"(\&tc) : "memory"); // ktserve yardstick: keep rows/colsb stores (GCC _tile_loadconfig operand is 8 bytes)\n    _tile_loadconfig(\&tc);|' "$amx"
  grep -q 'ktserve yardstick: keep rows/colsb' "$amx" || { echo "pack-llamacpp: AMX fix not applied" >&2; exit 1; }
  echo "patched: AMX tile-config barrier in ggml-cpu/amx/mmq.cpp"
fi

printf '%s\n' "$commit" > "$src/YARDSTICK"
[ "$trim_cuda" = 1 ] && echo "mmq instances trimmed (LLAMACPP_TRIM_CUDA=1)" >> "$src/YARDSTICK"
echo "AMX tile-config barrier added" >> "$src/YARDSTICK"

mkdir -p "$root/.device"
# Fixed owner and mtime: the same snapshot packs to the same bytes.
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -c llamacpp-src | xz -T2 -9e > "$out.tmp"
mv "$out.tmp" "$out"
echo "llama.cpp $commit: $(find "$src" -type f | wc -l) files, $(du -sk "$src" | cut -f1) KiB unpacked"
echo "packed: $out $(stat -c %s "$out") bytes ($(du -h "$out" | cut -f1))"
echo "carry: $(du -sm "$root/.device" | cut -f1) MiB in .device"
