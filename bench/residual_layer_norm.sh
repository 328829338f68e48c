#!/usr/bin/env bash
# Builds and runs bench/residual_layer_norm.cpp (a pre-norm block's residual add and LayerNorm under bf16 autocast:
# vit's two kernels apart against the joined one) against Debian's LibTorch. Not a test.
# usage: bash bench/residual_layer_norm.sh [ROWS] [WIDTH] [THREADS]   (defaults: 1664 128 1, the main job's tokens per
# process; vit_mini_patch4_32 at batch 256: 16640 128 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/vit-residual-layer-norm
g++ -O2 -std=c++17 -I. bench/residual_layer_norm.cpp models/cpu_layer_norm.cpp models/cpu_residual_add.cpp \
  models/cpu_vector_width.cpp -o "$out" -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10 -fopenmp
exec "$out" "$@"
