#!/usr/bin/env python3
"""Reference data from torchvision, an implementation of the Vision Transformer independent of ours.

Writes into OUT_DIR:
  torchvision_vit.safetensors  a randomly initialised torchvision VisionTransformer, its weights renamed to
                               timm's keys, in vit's weights-file format (written here, not by vit's writer)
  timm/, hf/                   the same weights as a timm hub folder (model.safetensors + config.json) and as a
                               Hugging Face ViTForImageClassification folder (q, k, v apart)
  timm_f16/, hf_bf16/          the same, stored as F16 and BF16
  reference.safetensors        input images and torchvision's logits for them (also with the weights rounded to
                               F16 and BF16); position-embedding grids resampled with
                               torch.nn.functional.interpolate as timm's resample_abs_pos_embed does

Run with an interpreter that has torch and torchvision (Debian: /usr/bin/python3 with python3-torchvision).
"""
import argparse
import copy
import json
import os

import torch
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

from vit_files import (TORCHVISION_PREPROCESS, hf_vit_config, timm_hub_config, to_hf_keys, to_timm_keys, vit_metadata,
                       write_safetensors)

# Small enough to run in a blink, large enough to exercise several heads, blocks and a class token.
CONFIG = dict(image_size=32, patch_size=8, num_layers=3, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)


def resample_like_timm(pos_embed, new_grid, prefix=1):
    """timm's resample_abs_pos_embed: bicubic with antialiasing on the patch grid, prefix tokens kept."""
    old_grid = int((pos_embed.shape[1] - prefix) ** 0.5)
    grid = pos_embed[:, prefix:].reshape(1, old_grid, old_grid, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, -1)
    return torch.cat([pos_embed[:, :prefix], grid], dim=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(0)

    model = VisionTransformer(**CONFIG).eval()
    with torch.no_grad():
        # torchvision zero-initialises the head and class token; random values everywhere test every weight.
        for name, p in model.named_parameters():
            if ".ln" in name and name.endswith("weight"):  # LayerNorm scales stay near 1
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
        images = torch.randn(4, 3, CONFIG["image_size"], CONFIG["image_size"])
        logits = model(images)

    names = [f"class {i}" for i in range(CONFIG["num_classes"])]
    timm_state = to_timm_keys(model.state_dict())
    write_safetensors(os.path.join(args.out_dir, "torchvision_vit.safetensors"), timm_state,
                      vit_metadata(CONFIG, names, TORCHVISION_PREPROCESS))

    def write_folder(name, tensors, config, dtype=torch.float32):
        folder = os.path.join(args.out_dir, name)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype=dtype)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=1)

    timm_config = timm_hub_config(CONFIG, names, TORCHVISION_PREPROCESS)
    hf_config = hf_vit_config(CONFIG, names, layer_norm_eps=1e-6)  # torchvision's epsilon, for equal logits
    write_folder("timm", timm_state, timm_config)
    write_folder("hf", to_hf_keys(timm_state), hf_config)
    write_folder("timm_f16", timm_state, timm_config, torch.float16)
    write_folder("hf_bf16", to_hf_keys(timm_state), hf_config, torch.bfloat16)

    def logits_with_weights_rounded_to(dtype):
        rounded = copy.deepcopy(model)
        with torch.no_grad():
            for p in rounded.parameters():
                p.copy_(p.to(dtype).to(torch.float32))
            return rounded(images)

    pos_embed = torch.randn(1, 1 + 4 * 4, 16)
    write_safetensors(os.path.join(args.out_dir, "reference.safetensors"), {
        "images": images,
        "logits": logits,
        "logits_f16_weights": logits_with_weights_rounded_to(torch.float16),
        "logits_bf16_weights": logits_with_weights_rounded_to(torch.bfloat16),
        "pos_embed": pos_embed,
        "pos_embed_grid6": resample_like_timm(pos_embed, 6),  # upsampling
        "pos_embed_grid3": resample_like_timm(pos_embed, 3),  # downsampling: antialiasing matters
    })
    print(f"torch {torch.__version__}: wrote reference data to {args.out_dir}")


if __name__ == "__main__":
    main()
