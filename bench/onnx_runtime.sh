#!/usr/bin/env bash
# CPU inference, `vit bench` against ONNX Runtime (npm's onnxruntime-node, what a user would pick to run the ONNX
# export instead) on the same architecture with the same threads and batch: the main job's model and ViT-S/16.
# Each ROUND runs both sides back to back; prints every round and the medians and their ratio. Not a test:
# figures for the README.
# usage: bench/onnx_runtime.sh [ROUNDS] [THREADS]   (after bash third_party/install-deps.sh and building vit)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-$(nproc)}
vit=${VIT:-build/app/vit}
python=${VIT_REFERENCE_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $threads threads"
# name | vit's model flags | config overrides for the exported file | batch
cases=(
  "main job (vit_mini_patch7_28, avg pool)|--model vit_mini_patch7_28 --global-pool avg|global_pool=\"avg\" fc_norm=true|256"
  "ViT-S/16 224|--model vit_small_patch16_224|num_classes=1000|32"
)
for entry in "${cases[@]}"; do
  IFS='|' read -r name flags overrides batch <<<"$entry"
  read -ra model_flags <<<"$flags"
  read -ra config_overrides <<<"$overrides"
  "$vit" info "${model_flags[1]}" --format json >"$work/info.json"
  "$python" bench/make_random_weights.py "$work/info.json" "$work/model.safetensors" "${config_overrides[@]}"
  "$vit" export "$work/model.safetensors" --format onnx --out "$work/model.onnx" --force --quiet
  ours=() theirs=()
  for round in $(seq "$rounds"); do
    ours+=("$("$vit" bench "${model_flags[@]}" --phases inference --threads "$threads" --batch-size "$batch" --quiet \
      --format json | "$python" -c 'import json,sys; print(json.load(sys.stdin)["inference"]["images_per_s"])')")
    theirs+=("$(node bench/onnx_runtime_bench.js "$work/model.onnx" --threads "$threads" --batch-size "$batch" |
      "$python" -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])')")
    printf '%s, round %d: vit %.1f images/s, ONNX Runtime %.1f images/s\n' "$name" "$round" "${ours[-1]}" "${theirs[-1]}"
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
  m_ours=$(median "${ours[@]}")
  m_theirs=$(median "${theirs[@]}")
  printf '%s, batch %d: vit %.1f, ONNX Runtime %.1f images/s (medians of %d): vit / ORT = %.2f\n' "$name" "$batch" \
    "$m_ours" "$m_theirs" "$rounds" "$(awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN { print a / b }')"
done
