#!/usr/bin/env bash
# Builds and runs bench/layer_norm.cpp (vit's CPU LayerNorm against LibTorch's, forward and forward + backward)
# against Debian's LibTorch. Not a test.
# usage: bash bench/layer_norm.sh [TOKENS] [BATCH] [WIDTH]   (defaults: 13 tokens, batch 256, width 128)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/vit-layer-norm
g++ -O2 -std=c++17 -I. bench/layer_norm.cpp models/cpu_layer_norm.cpp models/cpu_lanes.cpp -o "$out" \
  -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10
exec "$out" "$@"
