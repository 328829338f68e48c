#!/usr/bin/env bash
# End-to-end checks of `vit bench`: its figures are real measurements (positive, one per window, median of
# them), --format json carries everything, the image-folder phases run, and bad options are clear errors.
# usage: test_bench.sh VIT_BINARY PYTHON   (PYTHON: for parsing JSON and writing test images)
set -uo pipefail
vit=$1
python=$2
source "$(dirname "$0")/lib.sh"

base=(--model vit_mini_patch4_32 --depth 2 --embed-dim 32 --warmup 1 --windows 3 --window-seconds 0.05)
tiny=("${base[@]}" --num-heads 2 --batch-size 8)

expect "help lists bench" 0 "bench +Measure training and inference throughput" -- "$vit" --help
expect "text report" 0 "train +[0-9.]+ images/s +\(median of 3 windows" -- "$vit" bench "${tiny[@]}"

"$vit" -q bench "${tiny[@]}" --num-classes 7 --format json >"$work/bench.json" 2>"$work/bench.err"
check "json report runs" $? "$(cat "$work/bench.err")"
"$python" - "$work/bench.json" <<'PY'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
assert report["config"]["num_classes"] == 7 and report["config"]["depth"] == 2, report["config"]
assert report["batch_size"] == 8 and report["amp"] == "none" and report["device"].startswith("cpu")
for phase in ("train", "inference"):
    r = report[phase]
    windows = r["windows_images_per_s"]
    assert len(windows) == 3 and all(w > 0 for w in windows), windows
    assert abs(r["images_per_s"] - statistics.median(windows)) < 1e-9 * r["images_per_s"], r
    assert r["steps_per_window"] >= 1 and r["peak_memory_bytes"] > 10 * 2**20, r
    # Memory is reused from step to step: a handful of page faults per step, not one per page of activations.
    # (The kernel's share of CPU time is only range-checked: on a busy machine, waiting OpenMP threads spend
    # windows this short in the kernel.)
    assert 0 <= r["minor_faults_per_step"] < 500 and 0 <= r["kernel_time_share"] <= 1, r
    assert r["images_per_cpu_second"] > 0, r
assert "kept for reuse" in report["memory"], report["memory"]
PY
check "json report: config, windows, median, memory, faults" $?
expect "VIT_MALLOC=system keeps malloc's defaults" 0 "memory +malloc's defaults \(VIT_MALLOC=system\)" \
  -- env VIT_MALLOC=system "$vit" bench "${tiny[@]}" --phases inference

"$vit" -q bench "${tiny[@]}" --phases inference --format json >"$work/inference.json"
"$python" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert "inference" in r and "train" not in r' \
  "$work/inference.json"
check "--phases inference times only inference" $?

"$python" - "$work/images" "$work/big" <<'PY'
import os, sys
import numpy as np
from PIL import Image
for i in range(12):
    folder = os.path.join(sys.argv[1], f"class{i % 2}")
    os.makedirs(folder, exist_ok=True)
    pixels = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(os.path.join(folder, f"{i}.jpg"))
# Two images of 800x600: 2.9 MB decoded, more than a 1 MiB cache holds.
for i in range(2):
    folder = os.path.join(sys.argv[2], f"class{i}")
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(np.full((600, 800, 3), 60 * i, dtype=np.uint8)).save(os.path.join(folder, f"{i}.png"))
PY
expect "image-folder phases" 0 "folder train +[0-9.]+ images/s.*
folder training runs at [0-9.]+x the synthetic-data training throughput" \
  -- "$vit" bench "${tiny[@]}" --data "$work/images"
expect "pipeline phase" 0 "pipeline +[0-9.]+ images/s" -- "$vit" bench "${tiny[@]}" --data "$work/images"
expect "pipeline throughput per core and its cache" 0 "^ +[0-9.]+ images per CPU-second \(1 decode thread; decoded images 12 kept in memory \(1 MiB\)\)" \
  -- "$vit" bench "${tiny[@]}" --data "$work/images" --workers 1
expect "pipeline without the cache" 0 "images per CPU-second \(1 decode thread; decoded images not kept\)" \
  -- "$vit" bench "${tiny[@]}" --data "$work/images" --workers 1 --cache-images 0
expect "pipeline when the images do not fit" 0 "decoded images not kept: they need more than 1 MiB" \
  -- "$vit" bench "${tiny[@]}" --data "$work/big" --workers 1 --cache-images 1
expect "negative cache" 2 "--cache-images: expected MiB from 0 \(none\) to 1048576, got -1" -- "$vit" bench "${tiny[@]}" --data "$work/images" --cache-images -1

expect "zero batch size" 2 "--batch-size must be positive, got 0$" -- "$vit" bench "${base[@]}" --batch-size 0
expect "no warm-up step" 2 "--warmup must be at least 1, got 0" -- "$vit" bench --model vit_mini_patch4_32 --warmup 0
expect "infinite windows" 2 "--window-seconds must be a finite number, got inf$" -- "$vit" bench --model vit_mini_patch4_32 --window-seconds inf
expect "zero windows" 2 "--windows must be positive, got 0$" -- "$vit" bench --model vit_mini_patch4_32 --windows 0
expect "unknown preset" 2 "--model: unknown model 'vit_huge_patch99'" -- "$vit" bench --model vit_huge_patch99
expect "impossible architecture" 2 "model options: .*num_heads" -- "$vit" bench "${base[@]}" --num-heads 3
expect "cuda without cuda" 2 "--device cuda: this LibTorch build has no CUDA support" \
  -- "$vit" bench "${tiny[@]}" --device cuda
mkdir -p "$work/noclasses" && cp "$work/images/class0/0.jpg" "$work/noclasses/"
expect "folder without classes" 2 "noclasses. has no class subfolders \(expected .*/noclasses/<class>/<images>\)" -- "$vit" bench "${tiny[@]}" --data "$work/noclasses"
"$vit" -q bench "${tiny[@]}" --trace "$work/trace.json" >/dev/null
"$python" - "$work/trace.json" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))
names = {e["name"] for e in events}
# The training step's backward pass and AdamW's update are in it, not only a forward pass.
for op in ("aten::native_layer_norm", "aten::native_layer_norm_backward", "vit::AdamW::step"):
    assert op in names, (op, sorted(names))
# One step: the profiled step run first and thrown away (its page faults) is not in the file.
steps = sum(e["name"] == "vit::AdamW::step" for e in events)
assert steps == 1, steps
PY
check "--trace writes a Chrome trace of one step: forward, backward and optimizer" $?

# timm's feature models (num_classes 0: DINOv2, SigLIP, ...) have no head, so no loss for a training step: bench says
# so, names the way out, and times their inference.
expect "a headless model's training is refused, naming --num-classes" 2 \
  "error: vit_small_patch14_dinov2 has no classifier head \(num_classes 0: its outputs are features\).*--num-classes N.*--phases inference" \
  -- "$vit" bench --model vit_small_patch14_dinov2 --depth 1 --image-size 28 --windows 1
expect "a headless model's inference is timed" 0 "inference +[0-9.]+ images/s" \
  -- "$vit" bench --model vit_small_patch14_dinov2 --depth 1 --image-size 28 --batch-size 2 --phases inference \
  --windows 1 --window-seconds 0.05
expect "a headless model given --num-classes trains" 0 "train +[0-9.]+ images/s" \
  -- "$vit" bench --model vit_small_patch14_dinov2 --depth 1 --image-size 28 --batch-size 2 --num-classes 3 \
  --windows 1 --window-seconds 0.05

# A model larger than the machine's memory (MLPs of 1.28e9 hidden units: 2e12 parameters) is refused before it is
# built, rather than killed by the OOM killer.
expect "a model larger than memory is refused before it is built" 2 \
  "model options: 1.974e\+12 parameters need [0-9.]+ GiB for their float32 weights, more than this machine's [0-9.]+ GiB of memory" \
  -- "$vit" bench --model vit_mini_patch4_32 --mlp-ratio 1e7 --phases inference --windows 1
# Past 2^63 parameters (width 2e6, depth 1e8: 8 x 4e12 per block, 3.2e21 in all) the count is not wrapped into a
# smaller, or negative, integer that could pass the check.
expect "a parameter count past 2^63 is refused with its true size" 2 \
  "model options: 3.2e\+21 parameters need [0-9.]+ GiB for their float32 weights" \
  -- "$vit" bench --model vit_mini_patch4_32 --embed-dim 2000000 --num-heads 1 --depth 100000000 --phases inference \
  --windows 1
# A batch too large to allocate (1.2 TB of synthetic images) is LibTorch's error, given as one line: without the
# C++ stack trace LibTorch appends for its own developers.
expect "LibTorch's errors come without its stack trace" 2 "^error: .*can't allocate memory: you tried to allocate" \
  -- "$vit" bench --model vit_mini_patch4_32 --batch-size 100000000 --phases inference --windows 1
output=$("$vit" bench --model vit_mini_patch4_32 --batch-size 100000000 --phases inference --windows 1 2>&1)
! grep -qE "frame #|Exception raised from" <<<"$output"
check "no stack trace in the error" $? "$output"

finish
