#!/usr/bin/env python3
"""Python's side of the export checks: reads what the hidden [export-files] test wrote (a TorchScript export,
a timm folder and a Hugging Face folder of one small model, plus inputs and the C++ model's logits) with the
libraries users will use, and compares logits.

  torch.jit.load                        always (Debian's torch 1.13 here, PyTorch 2.x on the GPU machine)
  timm.create_model(..., pretrained)    when timm is installed (the GPU machine)
  ViTForImageClassification             when transformers is installed

usage: check_exports.py DIR
"""
import json
import os
import sys

import torch

from vit_files import read_safetensors


def close(name, got, expected, tolerance):
    diff = (got - expected).abs().max().item()
    status = "ok  " if diff <= tolerance else "FAIL"
    print(f"{status} {name}: max abs diff {diff:.2e} (tolerance {tolerance:g})")
    return diff <= tolerance


def main(folder):
    reference, _ = read_safetensors(os.path.join(folder, "reference.safetensors"))
    images, logits = reference["images"], reference["logits"]
    print(f"torch {torch.__version__}")
    ok = True
    with torch.no_grad():
        module = torch.jit.load(os.path.join(folder, "model.pt"))
        ok &= close("torch.jit.load, batch of 7", module(images), logits, 1e-5)
        ok &= close("torch.jit.load, batch of 1", module(images[:1]), logits[:1], 1e-5)
        try:
            import timm
        except ImportError:
            print("skip timm: not installed")
        else:
            timm_dir = os.path.join(folder, "timm")
            with open(os.path.join(timm_dir, "config.json")) as f:
                config = json.load(f)
            model = timm.create_model(config["architecture"], pretrained=True,
                                      pretrained_cfg_overlay=dict(file=os.path.join(timm_dir, "model.safetensors")),
                                      **config["model_args"]).eval()
            ok &= close(f"timm {timm.__version__} create_model", model(images), logits, 1e-4)
        try:
            from transformers import ViTForImageClassification
        except ImportError:
            print("skip transformers: not installed")
        else:
            model = ViTForImageClassification.from_pretrained(os.path.join(folder, "hf")).eval()
            ok &= close("transformers ViTForImageClassification", model(pixel_values=images).logits, logits, 1e-4)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
