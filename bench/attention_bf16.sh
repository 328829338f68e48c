#!/usr/bin/env bash
# Builds and runs bench/attention_bf16.cpp (where a bf16 attention forward's time goes; LibTorch's products against
# oneDNN's matmul primitive; vit's bf16 attention kernel against its operator path) against Debian's LibTorch and
# libdnnl. Not a test.
# usage: bash bench/attention_bf16.sh [TOKENS] [BATCH] [THREADS]    (defaults: 65 tokens, batch 256: vit_mini_patch4_32;
# every core. The main job's processes: 13 128 1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/vit-attention-bf16
g++ -O3 -std=c++17 -I. bench/attention_bf16.cpp models/cpu_attention_bf16.cpp models/cpu_attention_bf16_chunked.cpp models/cpu_attention_bf16_dot.cpp models/cpu_bf16_dot_attention_head.cpp models/cpu_softmax.cpp models/cpu_vector_width.cpp -o "$out" -I/usr/include/torch/csrc/api/include \
  -ltorch -ltorch_cpu -lc10 -ldnnl -fopenmp
exec "$out" "$@"
