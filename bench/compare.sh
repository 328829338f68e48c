#!/usr/bin/env bash
# The whole CPU comparison, from a fresh clone on Debian 12: installs the dependencies, builds vit, then runs
#   1. vit bench beside torchvision's VisionTransformer on the same LibTorch (compare.py; training step and
#      inference throughput, peak memory, page faults and kernel time), for the default cases in compare.py,
#      PyTorch both under its default allocator and with glibc told to keep freed memory, as vit does;
#   2. the data pipeline on a generated folder of 500x375 JPEGs: decode + random-resized crop + flip alone, and
#      training fed by it against training on synthetic data (vit_small_patch16_224, no image cache), both sides;
#      then the main job's model fed from the Fashion-MNIST folder (vit alone);
#   3. single-image `vit classify`, process start to answer, against the torchvision script (classify_latency.sh).
# Prints both sides and their ratios. Takes ~40 minutes on 2 cores. Not a test: figures for the README.
# usage: bash bench/compare.sh [ROUNDS]        (env: VIT_BENCH_SKIP_BUILD=1 to use an existing build/app/vit)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
python=${VIT_REFERENCE_PYTHON:-/usr/bin/python3}

if [[ -z ${VIT_BENCH_SKIP_BUILD:-} ]]; then
  bash third_party/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVIT_REQUIRE_OPENCV=ON >/dev/null
  cmake --build build -j"$(nproc)" --target vit
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ { print $2 }') GiB"
echo
"$python" bench/compare.py --vit build/app/vit --python "$python" --rounds "$rounds" --sides vit,vit-system,torch,torch-reuse
echo
"$python" bench/make_jpeg_folder.py "$work/jpegs" --images 256 --classes 4
"$python" bench/compare.py --vit build/app/vit --python "$python" --rounds "$rounds" \
  --case "vit_small_patch16_224, batch 32, 500x375 JPEGs|--model vit_small_patch16_224 --batch-size 32 --phases train --data $work/jpegs --workers 1 --cache-images 0"
echo
# The main job's model and training flags fed from the Fashion-MNIST folder (decoded images cached), vit alone:
# torchvision's VisionTransformer has neither one input channel nor average pooling. vit bench augments with timm's
# defaults (random-resized crop 0.08-1, flip), a little more work than the main job's flip alone.
build/app/vit dataset fashion-mnist --out build/fashion-mnist
"$python" bench/compare.py --vit build/app/vit --python "$python" --rounds "$rounds" --sides vit \
  --case "main job: vit_mini_patch7_28 with 4x4 patches, Fashion-MNIST folder|--model vit_mini_patch7_28 --patch-size 4 --global-pool avg --patch-drop 0.75 --drop-path 0 --amp bf16 --batch-size 256 --phases train --data build/fashion-mnist/train"
echo
VIT=build/app/vit bash bench/classify_latency.sh 5
