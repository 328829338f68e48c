#!/usr/bin/env bash
# End-to-end checks of `vit train` on several processes of this machine, over c10d's Gloo on 127.0.0.1: two
# processes against one on the same images (weights and validation figures), the launch through Debian's
# torchrun and through vit's own --processes, Ctrl-C and --resume on another number of processes, a killed rank,
# a hung one, and launch errors. Every port is a free one (never 29500); every wait has a limit.
# usage: test_distributed.sh VIT_BINARY PYTHON
set -uo pipefail
vit=$1
python=$2
here=$(dirname "$0")
source "$here/lib.sh"

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for PID SECONDS: waits for the process to end, at most SECONDS; its exit code, or 124 if it is still there.
wait_for() {
  local pid=$1 limit=$2
  for _ in $(seq 1 $((limit * 10))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
    sleep 0.1
  done
  return 124
}

# child_of PARENT [ENTRY]: the pid of a child of PARENT running `vit train`, the first with ENTRY (e.g. RANK=1) in
# its environment when given; fails when there is none.
child_of() {
  local parent=$1 entry=${2:-} process
  for process in /proc/[0-9]*; do
    [[ $(cut -d' ' -f4 "$process/stat" 2>/dev/null) == "$parent" ]] && grep -qa "train" "$process/cmdline" || continue
    [[ -z $entry ]] || tr '\0' '\n' <"$process/environ" 2>/dev/null | grep -qx "$entry" || continue
    echo "${process#/proc/}"
    return 0
  done
  return 1
}
kill_child() {  # kill_child PARENT [ENTRY]: kill -9 of child_of's process
  local pid
  pid=$(child_of "$@") && kill -9 "$pid"
}

# Ten classes, 8 training and 3 validation images each.
"$python" "$here/make_idx_dataset.py" "$work/idx"
"$vit" dataset fashion-mnist --source "$work/idx" --out "$work/data" >/dev/null 2>&1
check "data set written" $?

# No dropout, no augmentation (whole-image crops, no flips), no warm-up: one process with batch 32 and two with
# batch 16 each then take the same 3 steps on the same images (80 = 32 + 32 + 16).
model=(--model vit_mini_patch7_28 --embed-dim 32 --depth 2 --num-heads 2 --threads 1 --workers 1)
plain=(--scale 1 1 --ratio 1 1 --hflip 0 --warmup-epochs 0 --lr 1e-3 --epochs 1)
expect "one process, batch 32" 0 "best validation top-1" \
  -- "$vit" train "$work/data" --out "$work/one" -b 32 "${model[@]}" "${plain[@]}"

port=$(free_port)
launch() {  # launch RANK RUN_DIR LOG [options...]: one process of a two-process run, in the background
  local rank=$1 out=$2 log=$3
  shift 3
  RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$vit" train "$work/data" --out "$out" "${model[@]}" "$@" >"$log" 2>&1 &
}
launch 1 "$work/two" "$work/two.1.log" -b 16 "${plain[@]}"
rank1=$!
launch 0 "$work/two" "$work/two.0.log" -b 16 "${plain[@]}"
rank0=$!
wait_for $rank0 120
code0=$?
wait_for $rank1 30
code1=$?
[[ $code0 == 0 && $code1 == 0 ]]
check "two processes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), batch 16 each" $? \
  "exit $code0 / $code1: $(cat "$work/two.0.log" "$work/two.1.log")"
grep -q "2 processes x 16 images per batch = 32 images per step" "$work/two.0.log" &&
  grep -q "\[rank 1\] rank 1 of 2 (local 1 of 2, env): joined over gloo" "$work/two.1.log" &&
  ! grep -q "best validation" "$work/two.1.log"
check "the log states the global batch; rank 1 logs marked and does not sum up" $? \
  "$(cat "$work/two.0.log" "$work/two.1.log")"

# The weights after 3 AdamW steps, and the validation figures (sharded over the two, summed): as one process's.
compare_runs() {
  "$python" - "$here/../reference" "$1" "$2" <<'PY'
import csv, sys
sys.path.insert(0, sys.argv[1])
from vit_files import read_safetensors
a, _ = read_safetensors(sys.argv[2] + "/last.safetensors")
b, _ = read_safetensors(sys.argv[3] + "/last.safetensors")
assert a.keys() == b.keys()
worst = max(float(abs(a[k] - b[k]).max()) for k in a)
assert worst <= 1e-5, f"weights differ by up to {worst}"
ra = list(csv.DictReader(open(sys.argv[2] + "/metrics.csv")))[-1]
rb = list(csv.DictReader(open(sys.argv[3] + "/metrics.csv")))[-1]
for key in ("val_top1", "val_top5"):
    assert ra[key] == rb[key], (key, ra[key], rb[key])
for key in ("val_loss", "train_loss", "train_acc"):
    assert abs(float(ra[key]) - float(rb[key])) <= 1e-5, (key, ra[key], rb[key])
print(f"weights within {worst:.2g}; val top-1 {ra['val_top1']}, loss {ra['val_loss']} / {rb['val_loss']}")
PY
}
output=$(compare_runs "$work/one" "$work/two" 2>&1)
check "two processes: weights within 1e-5 of one process's, the same validation figures" $? "$output"
[[ ! -e $work/two/curves.png.tmp && -s $work/two/resume.safetensors && -s $work/two/config.json ]]
check "rank 0 wrote the run folder" $?

# Through Debian's torchrun: the same run, the same weights. PyTorch 1.13 spells its options with underscores, and
# under Python 3.11 its default --redirects fails to parse (pytorch#92319): a map naming a rank that does not
# exist (9:1) parses and redirects nothing.
torchrun=("$python" -m torch.distributed.run --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1
          --redirects 9:1 --tee 9:1 --no_python)
output=$(timeout 180 "${torchrun[@]}" --master_port "$(free_port)" "$vit" train "$work/data" --out "$work/torchrun" \
  -b 16 "${model[@]}" "${plain[@]}" 2>&1)
code=$?
[[ $code == 0 ]] && grep -q "local 1 of 2, torchrun" <<<"$output"
check "torchrun --no_python vit train" $? "exit $code: $output"
output=$(compare_runs "$work/two" "$work/torchrun" 2>&1)
check "torchrun's run equals the hand-launched one" $? "$output"

# vit's own launcher, --processes 2: the same run, the same weights; no port given, none left in use.
output=$(timeout 180 "$vit" train "$work/data" --out "$work/launched" --processes 2 -b 16 "${model[@]}" "${plain[@]}" \
  2>&1)
code=$?
[[ $code == 0 ]] && grep -q "starting 2 processes on this machine (store at 127.0.0.1:[0-9]*)" <<<"$output" &&
  grep -q "\[rank 1\] rank 1 of 2 (local 1 of 2, env): joined over gloo" <<<"$output" &&
  [[ $(grep -c "best validation top-1" <<<"$output") == 1 ]]
check "vit train --processes 2" $? "exit $code: $output"
output=$(compare_runs "$work/two" "$work/launched" 2>&1)
check "--processes 2 equals the hand-launched run" $? "$output"

# A time limit on two processes: the ranks agree at every step on the clock the learning rate follows and on when
# the time is spent (in the gradients' all-reduce), so they stop after the same step, within the limit, with the
# last epoch validated and the learning rate annealed (to 1e-6, from 1e-3).
start=$(date +%s.%N)
output=$(timeout 60 "$vit" train "$work/data" --out "$work/timed" --processes 2 -b 16 --epochs 1000 --time-limit 6 \
  "${model[@]}" --scale 1 1 --ratio 1 1 --hflip 0 --warmup-epochs 0 --lr 1e-3 2>&1)
code=$?
end=$(date +%s.%N)
[[ $code == 0 ]] && [[ $(grep -c "best validation top-1" <<<"$output") == 1 ]] &&
  "$python" - "$work/timed/metrics.csv" "$start" "$end" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = rows[-1]
assert len(rows) > 3 and last["val_top1"] != "" and float(last["lr"]) < 1e-5, (len(rows), last)
seconds = float(sys.argv[3]) - float(sys.argv[2])
assert 5 <= seconds < 9, seconds
PY
check "--processes 2 --time-limit 6: the ranks stop together on time, the learning rate annealed" $? \
  "exit $code: $(tail -n 5 <<<"$output")"

# A launcher of --processes 2 in a process group of its own, running until stopped; `launcher` is its pid and
# `ranks` its children's, once rank 0 has finished the second epoch.
start_launcher() {  # start_launcher NAME [options...]
  local name=$1
  shift
  setsid "$vit" train "$work/data" --out "$work/$name" -b 16 --epochs 100 "${model[@]}" "$@" >"$work/$name.log" 2>&1 &
  launcher=$!
  for _ in $(seq 1 600); do
    grep -q "epoch 2:" "$work/$name.log" 2>/dev/null && break
    sleep 0.1
  done
  ranks=$(children_of "$launcher")
}
children_of() { grep -l "^[0-9]* ([^)]*) . $1 " /proc/[0-9]*/stat 2>/dev/null | cut -d/ -f3; }
# stopped_and_saved NAME: the launcher ended (exit in `code`), no rank outlived it, rank 0 saved and summed up once.
stopped_and_saved() {
  local name=$1 rank
  wait_for "$launcher" 60
  code=$?
  [[ $code == 124 ]] && kill -9 -- -"$launcher"
  for rank in $ranks; do
    [[ -d /proc/$rank ]] && return 1
  done
  [[ $(wc -w <<<"$ranks") == 2 && $(grep -c "interrupted after" "$work/$name.log") == 1 &&
     -s $work/$name/resume.safetensors ]] && ! grep -q "error" "$work/$name.log"
}

# A SIGINT or SIGTERM sent to the launcher alone (not its process group) is passed on; a terminal's Ctrl-C (SIGINT
# to the whole group) reaches launcher and ranks at once: either way every rank stops after the same step, rank 0
# saves once, the launcher exits 130 after its ranks; --resume --processes 2 continues the run on two.
for signal in INT TERM; do
  start_launcher "launched-$signal" --processes=2
  kill -"$signal" "$launcher"
  stopped_and_saved "launched-$signal" && [[ $code == 130 ]]
  check "SIG$signal to the launcher of --processes=2: the ranks stop and save, exit 130" $? \
    "exit $code: $(cat "$work/launched-$signal.log")"
done
start_launcher launched-group --processes 2
kill -INT -- -"$launcher"
stopped_and_saved launched-group && [[ $code == 130 ]]
check "Ctrl-C (SIGINT to the group) under --processes 2: the ranks stop and save, exit 130" $? \
  "exit $code: $(cat "$work/launched-group.log")"

# The launcher killed (-9): its ranks get SIGTERM from the kernel, stop after the same step and save.
start_launcher launched-orphans --processes 2
kill -9 "$launcher"
for _ in $(seq 1 600); do
  alive=0
  for rank in $ranks; do [[ -d /proc/$rank ]] && alive=1; done
  ((alive)) || break
  sleep 0.1
done
((!alive)) && [[ $(wc -w <<<"$ranks") == 2 && $(grep -c "interrupted after" "$work/launched-orphans.log") == 1 &&
  -s $work/launched-orphans/resume.safetensors ]]
check "the launcher killed with -9: its ranks stop and save" $? "$(cat "$work/launched-orphans.log")"
((alive)) && kill -9 $ranks

expect "--resume --processes 2 continues the run" 0 "best validation top-1" \
  -- timeout 300 "$vit" train "$work/data" --out "$work/launched-TERM" --resume --processes 2
[[ $(wc -l <"$work/launched-TERM/metrics.csv") == 101 ]]
check "... to all 100 epochs" $? "$(tail -n 3 "$work/launched-TERM/metrics.csv")"

# A rank killed under --processes: the other names it and exits 3; the launcher says which rank ended how and
# exits with rank 0's status.
"$vit" train "$work/data" --out "$work/launched-kill" --processes 2 -b 16 --epochs 500 --dist-timeout 20 \
  "${model[@]}" >"$work/launched-kill.log" 2>&1 &
launcher=$!
for _ in $(seq 1 600); do
  [[ -s $work/launched-kill/resume.safetensors ]] && break
  sleep 0.1
done
kill_child "$launcher" RANK=1
wait_for "$launcher" 60
code=$?
[[ $code == 3 ]] && grep -q "lost rank 1 of 2" "$work/launched-kill.log" &&
  grep -Eq "rank 1 \(pid [0-9]+\) was ended by signal 9" "$work/launched-kill.log"
check "kill -9 of rank 1 under --processes: the launcher exits 3, naming it" $? \
  "exit $code: $(cat "$work/launched-kill.log")"

# A rank that hangs once another has failed (rank 0 stopped with SIGSTOP, so it never notices rank 1's kill -9):
# the launcher asks it to stop after --dist-timeout (here 2 s), kills it as long again later, and exits with its
# status (137: SIGKILL) instead of waiting for it.
start_launcher launched-hung --processes 2 --dist-timeout 2
rank0=$(child_of "$launcher" RANK=0)
kill -STOP "$rank0"
started=$SECONDS
kill_child "$launcher" RANK=1
wait_for "$launcher" 30
code=$?
elapsed=$((SECONDS - started))
[[ $code == 124 ]] && kill -9 -- -"$launcher"
[[ $code == 137 && ! -d /proc/$rank0 ]] && ((elapsed >= 3 && elapsed <= 15)) &&
  grep -q "1 process still running 2 s after a rank failed: asking it to stop" "$work/launched-hung.log" &&
  grep -q "killing the 1 process still running" "$work/launched-hung.log" &&
  grep -Eq "rank 0 \(pid $rank0\) was ended by signal 9" "$work/launched-hung.log"
check "a hung rank after another failed: asked to stop after --dist-timeout, killed after twice that" $? \
  "exit $code after $elapsed s: $(tail -n 8 "$work/launched-hung.log")"

# Ctrl-C on a terminal reaches torchrun and its workers: every rank stops after the same step, rank 0 saves once,
# and --resume continues on one process.
setsid "${torchrun[@]}" --master_port "$(free_port)" "$vit" train "$work/data" --out "$work/int" -b 16 --epochs 100 \
  "${model[@]}" >"$work/int.log" 2>&1 &
group=$!  # torchrun, leading a process group of its own with its workers: a terminal's Ctrl-C reaches them all
for _ in $(seq 1 600); do
  grep -q "epoch 2:" "$work/int.log" 2>/dev/null && break
  sleep 0.1
done
kill -INT -- -"$group"
wait_for "$group" 60
code=$?
[[ $code != 124 ]] && grep -q "interrupted after" "$work/int.log" && [[ -s $work/int/resume.safetensors ]]
check "Ctrl-C under torchrun stops every rank and saves" $? "exit $code: $(cat "$work/int.log")"
[[ $(grep -c "interrupted after" "$work/int.log") == 1 ]]
check "... and only rank 0 sums up" $? "$(cat "$work/int.log")"
expect "--resume on one process continues the run of two" 0 \
  "resuming a run of 2 processes on 1: epoch [0-9]+ continues at batch" \
  -- "$vit" train "$work/data" --out "$work/int" --resume
[[ $(wc -l <"$work/int/metrics.csv") == 101 ]]
check "the resumed run has all 100 epochs" $? "$(tail -n 3 "$work/int/metrics.csv")"

# torchrun --max_restarts 1: a worker killed after the first checkpoint; torchrun restarts the group, which
# continues from the saved state by itself and finishes. Epochs take ~0.1 s: enough of them that the kill lands
# while the workers still run (30 finished before it on a busy machine).
setsid "${torchrun[@]}" --max_restarts 1 --master_port "$(free_port)" "$vit" train "$work/data" --out "$work/restart" \
  -b 16 --epochs 200 "${model[@]}" >"$work/restart.log" 2>&1 &
agent=$!
for _ in $(seq 1 600); do
  [[ -s $work/restart/resume.safetensors ]] && break
  sleep 0.1
done
kill_child "$agent"  # a worker
wait_for "$agent" 120
code=$?
[[ $code == 0 ]] && grep -q "torchrun restart 1: resuming the run saved in" "$work/restart.log" &&
  [[ $(wc -l <"$work/restart/metrics.csv") == 201 ]]
check "torchrun --max_restarts: the restarted workers resume by themselves and finish" $? \
  "exit $code: $(tail -n 30 "$work/restart.log")"

# kill -9 of one rank: the other stops within its --dist-timeout, naming the lost rank, and the run folder keeps
# its last complete checkpoint.
port=$(free_port)
launch 1 "$work/killed" "$work/killed.1.log" -b 16 --epochs 500 --dist-timeout 20
rank1=$!
launch 0 "$work/killed" "$work/killed.0.log" -b 16 --epochs 500 --dist-timeout 20
rank0=$!
for _ in $(seq 1 600); do
  [[ -s $work/killed/resume.safetensors ]] && break
  sleep 0.1
done
kill -9 $rank1
wait_for $rank0 40
code=$?
[[ $code == 3 ]] && grep -q "lost rank 1 of 2" "$work/killed.0.log" &&
  grep -q "holds the last complete checkpoint: continue with the same launch and --resume" "$work/killed.0.log"
check "kill -9 of rank 1: rank 0 exits 3 naming it" $? "exit $code: $(cat "$work/killed.0.log")"
expect "the last checkpoint is intact" 0 "resuming at epoch" \
  -- "$vit" train "$work/data" --out "$work/killed" --resume --epochs 1 --time-limit 1

# The benchmark of a step's gradient all-reduce, between two processes; refused without a launcher.
port=$(free_port)
for rank in 1 0; do
  RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 60 \
    "$vit" bench --phases all-reduce --windows 2 "${model[@]}" --format json >"$work/allreduce.$rank.json" \
    2>"$work/allreduce.$rank.err" &
done
wait
"$vit" bench --phases inference --windows 1 --window-seconds 0.1 --warmup 1 "${model[@]}" --format json \
  >"$work/model.json" 2>/dev/null
"$python" - "$work/allreduce.0.json" "$work/model.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["backend"] == "gloo" and r["processes"] == 2 and len(r["seconds"]) == 2, r
assert r["shared_memory"] is True, r  # both ranks on this machine: the sums skip Gloo's sockets
# Every parameter of the model is a gradient averaged (the count from the config, as vit bench reports it).
parameters = json.load(open(sys.argv[2]))["parameters"]
assert r["gradient_floats"] == parameters, (r["gradient_floats"], parameters)
assert all(0 < s < 10 for s in r["seconds"]), r
PY
check "vit bench --phases all-reduce between 2 processes" $? "$(cat "$work/allreduce.0.json" "$work/allreduce.0.err")"
[[ ! -s $work/allreduce.1.json ]]
check "... only rank 0 reports" $? "$(cat "$work/allreduce.1.json")"
expect "all-reduce benchmark needs a launcher" 2 "--phases all-reduce times the processes of a launch" \
  -- "$vit" bench --phases all-reduce "${model[@]}"

# Launch errors.
expect "WORLD_SIZE without MASTER_ADDR" 2 "a run of 2 processes needs MASTER_ADDR and MASTER_PORT" \
  -- env RANK=0 WORLD_SIZE=2 "$vit" train "$work/data" --out "$work/x"
expect "a rank outside the world" 2 "rank 2 is outside a world of 2 processes" \
  -- env RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$vit" train "$work/data" --out "$work/x"
start=$(date +%s)
expect "no store to reach: a clear error within --dist-timeout" 2 \
  "rank 1 could not reach the store at 127.0.0.1:$port \(hosted by rank 0\)" \
  -- env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" \
  "$vit" train "$work/data" --out "$work/x" --dist-timeout 3
(($(date +%s) - start < 30))
check "... and within the timeout" $?
expect "--processes under another launcher" 2 "leave --processes out under torchrun or srun" \
  -- env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$vit" train "$work/data" --out "$work/x" \
  --processes 2
expect "--processes 0" 2 "--processes: Value 0 not in range 1 to 1024" \
  -- "$vit" train "$work/data" --out "$work/x" --processes 0
expect "nccl without a GPU" 2 "--dist-backend nccl needs --device cuda" \
  -- "$vit" train "$work/data" --out "$work/x" --dist-backend nccl

finish
