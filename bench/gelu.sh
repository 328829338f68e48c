#!/usr/bin/env bash
# Builds and runs bench/gelu.cpp (vit's GELU kernel against LibTorch's, forward and backward, float32 and bf16)
# against Debian's LibTorch. Not a test.
# usage: bash bench/gelu.sh [ROWS] [HIDDEN] [THREADS]   (defaults: 1664 512 1, the main job's fc1 output per process;
# vit_mini_patch4_32 at batch 256: 16640 512 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/vit-gelu
g++ -O2 -std=c++17 -I. bench/gelu.cpp models/cpu_gelu.cpp models/cpu_vector_width.cpp -o "$out" \
  -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10 -fopenmp
exec "$out" "$@"
