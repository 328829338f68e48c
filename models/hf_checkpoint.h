#pragma once
// Hugging Face transformers' Vision Transformers: a folder with `model.safetensors` in transformers' names (query,
// key and value as separate tensors) and `config.json` ({"model_type": "vit", "hidden_size": 768, ...,
// "id2label": {...}}); preprocessing from `preprocessor_config.json` when present. The classes, by model_type:
//   vit     ViTForImageClassification (or ViTModel): the class token's output after the final norm
//   deit    DeiTForImageClassificationWithTeacher: class and distillation tokens, their heads averaged (vit's
//           dist_token 'heads', as timm's distilled DeiT); DeiTForImageClassification: the distillation token is in
//           the sequence but only the class token feeds the classifier (dist_token 'unused')
//   dinov2  Dinov2ForImageClassification: layer scale, optionally the packed SwiGLU MLP, and a classifier on the
//           class token concatenated with the patches' mean (global_pool 'token_avg')

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "models/safetensors.h"
#include "models/timm_checkpoint.h"
#include "models/vit_weights_file.h"

namespace vit {

// True when `config` (a config.json) describes one of the classes above.
bool is_hf_config(const nlohmann::json& config);

// The model an HF checkpoint holds: architecture and LayerNorm epsilon from config.json, the class count from
// the classifier's shape (none without one), class names from id2label; preprocessing from
// preprocessor_config.json (may be null), else ViTImageProcessor's defaults (bilinear, mean = std = 0.5; it
// resizes to the square input size, which vit does with crop_pct 1 for square images). Throws
// std::invalid_argument naming `source` and what does not fit.
ModelMetadata hf_metadata(const nlohmann::json& config, const nlohmann::json* preprocessor, const TensorShapes& shapes,
                          const std::string& source);

// HF's tensor names to timm's: q, k and v fused into qkv (rows in q, k, v order), the unused pooler and DINOv2's
// mask token (for masked-image pretraining) dropped. Throws std::invalid_argument naming an unknown tensor.
TensorMap hf_to_timm(const TensorMap& tensors, const std::string& source);

// Throws std::invalid_argument listing what no class above can express of `config` (e.g. average pooling,
// register tokens); otherwise returns.
void check_hf_expressible(const ViTConfig& config);
// The reverse of hf_to_timm, for export, in the names of the class `config` maps to. Like hf_config, throws as
// check_hf_expressible does for a config no class can express.
TensorMap timm_to_hf(const TensorMap& tensors, const ViTConfig& config);

// config.json for that class.
nlohmann::json hf_config(const ModelMetadata& metadata);

// preprocessor_config.json: what transformers' ViTImageProcessor needs to preprocess as vit does (for square
// images).
nlohmann::json hf_preprocessor_config(const ModelMetadata& metadata);

}  // namespace vit
