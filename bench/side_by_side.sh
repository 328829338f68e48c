#!/usr/bin/env bash
# Two builds of vit timed side by side: the same `vit bench` command from each at the same moment, each pinned to
# its own core with one LibTorch thread, the cores swapped every round, so that both meet the same spell of a
# shared, noisy machine (cores 0 and 1). Prints each round's images/s and ratio (B / A), then the median ratio. Not a test.
#
# usage: bash bench/side_by_side.sh VIT_A VIT_B ROUNDS train|inference [vit bench options...]
#   e.g. cp build/app/vit /tmp/vit-before; (change, rebuild)
#        bash bench/side_by_side.sh /tmp/vit-before build/app/vit 4 inference --model vit_mini_patch4_32 \
#          --batch-size 256 --amp bf16
set -euo pipefail
if (($# < 4)); then
  sed -n '6,9p' "$0" >&2
  exit 2
fi
vit_a=$1 vit_b=$2 rounds=$3 phase=$4
shift 4
if [[ ! $rounds =~ ^[1-9][0-9]*$ ]]; then
  echo "side_by_side.sh: ROUNDS must be a positive whole number, got '$rounds'" >&2
  exit 2
fi
if [[ $phase != train && $phase != inference ]]; then
  echo "side_by_side.sh: PHASE must be train or inference, got '$phase'" >&2
  exit 2
fi
out=$(mktemp -d)
pids=()
# On any exit (an interrupt too) the two runs stop with this script.
trap 'kill "${pids[@]}" 2> /dev/null || true; rm -rf "$out"' EXIT

# The images/s of the phase's line in a `vit bench` output file.
images_per_second() { awk -v phase="$2" '$1 == phase { print $2 }' "$1"; }

ratios=()
for round in $(seq "$rounds"); do
  core_a=$((round % 2)) core_b=$(((round + 1) % 2))
  taskset -c "$core_a" "$vit_a" bench --threads 1 --phases "$phase" "$@" > "$out/a" 2>&1 &
  pids=($!)
  taskset -c "$core_b" "$vit_b" bench --threads 1 --phases "$phase" "$@" > "$out/b" 2>&1 &
  pids+=($!)
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  pids=()
  a=$(images_per_second "$out/a" "$phase") b=$(images_per_second "$out/b" "$phase")
  if ((status != 0)) || [[ -z $a || -z $b ]]; then
    echo "side_by_side.sh: a run failed (round $round); its output:" >&2
    cat "$out/a" "$out/b" >&2
    exit 1
  fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio")
  echo "round $round: A $a images/s (core $core_a), B $b (core $core_b), B / A $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
  median = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
  printf "median B / A over %d rounds: %.3f (range %s-%s)\n", NR, median, r[1], r[NR] }'
