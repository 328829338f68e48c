#!/usr/bin/env bash
# Learned against fixed sine-cosine position embeddings on the main job's recipe (scripts/main-job.sh), side by
# side: both trainings run at once, one thread each, with the same time limit, so both get the same share of the
# machine; then each one's best weights are evaluated on the Fashion-MNIST test split. Prints both and their
# difference. Not a test: the figure in the README ("Fixed sine-cosine position embedding"). ~12 minutes.
# usage: bash bench/compare_pos_embed.sh [SECONDS]      (needs build/app/vit and build/fashion-mnist, which
#        scripts/main-job.sh makes; SECONDS is each training's time limit, default 590 as in the main job)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-590}
vit=build/app/vit
data=build/fashion-mnist
[[ -x $vit && -d $data/train ]] || { echo "run scripts/main-job.sh first (needs $vit and $data)" >&2; exit 2; }
out=$(mktemp -d runs/pos-embed-XXXXXX 2>/dev/null || { mkdir -p runs && mktemp -d runs/pos-embed-XXXXXX; })

recipe=(--model vit_mini_patch7_28 --global-pool avg --patch-drop 0.25 --amp bf16 --batch-size 256 --lr 2e-3
        --warmup-epochs 1 --label-smoothing 0.1 --drop-path 0.1 --scale 1 1 --ratio 1 1 --hflip 0.5 --epochs 40
        --time-limit "$seconds" --threads 1 --workers 1)
for kind in learn sincos; do
  "$vit" -q train "$data" --out "$out/$kind" "${recipe[@]}" --pos-embed "$kind" &
done
wait
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); each run 1 thread, ${seconds} s"
for kind in learn sincos; do
  top1=$("$vit" -q eval "$out/$kind/best.safetensors" "$data/val" --batch-size 256 | awk '/^top-1/ { print $2 }')
  epochs=$(($(wc -l <"$out/$kind/metrics.csv") - 1))
  params=$("$vit" info "$out/$kind/best.safetensors" | awk '/^parameters/ { print $2 }')
  printf '%-7s top-1 %s after %s epochs, %s trained parameters\n' "$kind" "$top1" "$epochs" "$params"
done
echo "runs in $out"
