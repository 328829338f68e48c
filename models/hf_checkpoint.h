#pragma once
// Hugging Face transformers' ViT (ViTForImageClassification, or ViTModel without its classifier): a folder with
// `model.safetensors` in HF's names, query/key/value as separate tensors, and `config.json`
// ({"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12, ..., "id2label": {...}}); preprocessing
// from `preprocessor_config.json` when present.

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "models/safetensors.h"
#include "models/timm_checkpoint.h"
#include "models/vit_weights_file.h"

namespace vit {

// True when `config` (a config.json) describes a Hugging Face ViT.
bool is_hf_vit_config(const nlohmann::json& config);

// The model an HF checkpoint holds: architecture and LayerNorm epsilon from config.json, the class count from
// the classifier's shape (none without one), class names from id2label; preprocessing from
// preprocessor_config.json (may be null), else ViTImageProcessor's defaults (bilinear, mean = std = 0.5; it
// resizes to the square input size, which vit does with crop_pct 1 for square images). Throws
// std::invalid_argument naming `source` and what does not fit.
ModelMetadata hf_metadata(const nlohmann::json& config, const nlohmann::json* preprocessor, const TensorShapes& shapes,
                          const std::string& source);

// HF's tensor names to timm's: q, k and v fused into qkv (rows in q, k, v order), the unused pooler dropped.
// Throws std::invalid_argument naming an unknown tensor.
TensorMap hf_to_timm(const TensorMap& tensors, const std::string& source);
// The reverse, for export.
TensorMap timm_to_hf(const TensorMap& tensors);

// config.json for ViTForImageClassification.
nlohmann::json hf_config(const ModelMetadata& metadata);

// preprocessor_config.json: what transformers' ViTImageProcessor needs to preprocess as vit does (for square
// images).
nlohmann::json hf_preprocessor_config(const ModelMetadata& metadata);

}  // namespace vit
