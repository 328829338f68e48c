#pragma once
// timm checkpoints as the Hugging Face hub holds them: `model.safetensors` with timm's tensor names (vit's
// names too) and, when present, `config.json` in timm's hub format:
//   {"architecture": "vit_base_patch16_224", "num_classes": 1000, "num_features": 768, "global_pool": "token",
//    "model_args": {...}, "pretrained_cfg": {"input_size": [3, 224, 224], "interpolation": "bicubic",
//    "crop_pct": 0.9, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "label_names": [...]}}

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/vit_weights_file.h"

namespace vit {

using TensorShapes = std::map<std::string, std::vector<int64_t>>;

// The model a timm checkpoint holds. The architecture comes from the tensor shapes; the number of heads, which
// shapes cannot tell, from config.json's model_args, else from timm's ViT family of that width (tiny 192: 3,
// small 384: 6, medium 512: 8, base 768: 12, large 1024: 16, so400m 1152, huge 1280, giant 1408, gigantic
// 1664: 16); other widths need model_args. Preprocessing and class names come from pretrained_cfg, else timm's ViT
// defaults (bicubic, crop_pct 0.9, mean = std = 0.5) and "0", "1", .... `config` may be null. Throws
// std::invalid_argument naming `source` and the tensor or key that does not fit.
ModelMetadata timm_metadata(const TensorShapes& shapes, const nlohmann::json* config, const std::string& source);

// config.json in timm's hub format, such that timm.create_model(architecture, **model_args) builds this model.
nlohmann::json timm_config(const ModelMetadata& metadata);

}  // namespace vit
