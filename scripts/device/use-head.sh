#!/usr/bin/env bash
# On the GPU machine: replaces the carried working tree's sources with HEAD's (from
# .device/head-tree.tar, written by pack-cuda.sh), so a run measures committed code only, whatever
# was half-edited in the tree when it was carried.
set -euo pipefail
[ -s .device/head-tree.tar ] || { echo "use-head: no .device/head-tree.tar (run pack-cuda.sh)" >&2; exit 1; }
rm -rf native src test bench scripts
tar -xf .device/head-tree.tar
echo "sources: HEAD ($(tar -tf .device/head-tree.tar | wc -l) files)"
