#!/usr/bin/env python3
"""The PyTorch side of bench/compare.sh: the same measurements as `vit bench`, on a torchvision
VisionTransformer (or timm's, where timm is installed) built from the config `vit bench --format json` printed,
on the same LibTorch. Prints one JSON object shaped like vit bench's.

Timing follows vit bench: `--warmup` untimed steps, the last of which sizes the windows (steps that fit in
`--window-seconds`), then `--windows` timed windows, synchronised only at their edges; the median is reported.
Training fed from a folder is timed in windows alternating with synthetic-data training, as vit bench does.
CPU figures (faults, kernel share) count this process only: DataLoader workers are other processes, where vit's
loader threads are counted in vit's.
Peak memory: the process's peak resident set per phase on CPU (reset through /proc/self/clear_refs), the peak
of allocated GPU memory on CUDA. Minor page faults per step and the kernel's share of CPU time over the timed
windows (getrusage), as vit bench.

usage: torchvision_bench.py --config JSON_FILE [--impl torchvision|timm] [--batch-size N] [--device cpu|cuda]
                            [--amp none|bf16] [--threads N] [--phases train|inference|both] [--data DIR --workers N]
"""
import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def build_model(config, impl):
    if config["in_chans"] != 3 or config["global_pool"] != "token":
        raise SystemExit("torchvision's VisionTransformer has 3 input channels and class-token pooling: "
                         "benchmark a config with --in-chans 3 --global-pool token")
    if impl == "timm":
        import timm.models.vision_transformer as tv
        return tv.VisionTransformer(img_size=config["image_size"], patch_size=config["patch_size"],
                                    embed_dim=config["embed_dim"], depth=config["depth"],
                                    num_heads=config["num_heads"], mlp_ratio=config["mlp_ratio"],
                                    num_classes=config["num_classes"])
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=config["image_size"], patch_size=config["patch_size"],
                             num_layers=config["depth"], num_heads=config["num_heads"],
                             hidden_dim=config["embed_dim"],
                             mlp_dim=round(config["embed_dim"] * config["mlp_ratio"]),
                             num_classes=config["num_classes"])


class PeakMemory:
    def __init__(self, device):
        self.device = device

    def reset(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")

    def peak_bytes(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated()
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def measure_alternating(args, device, steps):
    """Each step's warm-up (the last warm-up step sizes its windows), then the steps' timed windows in turn."""
    memory = PeakMemory(device)
    sized, results = [], []
    for step in steps:
        memory.reset()
        for _ in range(args.warmup - 1):
            step()
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        sized.append(max(1, round(args.window_seconds / max(time.perf_counter() - start, 1e-9))))
        results.append({"windows": [], "peak": memory.peak_bytes(), "user": 0.0, "kernel": 0.0, "faults": 0})
    for _ in range(args.windows):
        for step, steps_per_window, result in zip(steps, sized, results):
            memory.reset()
            before = usage()
            images = 0
            start = time.perf_counter()
            for _ in range(steps_per_window):
                images += step()
            synchronize(device)
            result["windows"].append(images / (time.perf_counter() - start))
            after = usage()
            result["user"] += after[0] - before[0]
            result["kernel"] += after[1] - before[1]
            result["faults"] += after[2] - before[2]
            result["peak"] = max(result["peak"], memory.peak_bytes())
    out = []
    for steps_per_window, r in zip(sized, results):
        cpu = r["user"] + r["kernel"]
        out.append({"images_per_s": statistics.median(r["windows"]), "windows_images_per_s": r["windows"],
                    "steps_per_window": steps_per_window, "peak_memory_bytes": r["peak"],
                    "minor_faults_per_step": r["faults"] / (args.windows * steps_per_window),
                    "kernel_time_share": r["kernel"] / cpu if cpu > 0 else 0.0})
    return out


def measure(args, device, step):
    return measure_alternating(args, device, [step])[0]


def measure_or_error(args, device, step):
    """A phase PyTorch cannot run (torch 1.13's fused attention under bf16 autocast raises) is reported, not fatal."""
    try:
        return measure(args, device, step)
    except RuntimeError as e:
        return {"error": str(e).splitlines()[0]}


def autocast(device, amp):
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def make_loader(args, image_size):
    from torchvision import datasets, transforms
    transform = transforms.Compose([
        transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3)])
    dataset = datasets.ImageFolder(args.data, transform)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                       num_workers=args.workers, persistent_workers=args.workers > 0)


def endless(loader):
    while True:
        yield from loader


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="JSON file holding vit bench's output (its 'config')")
    parser.add_argument("--impl", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--phases", choices=["train", "inference", "both"], default="both")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window-seconds", type=float, default=2.0)
    parser.add_argument("--data", help="image folder for the pipeline phases")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with open(args.config) as f:
        config = json.load(f)["config"]
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = build_model(config, args.impl).to(device)
    size, classes, batch = config["image_size"], config["num_classes"], args.batch_size
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(classes, (batch,), device=device)
    targets = F.one_hot(labels, classes).float() * 0.9 + 0.1 / classes  # label smoothing 0.1, as vit bench
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def train_step(x, y):
        with autocast(device, args.amp):
            logits = model(x)
        soft_cross_entropy(logits, y).backward()
        optimizer.step()
        optimizer.zero_grad()
        return x.shape[0]

    def inference_step():
        with torch.inference_mode(), autocast(device, args.amp):
            model(images)
        return batch

    out = {"impl": args.impl, "torch": torch.__version__, "config": config, "batch_size": batch, "amp": args.amp,
           "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
           "parameters": sum(p.numel() for p in model.parameters())}
    if args.phases != "train":
        model.eval()
        out["inference"] = measure_or_error(args, device, inference_step)
        if "BFloat16" in out["inference"].get("error", "") and args.impl == "torchvision":
            # torch 1.13's fused attention fast path, which eval mode takes, fails under CPU bf16 autocast. In train
            # mode torchvision's ViT (dropout 0 by default) computes the same function without it: time that,
            # under no_grad, and say so.
            model.train()
            def unfused_inference_step():
                with torch.no_grad(), autocast(device, args.amp):
                    model(images)
                return batch
            failed = out["inference"]["error"]
            out["inference"] = measure_or_error(args, device, unfused_inference_step)
            out["inference"]["note"] = f"without the fused attention fast path, which failed: {failed}"
    if args.phases != "inference":
        model.train()
        out["train"] = measure_or_error(args, device, lambda: train_step(images, targets))
    if args.data:
        batches = endless(make_loader(args, size))
        out["pipeline"] = measure(args, torch.device("cpu"), lambda: next(batches)[0].shape[0])
        if args.phases != "inference":
            def folder_step():
                x, y = next(batches)
                y = F.one_hot(y.remainder(classes), classes).float() * 0.9 + 0.1 / classes
                return train_step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
            out["folder_train"], out["synthetic_beside_folder"] = measure_alternating(
                args, device, [folder_step, lambda: train_step(images, targets)])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
