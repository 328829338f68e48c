#!/usr/bin/env bash
# The longer Fashion-MNIST recipe (README, "Fashion-MNIST"), from a fresh Debian 12 machine: installs, builds and
# converts as the main job does, then trains for 150 epochs with no time limit (about 90 minutes on a 2-core VM)
# and evaluates the best weights on the 10,000 test images.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prepare-fashion-mnist.sh

# The main job's model with 49 tokens of 4x4 pixels, PatchDropout 0.5 (25 of them kept per training image),
# random erasing and mild crops: regularisation that costs accuracy in ten minutes and pays over a long run.
# A five-epoch warm-up, then a cosine decay over the 150 epochs.
run=runs/fashion-mnist-long-$(date +%Y%m%d-%H%M%S)
"$vit" train "$data" --out "$run" --model vit_mini_patch7_28 --patch-size 4 --global-pool avg --patch-drop 0.5 \
  --amp bf16 --batch-size 256 --lr 2e-3 --warmup-epochs 5 --label-smoothing 0.1 --drop-path 0.1 \
  --scale 0.8 1 --ratio 0.9 1.1 --reprob 0.25 --hflip 0.5 --epochs 150
"$vit" eval "$run/best.safetensors" "$data/val" --batch-size 256 --confusion-csv "$run/confusion.csv" --plots "$run"
