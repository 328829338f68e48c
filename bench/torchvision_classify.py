#!/usr/bin/env python3
"""What a Python user writes to classify one image with torchvision: build the model, load its weights,
preprocess as torchvision does, print the top 5. The Python side of classify_latency.sh.

usage: torchvision_classify.py MODEL_DIR LABELS IMAGE
"""
import json
import os
import sys

import torch
from PIL import Image
from torchvision import transforms
from torchvision.models.vision_transformer import VisionTransformer


def main(model_dir, labels_path, image_path):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    model = VisionTransformer(**config)
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pt")))
    model.eval()
    with open(labels_path) as f:
        labels = f.read().splitlines()
    preprocess = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    image = preprocess(Image.open(image_path).convert("RGB")).unsqueeze(0)
    with torch.inference_mode():
        probabilities = model(image).softmax(1)[0]
    top = probabilities.topk(5)
    print(image_path)
    for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        print(f"  {rank}  {labels[i]}  {100 * p:.2f}%")


if __name__ == "__main__":
    main(*sys.argv[1:])
