#!/usr/bin/env python3
"""Writes an image folder for the data-pipeline benchmark: CLASSES class folders of 500x375 JPEGs (quality 90),
the size of a typical photo in ImageNet-style datasets. The pictures are smooth random colour fields with
noise, so they compress like photographs rather than like flat colour.

usage: make_jpeg_folder.py OUT_DIR [--images 512] [--classes 4]
"""
import argparse
import os

import numpy as np
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for i in range(args.images):
        folder = os.path.join(args.out, f"class{i % args.classes}")
        os.makedirs(folder, exist_ok=True)
        coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)  # upsampled: smooth colour regions
        field = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), dtype=np.float32)
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


if __name__ == "__main__":
    main()
