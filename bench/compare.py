#!/usr/bin/env python3
"""`vit bench` beside the same model in PyTorch (torchvision_bench.py), for each case: both are run ROUNDS
times, alternating, so that the machine's changing load falls on both alike; each round gives a median over
timed windows, and the table shows the median over rounds of each side and their ratio (vit / PyTorch: above
1 means vit is faster). Not a test: figures for the README.

usage: compare.py --vit BUILD/app/vit [--python /usr/bin/python3] [--rounds 3] [--impl torchvision|timm]
                  [--data DIR --workers N] [--case 'LABEL|VIT BENCH ARGS'] ...
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Options both sides take under the same name; everything else (the architecture) goes to vit alone, and
# PyTorch builds the model from the config vit reports.
SHARED = {"--batch-size", "--device", "--amp", "--threads", "--phases", "--warmup", "--windows",
          "--window-seconds", "--seed", "--data", "--workers"}
PHASES = [("train", "train"), ("inference", "inference"), ("pipeline", "pipeline"),
          ("folder_train", "train from folder")]
DEFAULT_CASES = [
    "vit_mini_patch4_32, batch 256, float32|--model vit_mini_patch4_32 --batch-size 256",
    "vit_mini_patch4_32, batch 256, bf16|--model vit_mini_patch4_32 --batch-size 256 --amp bf16",
    "vit_tiny_patch16_224, batch 32, float32|--model vit_tiny_patch16_224 --batch-size 32",
]


def shared_args(args):
    out = []
    for i, arg in enumerate(args):
        if arg in SHARED:
            out += [arg, args[i + 1]]
    return out


def run_json(command):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {shlex.join(command)}\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vit", required=True)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--impl", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--case", action="append", help="'LABEL|VIT BENCH ARGS' (repeatable)")
    args = parser.parse_args()

    rows, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case or DEFAULT_CASES:
            label, bench_args = case.split("|", 1)
            bench_args = shlex.split(bench_args)
            print(f"{label}: {args.rounds} rounds ...", file=sys.stderr, flush=True)
            rounds = {"vit": [], "torch": []}
            for _ in range(args.rounds):
                ours = run_json([args.vit, "--quiet", "bench", "--format", "json", *bench_args])
                config = os.path.join(tmp, "config.json")
                with open(config, "w") as f:
                    json.dump(ours, f)
                theirs = run_json([args.python, os.path.join(HERE, "torchvision_bench.py"), "--config", config,
                                   "--impl", args.impl, *shared_args(bench_args)])
                rounds["vit"].append(ours)
                rounds["torch"].append(theirs)
            for key, name in PHASES:
                if key not in rounds["vit"][0]:
                    continue
                ours = statistics.median(r[key]["images_per_s"] for r in rounds["vit"])
                mem_ours = max(r[key]["peak_memory_bytes"] for r in rounds["vit"]) / 2**20
                if "error" in rounds["torch"][0][key]:
                    failures.append(f"{label}, {name}: PyTorch failed: {rounds['torch'][0][key]['error']}")
                    rows.append((label, name, ours, None, None, mem_ours, None))
                    continue
                theirs = statistics.median(r[key]["images_per_s"] for r in rounds["torch"])
                mem_theirs = max(r[key]["peak_memory_bytes"] for r in rounds["torch"]) / 2**20
                rows.append((label, name, ours, theirs, ours / theirs, mem_ours, mem_theirs))
        device = rounds["vit"][0]["device"]
        torch_version = rounds["torch"][0]["torch"]

    print(f"vit bench vs {args.impl} (torch {torch_version}) on {device}; images/s, median of {args.rounds} "
          f"alternating rounds, each the median of its timed windows")
    header = ("case", "phase", "vit", args.impl, "ratio", "vit MiB", f"{args.impl} MiB")
    print(f"{header[0]:<42} {header[1]:<18} {header[2]:>9} {header[3]:>11} {header[4]:>6} {header[5]:>8} {header[6]:>15}")
    def number(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"

    for label, name, ours, theirs, ratio, mem_ours, mem_theirs in rows:
        print(f"{label:<42} {name:<18} {ours:>9.1f} {number(theirs, 1):>11} {number(ratio, 2):>6} {mem_ours:>8.0f} "
              f"{number(mem_theirs, 0):>15}")
    for label, name, ours, theirs, *_ in rows:
        if name != "train from folder":
            continue
        synthetic = {(r[0], r[1]): r for r in rows}.get((label, "train"))
        if synthetic and theirs is not None and synthetic[3] is not None:
            print(f"{label}: training fed from the folder runs at {ours / synthetic[2]:.2f}x vit's synthetic-data "
                  f"figure; {args.impl}: {theirs / synthetic[3]:.2f}x")
    for failure in failures:
        print(failure)


if __name__ == "__main__":
    main()
