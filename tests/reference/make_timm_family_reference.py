#!/usr/bin/env python3
"""Reference data for timm's Vision Transformer family, from an independent re-implementation of timm.

timm cannot be installed here (it needs a newer torch than Debian's), so this is a deliberately plain, functional
re-implementation of timm's VisionTransformer in eval mode (timm/models/vision_transformer.py, deit.py and the
layers they use), written with torch's functional ops only. Nothing here reads vit's code.

What it covers, by timm's constructor argument names: class_token, reg_tokens, no_embed_class, pre_norm (norm_pre,
then no patch-embedding bias), final_norm, fc_norm, global_pool token/avg/max/avgmax/map (AttentionPoolLatent),
pool_include_prefix, qkv_bias, proj_bias, qk_norm, scale_attn_norm, scale_mlp_norm, init_values (LayerScale),
norm_layer layernorm/rmsnorm with its eps, embed_norm_layer, act_layer gelu/gelu_tanh/quick_gelu/silu, mlp_layer
mlp/swiglu/swiglu_packed, block_fn block/res_post/parallel_things/parallel_scaling, DeiT's distilled models and
dynamic_img_size (position embeddings resampled to another input size). Beside it, the same way, transformers'
ViT, DeiT and DINOv2 image classifiers in eval mode (modeling_vit.py, modeling_deit.py, modeling_dinov2.py), on
their own tensor names: hf_parameter_shapes(h) and hf_forward(h, weights, images) for a config.json h.

A model config `c` is a dict of timm's constructor arguments. parameter_shapes(c) gives timm's parameter names and
shapes, random_weights(c, generator) fills them, forward(c, weights, images) computes the logits. Each test case is
a registered timm architecture (models/timm_architectures.json, vit's copy of timm's registry) made small by
overrides, or "vit_family_test" (timm's defaults plus overrides) where no registered architecture has the option.

Writes into OUT_DIR:
  <case>/model.safetensors      random weights in timm's names
  <case>/config.json            timm's hub format: architecture, model_args (the overrides), pretrained_cfg
  <case>/reference.safetensors  images, logits, parameters (the count, one element); for a dynamic_img_size case
                                also images_other and logits_other at another input size
  <case>_hf/                    for hf_quick_gelu_no_qkv_bias and distilled: the same weights as Hugging Face's
                                ViTForImageClassification / DeiTForImageClassificationWithTeacher (transformers'
                                tensor names and config.json), giving the same logits
  cases.json                    [{"name", "hf", "timm", "other_size"}] for every case; "hf": it has <case>_hf/

Also models that only transformers defines (HF_ONLY_CASES: DeiTForImageClassification with its unused distillation
token, Dinov2ForImageClassification with the plain and the SwiGLU MLP), "timm": false in cases.json:
  <case>_hf/                    random weights in transformers' names, and config.json
  <case>/reference.safetensors  images, logits, parameters (the count vit holds: transformers' count less
                                dinov2.embeddings.mask_token, which vit drops), parameters_hf (transformers' count);
                                nothing else in <case>/
  parameter_counts.json         {architecture: timm's parameter count} for the whole registry (differential
                                attention models left out)

Run with an interpreter that has torch (Debian: /usr/bin/python3 with python3-torch).
"""
import argparse
import json
import math
import os
import zlib

import torch
import torch.nn.functional as F

from vit_files import from_hf_dinov2_keys, to_hf_deit_keys, to_hf_keys, write_safetensors

REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "timm_architectures.json")

# timm's VisionTransformer constructor defaults, for the arguments modelled here. Class-valued arguments carry vit's
# names for them (as in models/timm_architectures.json); "distilled" selects deit.py's VisionTransformerDistilled.
TIMM_DEFAULTS = dict(
    img_size=224, patch_size=16, in_chans=3, num_classes=1000, global_pool="token", embed_dim=768, depth=12,
    num_heads=12, mlp_ratio=4.0, qkv_bias=True, qk_norm=False, scale_attn_norm=False, scale_mlp_norm=False,
    proj_bias=True, init_values=None, class_token=True, no_embed_class=False, reg_tokens=0, pre_norm=False,
    final_norm=True, fc_norm=None, pool_include_prefix=False, dynamic_img_size=False,
    norm_layer="layernorm", norm_eps=1e-6, embed_norm_layer=None, embed_norm_eps=1e-6, act_layer="gelu",
    block_fn="block", mlp_layer="mlp", attn_layer="attn", distilled=False)

# Small enough to run in milliseconds; head_dim 12.
SMALL = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=7)

# The overrides a timm hub config may carry in model_args: plain JSON values. Everything else (mlp_layer, block_fn,
# eps, distilled) comes from the architecture, as in timm's own hub configs. norm_layer is written only where an
# override changes the architecture's.
MODEL_ARGS = ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "num_classes", "class_token",
              "global_pool", "reg_tokens", "no_embed_class", "init_values", "pre_norm", "qkv_bias", "proj_bias",
              "qk_norm", "fc_norm", "final_norm", "pool_include_prefix", "dynamic_img_size", "scale_attn_norm",
              "scale_mlp_norm", "act_layer", "norm_layer")

FAMILY_TEST = "vit_family_test"  # no registered architecture: timm's defaults plus the overrides

# name -> (architecture, overrides). One model per group of options; each name says what it exercises.
CASES = {
    "gap_no_class_token": ("vit_base_patch16_gap_224", dict(SMALL)),
    "registers_layer_scale_no_embed_class": ("vit_base_patch14_reg4_dinov2", dict(SMALL)),
    "pre_norm_quick_gelu": ("vit_base_patch16_clip_quickgelu_224", dict(SMALL)),
    "max_pool_fc_norm_no_qkv_bias_gelu_tanh": (FAMILY_TEST, dict(SMALL, global_pool="max", fc_norm=True,
                                                                 qkv_bias=False, act_layer="gelu_tanh")),
    "avgmax_registers_silu": (FAMILY_TEST, dict(SMALL, global_pool="avgmax", fc_norm=True, reg_tokens=2,
                                                act_layer="silu")),
    # A plain ViT as Hugging Face's ViTForImageClassification can hold it, written in both layouts.
    "hf_quick_gelu_no_qkv_bias": (FAMILY_TEST, dict(SMALL, act_layer="quick_gelu", qkv_bias=False)),
    # RmsNorm (eps 1e-5) everywhere and on the patch embedding, SwiGLU, no projection biases.
    "rmsnorm_embed_norm_swiglu_no_proj_bias": ("aimv2_large_patch14_224", dict(SMALL)),
    # GluMlp packed SwiGLU (one fc1, halves gated), with layer scale.
    "swiglu_packed_layer_scale": ("vit_giant_patch14_dinov2", dict(SMALL)),
    # SigLIP's attention pool over the patch tokens (no class token), gelu_tanh in its MLP.
    "map_pool": ("vit_base_patch16_siglip_224", dict(SMALL, act_layer="gelu_tanh")),
    # Attention pool over all tokens, registers included, with RmsNorm in the pool too.
    "map_pool_include_prefix_registers_rmsnorm": ("test_vit3", dict(SMALL, reg_tokens=2, norm_layer="rmsnorm")),
    # Scale norms inside attention and MLP, LayerNorm eps 1e-5, avg pool with fc_norm (timm's None default).
    "scale_norms_layernorm_eps": ("beit3_base_patch16_224", dict(SMALL)),
    # ResPostBlock: norms after attention and MLP, no layer scale.
    "res_post_block": ("vit_base_patch16_rpn_224", dict(SMALL)),
    # ParallelThingsBlock: two attention branches, then two MLP branches, each with layer scale.
    "parallel_things_block": ("vit_small_patch16_18x2_224", dict(SMALL)),
    # ParallelScalingBlock: fused in_proj (mlp, q, k, v), mlp_bias, qk norm, layer scale, RmsNorm, pre_norm,
    # no_embed_class.
    "parallel_scaling_block_qk_norm": ("vit_base_patch16_xp_224", dict(SMALL, init_values=1e-5)),
    # qk norm in the plain block without projection biases; mlp_ratio 2.99: timm truncates 143.52 to 143.
    "qk_norm_no_proj_bias": (FAMILY_TEST, dict(SMALL, qk_norm=True, proj_bias=False, mlp_ratio=2.99)),
    # DeiT's distillation token and head.
    "distilled": ("deit_base_distilled_patch16_224", dict(SMALL)),
    # No final norm, layer scale 0.1, dynamic image size (upsampled position embeddings).
    "no_final_norm_dynamic_img_size": ("vit_intern300m_patch14_448", dict(SMALL)),
    # 'rmsnorm' by name (eps 1e-6), register, avg pool over all tokens, dynamic size (downsampled, antialiased).
    "rmsnorm_dynamic_img_size_pool_include_prefix": ("test_vit4", dict(SMALL, pool_include_prefix=True)),
}

# Cases whose architecture's norm eps is not timm's 1e-6: the parameters named here (name fragments) are shrunk so
# that the inputs of one norm have a mean square near the eps, which makes 1e-5 and 1e-6 give different logits.
EPS_PROBES = {
    "pre_norm_quick_gelu": ("patch_embed.proj.", "pos_embed", "cls_token"),  # norm_pre, LayerNorm eps 1e-5
    "rmsnorm_embed_norm_swiglu_no_proj_bias": ("patch_embed.proj.",),  # patch_embed.norm, RmsNorm eps 1e-5
    "scale_norms_layernorm_eps": ("mlp.fc1.",),  # mlp.norm, LayerNorm eps 1e-5
}

# Dynamic-size cases: the other input size (H = W) the reference also holds logits for.
OTHER_SIZE = {"no_final_norm_dynamic_img_size": 48, "rmsnorm_dynamic_img_size_pool_include_prefix": 24}

# timm's parameter counts at registry configs, for the self-check of parameter_shapes.
KNOWN_COUNTS = {"vit_tiny_patch16_224": 5_717_416, "vit_small_patch16_224": 22_050_664,
                "vit_base_patch16_224": 86_567_656, "vit_large_patch16_224": 304_326_632,
                "deit_base_distilled_patch16_224": 87_338_192}

# Hugging Face's names (transformers' ACT2FN) for the activations.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "quick_gelu": "quick_gelu", "silu": "silu"}

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "silu": F.silu,
}


# ---------------------------------------------------------------------------------------------------------------
# Configs


def load_registry(path=REGISTRY):
    """{architecture name: its record} from models/timm_architectures.json."""
    with open(path) as f:
        return {record["name"]: record for record in json.load(f)["architectures"]}


def config_for(record, overrides):
    """timm's defaults, then the registry record's arguments, then the overrides (None record: vit_family_test)."""
    c = dict(TIMM_DEFAULTS)
    c.update(record["args"] if record else {})
    if "norm_layer" in overrides and overrides["norm_layer"] != c["norm_layer"]:
        # A norm_layer given by name replaces the architecture's partial(..., eps=...): timm's default eps again.
        c["norm_eps"] = TIMM_DEFAULTS["norm_eps"]
    c.update(overrides)
    return c


def pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def grid_size(c, image_size=None):
    """Patch grid (rows, columns) for the config's image size, or for another one (dynamic_img_size)."""
    (h, w), (ph, pw) = pair(image_size or c["img_size"]), pair(c["patch_size"])
    return h // ph, w // pw


def num_prefix_tokens(c):
    """Tokens before the patch tokens: class (and DeiT's distillation) token, then registers."""
    if c["distilled"]:
        return 2  # VisionTransformerDistilled sets it to 2 whatever class_token and reg_tokens say
    return int(c["class_token"]) + c["reg_tokens"]


def uses_fc_norm(c):
    """timm's fc_norm=None means: the final norm goes after the pool exactly for the avg/avgmax/max pools."""
    return c["global_pool"] in ("avg", "avgmax", "max") if c["fc_norm"] is None else c["fc_norm"]


def mlp_hidden(c):
    return int(c["embed_dim"] * c["mlp_ratio"])  # timm truncates (dinov2 giant: 1536 * 5.33334 -> 8192)


def has_layer_scale(c):
    # Block, ResPostBlock and ParallelThingsBlock test `if init_values`; ParallelScalingBlock tests `is not None`.
    if c["block_fn"] == "parallel_scaling":
        return c["init_values"] is not None
    return bool(c["init_values"])


# ---------------------------------------------------------------------------------------------------------------
# Parameter names and shapes


def norm_shapes(name, width, kind):
    """LayerNorm has weight and bias, RmsNorm a weight only."""
    shapes = {name + ".weight": (width,)}
    if kind == "layernorm":
        shapes[name + ".bias"] = (width,)
    return shapes


def linear_shapes(name, out_features, in_features, bias):
    shapes = {name + ".weight": (out_features, in_features)}
    if bias:
        shapes[name + ".bias"] = (out_features,)
    return shapes


def attention_shapes(p, c):
    """timm's Attention: qkv, optional q_norm/k_norm (head_dim wide) and norm (scale_attn_norm), proj."""
    d, kind = c["embed_dim"], c["norm_layer"]
    shapes = linear_shapes(p + "qkv", 3 * d, d, c["qkv_bias"])
    if c["qk_norm"]:
        head_dim = d // c["num_heads"]
        shapes.update(norm_shapes(p + "q_norm", head_dim, kind))
        shapes.update(norm_shapes(p + "k_norm", head_dim, kind))
    if c["scale_attn_norm"]:
        shapes.update(norm_shapes(p + "norm", d, kind))
    shapes.update(linear_shapes(p + "proj", d, d, c["proj_bias"]))
    return shapes


def mlp_shapes(p, c):
    """The block's mlp_layer, every linear with bias=proj_bias; mlp.norm (scale_mlp_norm) before fc2."""
    d, hidden, bias = c["embed_dim"], mlp_hidden(c), c["proj_bias"]
    if c["mlp_layer"] == "mlp":
        shapes = linear_shapes(p + "fc1", hidden, d, bias)
        inner = hidden
    elif c["mlp_layer"] == "swiglu":
        shapes = linear_shapes(p + "fc1_g", hidden, d, bias)
        shapes.update(linear_shapes(p + "fc1_x", hidden, d, bias))
        inner = hidden
    elif c["mlp_layer"] == "swiglu_packed":
        assert hidden % 2 == 0, "GluMlp splits fc1's output in two halves"
        shapes = linear_shapes(p + "fc1", hidden, d, bias)
        inner = hidden // 2
    else:
        raise ValueError(f"mlp_layer {c['mlp_layer']}")
    if c["scale_mlp_norm"]:
        shapes.update(norm_shapes(p + "norm", inner, c["norm_layer"]))
    shapes.update(linear_shapes(p + "fc2", d, inner, bias))
    return shapes


def block_shapes(p, c):
    d, kind = c["embed_dim"], c["norm_layer"]
    shapes = {}
    if c["block_fn"] in ("block", "res_post"):
        # ResPostBlock has the same modules (norms after instead of before); it never has layer scale.
        shapes.update(norm_shapes(p + "norm1", d, kind))
        shapes.update(attention_shapes(p + "attn.", c))
        if c["block_fn"] == "block" and has_layer_scale(c):
            shapes[p + "ls1.gamma"] = (d,)
        shapes.update(norm_shapes(p + "norm2", d, kind))
        shapes.update(mlp_shapes(p + "mlp.", c))
        if c["block_fn"] == "block" and has_layer_scale(c):
            shapes[p + "ls2.gamma"] = (d,)
    elif c["block_fn"] == "parallel_things":
        for branch in range(2):  # timm's num_parallel default
            a, m = f"{p}attns.{branch}.", f"{p}ffns.{branch}."
            shapes.update(norm_shapes(a + "norm", d, kind))
            shapes.update(attention_shapes(a + "attn.", c))
            shapes.update(norm_shapes(m + "norm", d, kind))
            shapes.update(mlp_shapes(m + "mlp.", c))
            if has_layer_scale(c):
                shapes.update({a + "ls.gamma": (d,), m + "ls.gamma": (d,)})
    elif c["block_fn"] == "parallel_scaling":
        assert not (c["scale_attn_norm"] or c["scale_mlp_norm"]), "ParallelScalingBlock has no scale norms"
        hidden = mlp_hidden(c)
        shapes.update(norm_shapes(p + "in_norm", d, kind))
        shapes.update(linear_shapes(p + "in_proj", hidden + 3 * d, d, c["qkv_bias"]))
        if not c["qkv_bias"]:
            shapes[p + "mlp_bias"] = (hidden,)  # otherwise part of in_proj.bias
        if c["qk_norm"]:
            shapes.update(norm_shapes(p + "q_norm", d // c["num_heads"], kind))
            shapes.update(norm_shapes(p + "k_norm", d // c["num_heads"], kind))
        shapes.update(linear_shapes(p + "attn_out_proj", d, d, c["proj_bias"]))
        shapes.update(linear_shapes(p + "mlp_out_proj", d, hidden, c["proj_bias"]))
        if has_layer_scale(c):
            shapes[p + "ls.gamma"] = (d,)
    else:
        raise ValueError(f"block_fn {c['block_fn']}")
    return shapes


def attention_pool_shapes(c):
    """AttentionPoolLatent with timm's defaults: one latent, q and kv with biases, proj, norm, a plain biased Mlp."""
    d, p = c["embed_dim"], "attn_pool."
    shapes = {p + "latent": (1, 1, d)}
    shapes.update(linear_shapes(p + "q", d, d, True))
    shapes.update(linear_shapes(p + "kv", 2 * d, d, True))
    shapes.update(linear_shapes(p + "proj", d, d, True))
    shapes.update(norm_shapes(p + "norm", d, c["norm_layer"]))
    shapes.update(linear_shapes(p + "mlp.fc1", mlp_hidden(c), d, True))
    shapes.update(linear_shapes(p + "mlp.fc2", d, mlp_hidden(c), True))
    return shapes


def parameter_shapes(c):
    """{timm's parameter name: shape} of the model config c describes."""
    if c["attn_layer"] not in ("attn", "") or c["block_fn"] == "diff_parallel_scaling":
        raise NotImplementedError("differential attention")
    d, (ph, pw) = c["embed_dim"], pair(c["patch_size"])
    rows, cols = grid_size(c)
    shapes = {"patch_embed.proj.weight": (d, c["in_chans"], ph, pw)}
    if not c["pre_norm"]:
        shapes["patch_embed.proj.bias"] = (d,)  # timm drops the conv bias when norm_pre follows
    if c["embed_norm_layer"]:
        shapes.update(norm_shapes("patch_embed.norm", d, c["embed_norm_layer"]))
    if c["class_token"]:
        shapes["cls_token"] = (1, 1, d)
    if c["reg_tokens"]:
        shapes["reg_token"] = (1, c["reg_tokens"], d)
    if c["distilled"]:
        assert c["global_pool"] == "token" and c["class_token"] and not c["reg_tokens"]
        shapes["dist_token"] = (1, 1, d)
        # VisionTransformerDistilled's pos_embed always covers both prefix tokens.
        shapes["pos_embed"] = (1, rows * cols + 2, d)
    else:
        shapes["pos_embed"] = (1, rows * cols + (0 if c["no_embed_class"] else num_prefix_tokens(c)), d)
    if c["pre_norm"]:
        shapes.update(norm_shapes("norm_pre", d, c["norm_layer"]))
    for i in range(c["depth"]):
        shapes.update(block_shapes(f"blocks.{i}.", c))
    if c["final_norm"] and not uses_fc_norm(c):
        shapes.update(norm_shapes("norm", d, c["norm_layer"]))
    if c["global_pool"] == "map":
        shapes.update(attention_pool_shapes(c))
    if c["final_norm"] and uses_fc_norm(c):
        shapes.update(norm_shapes("fc_norm", d, c["norm_layer"]))
    if c["num_classes"] > 0:
        shapes.update(linear_shapes("head", c["num_classes"], d, True))
        if c["distilled"]:
            shapes.update(linear_shapes("head_dist", c["num_classes"], d, True))
    return shapes


def parameter_count(c):
    return sum(math.prod(shape) for shape in parameter_shapes(c).values())


def is_norm_weight(name):
    """The scale of a LayerNorm or RmsNorm: norm1, norm2, norm, fc_norm, norm_pre, q_norm, in_norm, ..."""
    module = name.rsplit(".", 2)[-2] if "." in name else ""
    return name.endswith(".weight") and "norm" in module


def is_head(name):
    """A classifier: timm's head / head_dist, transformers' classifier / cls_classifier / distillation_classifier."""
    return name.startswith("head") or (name.count(".") >= 1 and name.rsplit(".", 2)[-2].endswith("classifier"))


def random_weights(c, generator, shrink=(), shapes=None, shrink_factor=3e-3):
    """parameter_shapes(c) (or the given {name: shape}) filled with values spread enough to make the logits differ;
    parameters whose names contain one of the `shrink` fragments are scaled by shrink_factor to make a norm's eps
    matter (EPS_PROBES, HF_EPS_PROBES)."""
    weights = {}
    for name, shape in (parameter_shapes(c) if shapes is None else shapes).items():
        t = torch.randn(shape, generator=generator)
        if is_norm_weight(name):
            t = 1.0 + 0.2 * t  # LayerNorm and RmsNorm scales around 1
        elif name.endswith(".gamma") or name.endswith(".lambda1"):
            t = 0.5 + 0.3 * t.abs()  # trained layer scales are far from their 1e-5 start
        elif is_head(name):
            t = 0.2 * t if name.endswith(".bias") else 3.0 * t / math.sqrt(shape[1])  # logits that differ
        elif name.endswith(".weight") and len(shape) >= 2:
            t = t / math.sqrt(math.prod(shape[1:]))  # unit gain through linear and conv layers
        elif name.endswith("latent"):
            pass  # a unit-size query, so that the attention pool's weights are not uniform
        else:
            t = 0.2 * t  # biases, tokens, position embeddings
        if any(fragment in name for fragment in shrink):
            t = shrink_factor * t  # a mean square near the eps where it reaches the norm
        weights[name] = t
    return weights


# ---------------------------------------------------------------------------------------------------------------
# Forward pass


def norm(x, w, name, kind, eps):
    if kind == "layernorm":
        return F.layer_norm(x, (x.shape[-1],), w[name + ".weight"], w[name + ".bias"], eps)
    if kind == "rmsnorm":
        # timm's RmsNorm (layers/fast_norm.py rms_norm): x * rsqrt(mean(x^2) + eps) * weight; no mean subtraction.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w[name + ".weight"]
    raise ValueError(f"norm_layer {kind}")


def model_norm(x, w, name, c):
    """Any norm of the model but the patch embedding's: norm_layer with norm_eps."""
    return norm(x, w, name, c["norm_layer"], c["norm_eps"])


def linear(x, w, name):
    return F.linear(x, w[name + ".weight"], w.get(name + ".bias"))


def scaled_dot_product(q, k, v):
    """(B, heads, N, head_dim) each; softmax(q k^T / sqrt(head_dim)) v."""
    attn = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1), dim=-1)
    return attn @ v


def split_heads(t, heads):
    """(B, N, D) -> (B, heads, N, D / heads)."""
    b, n, d = t.shape
    return t.reshape(b, n, heads, d // heads).transpose(1, 2)


def merge_heads(t):
    """(B, heads, N, head_dim) -> (B, N, heads * head_dim)."""
    b, h, n, hd = t.shape
    return t.transpose(1, 2).reshape(b, n, h * hd)


def attention(x, w, p, c):
    q, k, v = (split_heads(t, c["num_heads"]) for t in linear(x, w, p + "qkv").chunk(3, dim=-1))
    if c["qk_norm"]:
        q, k = model_norm(q, w, p + "q_norm", c), model_norm(k, w, p + "k_norm", c)  # per head, over head_dim
    out = merge_heads(scaled_dot_product(q, k, v))
    if c["scale_attn_norm"]:
        out = model_norm(out, w, p + "norm", c)
    return linear(out, w, p + "proj")


def mlp(x, w, p, c):
    act = ACTIVATIONS[c["act_layer"]]  # the model's act_layer, also for the SwiGLU gates
    if c["mlp_layer"] == "mlp":
        h = act(linear(x, w, p + "fc1"))
    elif c["mlp_layer"] == "swiglu":
        h = act(linear(x, w, p + "fc1_g")) * linear(x, w, p + "fc1_x")
    else:  # swiglu_packed: timm's GluMlp with gate_last=False, the first half of fc1's output is the gate
        gate, value = linear(x, w, p + "fc1").chunk(2, dim=-1)
        h = act(gate) * value
    if c["scale_mlp_norm"]:
        h = model_norm(h, w, p + "norm", c)
    return linear(h, w, p + "fc2")


def layer_scale(x, w, name, c):
    return x * w[name] if has_layer_scale(c) else x


def parallel_scaling_block(x, w, p, c):
    """ParallelScalingBlock (fuse_out_proj False): one norm, one in_proj for fc1 and q, k, v; outputs summed."""
    d, hidden = c["embed_dim"], mlp_hidden(c)
    h = linear(model_norm(x, w, p + "in_norm", c), w, p + "in_proj")
    h_mlp, q, k, v = h.split([hidden, d, d, d], dim=-1)
    if not c["qkv_bias"]:
        h_mlp = h_mlp + w[p + "mlp_bias"]
    q, k, v = (split_heads(t, c["num_heads"]) for t in (q, k, v))
    if c["qk_norm"]:
        q, k = model_norm(q, w, p + "q_norm", c), model_norm(k, w, p + "k_norm", c)
    out = linear(merge_heads(scaled_dot_product(q, k, v)), w, p + "attn_out_proj")
    out = out + linear(ACTIVATIONS[c["act_layer"]](h_mlp), w, p + "mlp_out_proj")
    return x + layer_scale(out, w, p + "ls.gamma", c)


def block(x, w, p, c):
    kind = c["block_fn"]
    if kind == "block":
        x = x + layer_scale(attention(model_norm(x, w, p + "norm1", c), w, p + "attn.", c), w, p + "ls1.gamma", c)
        return x + layer_scale(mlp(model_norm(x, w, p + "norm2", c), w, p + "mlp.", c), w, p + "ls2.gamma", c)
    if kind == "res_post":
        x = x + model_norm(attention(x, w, p + "attn.", c), w, p + "norm1", c)
        return x + model_norm(mlp(x, w, p + "mlp.", c), w, p + "norm2", c)
    if kind == "parallel_things":
        # Both attention branches see the same x, then both MLP branches see the updated x.
        x = x + sum(layer_scale(attention(model_norm(x, w, f"{p}attns.{j}.norm", c), w, f"{p}attns.{j}.attn.", c),
                                w, f"{p}attns.{j}.ls.gamma", c) for j in range(2))
        return x + sum(layer_scale(mlp(model_norm(x, w, f"{p}ffns.{j}.norm", c), w, f"{p}ffns.{j}.mlp.", c),
                                   w, f"{p}ffns.{j}.ls.gamma", c) for j in range(2))
    if kind == "parallel_scaling":
        return parallel_scaling_block(x, w, p, c)
    raise ValueError(f"block_fn {kind}")


def resample_pos_embed(pos_embed, old_grid, new_grid, n_prefix):
    """timm's resample_abs_pos_embed with its defaults: the prefix entries kept as they are, the grid part resized
    with antialiased bicubic interpolation (align_corners False); unchanged when the grid is the same."""
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :n_prefix], pos_embed[:, n_prefix:]
    d = grid.shape[-1]
    grid = grid.reshape(1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", antialias=True, align_corners=False)
    return torch.cat([prefix, grid.permute(0, 2, 3, 1).reshape(1, -1, d)], dim=1)


def embed(c, w, images):
    """Patch embedding, prefix tokens and position embeddings: (B, prefix + N, D)."""
    x = F.conv2d(images, w["patch_embed.proj.weight"], w.get("patch_embed.proj.bias"), stride=pair(c["patch_size"]))
    rows, cols = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)  # (B, N, D)
    if c["embed_norm_layer"]:
        x = norm(x, w, "patch_embed.norm", c["embed_norm_layer"], c["embed_norm_eps"])
    batch = x.shape[0]
    prefix = [w[name].expand(batch, -1, -1) for name in ("cls_token", "dist_token", "reg_token") if name in w]
    pos_embed = w["pos_embed"]
    if (rows, cols) != grid_size(c):
        assert c["dynamic_img_size"], f"input grid {(rows, cols)} but img_size {c['img_size']}"
        pos_prefix = 0 if c["no_embed_class"] else num_prefix_tokens(c)
        pos_embed = resample_pos_embed(pos_embed, grid_size(c), (rows, cols), pos_prefix)
    if c["no_embed_class"]:
        return torch.cat(prefix + [x + pos_embed], dim=1)  # DeiT-3 / big_vision: add, then concatenate
    return torch.cat(prefix + [x], dim=1) + pos_embed  # original ViT: concatenate, then add


def attention_pool(x, w, c):
    """AttentionPoolLatent: a learned query attends over x, then proj, then a residual MLP; the latent token out."""
    p, heads = "attn_pool.", c["num_heads"]
    q = split_heads(linear(w[p + "latent"].expand(x.shape[0], -1, -1), w, p + "q"), heads)
    k, v = (split_heads(t, heads) for t in linear(x, w, p + "kv").chunk(2, dim=-1))
    out = linear(merge_heads(scaled_dot_product(q, k, v)), w, p + "proj")
    h = ACTIVATIONS[c["act_layer"]](linear(model_norm(out, w, p + "norm", c), w, p + "mlp.fc1"))
    out = out + linear(h, w, p + "mlp.fc2")
    return out[:, 0]


def pool(c, w, x):
    n_prefix = num_prefix_tokens(c)
    if c["global_pool"] == "map":
        return attention_pool(x if c["pool_include_prefix"] else x[:, n_prefix:], w, c)
    if c["global_pool"] == "token":
        return x[:, 0]
    tokens = x if c["pool_include_prefix"] else x[:, n_prefix:]
    if c["global_pool"] == "avg":
        return tokens.mean(1)
    if c["global_pool"] == "max":
        return tokens.amax(1)
    if c["global_pool"] == "avgmax":
        return 0.5 * (tokens.amax(1) + tokens.mean(1))
    raise ValueError(f"global_pool {c['global_pool']}")


def forward(c, w, images):
    """timm's VisionTransformer (or VisionTransformerDistilled) forward in eval mode, written out."""
    x = embed(c, w, images)
    if c["pre_norm"]:
        x = model_norm(x, w, "norm_pre", c)
    for i in range(c["depth"]):
        x = block(x, w, f"blocks.{i}.", c)
    if "norm.weight" in w:
        x = model_norm(x, w, "norm", c)
    if c["distilled"]:
        # Averages the class-token and distillation-token heads (their outputs, outside training).
        return 0.5 * (linear(x[:, 0], w, "head") + linear(x[:, 1], w, "head_dist"))
    x = pool(c, w, x)
    if "fc_norm.weight" in w:
        x = model_norm(x, w, "fc_norm", c)
    return linear(x, w, "head") if c["num_classes"] > 0 else x


# ---------------------------------------------------------------------------------------------------------------
# Files


def hub_config(architecture, record, c, overrides):
    """config.json as timm's push_to_hub writes it: the architecture, and the overrides as model_args."""
    model_args = {}
    for key, value in overrides.items():
        if key not in MODEL_ARGS:
            raise ValueError(f"{key} cannot be a model_arg: it must come from the architecture")
        if key == "norm_layer" and value == config_for(record, {})["norm_layer"]:
            continue
        model_args[key] = value
    names = [f"class {i}" for i in range(c["num_classes"])]
    if record:
        preprocess = dict(record["preprocess"])
    else:
        preprocess = dict(interpolation="bicubic", crop_pct=1.0, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    pretrained_cfg = dict(input_size=[c["in_chans"], *pair(c["img_size"])], **preprocess, label_names=names)
    return {"architecture": architecture, "num_classes": c["num_classes"], "num_features": c["embed_dim"],
            "global_pool": c["global_pool"], "model_args": model_args, "pretrained_cfg": pretrained_cfg}


def hf_config(c):
    """config.json of ViTForImageClassification for a plain config c."""
    return {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": c["embed_dim"],
            "num_hidden_layers": c["depth"], "num_attention_heads": c["num_heads"],
            "intermediate_size": mlp_hidden(c), "hidden_act": HF_ACTIVATIONS[c["act_layer"]],
            "layer_norm_eps": c["norm_eps"], "image_size": c["img_size"], "patch_size": c["patch_size"],
            "num_channels": c["in_chans"], "qkv_bias": c["qkv_bias"],
            "id2label": {str(i): f"class {i}" for i in range(c["num_classes"])}}


# timm cases also written as a Hugging Face folder: name -> (c, timm weights) -> (transformers' weights, config.json).
HF_FOLDERS = {
    "hf_quick_gelu_no_qkv_bias": lambda c, w: (to_hf_keys(w), hf_config(c)),
    # DeiTForImageClassificationWithTeacher, with the eps timm's DeiT uses (1e-6, not transformers' 1e-12).
    "distilled": lambda c, w: (to_hf_deit_keys(w), hf_deit_config(c, "DeiTForImageClassificationWithTeacher",
                                                                    c["norm_eps"])),
}


def hf_labels(c):
    names = [f"class {i}" for i in range(c["num_classes"])]
    return {"id2label": {str(i): name for i, name in enumerate(names)},
            "label2id": {name: i for i, name in enumerate(names)}}


def hf_deit_config(c, architecture, layer_norm_eps):
    """config.json of transformers' DeiTForImageClassification(WithTeacher) for the sizes of config c. The eps is
    given apart: transformers' default is 1e-12, timm's DeiT uses 1e-6."""
    assert architecture in ("DeiTForImageClassification", "DeiTForImageClassificationWithTeacher")
    return {"architectures": [architecture], "model_type": "deit", "hidden_size": c["embed_dim"],
            "num_hidden_layers": c["depth"], "num_attention_heads": c["num_heads"],
            "intermediate_size": mlp_hidden(c), "hidden_act": HF_ACTIVATIONS[c["act_layer"]],
            "layer_norm_eps": layer_norm_eps, "image_size": c["img_size"], "patch_size": c["patch_size"],
            "num_channels": c["in_chans"], "qkv_bias": c["qkv_bias"],
            # Only DeiTForMaskedImageModeling's decoder reads it; the encoder's total stride, the patch size.
            "encoder_stride": c["patch_size"], **hf_labels(c)}


def hf_dinov2_config(c, use_swiglu_ffn):
    """config.json of transformers' Dinov2ForImageClassification for the sizes of config c. layerscale_value is only
    the lambda1 initial value: the file's lambda1 are what counts."""
    return {"architectures": ["Dinov2ForImageClassification"], "model_type": "dinov2", "hidden_size": c["embed_dim"],
            "num_hidden_layers": c["depth"], "num_attention_heads": c["num_heads"],
            "mlp_ratio": float(c["mlp_ratio"]), "hidden_act": HF_ACTIVATIONS[c["act_layer"]],
            "layer_norm_eps": c["norm_eps"], "image_size": c["img_size"], "patch_size": c["patch_size"],
            "num_channels": c["in_chans"], "qkv_bias": c["qkv_bias"], "layerscale_value": 1.0,
            "use_swiglu_ffn": use_swiglu_ffn, **hf_labels(c)}


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face transformers' ViT, DeiT and DINOv2 classifiers (modeling_vit.py, modeling_deit.py, modeling_dinov2.py
# in eval mode), written out on transformers' own tensor names and config.json keys, with the building blocks above.

# The vision models' backbone attribute: "<backbone>.embeddings...", "<backbone>.encoder.layer.<i>...".
HF_BACKBONE = {"vit": "vit", "deit": "deit", "dinov2": "dinov2"}

# transformers' ACT2FN names -> the functions.
HF_ACT_FNS = {hf_name: ACTIVATIONS[timm_name] for timm_name, hf_name in HF_ACTIVATIONS.items()}


def hf_prefix_tokens(h):
    """The tokens before the patch tokens: [CLS], and DeiT's distillation token (in both DeiT classifiers)."""
    return ["cls_token", "distillation_token"] if h["model_type"] == "deit" else ["cls_token"]


def hf_dinov2_mlp_hidden(h):
    """Dinov2MLP: int(D * mlp_ratio). Dinov2SwiGLUFFN: that, times 2/3, truncated, rounded up to a multiple of 8."""
    hidden = int(h["hidden_size"] * h["mlp_ratio"])
    return (int(hidden * 2 / 3) + 7) // 8 * 8 if h["use_swiglu_ffn"] else hidden


def hf_parameter_shapes(h):
    """{transformers' parameter name: shape} of the DeiT or DINOv2 classifier config.json h describes."""
    model_type, arch = h["model_type"], h["architectures"][0]
    b, d, ps = HF_BACKBONE[model_type], h["hidden_size"], h["patch_size"]
    n = (h["image_size"] // ps) ** 2
    e = f"{b}.embeddings."
    shapes = {e + name: (1, 1, d) for name in hf_prefix_tokens(h)}
    if model_type == "dinov2":
        shapes[e + "mask_token"] = (1, d)  # only for masked inputs (bool_masked_pos), never in classification
    shapes[e + "position_embeddings"] = (1, n + len(hf_prefix_tokens(h)), d)
    shapes[e + "patch_embeddings.projection.weight"] = (d, h["num_channels"], ps, ps)
    shapes[e + "patch_embeddings.projection.bias"] = (d,)
    for i in range(h["num_hidden_layers"]):
        p = f"{b}.encoder.layer.{i}."
        attn = {}
        for name in ("query", "key", "value"):
            attn.update(linear_shapes(f"{p}attention.attention.{name}", d, d, h["qkv_bias"]))
        attn.update(linear_shapes(p + "attention.output.dense", d, d, True))
        if model_type == "deit":
            shapes.update(attn)
            shapes.update(linear_shapes(p + "intermediate.dense", h["intermediate_size"], d, True))
            shapes.update(linear_shapes(p + "output.dense", d, h["intermediate_size"], True))
            shapes.update(norm_shapes(p + "layernorm_before", d, "layernorm"))
            shapes.update(norm_shapes(p + "layernorm_after", d, "layernorm"))
        elif model_type == "dinov2":
            hidden = hf_dinov2_mlp_hidden(h)
            shapes.update(norm_shapes(p + "norm1", d, "layernorm"))
            shapes.update(attn)
            shapes[p + "layer_scale1.lambda1"] = (d,)
            shapes.update(norm_shapes(p + "norm2", d, "layernorm"))
            if h["use_swiglu_ffn"]:
                shapes.update(linear_shapes(p + "mlp.weights_in", 2 * hidden, d, True))
                shapes.update(linear_shapes(p + "mlp.weights_out", d, hidden, True))
            else:
                shapes.update(linear_shapes(p + "mlp.fc1", hidden, d, True))
                shapes.update(linear_shapes(p + "mlp.fc2", d, hidden, True))
            shapes[p + "layer_scale2.lambda1"] = (d,)
        else:
            raise ValueError(f"model_type {model_type}")
    shapes.update(norm_shapes(f"{b}.layernorm", d, "layernorm"))  # no pooler in the classifiers
    classes = len(h["id2label"])
    if arch == "DeiTForImageClassificationWithTeacher":
        shapes.update(linear_shapes("cls_classifier", classes, d, True))
        shapes.update(linear_shapes("distillation_classifier", classes, d, True))
    elif arch in ("DeiTForImageClassification", "ViTForImageClassification"):
        shapes.update(linear_shapes("classifier", classes, d, True))
    elif arch == "Dinov2ForImageClassification":
        shapes.update(linear_shapes("classifier", classes, 2 * d, True))  # [CLS] and the patch tokens' mean
    else:
        raise ValueError(f"architecture {arch}")
    return shapes


def hf_layer(x, w, p, h):
    """ViTLayer / DeiTLayer (layernorm_before, attention, layernorm_after, intermediate, output) or Dinov2Layer
    (norm1, attention, layer_scale1, norm2, mlp, layer_scale2); pre-norm residual blocks, every LayerNorm with
    config.layer_norm_eps."""
    dinov2 = h["model_type"] == "dinov2"

    def layer_norm(t, name):
        return F.layer_norm(t, (t.shape[-1],), w[name + ".weight"], w[name + ".bias"], h["layer_norm_eps"])

    a = layer_norm(x, p + ("norm1" if dinov2 else "layernorm_before"))
    q, k, v = (split_heads(linear(a, w, f"{p}attention.attention.{name}"), h["num_attention_heads"])
               for name in ("query", "key", "value"))
    a = linear(merge_heads(scaled_dot_product(q, k, v)), w, p + "attention.output.dense")
    x = x + (a * w[p + "layer_scale1.lambda1"] if dinov2 else a)
    m = layer_norm(x, p + ("norm2" if dinov2 else "layernorm_after"))
    if not dinov2:
        return x + linear(HF_ACT_FNS[h["hidden_act"]](linear(m, w, p + "intermediate.dense")), w, p + "output.dense")
    if h["use_swiglu_ffn"]:
        # Dinov2SwiGLUFFN: SiLU on the first half of weights_in's output, whatever hidden_act says.
        gate, value = linear(m, w, p + "mlp.weights_in").chunk(2, dim=-1)
        m = linear(F.silu(gate) * value, w, p + "mlp.weights_out")
    else:
        m = linear(HF_ACT_FNS[h["hidden_act"]](linear(m, w, p + "mlp.fc1")), w, p + "mlp.fc2")
    return x + m * w[p + "layer_scale2.lambda1"]


def hf_forward(h, w, images):
    """transformers' ViTForImageClassification, DeiTForImageClassification(WithTeacher) or
    Dinov2ForImageClassification forward in eval mode, at the config's image size (no position interpolation)."""
    b = HF_BACKBONE[h["model_type"]]
    e = f"{b}.embeddings."
    x = F.conv2d(images, w[e + "patch_embeddings.projection.weight"], w[e + "patch_embeddings.projection.bias"],
                 stride=h["patch_size"]).flatten(2).transpose(1, 2)
    prefix = [w[e + name].expand(x.shape[0], -1, -1) for name in hf_prefix_tokens(h)]
    x = torch.cat(prefix + [x], dim=1)  # [CLS] (, distillation), patches; then the position embeddings added
    assert w[e + "position_embeddings"].shape[1] == x.shape[1], "another input size needs interpolation"
    x = x + w[e + "position_embeddings"]
    for i in range(h["num_hidden_layers"]):
        x = hf_layer(x, w, f"{b}.encoder.layer.{i}.", h)
    x = F.layer_norm(x, (x.shape[-1],), w[b + ".layernorm.weight"], w[b + ".layernorm.bias"], h["layer_norm_eps"])
    arch = h["architectures"][0]
    if arch == "DeiTForImageClassificationWithTeacher":
        return 0.5 * (linear(x[:, 0], w, "cls_classifier") + linear(x[:, 1], w, "distillation_classifier"))
    if arch in ("DeiTForImageClassification", "ViTForImageClassification"):
        return linear(x[:, 0], w, "classifier")  # DeiT: the distillation token is in the sequence, its output unused
    if arch == "Dinov2ForImageClassification":
        return linear(torch.cat([x[:, 0], x[:, 1:].mean(1)], dim=-1), w, "classifier")
    raise ValueError(f"architecture {arch}")


# Parameters transformers has that vit does not hold: Dinov2Embeddings.mask_token (used only with
# bool_masked_pos, for masked-image pretraining) is dropped when vit reads a DINOv2 folder.
HF_DROPPED = ("dinov2.embeddings.mask_token",)

# The sizes every case shares, as a timm config for the config.json writers above.
HF_SMALL = config_for(None, SMALL)

# Models only Hugging Face's classes define: written only as <case>_hf/ (transformers' names and config.json), with
# <case>/ holding nothing but reference.safetensors.
HF_ONLY_CASES = {
    # DeiTForImageClassification: the distillation token in the sequence (and in position_embeddings, N + 2), one
    # classifier on [CLS] only. transformers' default layer_norm_eps 1e-12.
    "hf_deit_dist_token_unused": hf_deit_config(HF_SMALL, "DeiTForImageClassification", 1e-12),
    # Dinov2ForImageClassification: layer scale on both branches, classifier on [CLS] ++ mean of the patch tokens.
    "hf_dinov2_classifier": hf_dinov2_config(HF_SMALL, use_swiglu_ffn=False),
    # DINOv2 giant's SwiGLU MLP: hidden int(int(48 * 4) * 2 / 3) = 128, already a multiple of 8.
    "hf_dinov2_swiglu": hf_dinov2_config(dict(HF_SMALL, mlp_ratio=4.0), use_swiglu_ffn=True),
}

# HF-only cases whose eps is checked: (fragments of the parameters shrunk, factor, an eps the logits must notice).
# The embeddings shrunk to a mean square near 1e-7 reach the first layer's first LayerNorm: eps 1e-12 and 1e-6 give
# different logits.
HF_EPS_PROBES = {
    "hf_deit_dist_token_unused": (("patch_embeddings.projection.", "position_embeddings", "cls_token",
                                   "distillation_token"), 3e-4, 1e-6),
    "hf_dinov2_classifier": (("patch_embeddings.projection.", "position_embeddings", "cls_token"), 3e-4, 1e-12),
}

# Known sizes the HF shapes must reproduce: transformers' DeiT base distilled (as timm's), and DINOv2 base and
# giant backbones (Dinov2Model less mask_token) as timm's vit_*_patch14_dinov2 without head.
HF_SHAPE_CHECKS = (
    ("deit_base_distilled_patch16_224", "DeiTForImageClassificationWithTeacher", False),
    ("vit_base_patch14_dinov2", "Dinov2ForImageClassification", False),
    ("vit_giant_patch14_dinov2", "Dinov2ForImageClassification", True),
)


def check_hf_shapes(registry):
    """hf_parameter_shapes at full size against this file's timm parameter_shapes (itself checked against timm)."""
    for architecture, hf_architecture, swiglu in HF_SHAPE_CHECKS:
        c = config_for(registry[architecture], {})
        if hf_architecture.startswith("Dinov2"):
            # transformers' dinov2-giant says mlp_ratio 4: int(int(1536 * 4) * 2 / 3) = 4096 = timm's 8192 / 2.
            h = hf_dinov2_config(dict(c, mlp_ratio=4.0 if swiglu else c["mlp_ratio"], num_classes=1000), swiglu)
            shapes = hf_parameter_shapes(h)
            backbone = sum(math.prod(s) for n, s in shapes.items() if n not in HF_DROPPED and "classifier" not in n)
            assert backbone == parameter_count(c), (architecture, backbone, parameter_count(c))
        else:
            h = hf_deit_config(c, hf_architecture, c["norm_eps"])
            assert sum(math.prod(s) for s in hf_parameter_shapes(h).values()) == parameter_count(c), architecture


def timm_dinov2_logits(h, w, images):
    """Dinov2ForImageClassification's logits through timm's forward above: the weights renamed to timm's dinov2
    layout, [CLS] from global_pool "token" and the patch mean from "avg" (final norm before the pool), then the
    classifier's two halves."""
    d, swiglu = h["hidden_size"], h["use_swiglu_ffn"]
    architecture = "vit_giant_patch14_dinov2" if swiglu else "vit_base_patch14_dinov2"
    overrides = dict(img_size=h["image_size"], patch_size=h["patch_size"], embed_dim=d,
                     depth=h["num_hidden_layers"], num_heads=h["num_attention_heads"], num_classes=0,
                     norm_eps=h["layer_norm_eps"],
                     mlp_ratio=2 * hf_dinov2_mlp_hidden(h) / d if swiglu else h["mlp_ratio"])
    if not swiglu:
        overrides["act_layer"] = {v: k for k, v in HF_ACTIVATIONS.items()}[h["hidden_act"]]
    c = config_for(load_registry()[architecture], overrides)
    timm_weights = from_hf_dinov2_keys(w)
    assert sorted(timm_weights) == sorted(parameter_shapes(c)), "renamed weights differ from timm's names"
    cls = forward(c, timm_weights, images)
    mean = forward(dict(c, global_pool="avg", fc_norm=False), timm_weights, images)
    head = w["classifier.weight"]
    return F.linear(cls, head[:, :d]) + F.linear(mean, head[:, d:]) + w["classifier.bias"]


def write_hf_folder(folder, hf_weights, h):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), hf_weights)
    write_json(os.path.join(folder, "config.json"), h)


def write_hf_only_case(out_dir, name, h):
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    shrink, factor, wrong_eps = HF_EPS_PROBES.get(name, ((), 1.0, None))
    weights = random_weights(None, generator, shrink, shapes=hf_parameter_shapes(h), shrink_factor=factor)
    images = torch.randn(3, h["num_channels"], h["image_size"], h["image_size"], generator=generator)
    with torch.no_grad():
        logits = hf_forward(h, weights, images)
        assert torch.isfinite(logits).all() and logits.std() > 0.5, (name, logits.std())
        if wrong_eps is not None:
            off = (hf_forward(dict(h, layer_norm_eps=wrong_eps), weights, images) - logits).abs().max().item()
            assert off > 1e-2, f"{name}: eps {wrong_eps} instead of {h['layer_norm_eps']} changes logits by {off}"
        if h["model_type"] == "dinov2":
            off = (timm_dinov2_logits(h, weights, images) - logits).abs().max().item()
            assert off < 1e-5, f"{name}: timm's dinov2 forward differs by {off}"
    every = sum(t.numel() for t in weights.values())
    held = sum(t.numel() for n, t in weights.items() if n not in HF_DROPPED)
    # parameters: what vit holds and counts (mask_token dropped); parameters_hf: transformers' own count.
    tensors = {"images": images, "logits": logits, "parameters": torch.tensor([float(held)]),
               "parameters_hf": torch.tensor([float(every)])}
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "reference.safetensors"), tensors)
    write_hf_folder(folder + "_hf", weights, h)
    return {"name": name, "hf": True, "timm": False, "other_size": None}


def registry_parameter_counts(registry):
    """{name: timm's parameter count} for every registered architecture vit can build (no differential attention),
    checked against counts timm reports."""
    counts = {}
    for name, record in registry.items():
        c = config_for(record, {})
        if c["attn_layer"] == "diff" or c["block_fn"] == "diff_parallel_scaling":
            continue
        counts[name] = parameter_count(c)
    for name, expected in KNOWN_COUNTS.items():
        if counts[name] != expected:
            raise AssertionError(f"{name}: {counts[name]} parameters, timm has {expected}")
    return counts


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)


def write_case(out_dir, name, architecture, record, overrides):
    c = config_for(record, overrides)
    # One generator per case, so that cases do not shift each other's weights.
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    weights = random_weights(c, generator, EPS_PROBES.get(name, ()))
    height, width = pair(c["img_size"])
    images = torch.randn(3, c["in_chans"], height, width, generator=generator)
    tensors = {"images": images}
    with torch.no_grad():
        tensors["logits"] = forward(c, weights, images)
        other = OTHER_SIZE.get(name)
        if other:
            assert c["dynamic_img_size"] and other != height
            tensors["images_other"] = torch.randn(3, c["in_chans"], other, other, generator=generator)
            tensors["logits_other"] = forward(c, weights, tensors["images_other"])
    for key in ("logits", "logits_other"):
        if key in tensors:
            assert torch.isfinite(tensors[key]).all() and tensors[key].std() > 0.5, (name, key, tensors[key].std())
    tensors["parameters"] = torch.tensor([float(sum(t.numel() for t in weights.values()))])
    assert tensors["parameters"].item() == parameter_count(c)

    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), weights)
    write_json(os.path.join(folder, "config.json"), hub_config(architecture, record, c, overrides))
    write_safetensors(os.path.join(folder, "reference.safetensors"), tensors)
    hf = HF_FOLDERS.get(name)
    if hf:
        hf_weights, h = hf(c, weights)
        with torch.no_grad():  # the same logits through transformers' class, on its names
            off = (hf_forward(h, hf_weights, images) - tensors["logits"]).abs().max().item()
        assert off < 1e-5, f"{name}: the Hugging Face layout's forward differs by {off}"
        write_hf_folder(folder + "_hf", hf_weights, h)
    return {"name": name, "hf": bool(hf), "timm": True, "other_size": OTHER_SIZE.get(name)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    out_dir = parser.parse_args().out_dir
    registry = load_registry()
    counts = registry_parameter_counts(registry)  # fails loudly before anything is written
    check_hf_shapes(registry)
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for name, (architecture, overrides) in CASES.items():
        record = None if architecture == FAMILY_TEST else registry[architecture]
        cases.append(write_case(out_dir, name, architecture, record, overrides))
    for name, h in HF_ONLY_CASES.items():
        cases.append(write_hf_only_case(out_dir, name, h))
    write_json(os.path.join(out_dir, "cases.json"), cases)
    write_json(os.path.join(out_dir, "parameter_counts.json"), counts)


if __name__ == "__main__":
    main()
