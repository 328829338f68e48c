#!/usr/bin/env bash
# End-to-end checks of `vit dataset` and `vit train` as a user runs them: a small Fashion-MNIST-shaped data set
# (IDX files written here), a short training run and its files, Ctrl-C and --resume, the time limit,
# --patch-drop-tail, --val-every, and errors for bad arguments.
# usage: test_train.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
source "$(dirname "$0")/lib.sh"

# Ten classes, 8 training and 3 test images each, 28x28, brighter for higher labels.
"$python" "$(dirname "$0")/make_idx_dataset.py" "$work/idx"

expect "dataset conversion" 0 "80 training images .* 30 validation" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data"
expect "dataset conversion is idempotent" 0 "already holds Fashion-MNIST" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data"
cp -r "$work/data" "$work/data_changed"
rm "$work/data_changed/train/Bag/"*.png
expect "dataset does not trust its marker over the files" 2 \
  "data_changed': changed since its conversion: 'train/Bag' holds 0 images where .vit-dataset.json lists 8; remove the folder to convert again" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data_changed"
expect "dataset refuses a user's folder" 2 "refusing to write into it" \
  -- "$vit" dataset fashion-mnist --source "$work/idx" --out "$work/idx"
expect "dataset names a missing source" 2 "nowhere': no such folder" \
  -- "$vit" dataset fashion-mnist --source "$work/nowhere" --out "$work/data2"

common=(--model vit_mini_patch7_28 --embed-dim 32 --depth 2 --num-heads 2 -b 16 --threads 1 --workers 1)
expect "train help" 0 "--time-limit" -- "$vit" train --help
expect "train runs and summarises" 0 "best validation top-1 [0-9.]+, top-5 [0-9.]+ \(epoch [12]\)" \
  -- "$vit" train "$work/data" --out "$work/run" --epochs 2 "${common[@]}"
for f in best.safetensors last.safetensors metrics.csv curves.png config.json resume.safetensors; do
  [[ -s $work/run/$f ]]
  check "run folder has $f" $?
done
[[ $(wc -l <"$work/run/metrics.csv") == 3 ]]
check "metrics.csv has a header and two epochs" $? "$(cat "$work/run/metrics.csv")"
mv "$work/run/curves.png" "$work/curves_by_train.png"
expect "vit plot redraws the curves from metrics.csv" 0 "2 epochs drawn to '$work/run/curves.png'" -- "$vit" plot "$work/run"
cmp -s "$work/run/curves.png" "$work/curves_by_train.png"
check "vit plot draws what vit train drew" $?
expect "vit plot --out" 0 "drawn to '$work/elsewhere.png'" -- "$vit" plot "$work/run" --out "$work/elsewhere.png"
cp "$work/run/metrics.csv" "$work/metrics.before"
expect "vit plot --out takes only a .png name" 2 "--out: expected a file name ending in .png" \
  -- "$vit" plot "$work/run" --out "$work/run/metrics.csv"
cmp -s "$work/run/metrics.csv" "$work/metrics.before"
check "vit plot: the run's metrics.csv is untouched by a refused --out" $?
mkdir -p "$work/fresh_run"
head -n 1 "$work/run/metrics.csv" >"$work/fresh_run/metrics.csv"
expect "vit plot on a run without epochs yet" 2 "fresh_run/metrics.csv' has no epochs yet" -- "$vit" plot "$work/fresh_run"
expect "vit plot on a folder that is not a run" 2 "metrics.csv' cannot be read: is it a run folder of vit train" \
  -- "$vit" plot "$work/data"
expect "trained weights describe themselves" 0 "classes +10: Ankle boot, Bag, Coat" -- "$vit" info "$work/run/best.safetensors"
expect "--class-token false trains without one" 0 "best validation top-1" \
  -- "$vit" train "$work/data" --out "$work/no_cls" --epochs 1 --global-pool avg --class-token false "${common[@]}"
expect "weights trained without a class token have none" 0 "= 16 tokens$" -- "$vit" info "$work/no_cls/best.safetensors"
expect "--class-token takes true or false" 2 "--class-token: maybe not in \{true,false\}" \
  -- "$vit" train "$work/data" --out "$work/no_cls2" --class-token maybe "${common[@]}"
expect "--class-token false is refused with token pooling" 2 "global_pool 'token' needs class_token = true" \
  -- "$vit" train "$work/data" --out "$work/no_cls2" --epochs 1 --class-token false "${common[@]}"
expect "an existing run is not overwritten" 2 "already holds a training run; continue it with --resume" \
  -- "$vit" train "$work/data" --out "$work/run" --epochs 2 "${common[@]}"
# A run trimmed down to its best weights is a run too: they stay byte for byte.
mkdir -p "$work/trimmed" && cp "$work/run/best.safetensors" "$work/trimmed/"
expect "a folder holding only a run's best weights is not overwritten" 2 \
  "already holds a training run; continue it with --resume or choose another folder \(a new run would overwrite its best.safetensors\)" \
  -- "$vit" train "$work/data" --out "$work/trimmed" --epochs 1 "${common[@]}"
cmp -s "$work/run/best.safetensors" "$work/trimmed/best.safetensors" && [[ ! -e "$work/trimmed/metrics.csv" ]]
check "the trimmed run's weights are untouched" $?

# Hostile numbers: infinity passes a ">= 0" check and is written to JSON as null; thousands of threads crawl.
expect "an infinite option value is refused, naming the option" 2 "--weight-decay: expected a finite number, got inf" \
  -- "$vit" train "$work/data" --out "$work/inf" --weight-decay inf "${common[@]}"
expect "an AdamW beta of 1 is refused (the bias correction would divide by zero)" 2 "--opt-betas: expected two decay rates in \[0, 1\), got 1" \
  -- "$vit" train "$work/data" --out "$work/inf" --opt-betas 0.9 1 "${common[@]}"
expect "a crop area range given high to low is refused, naming the option" 2 \
  "^error: --scale: expected MIN MAX, shares of the image's area with 0 < MIN <= MAX <= 1, got 0.9 0.5$" \
  -- "$vit" train "$work/data" --out "$work/inf" --scale 0.9 0.5 "${common[@]}"
expect "an infinite MLP ratio is refused" 2 "mlp_ratio must be positive and give an MLP width under 2\^31, got inf" \
  -- "$vit" train "$work/data" --out "$work/inf" --mlp-ratio inf "${common[@]}"
expect "decoding threads are bounded" 2 "--workers: Value 100000 not in range 0 to 256" \
  -- "$vit" train "$work/data" --out "$work/inf" --model vit_mini_patch7_28 --workers 100000
expect "a model whose training state exceeds the machine's memory is refused before it is built" 2 \
  "model options: [0-9.e+]+ parameters need [0-9.]+ GiB for training \(float32 weights, gradients and AdamW's two moments\), more than this machine's [0-9.]+ GiB of memory" \
  -- "$vit" train "$work/data" --out "$work/inf" --model vit_mini_patch7_28 --mlp-ratio 1e7 -b 16 --threads 1 --workers 1
expect "--init and --model together are refused" 2 "--model and --init both name the architecture: --init trains the architecture of '$work/run/best.safetensors'; leave --model out" \
  -- "$vit" train "$work/data" --out "$work/inf" --init "$work/run/best.safetensors" "${common[@]}"
expect "a negative seed is refused rather than wrapped" 2 "--seed: expected a whole number >= 0, got '-1'" \
  -- "$vit" train "$work/data" --out "$work/inf" --seed -1 "${common[@]}"
expect "RandAugment's magnitude is checked even without the policy" 2 "--ra-magnitude: expected a magnitude from 0 to 30, got 99" \
  -- "$vit" train "$work/data" --out "$work/inf" --ra-magnitude 99 "${common[@]}"
expect "--ema-decay without --ema is refused" 2 "--ema-decay sets the decay of --ema's average, and --ema is not given" \
  -- "$vit" train "$work/data" --out "$work/inf" --ema-decay 0.99 "${common[@]}"
printf 'ONNX\x08\x07\x12\x07pytorch-not-safetensors' >"$work/model.onnx"
expect "--init with a file that is not safetensors says so" 2 "model.onnx': header length [0-9]+ exceeds the limit of [0-9]+ bytes: not a safetensors file" \
  -- "$vit" train "$work/data" --out "$work/inf" --init "$work/model.onnx" -b 16 --threads 1 --workers 1
[[ ! -e "$work/inf" ]]
check "refused options leave no run folder" $?

# A learning rate that sends the loss to NaN stops the run at the end of the epoch, saving no NaN weights.
expect "a diverging run stops with an error instead of saving NaN weights" 2 \
  "training diverged: epoch 1's mean training loss is nan, and no weights are saved. Start again \(another --out\) with a lower --lr" \
  -- "$vit" train "$work/data" --out "$work/diverged" --epochs 3 --lr 1e30 --warmup-epochs 0 "${common[@]}"
[[ ! -e "$work/diverged/last.safetensors" && ! -e "$work/diverged/best.safetensors" ]]
check "the diverged run saved no weights" $?

# Files that all fail to decode: every one is named, and the run stops rather than saving an untrained model.
mkdir -p "$work/unreadable/coat" "$work/unreadable/shirt"
for class in coat shirt; do for i in 1 2; do echo "not an image" >"$work/unreadable/$class/$i.png"; done; done
expect "a data set with no readable image stops the run" 2 \
  "epoch 1 trained on no image: none of the 4 training files could be read \(the warnings above say why\)" \
  -- "$vit" train "$work/unreadable" --out "$work/unreadable_run" --epochs 1 "${common[@]}"
[[ ! -e "$work/unreadable_run/best.safetensors" ]]
check "the unreadable data set's run saved no weights" $?

# One class whose files all fail: the run goes on, and says that class cannot be learnt.
mkdir -p "$work/one_unreadable"
cp -r "$work/data/train/Bag" "$work/unreadable/coat" "$work/one_unreadable/"
expect "a class with no readable training image is named" 0 \
  "class 'coat' has no readable training image \(all 2 failed\): the model cannot learn it" \
  -- "$vit" train "$work/one_unreadable" --out "$work/one_unreadable_run" --val-split 0 --epochs 1 "${common[@]}"

# Ctrl-C: the step finishes, the state is saved, the exit code is 130, and --resume finishes the run. Enough
# epochs that the run is still going when the signal arrives (this small model trains 80 images in ~20 ms).
interrupt_after_epoch "$work/int.log" "$vit" train "$work/data" --out "$work/int" --epochs 200 "${common[@]}"
[[ $code == 130 ]] && grep -q "vit train $work/data --out $work/int --resume" "$work/int.log"
check "SIGINT saves and says how to resume" $? "exit $code: $(cat "$work/int.log")"
expect "--resume finishes the run, naming the options it does not take" 0 \
  "--resume continues the run with the options it was started with; ignored: --epochs, --lr" \
  -- "$vit" train "$work/data" --out "$work/int" --resume --epochs 5 --lr 0.5
[[ $(wc -l <"$work/int/metrics.csv") == 201 ]]
check "the resumed run has all 200 epochs (its own --epochs)" $? "$(cat "$work/int/metrics.csv")"

# One run at a time writes a run folder: --resume of a run still going (in another terminal, say) is refused.
"$vit" train "$work/data" --out "$work/busy" --epochs 100000 "${common[@]}" >"$work/busy.log" 2>&1 &
busy=$!
for _ in $(seq 1 600); do
  grep -q "epoch [0-9]*:" "$work/busy.log" && break
  sleep 0.1
done
expect "a run folder in use by another vit train is refused, naming its process" 2 \
  "--out: '$work/busy' is in use by another vit train \(process $busy\); wait for it to end or choose another folder" \
  -- "$vit" train "$work/data" --out "$work/busy" --resume
kill -INT $busy
wait $busy
[[ ! -e $work/busy/.vit-train.lock ]]
check "a run that ends removes its lock file" $? "$(ls -a "$work/busy")"
interrupt_after_epoch "$work/busy2.log" "$vit" train "$work/data" --out "$work/busy" --resume
[[ $code == 130 ]] && grep -q "resuming at epoch" "$work/busy2.log"
check "once the first run has stopped, --resume continues it" $? "exit $code: $(cat "$work/busy2.log")"

# Ctrl-C many times over: handled by a signal handler on whichever thread the kernel picked, about one run in five
# ended in heap corruption (abort or segfault instead of exit 130); the signals now go to a thread of their own.
bad=""
for i in $(seq 1 20); do
  interrupt_after_epoch "$work/again.log" "$vit" train "$work/data" --out "$work/again" --epochs 100000 "${common[@]}"
  [[ $code == 130 ]] && grep -q "the state is saved" "$work/again.log" || bad+=" run $i: exit $code: $(tail -2 "$work/again.log")"
  rm -rf "$work/again"
done
[[ -z $bad ]]
check "SIGINT 20 times: every run stops cleanly with exit 130" $? "$bad"
# Other commands end at once, as by default (the shell sees 128 + SIGINT), also where the shell that started them
# ignores SIGINT (a background job of a script, as here).
"$vit" bench --model vit_mini_patch7_28 --embed-dim 32 --depth 2 --num-heads 2 --windows 100000 --threads 1 \
  >"$work/bench.log" 2>&1 &
pid=$!
sleep 2
kill -INT "$pid"
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null  # still running 5 s later: the check below fails with 137
wait "$pid"
code=$?
[[ $code == 130 ]]
check "SIGINT ends vit bench at once" $? "exit $code: $(tail -3 "$work/bench.log")"

start=$(date +%s.%N)
expect "time limit: the schedule runs on time" 0 "time limit 6 s: after the warm-up the learning rate decays with the time left" \
  -- "$vit" train "$work/data" --out "$work/timed" --epochs 1000 --time-limit 6 "${common[@]}"
end=$(date +%s.%N)
# The run ended by the time (within it, start-up aside), its last epoch validated and saved, the learning rate
# at its minimum (1e-6 here, from 5e-4).
"$python" - "$work/timed/metrics.csv" "$start" "$end" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = rows[-1]
assert last["val_top1"] != "" and float(last["lr"]) < 1e-5, last
seconds = float(sys.argv[3]) - float(sys.argv[2])
assert 5 <= seconds < 8, seconds
PY
check "time limit: the last epoch is validated and the learning rate annealed" $?
# --patch-drop-tail: the switch is announced, and the tail's epoch shows a rate of its own cycle (from --tail-lr
# 1e-3, 80% decayed at its last step: ~1e-4), far above the first cycle's end (~1e-5, from 5e-4).
expect "--patch-drop-tail ends the run with every token" 0 "after step 15 \(epoch 3, .*PatchDropout off for the rest" \
  -- "$vit" train "$work/data" --out "$work/tail" --epochs 4 --patch-drop 0.5 --patch-drop-tail 0.25 --tail-lr 1e-3 \
  "${common[@]}"
"$python" - "$work/tail/metrics.csv" <<'PY'
import csv, sys
lrs = [float(row["lr"]) for row in csv.DictReader(open(sys.argv[1]))]
assert lrs[2] < 2e-5 and 5e-5 < lrs[3] < 1.5e-4, lrs
PY
check "--patch-drop-tail: the last epoch trains in a cycle of its own" $?
expect "--patch-drop-tail without PatchDropout" 2 "--patch-drop-tail: the model trains without PatchDropout" \
  -- "$vit" train "$work/data" --out "$work/x" --epochs 4 --patch-drop-tail 0.25 "${common[@]}"
# --val-every 2 on a 3-epoch run: epochs 2 and 3 (the last) validated, epoch 1's validation cells empty.
expect "--val-every says which epochs it skips" 0 "epoch 1: .*, not validated, " \
  -- "$vit" train "$work/data" --out "$work/sparse" --epochs 3 --val-every 2 "${common[@]}"
"$python" - "$work/sparse/metrics.csv" <<'PY'
import csv, sys
top1 = [row["val_top1"] for row in csv.DictReader(open(sys.argv[1]))]
assert top1[0] == "" and float(top1[1]) >= 0 and float(top1[2]) >= 0, top1
PY
check "--val-every 2: metrics.csv has the 2nd and 3rd epochs' validation only" $?
# --val-tta hflip: validation's figures are those `vit eval --tta hflip` gives the same weights, not the plain ones.
expect "--val-tta hflip trains and says so" 0 "30 validation images from .*, validated with their mirror images" \
  -- "$vit" train "$work/data" --out "$work/tta" --epochs 1 --val-tta hflip "${common[@]}"
"$vit" eval "$work/tta/last.safetensors" "$work/data/val" --tta hflip --threads 1 --format json >"$work/tta/hflip.json" &&
  "$vit" eval "$work/tta/last.safetensors" "$work/data/val" --threads 1 --format json >"$work/tta/none.json"
check "eval --tta hflip and none on the run's weights" $?
"$python" - "$work/tta" <<'PY'
import csv, json, sys
run = sys.argv[1]
val_loss = float(next(csv.DictReader(open(run + "/metrics.csv")))["val_loss"])
hflip, none = (json.load(open(f"{run}/{name}.json"))["loss"] for name in ("hflip", "none"))
# metrics.csv keeps 6 digits; the noisy images are not mirror-symmetric, so the plain loss lies well outside that.
assert abs(val_loss - hflip) < 2e-5 * hflip, (val_loss, hflip)
assert abs(val_loss - none) > 1e-4 * none, (val_loss, none)
PY
check "--val-tta hflip: metrics.csv's validation loss is eval --tta hflip's" $?
expect "--val-tta names its values" 2 "--val-tta: vflip not in \{none,hflip\}" \
  -- "$vit" train "$work/data" --out "$work/x" --val-tta vflip "${common[@]}"
expect "--val-every 0" 2 "--val-every: expected at least 1" \
  -- "$vit" train "$work/data" --out "$work/x" --val-every 0 "${common[@]}"
expect "missing --out" 2 "--out is required" -- "$vit" train "$work/data"
expect "missing data folder" 2 "Directory does not exist" -- "$vit" train "$work/none" --out "$work/x"
expect "bad option value" 2 "--amp: fp8 not in \{none,bf16\}" -- "$vit" train "$work/data" --out "$work/x" --amp fp8
expect "bad architecture" 2 "embed_dim 32 must be divisible by num_heads 3" \
  -- "$vit" train "$work/data" --out "$work/x" --model vit_mini_patch7_28 --embed-dim 32 --num-heads 3

# A batch that cannot fit in memory is refused before anything is allocated, naming --batch-size (it was a bare
# "std::bad_alloc"). The 80 training images at a side S large enough that 80 of them, float32 and held twice,
# exceed this machine's memory; patches of S / 64 keep the model itself small.
memory=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024))
side=1024
while (( 80 * side * side * 4 * 2 <= memory )); do side=$((side * 2)); done
expect "a batch larger than memory is refused before training, naming --batch-size" 2 \
  "batch size 80: a batch of 80 images of 1x${side}x${side} pixels takes [0-9.]+ GiB as float32, held twice .*more than this machine's [0-9.]+ GiB of memory; lower --batch-size" \
  -- "$vit" train "$work/data" --out "$work/run_huge_batch" --model vit_mini_patch7_28 --embed-dim 32 --depth 2 \
  --num-heads 2 --threads 1 --workers 1 -b 80 --image-size "$side" --patch-size $((side / 64)) --epochs 1
[[ ! -e $work/run_huge_batch ]]
check "the refused run leaves no folder" $?

finish
