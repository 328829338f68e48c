"""Writes a small Fashion-MNIST-shaped data set as gzipped IDX files: ten classes, 8 training and 3 test images
each, 28x28, brighter for higher labels (so that a tiny model learns something in a few steps). SCALE multiplies
the image counts (default 1), for conversions that take long enough to interrupt.

usage: make_idx_dataset.py OUT_DIR [SCALE]
"""
import gzip
import os
import random
import struct
import sys

out = sys.argv[1]
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
os.makedirs(out)
random.seed(0)


def write(name, magic, dims, payload):
    with gzip.open(os.path.join(out, name + ".gz"), "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)


for prefix, per_class in (("train", 8 * scale), ("t10k", 3 * scale)):
    labels = [c for c in range(10) for _ in range(per_class)]
    pixels = bytes(min(255, 20 * l + random.randint(0, 40)) for l in labels for _ in range(28 * 28))
    write(prefix + "-images-idx3-ubyte", 0x803, (len(labels), 28, 28), pixels)
    write(prefix + "-labels-idx1-ubyte", 0x801, (len(labels),), bytes(labels))
