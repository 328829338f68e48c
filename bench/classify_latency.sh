#!/usr/bin/env bash
# Single-image classification, end to end (process start to printed answer), `vit classify` against the
# Python script a torchvision user would write (torchvision_classify.py): same architecture, same weights, same
# image, same LibTorch underneath (Debian's python3-torch). Prints the median of RUNS runs of each and the
# ratio. Not a test: figures for the README.
# usage: bench/classify_latency.sh [RUNS]   (after building vit: cmake --build build --target vit)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
vit=${VIT:-build/app/vit}
python=${VIT_REFERENCE_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" bench/make_latency_models.py "$work"

# median_seconds COMMAND...: runs COMMAND $runs times (output discarded) and prints the median wall time.
median_seconds() {
  local times=() start end
  for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "single 500x375 JPEG, top 5, process start to answer; median of $runs runs"
printf '%-22s %12s %12s %8s\n' model "vit classify" "torchvision" ratio
for model in vit_tiny_patch16_224 vit_base_patch16_224; do
  dir=$work/$model
  # Both must give the same answer for their times to mean anything. (The resizes differ a little: OpenCV's
  # area averaging against PIL's antialiased bilinear, so a near tie of a random model could flip.)
  ours=$("$vit" classify "$dir/model.safetensors" "$work/photo.jpg" -k 1 --format csv | sed -n 2p | cut -d, -f3)
  theirs=$("$python" bench/torchvision_classify.py "$dir" "$work/labels.txt" "$work/photo.jpg" | sed -n 2p)
  [[ $theirs == *"class $ours "* ]] || echo "warning: $model: top-1 differs: vit class $ours, torchvision$theirs" >&2
  t_vit=$(median_seconds "$vit" classify "$dir/model.safetensors" "$work/photo.jpg")
  t_py=$(median_seconds "$python" bench/torchvision_classify.py "$dir" "$work/labels.txt" "$work/photo.jpg")
  printf '%-22s %11.2fs %11.2fs %8.2f\n' "$model" "$t_vit" "$t_py" "$(awk -v a="$t_vit" -v b="$t_py" 'BEGIN { print a / b }')"
done
