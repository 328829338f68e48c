"""Fixtures for the `vit classify` / `vit eval` tests, with answers known by construction.

A brightness classifier (3 classes: dark, mid, bright) written in Python and saved as TorchScript, once plain
(as torch.jit.script makes it) and once with the vit metadata that `vit export` embeds. Its logits are
-20 * (mean pixel - centre)^2 with centres 0.1, 0.5, 0.9 on the [0, 1] scale, so on uniform images (which stay
uniform through resizing and cropping) they are computed here exactly. The image folder holds uniform grey
images, three of them in the wrong class folder on purpose; expected.json has what the tests should see.

usage: make_classify_fixtures.py OUT_DIR
"""
import json
import os
import struct
import sys
import zlib

import torch
from PIL import Image

CENTRES = [0.1, 0.5, 0.9]
NAMES = ["dark", "mid", "bright"]
# (class folder, file name, grey level): the last of each class is mispredicted on purpose.
IMAGES = [
    ("dark", "d1.png", 25), ("dark", "d2.png", 30), ("dark", "d3.png", 20), ("dark", "d4.png", 235),
    ("mid", "m1.png", 128), ("mid", "m2, copy.png", 120), ("mid", "m3.png", 40),
    ("bright", "b1.png", 230), ("bright", "b2.png", 225), ("bright", "sub/b3.png", 140),
]


class Brightness(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("centres", torch.tensor(CENTRES))

    def forward(self, x):
        brightness = x.mean(dim=(1, 2, 3))  # (B,)
        return -20.0 * (brightness[:, None] - self.centres[None, :]) ** 2  # (B, 3)


class RgbOnly(torch.nn.Module):
    """Needs three channels: fails on grayscale input, for the error path."""

    def forward(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), x[:, 1].mean((1, 2)), x[:, 2].mean((1, 2))], 1)


def logits_of(level):
    b = torch.tensor([level / 255.0], dtype=torch.float32)
    return Brightness()(b.view(1, 1, 1, 1))[0]


def png_header_only(width, height):
    """A PNG whose header declares width x height but which holds no pixels: for the pixel-limit guard."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def main(out):
    os.makedirs(out, exist_ok=True)
    module = torch.jit.script(Brightness().eval())
    module.save(os.path.join(out, "brightness.pt"))
    torch.jit.script(RgbOnly()).save(os.path.join(out, "rgb_only.pt"))
    metadata = {
        "format": "vit-toolkit",
        "format_version": 1,
        "config": {"image_size": 16, "patch_size": 8, "in_chans": 3, "num_classes": 3, "embed_dim": 32,
                   "depth": 1, "num_heads": 2, "mlp_ratio": 2.0, "class_token": True, "global_pool": "token",
                   "fc_norm": False, "norm_eps": 1e-6, "drop_rate": 0.0, "pos_drop_rate": 0.0,
                   "proj_drop_rate": 0.0, "attn_drop_rate": 0.0, "drop_path_rate": 0.0},
        "preprocess": {"interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "class_names": NAMES,
    }
    torch.jit.save(module, os.path.join(out, "brightness_vit.pt"), _extra_files={"vit.json": json.dumps(metadata)})
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")

    expected = {"images": []}
    for folder, name, level in IMAGES:
        path = os.path.join(out, "data", folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.new("RGB", (24, 20), (level, level, level)).save(path)
        logits = logits_of(level)
        expected["images"].append({"path": path, "true": NAMES.index(folder), "logits": logits.tolist(),
                                   "predicted": int(logits.argmax())})
    # Hand-made expectations for the folder above (rows: true class, columns: predicted).
    expected["confusion"] = [[3, 0, 1], [1, 2, 0], [0, 1, 2]]
    expected["top1"] = 0.7
    all_logits = torch.tensor([image["logits"] for image in expected["images"]])
    labels = torch.tensor([image["true"] for image in expected["images"]])
    expected["loss"] = torch.nn.functional.cross_entropy(all_logits, labels).item()
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    open(os.path.join(bad, "empty.png"), "wb").close()
    with open(os.path.join(bad, "text.png"), "w") as f:
        f.write("not an image\n")
    with open(os.path.join(out, "data", "dark", "d1.png"), "rb") as f:
        head = f.read(40)
    with open(os.path.join(bad, "truncated.png"), "wb") as f:
        f.write(head)
    with open(os.path.join(bad, "huge.png"), "wb") as f:
        f.write(png_header_only(30000, 30000))
    os.makedirs(os.path.join(out, "empty_folder"), exist_ok=True)


if __name__ == "__main__":
    main(sys.argv[1])
