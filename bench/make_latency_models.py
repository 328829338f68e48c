#!/usr/bin/env python3
"""Models and an image for the single-image classification benchmark (classify_latency.sh).

For each architecture, one randomly initialised torchvision VisionTransformer written twice: as a PyTorch
state dict (model.pt) for the Python side and as a vit weights file (model.safetensors, timm key names, the
same numbers) for `vit classify`; plus a 500x375 JPEG photo-sized test image and the 1000 class names.

usage: make_latency_models.py OUT_DIR
"""
import json
import os
import sys

import torch
from PIL import Image
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from vit_files import TORCHVISION_PREPROCESS, to_timm_keys, vit_metadata, write_safetensors  # noqa: E402

ARCHITECTURES = {
    # timm's vit_tiny_patch16_224 and vit_base_patch16_224, in torchvision's argument names
    "vit_tiny_patch16_224": dict(image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192,
                                 mlp_dim=768, num_classes=1000),
    "vit_base_patch16_224": dict(image_size=224, patch_size=16, num_layers=12, num_heads=12, hidden_dim=768,
                                 mlp_dim=3072, num_classes=1000),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    class_names = [f"class {i}" for i in range(1000)]
    for name, config in ARCHITECTURES.items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        model = VisionTransformer(**config).eval()
        with torch.no_grad():
            for p in model.parameters():  # torchvision zero-initialises the head: random answers are more honest
                p.add_(0.02 * torch.randn_like(p))
            # A decisive head, so that both sides' top-1 agree despite their slightly different resizing.
            model.heads.head.weight.mul_(50)
        torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        write_safetensors(os.path.join(folder, "model.safetensors"), to_timm_keys(model.state_dict()),
                          vit_metadata(config, class_names, TORCHVISION_PREPROCESS))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(class_names) + "\n")
    gradient = torch.linspace(0, 255, 500).repeat(375, 1)
    pixels = torch.stack([gradient, gradient.flip(1), torch.full_like(gradient, 128)], 2).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(os.path.join(out, "photo.jpg"), quality=90)


if __name__ == "__main__":
    main(sys.argv[1])
