#!/usr/bin/env python3
"""A vit weights file with random weights for a plain ViT (block_fn block, mlp, layernorm), for benchmarks that
need a model file rather than a preset (onnx_runtime.sh exports it to ONNX).

usage: make_random_weights.py INFO_JSON OUT_FILE [KEY=JSON ...]
  INFO_JSON  what `vit info MODEL --format json` prints for a preset or timm architecture
  KEY=JSON   config overrides, e.g. global_pool='"avg"' fc_norm=true
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from vit_files import write_safetensors  # noqa: E402


def tensors_for(c):
    """timm's parameter names and shapes of a plain ViT config, filled with small random values."""
    d, hidden = c["embed_dim"], int(c["embed_dim"] * c["mlp_ratio"] + 1e-6)
    tokens = (c["image_size"] // c["patch_size"]) ** 2 + (1 if c["class_token"] else 0)
    shapes = {"patch_embed.proj.weight": (d, c["in_chans"], c["patch_size"], c["patch_size"]),
              "patch_embed.proj.bias": (d,), "pos_embed": (1, tokens, d)}
    if c["class_token"]:
        shapes["cls_token"] = (1, 1, d)
    for i in range(c["depth"]):
        for name, shape in [("norm1.weight", (d,)), ("norm1.bias", (d,)), ("attn.qkv.weight", (3 * d, d)),
                            ("attn.qkv.bias", (3 * d,)), ("attn.proj.weight", (d, d)), ("attn.proj.bias", (d,)),
                            ("norm2.weight", (d,)), ("norm2.bias", (d,)), ("mlp.fc1.weight", (hidden, d)),
                            ("mlp.fc1.bias", (hidden,)), ("mlp.fc2.weight", (d, hidden)), ("mlp.fc2.bias", (d,))]:
            shapes[f"blocks.{i}.{name}"] = shape
    final = "fc_norm" if c["fc_norm"] else "norm"
    shapes.update({f"{final}.weight": (d,), f"{final}.bias": (d,)})
    if c["num_classes"] > 0:  # a feature model (num_classes 0) has no head
        shapes.update({"head.weight": (c["num_classes"], d), "head.bias": (c["num_classes"],)})
    generator = torch.Generator().manual_seed(0)
    return {name: torch.randn(shape, generator=generator) * 0.02 for name, shape in shapes.items()}


def main(info_path, out, overrides):
    info = json.load(open(info_path))
    config = info["config"]
    for item in overrides:
        key, value = item.split("=", 1)
        config[key] = json.loads(value)
    plain = dict(block_fn="block", mlp_layer="mlp", norm_layer="layernorm", reg_tokens=0, pos_embed="learn",
                 init_values=0.0, qkv_bias=True, proj_bias=True, pre_norm=False, embed_norm=False, qk_norm=False,
                 dist_token="none", no_embed_class=False, scale_attn_norm=False, scale_mlp_norm=False,
                 final_norm=True)
    for key, value in plain.items():
        if config.get(key, value) != value:
            sys.exit(f"make_random_weights.py: only plain ViTs: {key} is {config[key]}")
    if config["global_pool"] not in ("token", "avg", "max", "avgmax"):
        sys.exit(f"make_random_weights.py: only pools without parameters: global_pool is {config['global_pool']}")
    names = info["class_names"]
    if len(names) != config["num_classes"]:  # num_classes overridden
        names = [str(i) for i in range(config["num_classes"])]
    metadata = {"format": "vit-toolkit", "format_version": "1", "config": json.dumps(config),
                "preprocess": json.dumps(info["preprocess"]), "class_names": json.dumps(names)}
    write_safetensors(out, tensors_for(config), metadata)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
