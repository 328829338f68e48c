#!/usr/bin/env python3
"""Reference data for the members of timm's Vision Transformer family beyond the plain ViT.

timm cannot be installed here, so this is an independent, deliberately plain re-implementation of timm's
VisionTransformer forward pass (timm/models/vision_transformer.py) with torch's functional ops only: class and
register tokens, position embeddings with or without the prefix tokens (no_embed_class), norm_pre (pre_norm, and
then no patch-embedding bias), qkv without bias, layer scale (ls1/ls2.gamma), the activations timm's act_layer
names, the token/avg/max/avgmax pools and fc_norm. Nothing here reads vit's code.

Writes OUT_DIR/<case>/ per model: model.safetensors (random weights in timm's names), config.json (timm's hub
format with the model_args the tensor shapes cannot tell) and reference.safetensors (images, logits, and the
parameter count as a one-element tensor); for the hf_* case also OUT_DIR/<case>_hf/, the same weights as a
Hugging Face ViTForImageClassification folder.

Run with an interpreter that has torch (Debian: /usr/bin/python3 with python3-torch).
"""
import argparse
import json
import math
import os

import torch
import torch.nn.functional as F

from vit_files import to_hf_keys, write_safetensors

BASE = dict(img_size=32, patch_size=8, in_chans=3, num_classes=7, embed_dim=48, depth=2, num_heads=4, mlp_ratio=2.0,
            class_token=True, global_pool="token", fc_norm=False, reg_tokens=0, no_embed_class=False,
            init_values=None, pre_norm=False, qkv_bias=True, act_layer="gelu")

# One model per option, several options per model; each name says what it exercises.
CASES = {
    "gap_no_class_token": dict(class_token=False, global_pool="avg", fc_norm=False),
    "registers_layer_scale_no_embed_class": dict(reg_tokens=4, init_values=1e-5, no_embed_class=True),
    "pre_norm_quick_gelu": dict(pre_norm=True, act_layer="quick_gelu"),
    "max_pool_fc_norm_no_qkv_bias_gelu_tanh": dict(global_pool="max", fc_norm=True, qkv_bias=False,
                                                   act_layer="gelu_tanh"),
    "avgmax_registers_silu": dict(global_pool="avgmax", fc_norm=True, reg_tokens=2, act_layer="silu"),
    # A plain ViT as Hugging Face's ViTForImageClassification can hold it, written in both layouts.
    "hf_quick_gelu_no_qkv_bias": dict(act_layer="quick_gelu", qkv_bias=False),
}

# Hugging Face's names (transformers' ACT2FN) for the activations.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "quick_gelu": "quick_gelu", "silu": "silu"}

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "silu": F.silu,
}


def random_weights(c, generator):
    """timm's parameter names and shapes for config c, with values spread enough to make the logits differ."""
    d, hidden = c["embed_dim"], round(c["embed_dim"] * c["mlp_ratio"])
    grid = c["img_size"] // c["patch_size"]
    prefix = int(c["class_token"]) + c["reg_tokens"]
    shapes = {"patch_embed.proj.weight": (d, c["in_chans"], c["patch_size"], c["patch_size"])}
    if not c["pre_norm"]:
        shapes["patch_embed.proj.bias"] = (d,)
    if c["class_token"]:
        shapes["cls_token"] = (1, 1, d)
    if c["reg_tokens"]:
        shapes["reg_token"] = (1, c["reg_tokens"], d)
    shapes["pos_embed"] = (1, grid * grid + (0 if c["no_embed_class"] else prefix), d)
    if c["pre_norm"]:
        shapes.update({"norm_pre.weight": (d,), "norm_pre.bias": (d,)})
    for i in range(c["depth"]):
        b = f"blocks.{i}."
        shapes.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                       b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,), b + "norm2.weight": (d,),
                       b + "norm2.bias": (d,), b + "mlp.fc1.weight": (hidden, d), b + "mlp.fc1.bias": (hidden,),
                       b + "mlp.fc2.weight": (d, hidden), b + "mlp.fc2.bias": (d,)})
        if c["qkv_bias"]:
            shapes[b + "attn.qkv.bias"] = (3 * d,)
        if c["init_values"]:
            shapes.update({b + "ls1.gamma": (d,), b + "ls2.gamma": (d,)})
    norm = "fc_norm" if c["fc_norm"] else "norm"
    shapes.update({norm + ".weight": (d,), norm + ".bias": (d,), "head.weight": (c["num_classes"], d),
                   "head.bias": (c["num_classes"],)})
    weights = {}
    for name, shape in shapes.items():
        t = torch.randn(shape, generator=generator)
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.startswith(("norm", "fc_norm")) \
                and name.endswith(".weight"):
            t = 1.0 + 0.2 * t  # LayerNorm scales around 1
        elif name.endswith(".gamma"):
            t = 0.5 + 0.3 * t.abs()  # trained layer scales are far from their 1e-5 start
        elif name.endswith(".weight") and len(shape) >= 2:
            t = t / math.sqrt(shape[1] if len(shape) == 2 else shape[1] * shape[2] * shape[3])
        else:
            t = 0.2 * t
        weights[name] = t
    return weights


def layer_norm(x, w, name, eps=1e-6):
    return F.layer_norm(x, (x.shape[-1],), w[name + ".weight"], w[name + ".bias"], eps)


def forward(c, w, images):
    """timm's VisionTransformer.forward in eval mode, written out."""
    x = F.conv2d(images, w["patch_embed.proj.weight"], w.get("patch_embed.proj.bias"), stride=c["patch_size"])
    x = x.flatten(2).transpose(1, 2)  # (B, N, D)
    batch = x.shape[0]
    prefix = []
    if c["class_token"]:
        prefix.append(w["cls_token"].expand(batch, -1, -1))
    if c["reg_tokens"]:
        prefix.append(w["reg_token"].expand(batch, -1, -1))
    if c["no_embed_class"]:
        x = torch.cat(prefix + [x + w["pos_embed"]], dim=1)
    else:
        x = torch.cat(prefix + [x], dim=1) + w["pos_embed"]
    if c["pre_norm"]:
        x = layer_norm(x, w, "norm_pre")
    heads, d = c["num_heads"], c["embed_dim"]
    act = ACTIVATIONS[c["act_layer"]]
    for i in range(c["depth"]):
        b = f"blocks.{i}."
        h = layer_norm(x, w, b + "norm1")
        qkv = F.linear(h, w[b + "attn.qkv.weight"], w.get(b + "attn.qkv.bias"))
        q, k, v = qkv.reshape(batch, -1, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
        h = F.linear((attn @ v).transpose(1, 2).reshape(batch, -1, d), w[b + "attn.proj.weight"],
                     w[b + "attn.proj.bias"])
        if c["init_values"]:
            h = h * w[b + "ls1.gamma"]
        x = x + h
        h = layer_norm(x, w, b + "norm2")
        h = F.linear(act(F.linear(h, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"])), w[b + "mlp.fc2.weight"],
                     w[b + "mlp.fc2.bias"])
        if c["init_values"]:
            h = h * w[b + "ls2.gamma"]
        x = x + h
    if not c["fc_norm"]:
        x = layer_norm(x, w, "norm")
    n_prefix = int(c["class_token"]) + c["reg_tokens"]
    patches = x[:, n_prefix:]
    pooled = {"token": lambda: x[:, 0], "avg": lambda: patches.mean(1), "max": lambda: patches.amax(1),
              "avgmax": lambda: 0.5 * (patches.mean(1) + patches.amax(1))}[c["global_pool"]]()
    if c["fc_norm"]:
        pooled = layer_norm(pooled, w, "fc_norm")
    return F.linear(pooled, w["head.weight"], w["head.bias"])


def hub_config(c):
    """config.json as timm's push_to_hub writes it; model_args hold what the tensor shapes cannot tell."""
    model_args = {"num_heads": c["num_heads"], "act_layer": c["act_layer"], "init_values": c["init_values"],
                  "no_embed_class": c["no_embed_class"]}
    names = [f"class {i}" for i in range(c["num_classes"])]
    return {"architecture": "vit_family_test", "num_classes": c["num_classes"], "num_features": c["embed_dim"],
            "global_pool": c["global_pool"], "model_args": model_args,
            "pretrained_cfg": {"input_size": [3, c["img_size"], c["img_size"]], "interpolation": "bicubic",
                               "crop_pct": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                               "label_names": names}}


def hf_config(c):
    """config.json of ViTForImageClassification for a plain config c."""
    return {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": c["embed_dim"],
            "num_hidden_layers": c["depth"], "num_attention_heads": c["num_heads"],
            "intermediate_size": round(c["embed_dim"] * c["mlp_ratio"]), "hidden_act": HF_ACTIVATIONS[c["act_layer"]],
            "layer_norm_eps": 1e-6, "image_size": c["img_size"], "patch_size": c["patch_size"],
            "num_channels": c["in_chans"], "qkv_bias": c["qkv_bias"],
            "id2label": {str(i): f"class {i}" for i in range(c["num_classes"])}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    out_dir = parser.parse_args().out_dir
    generator = torch.Generator().manual_seed(14)
    for name, options in CASES.items():
        c = dict(BASE, **options)
        weights = random_weights(c, generator)
        images = torch.randn(3, c["in_chans"], c["img_size"], c["img_size"], generator=generator)
        with torch.no_grad():
            logits = forward(c, weights, images)
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, "model.safetensors"), weights)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(hub_config(c), f, indent=2)
        if name.startswith("hf_"):
            hf_folder = folder + "_hf"
            os.makedirs(hf_folder, exist_ok=True)
            write_safetensors(os.path.join(hf_folder, "model.safetensors"), to_hf_keys(weights))
            with open(os.path.join(hf_folder, "config.json"), "w") as f:
                json.dump(hf_config(c), f, indent=2)
        parameters = torch.tensor([float(sum(t.numel() for t in weights.values()))])
        write_safetensors(os.path.join(folder, "reference.safetensors"),
                          {"images": images, "logits": logits, "parameters": parameters})


if __name__ == "__main__":
    main()
