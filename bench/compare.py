#!/usr/bin/env python3
"""`vit bench` beside the same model in PyTorch (torchvision_bench.py), for each case: every side is run ROUNDS
times, alternating, so that the machine's changing load falls on all alike; each round gives a median over
timed windows, and the table shows the median over rounds of each side and the ratios (vit / PyTorch: above 1
means vit is faster). Not a test: figures for the README.

Sides (--sides, comma-separated; the first vit side and the PyTorch sides make the ratios):
  vit           vit as shipped (freed memory kept for reuse, engine/runtime.h)
  vit-system    vit with malloc's defaults (VIT_MALLOC=system): what vit did before it kept memory
  torch         PyTorch under its default allocator (glibc malloc's defaults)
  torch-reuse   PyTorch with glibc told to keep freed memory (GLIBC_TUNABLES, the same settings as vit's)

usage: compare.py --vit BUILD/app/vit [--python /usr/bin/python3] [--rounds 3] [--impl torchvision|timm]
                  [--sides vit,torch,torch-reuse] [--case 'LABEL|VIT BENCH ARGS'] ...
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
# glibc's malloc keeping freed memory: what vit's configure_memory_reuse() sets with mallopt.
REUSE_TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"
SIDES = {
    "vit": ("vit", {}),
    "vit-system": ("vit", {"VIT_MALLOC": "system"}),
    "torch": ("torch", {}),
    "torch-reuse": ("torch", {"GLIBC_TUNABLES": REUSE_TUNABLES}),
}


def shared_args(args):
    out = []
    for i, arg in enumerate(args):
        if arg in SHARED:
            out += [arg, args[i + 1]]
    return out


def run_json(command, env_extra):
    env = dict(os.environ, **env_extra)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {shlex.join(command)}\n{result.stderr}")
    return json.loads(result.stdout)


def run_case(args, sides, bench_args, tmp):
    """{side: [result of each round]}; vit's first run gives the config PyTorch builds, so in each round the vit
    sides run first."""
    rounds = {side: [] for side in sides}
    config = os.path.join(tmp, "config.json")
    order = sorted(sides, key=lambda side: SIDES[side][0] != "vit")
    for _ in range(args.rounds):
        for side in order:
            kind, env = SIDES[side]
            if kind == "vit":
                result = run_json([args.vit, "--quiet", "bench", "--format", "json", *bench_args], env)
                if not os.path.exists(config):
                    with open(config, "w") as f:
                        json.dump(result, f)
            else:
                result = run_json([args.python, os.path.join(HERE, "torchvision_bench.py"), "--config", config,
                                   "--impl", args.impl, *shared_args(bench_args)], env)
            rounds[side].append(result)
    os.remove(config)
    return rounds


def summarise(results, key):
    """Median images/s over rounds, peak MiB, median faults per step and kernel share; None where it failed."""
    if key not in results[0] or any("error" in r[key] for r in results):
        return None
    phase = [r[key] for r in results]
    return {"images_per_s": statistics.median(p["images_per_s"] for p in phase),
            "mib": max(p["peak_memory_bytes"] for p in phase) / 2**20,
            "faults": statistics.median(p.get("minor_faults_per_step", 0.0) for p in phase),
            "kernel": statistics.median(p.get("kernel_time_share", 0.0) for p in phase)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vit", required=True)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--impl", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--sides", default="vit,torch,torch-reuse")
    parser.add_argument("--case", action="append", help="'LABEL|VIT BENCH ARGS' (repeatable)")
    args = parser.parse_args()
    sides = args.sides.split(",")
    unknown = [s for s in sides if s not in SIDES]
    if unknown or not any(SIDES[s][0] == "vit" for s in sides):
        sys.exit(f"--sides: expected a comma-separated list of {', '.join(SIDES)} with at least one vit side")
    ours = next(s for s in sides if SIDES[s][0] == "vit")
    names = {s: s.replace("torch", args.impl) for s in sides}

    rows, notes, device, torch_version = [], [], "", ""
    beside = {}  # label -> {side: synthetic training timed alternately with training from the folder}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case or DEFAULT_CASES:
            label, bench_args = case.split("|", 1)
            print(f"{label}: {args.rounds} rounds ...", file=sys.stderr, flush=True)
            rounds = run_case(args, sides, shlex.split(bench_args), tmp)
            device = rounds[ours][0]["device"]
            torch_version = next((r[0]["torch"] for s, r in rounds.items() if SIDES[s][0] == "torch"), "")
            for key, name in PHASES:
                if key not in rounds[ours][0]:
                    continue
                figures = {side: summarise(results, key) for side, results in rounds.items()}
                for side, results in rounds.items():
                    errors = [r[key]["error"] for r in results if key in r and "error" in r[key]]
                    if errors:
                        notes.append(f"{label}, {name}: {names[side]} failed: {errors[0]}")
                    elif key in results[0] and "note" in results[0][key]:
                        notes.append(f"{label}, {name}: {names[side]} measured {results[0][key]['note']}")
                rows.append((label, name, figures))
            if "synthetic_beside_folder" in rounds[ours][0]:
                beside[label] = {side: summarise(results, "synthetic_beside_folder") for side, results in rounds.items()}

    print(f"vit bench vs {args.impl} (torch {torch_version}) on {device}; images/s, median of {args.rounds} "
          f"alternating rounds, each the median of its timed windows; ratio = {ours} / each PyTorch side")
    others = [s for s in sides if s != ours and SIDES[s][0] == "torch"]
    header = ["case", "phase", *[names[s] for s in sides], *[f"/{names[s]}" for s in others]]
    header += [f"{names[s]} MiB" for s in sides] + [f"{names[s]} faults/step" for s in sides]
    header += [f"{names[s]} kernel%" for s in sides]
    print(" | ".join(header))

    def number(figure, field, digits, scale=1.0):
        return "n/a" if figure is None else f"{figure[field] * scale:,.{digits}f}"

    for label, name, figures in rows:
        cells = [label, name] + [number(figures[s], "images_per_s", 1) for s in sides]
        for s in others:
            ok = figures[s] is not None and figures[ours] is not None
            cells.append(f"{figures[ours]['images_per_s'] / figures[s]['images_per_s']:.2f}" if ok else "n/a")
        cells += [number(figures[s], "mib", 0) for s in sides]
        cells += [number(figures[s], "faults", 0) for s in sides]
        cells += [number(figures[s], "kernel", 1, 100.0) for s in sides]
        print(" | ".join(cells))
    for label, name, figures in rows:
        synthetic = beside.get(label)
        if name != "train from folder" or synthetic is None:
            continue
        shares = [f"{names[s]} {figures[s]['images_per_s'] / synthetic[s]['images_per_s']:.2f}x"
                  for s in sides if figures[s] is not None and synthetic[s] is not None]
        print(f"{label}: training fed from the folder against synthetic data (alternating windows): "
              f"{', '.join(shares)}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
