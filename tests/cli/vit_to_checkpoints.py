"""Rewrites a vit weights file as a timm hub folder and a Hugging Face ViT folder, in Python (not with vit's own
writer), for the CLI tests of those layouts.

usage: vit_to_checkpoints.py VIT_WEIGHTS OUT_DIR   (writes OUT_DIR/timm and OUT_DIR/hf)
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from vit_files import read_safetensors, to_hf_keys, write_safetensors  # noqa: E402


def main(weights, out):
    tensors, metadata = read_safetensors(weights)
    config = json.loads(metadata["config"])
    preprocess = json.loads(metadata["preprocess"])
    names = json.loads(metadata["class_names"])
    timm_config = {"architecture": "vit_base_patch16_224", "num_classes": len(names),
                   "model_args": {"num_heads": config["num_heads"]},
                   "pretrained_cfg": dict(preprocess, label_names=names)}
    hf_config = {"model_type": "vit", "hidden_size": config["embed_dim"], "num_hidden_layers": config["depth"],
                 "num_attention_heads": config["num_heads"],
                 "intermediate_size": int(config["embed_dim"] * config["mlp_ratio"]),
                 "layer_norm_eps": config["norm_eps"], "image_size": config["image_size"],
                 "patch_size": config["patch_size"], "num_channels": config["in_chans"],
                 "id2label": {str(i): name for i, name in enumerate(names)}}
    hf_preprocessor = {"image_mean": preprocess["mean"], "image_std": preprocess["std"],
                       "resample": 3 if preprocess["interpolation"] == "bicubic" else 2}
    for layout, state, files in (("timm", tensors, {"config.json": timm_config}),
                                 ("hf", to_hf_keys(tensors),
                                  {"config.json": hf_config, "preprocessor_config.json": hf_preprocessor})):
        folder = os.path.join(out, layout)
        os.makedirs(folder, exist_ok=True)
        write_safetensors(os.path.join(folder, "model.safetensors"), state)
        for name, content in files.items():
            with open(os.path.join(folder, name), "w") as f:
                json.dump(content, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
