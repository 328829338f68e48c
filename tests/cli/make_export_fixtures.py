"""Fixtures for the `vit export` tests: a torchvision ViT with random weights written as a vit weights file by
Python (not by vit), and seven 32x32 RGB images, so that preprocessing is only the normalisation and Python
can reproduce vit's input exactly.

usage: make_export_fixtures.py OUT_DIR
"""
import os
import sys

import torch
from PIL import Image
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from vit_files import to_timm_keys, vit_metadata, write_safetensors  # noqa: E402

CONFIG = dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=5)
PREPROCESS = dict(interpolation="bilinear", crop_pct=1.0, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def main(out):
    torch.manual_seed(0)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    model = VisionTransformer(**CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if ".ln" in name and name.endswith("weight")
                    else 0.1 * torch.randn_like(p))
    names = ["cat", "dog", "bird", "fish", "frog"]
    write_safetensors(os.path.join(out, "model.safetensors"), to_timm_keys(model.state_dict()),
                      vit_metadata(CONFIG, names, PREPROCESS))
    for i in range(7):
        pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(os.path.join(out, "images", f"{i}.png"))


if __name__ == "__main__":
    main(sys.argv[1])
