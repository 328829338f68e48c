#!/usr/bin/env bash
# kill -9 at random moments while `vit train`, `vit export` and `vit dataset` write their files, as a crash, an
# OOM kill or a pulled plug does: after every kill, every file under a final name is complete
# (check_files_complete.py), and the run resumes from its last complete checkpoint. Also output paths that cannot
# be files. (test_disk_faults.sh has the full disk, the read-only file system and permissions.)
# usage: test_kills.sh VIT_BINARY PYTHON [KILLS]   (KILLS: rounds for train, default 30; export and dataset get 2/3)
set -uo pipefail
vit=$1
python=$2
kills=${3:-30}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
RANDOM=18  # the same random delays on every run, so a failure can be repeated

complete() { "$python" "$here/check_files_complete.py" "$1"; }

# kill_after SECONDS COMMAND...: runs COMMAND in the background, kills it with SIGKILL after SECONDS (if still
# running) and waits for it.
kill_after() {
  local delay=$1
  shift
  "$@" >>"$work/killed.log" 2>&1 &
  local pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
# A random delay in [FROM, FROM + SPAN) seconds, in milliseconds' steps.
delay() { printf '%d.%03d' $(($1 + RANDOM % ($2 * 1000) / 1000)) $((RANDOM % 1000)); }
# A random delay in the second half of MILLISECONDS, where a command that writes at its end writes.
late_delay() { local ms=$(($1 / 2 + RANDOM % ($1 / 2 + 1))); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
# run_ms COMMAND...: how many milliseconds COMMAND takes.
run_ms() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1
  local end=$EPOCHREALTIME
  echo $(((${end/./} - ${start/./}) / 1000))
}

"$python" "$here/make_idx_dataset.py" "$work/idx" >/dev/null
"$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data" >/dev/null 2>&1
model=(--model vit_mini_patch7_28 --embed-dim 192 --depth 4 --num-heads 3 -b 16 --threads 1 --workers 1)

# note_mid_write DIR: records the temporary files of atomic writes in DIR, each a kill that landed in the middle of
# a write (the next write of the same file removes them); mid_writes: how many were seen.
note_mid_write() { find "$1" -name '.*.tmp.*' >>"$work/mid_write" 2>/dev/null; }
mid_writes() { sort -u "$work/mid_write" | wc -l; }
touch "$work/mid_write"

# --- kill -9 during training: every epoch writes last/best.safetensors, metrics.csv, curves.png, resume.safetensors
bad=0
for round in $(seq 1 "$kills"); do
  resume=()
  [[ -e $work/run/resume.safetensors ]] && resume=(--resume)
  kill_after "$(delay 0 3)" "$vit" train "$work/data" --out "$work/run" --epochs 100000 "${model[@]}" "${resume[@]}"
  if ! out=$(complete "$work/run"); then
    bad=$((bad + 1))
    echo "round $round: $out"
  fi
  # A run with weights can always be resumed: its state is saved before the first weights file.
  if [[ -e $work/run/last.safetensors && ! -e $work/run/resume.safetensors ]]; then
    bad=$((bad + 1))
    echo "round $round: last.safetensors without resume.safetensors: neither a fresh run nor --resume would start"
  fi
  note_mid_write "$work/run"
done
check "kill -9 during vit train x$kills: every file complete after every kill ($(mid_writes) landed mid-write)" "$bad"
for f in "$work"/run/*.safetensors; do
  [[ $(basename "$f") == resume.safetensors ]] && continue
  expect "after the kills, $(basename "$f") loads" 0 "classes +10" -- "$vit" info "$f"
done
# The run continues from its last complete checkpoint: the state's epoch, not from scratch.
saved_epochs=$(($(wc -l <"$work/run/metrics.csv") - 1))
interrupt_after_epoch "$work/resume.log" "$vit" train "$work/data" --out "$work/run" --resume
grep -Eq "resuming at epoch [0-9]+" "$work/resume.log" && [[ $code == 130 ]]
check "--resume continues after $kills kills (metrics.csv had $saved_epochs epochs)" $? \
  "exit $code: $(cat "$work/resume.log")"
[[ -z $(find "$work/run" -name '.last.safetensors.tmp.*' -o -name '.resume.safetensors.tmp.*' -o -name '.metrics.csv.tmp.*') ]]
check "the temporary files of killed writers are removed by the next write" $? "$(ls -la "$work/run")"

# --- kill -9 during export: TorchScript, ONNX, timm and HF folders, replaced with --force each round. From a
# model of ViT-S/16's width and depth (85 MB of weights), so that writing is a fair share of an export's time.
"$vit" train "$work/data" --out "$work/small" --epochs 1 --model vit_mini_patch7_28 --embed-dim 384 --depth 12 \
  --num-heads 6 -b 16 --threads 2 --workers 1 >/dev/null 2>&1
weights=$work/small/best.safetensors
declare -A outputs=([torchscript]=model.pt [onnx]=model.onnx [timm]=timm [hf]=hf)
formats=(torchscript onnx timm hf)
bad=0
: >"$work/mid_write"
mkdir -p "$work/exports"
export_kills=$((kills * 2 / 3))
declare -A export_ms
for format in "${formats[@]}"; do
  export_ms[$format]=$(run_ms "$vit" export "$weights" --format "$format" --out "$work/exports/${outputs[$format]}")
done
for round in $(seq 1 "$export_kills"); do
  format=${formats[round % 4]}
  kill_after "$(late_delay "${export_ms[$format]}")" "$vit" export "$weights" --format "$format" --out "$work/exports/${outputs[$format]}" --force
  if ! out=$(complete "$work/exports"); then
    bad=$((bad + 1))
    echo "round $round ($format): $out"
  fi
  if [[ -f $work/exports/model.onnx ]] && ! "$vit" info "$work/exports/model.onnx" >/dev/null 2>&1; then
    bad=$((bad + 1))
    echo "round $round: the ONNX file does not read"
  fi
  note_mid_write "$work/exports"
done
check "kill -9 during vit export x$export_kills: every file complete after every kill ($(mid_writes) landed mid-write)" \
  "$bad"
for format in "${formats[@]}"; do
  expect "export $format after the kills" 0 "" -- "$vit" export "$weights" --format "$format" \
    --out "$work/exports/${outputs[$format]}" --force
done
expect "the ONNX export describes the model" 0 "classes +10" -- "$vit" info "$work/exports/model.onnx"
expect "the timm export describes the model" 0 "classes +10" -- "$vit" info "$work/exports/timm"

# --- kill -9 during a dataset conversion (3,300 images): the folder appears complete or not at all
"$python" "$here/make_idx_dataset.py" "$work/idx_big" 30 >/dev/null
bad=0
for round in $(seq 1 "$export_kills"); do
  kill_after "$(delay 0 2)" "$vit" dataset fashion-mnist --source "$work/idx_big" --out "$work/big"
  if [[ -e $work/big ]] && { ! complete "$work/big" >/dev/null || [[ $(find "$work/big" -name '*.png' | wc -l) != 3300 ]]; }; then
    bad=$((bad + 1))
    echo "round $round: $work/big is incomplete"
  fi
done
check "kill -9 during vit dataset x$export_kills: the folder is whole or absent" "$bad"
expect "the conversion completes after the kills" 0 "2400 training images .* 900 validation|already holds Fashion-MNIST" \
  -- "$vit" dataset fashion-mnist --source "$work/idx_big" --out "$work/big"
leftovers=$(find "$work" -maxdepth 1 -name '.big.partial-*' | wc -l)
expect "a later conversion removes the killed ones' partial folders" 0 "" -- test "$leftovers" = 0

# --- Output paths that cannot be written
touch "$work/a_file"
expect "train --out that is a file" 2 "a_file" -- "$vit" train "$work/data" --out "$work/a_file" --epochs 1 "${model[@]}"
expect "export --out that is a folder" 2 "exports/timm' is a folder" \
  -- "$vit" export "$weights" --format torchscript --out "$work/exports/timm" --force
expect "export into a folder that does not exist" 2 "nowhere" \
  -- "$vit" export "$weights" --format torchscript --out "$work/nowhere/model.pt"

finish
