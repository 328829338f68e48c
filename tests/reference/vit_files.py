"""Writing vit's files from Python, independently of vit's own writer: safetensors, torchvision -> timm key
names, timm <-> Hugging Face transformers names (ViT, DeiT, DINOv2), and the weights file's metadata. Shared by the
reference checks and the benchmarks."""
import json
import struct

import torch


DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, metadata=None, dtype=torch.float32):
    """The safetensors layout: u64 little-endian header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    # As timm and transformers write it, unless vit's metadata is wanted.
    header["__metadata__"] = metadata if metadata else {"format": "pt"}
    for name, tensor in tensors.items():
        t = tensor.detach().to(dtype).contiguous()
        # numpy has no bfloat16: write its bits as int16
        data = (t.view(torch.int16) if dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """(tensors, metadata) of an F32 safetensors file."""
    import numpy
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", (name, entry["dtype"])
        begin, end = entry["data_offsets"]
        tensors[name] = torch.from_numpy(numpy.frombuffer(data[begin:end], dtype=numpy.float32).copy()).view(
            entry["shape"])
    return tensors, metadata


# torchvision's VisionTransformer names -> timm's, applied in this order.
TORCHVISION_TO_TIMM = [
        ("conv_proj.", "patch_embed.proj."),
        ("class_token", "cls_token"),
        ("encoder.pos_embedding", "pos_embed"),
        ("encoder.ln.", "norm."),
        ("heads.head.", "head."),
        (".ln_1.", ".norm1."),
        (".ln_2.", ".norm2."),
        (".self_attention.in_proj_weight", ".attn.qkv.weight"),
        (".self_attention.in_proj_bias", ".attn.qkv.bias"),
        (".self_attention.out_proj.", ".attn.proj."),
        (".mlp.0.", ".mlp.fc1."),
        (".mlp.3.", ".mlp.fc2."),
        ("encoder.layers.encoder_layer_", "blocks."),
]


def _rename(state_dict, renames):
    out = {}
    for key, value in state_dict.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    return out


def to_timm_keys(state_dict):
    """torchvision's VisionTransformer key layout -> timm's."""
    return _rename(state_dict, TORCHVISION_TO_TIMM)


def to_torchvision_keys(state_dict):
    """timm's key layout -> torchvision's VisionTransformer's."""
    return _rename(state_dict, [(new, old) for old, new in reversed(TORCHVISION_TO_TIMM)])


def from_hf_keys(hf_state_dict):
    """Hugging Face ViTForImageClassification's key layout -> timm's (query, key, value fused into qkv)."""
    top = {"vit.embeddings.cls_token": "cls_token", "vit.embeddings.position_embeddings": "pos_embed",
           "vit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
           "vit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
           "vit.layernorm.weight": "norm.weight", "vit.layernorm.bias": "norm.bias",
           "classifier.weight": "head.weight", "classifier.bias": "head.bias"}
    layer = {"layernorm_before": "norm1", "attention.output.dense": "attn.proj", "layernorm_after": "norm2",
             "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}
    out, qkv = {}, {}
    for key, value in hf_state_dict.items():
        if key in top:
            out[top[key]] = value
            continue
        index, rest = key[len("vit.encoder.layer."):].split(".", 1)
        part, kind = rest.rsplit(".", 1)
        if part.startswith("attention.attention."):
            qkv.setdefault(f"blocks.{index}.attn.qkv.{kind}", {})[part.rsplit(".", 1)[1]] = value
        else:
            out[f"blocks.{index}.{layer[part]}.{kind}"] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def vit_metadata(torchvision_config, class_names, preprocess):
    """The weights file's metadata for a torchvision VisionTransformer(**torchvision_config)."""
    c = torchvision_config
    config = dict(image_size=c["image_size"], patch_size=c["patch_size"], in_chans=3, num_classes=len(class_names),
                  embed_dim=c["hidden_dim"], depth=c["num_layers"], num_heads=c["num_heads"],
                  mlp_ratio=c["mlp_dim"] / c["hidden_dim"], class_token=True, global_pool="token", fc_norm=False,
                  norm_eps=1e-6, drop_rate=0.0, pos_drop_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0,
                  drop_path_rate=0.0)
    return {"format": "vit-toolkit", "format_version": "1", "config": json.dumps(config),
            "preprocess": json.dumps(preprocess), "class_names": json.dumps(class_names)}


# torchvision's ImageNet preprocessing for its ViTs: short side 256 (224 / 0.875), bilinear, ImageNet statistics.
TORCHVISION_PREPROCESS = dict(interpolation="bilinear", crop_pct=0.875, mean=[0.485, 0.456, 0.406],
                              std=[0.229, 0.224, 0.225])


# timm's names inside one block -> Hugging Face's ViT / DeiT names inside one encoder layer (qkv handled apart).
_HF_VIT_LAYER = {"norm1": "layernorm_before", "attn.proj": "attention.output.dense", "norm2": "layernorm_after",
                 "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}


def _timm_to_hf(timm_state_dict, model, top):
    """timm's names -> transformers' for a ViT-style model whose backbone is `model` ("vit", "deit"); `top` maps the
    names outside the blocks."""
    out = {}
    for key, value in timm_state_dict.items():
        if key in top:
            out[top[key]] = value
            continue
        _, index, rest = key.split(".", 2)
        part, kind = rest.rsplit(".", 1)
        prefix = f"{model}.encoder.layer.{index}."
        if part == "attn.qkv":
            for name, piece in zip(("query", "key", "value"), value.chunk(3, 0)):
                out[f"{prefix}attention.attention.{name}.{kind}"] = piece
        else:
            out[f"{prefix}{_HF_VIT_LAYER[part]}.{kind}"] = value
    return out


def _hf_backbone_top(model):
    return {"cls_token": f"{model}.embeddings.cls_token", "pos_embed": f"{model}.embeddings.position_embeddings",
            "patch_embed.proj.weight": f"{model}.embeddings.patch_embeddings.projection.weight",
            "patch_embed.proj.bias": f"{model}.embeddings.patch_embeddings.projection.bias",
            "norm.weight": f"{model}.layernorm.weight", "norm.bias": f"{model}.layernorm.bias"}


def to_hf_keys(timm_state_dict):
    """timm's key layout -> Hugging Face ViTForImageClassification's (qkv split into query, key, value)."""
    top = dict(_hf_backbone_top("vit"), **{"head.weight": "classifier.weight", "head.bias": "classifier.bias"})
    return _timm_to_hf(timm_state_dict, "vit", top)


def to_hf_deit_keys(timm_state_dict):
    """timm's distilled DeiT (VisionTransformerDistilled) -> Hugging Face DeiTForImageClassificationWithTeacher:
    dist_token -> distillation_token, head -> cls_classifier, head_dist -> distillation_classifier."""
    top = dict(_hf_backbone_top("deit"), **{
        "dist_token": "deit.embeddings.distillation_token",
        "head.weight": "cls_classifier.weight", "head.bias": "cls_classifier.bias",
        "head_dist.weight": "distillation_classifier.weight", "head_dist.bias": "distillation_classifier.bias"})
    return _timm_to_hf(timm_state_dict, "deit", top)


def from_hf_dinov2_keys(hf_state_dict):
    """Hugging Face Dinov2Model's backbone names -> timm's (vit_*_patch14_dinov2): query, key, value fused into qkv,
    layer_scale{1,2}.lambda1 -> ls{1,2}.gamma, a SwiGLU MLP's weights_in / weights_out -> GluMlp's fc1 / fc2 (the
    same halves: the first is the SiLU-gated one). mask_token and the classifier (no timm counterpart) are left
    out."""
    top = {"dinov2.embeddings.cls_token": "cls_token", "dinov2.embeddings.position_embeddings": "pos_embed",
           "dinov2.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
           "dinov2.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
           "dinov2.layernorm.weight": "norm.weight", "dinov2.layernorm.bias": "norm.bias"}
    layer = {"norm1": "norm1", "attention.output.dense": "attn.proj", "norm2": "norm2", "mlp.fc1": "mlp.fc1",
             "mlp.fc2": "mlp.fc2", "mlp.weights_in": "mlp.fc1", "mlp.weights_out": "mlp.fc2"}
    out, qkv = {}, {}
    for key, value in hf_state_dict.items():
        if key in top:
            out[top[key]] = value
        elif key.startswith("dinov2.encoder.layer."):
            index, rest = key[len("dinov2.encoder.layer."):].split(".", 1)
            part, kind = rest.rsplit(".", 1)
            if part.startswith("attention.attention."):
                qkv.setdefault(f"blocks.{index}.attn.qkv.{kind}", {})[part.rsplit(".", 1)[1]] = value
            elif kind == "lambda1":
                out[f"blocks.{index}.ls{part[-1]}.gamma"] = value
            else:
                out[f"blocks.{index}.{layer[part]}.{kind}"] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def timm_hub_config(torchvision_config, class_names, preprocess):
    """config.json in timm's hub format."""
    c = torchvision_config
    return {"architecture": "vit_base_patch16_224", "num_classes": len(class_names), "num_features": c["hidden_dim"],
            "global_pool": "token",
            "model_args": {"img_size": c["image_size"], "patch_size": c["patch_size"], "embed_dim": c["hidden_dim"],
                           "depth": c["num_layers"], "num_heads": c["num_heads"],
                           "mlp_ratio": c["mlp_dim"] / c["hidden_dim"], "num_classes": len(class_names)},
            "pretrained_cfg": {"input_size": [3, c["image_size"], c["image_size"]],
                               "interpolation": preprocess["interpolation"], "crop_pct": preprocess["crop_pct"],
                               "mean": preprocess["mean"], "std": preprocess["std"], "label_names": class_names}}


def hf_vit_config(torchvision_config, class_names, layer_norm_eps):
    """config.json of Hugging Face's ViTForImageClassification."""
    c = torchvision_config
    return {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": c["hidden_dim"],
            "num_hidden_layers": c["num_layers"], "num_attention_heads": c["num_heads"],
            "intermediate_size": c["mlp_dim"], "hidden_act": "gelu", "layer_norm_eps": layer_norm_eps,
            "image_size": c["image_size"], "patch_size": c["patch_size"], "num_channels": 3, "qkv_bias": True,
            "id2label": {str(i): name for i, name in enumerate(class_names)},
            "label2id": {name: i for i, name in enumerate(class_names)}}
