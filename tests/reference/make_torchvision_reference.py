#!/usr/bin/env python3
"""Reference data from torchvision, an implementation of the Vision Transformer independent of ours.

Writes into OUT_DIR:
  torchvision_vit.safetensors  a randomly initialised torchvision VisionTransformer, its weights renamed to
                               timm's keys, in vit's weights-file format (written here, not by vit's writer)
  reference.safetensors        input images and torchvision's logits for them; position-embedding grids resampled
                               with torch.nn.functional.interpolate as timm's resample_abs_pos_embed does

Run with an interpreter that has torch and torchvision (Debian: /usr/bin/python3 with python3-torchvision).
"""
import argparse
import json
import os
import struct

import torch
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

# Small enough to run in a blink, large enough to exercise several heads, blocks and a class token.
CONFIG = dict(image_size=32, patch_size=8, num_layers=3, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)


def write_safetensors(path, tensors, metadata=None):
    """The safetensors layout: u64 little-endian header length, JSON header, raw little-endian F32 data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, tensor in tensors.items():
        data = tensor.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def to_timm_keys(state_dict):
    """torchvision's VisionTransformer key layout -> timm's."""
    renames = [
        ("conv_proj.", "patch_embed.proj."),
        ("class_token", "cls_token"),
        ("encoder.pos_embedding", "pos_embed"),
        ("encoder.ln.", "norm."),
        ("heads.head.", "head."),
        (".ln_1.", ".norm1."),
        (".ln_2.", ".norm2."),
        (".self_attention.in_proj_weight", ".attn.qkv.weight"),
        (".self_attention.in_proj_bias", ".attn.qkv.bias"),
        (".self_attention.out_proj.", ".attn.proj."),
        (".mlp.0.", ".mlp.fc1."),
        (".mlp.3.", ".mlp.fc2."),
        ("encoder.layers.encoder_layer_", "blocks."),
    ]
    out = {}
    for key, value in state_dict.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    return out


def vit_metadata(num_classes):
    c = CONFIG
    config = dict(image_size=c["image_size"], patch_size=c["patch_size"], in_chans=3, num_classes=num_classes,
                  embed_dim=c["hidden_dim"], depth=c["num_layers"], num_heads=c["num_heads"],
                  mlp_ratio=c["mlp_dim"] / c["hidden_dim"], class_token=True, global_pool="token", fc_norm=False,
                  norm_eps=1e-6, drop_rate=0.0, pos_drop_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0,
                  drop_path_rate=0.0)
    preprocess = dict(interpolation="bilinear", crop_pct=0.875, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    return {"format": "vit-toolkit", "format_version": "1", "config": json.dumps(config),
            "preprocess": json.dumps(preprocess),
            "class_names": json.dumps([f"class {i}" for i in range(num_classes)])}


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

    write_safetensors(os.path.join(args.out_dir, "torchvision_vit.safetensors"),
                      to_timm_keys(model.state_dict()), vit_metadata(CONFIG["num_classes"]))

    pos_embed = torch.randn(1, 1 + 4 * 4, 16)
    write_safetensors(os.path.join(args.out_dir, "reference.safetensors"), {
        "images": images,
        "logits": logits,
        "pos_embed": pos_embed,
        "pos_embed_grid6": resample_like_timm(pos_embed, 6),  # upsampling
        "pos_embed_grid3": resample_like_timm(pos_embed, 3),  # downsampling: antialiasing matters
    })
    print(f"torch {torch.__version__}: wrote reference data to {args.out_dir}")


if __name__ == "__main__":
    main()
