#!/usr/bin/env bash
# Data-parallel training on this machine: the main job's model and options trained for two epochs of Fashion-MNIST
# by 1 process x 2 threads and by 2 processes x 1 thread (`vit train --processes 2`, c10d's Gloo on 127.0.0.1), the
# same global batch (256), alternated ROUNDS times; then the gradient all-reduce of one step for ViT-S/16 and
# ViT-B/16 between 2 processes. Prints the second epoch's training images/s per run (the first decodes the images
# into the cache), the medians and the 2-process speed-up, and the all-reduce times.
# usage: bench/distributed_scaling.sh [VIT] [DATA]   (default build/app/vit, build/fashion-mnist; ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
vit=${1:-build/app/vit}
data=${2:-build/fashion-mnist}
rounds=${ROUNDS:-2}
[[ -d $data/train ]] || "$vit" dataset fashion-mnist --out "$data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
images_per_s() { tail -n 1 "$1/metrics.csv" | cut -d, -f10; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

train=(train "$data" --model vit_mini_patch7_28 --patch-size 4 --global-pool avg --patch-drop 0.75 --amp bf16
       --lr 2e-3 --opt-betas 0.9 0.95 --drop-path 0 --scale 1 1 --ratio 1 1 --epochs 2 --warmup-epochs 1
       --val-every 5 --quiet)
: >"$work/one" >"$work/two"
for round in $(seq 1 "$rounds"); do
  "$vit" "${train[@]}" --out "$work/one$round" -b 256 --threads 2
  images_per_s "$work/one$round" >>"$work/one"
  "$vit" "${train[@]}" --out "$work/two$round" -b 128 --processes 2
  images_per_s "$work/two$round" >>"$work/two"
  echo "round $round: 1 process x 2 threads $(tail -n 1 "$work/one") images/s, 2 processes x 1 thread $(tail -n 1 "$work/two") images/s"
done
one=$(median <"$work/one")
two=$(median <"$work/two")
echo "median training images/s: 1 x 2 threads $one, 2 x 1 thread $two: 2 processes at $(awk -v a="$two" -v b="$one" 'BEGIN {printf "%.2f", a / b}')x one process of 2 threads"

for model in vit_small_patch16_224 vit_base_patch16_224; do
  torchrun --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 --master_port "$(free_port)" \
    --redirects 9:1 --tee 9:1 --no_python "$vit" bench --model "$model" --phases all-reduce --windows 5 2>/dev/null |
    grep "^all-reduce"
done
