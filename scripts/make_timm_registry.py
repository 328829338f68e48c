#!/usr/bin/env python3
"""Regenerates models/timm_architectures.json, vit's copy of timm's Vision Transformer registry.

timm registers its Vision Transformer architectures in timm/models/vision_transformer.py and timm/models/deit.py:
one function per name that builds a VisionTransformer from a handful of constructor arguments, plus a table of
pretrained configurations whose first (default) entry fixes the input size, class count and preprocessing. This
script reads those two files from a timm checkout without importing timm (which needs a newer torch than
Debian's): it evaluates each function's `model_args = dict(...)` and the pretrained table with small stand-ins
for timm's layer classes, and writes one JSON record per name:

  {"name": ..., "pretrained_tag": ..., "args": {timm's constructor arguments}, "preprocess": {...}}

Arguments keep timm's names and JSON values. Arguments that are classes in timm become vit's names for them:
norm_layer / embed_norm_layer "layernorm" | "rmsnorm" with "norm_eps" when the eps is not timm's 1e-6,
mlp_layer "swiglu" | "swiglu_packed", block_fn "res_post" | "parallel_scaling" | "parallel_things" |
"diff_parallel_scaling", attn_layer as timm's string, act_layer as timm's string; DeiT's distilled models get
"distilled": true (timm's VisionTransformerDistilled).

Usage: make_timm_registry.py TIMM [OUT_JSON]
  TIMM: a timm checkout, or a clone's git directory (its HEAD is read); OUT_JSON defaults to
  models/timm_architectures.json.
"""
import ast
import json
import os
import subprocess
import sys
from collections import OrderedDict


class Layer:
    """A stand-in for one of timm's layer classes; partial(Layer, eps=...) keeps the eps."""

    def __init__(self, name, **kwargs):
        self.name, self.kwargs = name, kwargs

    def __call__(self, *args, **kwargs):  # the stand-ins are never instantiated
        raise TypeError(self.name)


def partial(layer, **kwargs):
    return Layer(layer.name, **dict(layer.kwargs, **kwargs))


class Nn:
    SiLU = Layer("silu")
    GELU = Layer("gelu")
    LayerNorm = Layer("layernorm")


STAND_INS = {
    "partial": partial, "nn": Nn, "LayerNorm": Layer("layernorm"), "RmsNorm": Layer("rmsnorm"),
    "SwiGLU": Layer("swiglu"), "SwiGLUPacked": Layer("swiglu_packed"), "ResPostBlock": Layer("res_post"),
    "ParallelScalingBlock": Layer("parallel_scaling"), "ParallelThingsBlock": Layer("parallel_things"),
    "DiffParallelScalingBlock": Layer("diff_parallel_scaling"),
}

CONSTANTS = {
    "IMAGENET_DEFAULT_MEAN": (0.485, 0.456, 0.406), "IMAGENET_DEFAULT_STD": (0.229, 0.224, 0.225),
    "IMAGENET_INCEPTION_MEAN": (0.5, 0.5, 0.5), "IMAGENET_INCEPTION_STD": (0.5, 0.5, 0.5),
    "OPENAI_CLIP_MEAN": (0.48145466, 0.4578275, 0.40821073), "OPENAI_CLIP_STD": (0.26862954, 0.26130258, 0.27577711),
}


# timm's PretrainedCfg defaults, for an architecture without a pretrained cfg of its own.
PRETRAINED_CFG_DEFAULTS = dict(input_size=(3, 224, 224), fixed_input_size=False, interpolation="bicubic",
                               crop_pct=0.875, mean=CONSTANTS["IMAGENET_DEFAULT_MEAN"],
                               std=CONSTANTS["IMAGENET_DEFAULT_STD"], num_classes=1000)


def json_args(args):
    """timm's constructor arguments with classes replaced by vit's names for them."""
    out = OrderedDict()
    for key, value in args.items():
        if isinstance(value, Layer):
            out[key] = value.name
            if key in ("norm_layer", "embed_norm_layer") and value.kwargs.get("eps", 1e-6) != 1e-6:
                eps_key = "norm_eps" if key == "norm_layer" else "embed_norm_eps"
                out[eps_key] = value.kwargs["eps"]
            elif value.kwargs and key not in ("norm_layer", "embed_norm_layer"):
                raise ValueError(f"{key}: unexpected partial arguments {value.kwargs}")
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


def pretrained_cfgs(tree, path):
    """{architecture: its default pretrained cfg (timm's rule: untagged or '*' tags first, then weights)}."""
    env = dict(CONSTANTS, Dict=dict, Any=object)
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_cfg"]
    nodes += [n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "default_cfgs"]
    defaults = OrderedDict()

    def generate_default_cfgs(cfgs):
        for key, cfg in cfgs.items():
            arch, _, tag = key.partition(".")
            has_weights = bool(cfg.get("url") or cfg.get("hf_hub_id") or cfg.get("file"))
            entry = defaults.setdefault(arch, {"tags": [], "priority": False, "pretrained": False})
            priority = (has_weights and not tag) or (tag.endswith("*") and not entry["priority"])
            record = (tag.strip("*"), cfg)
            if priority:
                entry["tags"].insert(0, record)
                entry["priority"] = True
            elif has_weights and not entry["pretrained"]:
                entry["tags"].insert(0, record)
            else:
                entry["tags"].append(record)
            entry["pretrained"] = entry["pretrained"] or has_weights
        return cfgs

    env["generate_default_cfgs"] = generate_default_cfgs
    module = ast.Module(body=nodes, type_ignores=[])
    exec(compile(module, path, "exec"), env)
    if not defaults:  # vision_transformer.py assigns the dict first and calls generate_default_cfgs after
        generate_default_cfgs(env["default_cfgs"])
    return {arch: entry["tags"][0] for arch, entry in defaults.items()}


def registered(tree, path, distilled_prefix=None):
    """[(name, model_args)] for every @register_model function, in source order."""
    out = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and any(getattr(d, "id", "") == "register_model"
                                                          for d in node.decorator_list)):
            continue
        args = None
        distilled = False
        for statement in ast.walk(node):
            if isinstance(statement, ast.Assign) and getattr(statement.targets[0], "id", "") == "model_args":
                args = eval(compile(ast.Expression(statement.value), path, "eval"), dict(STAND_INS, dict=dict))
            if isinstance(statement, ast.Call) and getattr(statement.func, "id", "").startswith("_create"):
                for keyword in statement.keywords:
                    if keyword.arg == "distilled":
                        distilled = ast.literal_eval(keyword.value)
                    elif keyword.arg not in (None, "pretrained"):
                        raise ValueError(f"{node.name}: unexpected argument {keyword.arg} to {statement.func.id}")
        if args is None:
            raise ValueError(f"{node.name}: no model_args")
        if distilled:
            args["distilled"] = True
        out.append((node.name, args))
    return out


def git(timm, *args):
    return subprocess.run(["git", "--git-dir", timm, *args] if not os.path.isdir(os.path.join(timm, "timm"))
                          else ["git", "-C", timm, *args], capture_output=True, text=True, check=True).stdout


def read_source(timm, relative):
    path = os.path.join(timm, relative)
    return open(path).read() if os.path.exists(path) else git(timm, "show", "HEAD:" + relative)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    timm = sys.argv[1]
    out_path = sys.argv[2] if len(sys.argv) == 3 else os.path.join(os.path.dirname(__file__), "..", "models",
                                                                     "timm_architectures.json")
    records = []
    for relative in ("timm/models/vision_transformer.py", "timm/models/deit.py"):
        path = os.path.join(timm, relative)
        tree = ast.parse(read_source(timm, relative), path)
        cfgs = pretrained_cfgs(tree, path)
        for name, args in registered(tree, path):
            tag, cfg = cfgs.get(name, ("", {}))  # no pretrained cfg: timm's PretrainedCfg defaults
            cfg = dict(PRETRAINED_CFG_DEFAULTS, **cfg)
            channels, height, width = cfg["input_size"]
            args = json_args(args)
            if "img_size" not in args:  # timm passes the cfg's size only for a fixed input size
                args["img_size"] = (height if height == width else [height, width]) if cfg["fixed_input_size"] else 224
            args.setdefault("in_chans", channels)
            args.setdefault("num_classes", cfg["num_classes"])
            if "global_pool" not in args and cfg.get("global_pool"):
                args["global_pool"] = cfg["global_pool"]
            records.append(OrderedDict(
                name=name, pretrained_tag=tag, args=args,
                preprocess=OrderedDict(interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"],
                                       mean=list(cfg["mean"]),
                                       std=list(cfg["std"]))))
    try:
        commit = git(timm, "rev-parse", "HEAD").strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    with open(out_path + ".tmp", "w") as f:
        f.write('{"source": "timm ' + commit + '",\n "architectures": [\n')
        f.write(",\n".join("  " + json.dumps(r) for r in records))
        f.write("\n]}\n")
    os.replace(out_path + ".tmp", out_path)
    print(f"{len(records)} architectures -> {out_path}")


if __name__ == "__main__":
    main()
