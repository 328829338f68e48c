#!/usr/bin/env bash
# The whole CPU comparison, from a fresh clone on Debian 12: installs the dependencies, builds vit, then runs
#   1. vit bench beside torchvision's VisionTransformer on the same LibTorch (compare.py; training step and
#      inference throughput, peak memory), for the default cases in compare.py;
#   2. the data pipeline on a generated folder of 500x375 JPEGs: decode + random-resized crop + flip alone, and
#      training fed by it against training on synthetic data (vit_tiny_patch16_224), both sides;
#   3. single-image `vit classify`, process start to answer, against the torchvision script (classify_latency.sh).
# Prints both sides and their ratios. Takes ~20 minutes on 2 cores. Not a test: figures for the README.
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
"$python" bench/compare.py --vit build/app/vit --python "$python" --rounds "$rounds"
echo
"$python" bench/make_jpeg_folder.py "$work/jpegs" --images 256 --classes 4
"$python" bench/compare.py --vit build/app/vit --python "$python" --rounds "$rounds" \
  --case "vit_tiny_patch16_224, batch 32, 500x375 JPEGs|--model vit_tiny_patch16_224 --batch-size 32 --phases train --data $work/jpegs --workers 1"
echo
VIT=build/app/vit bash bench/classify_latency.sh 5
