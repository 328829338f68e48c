#pragma once
// The small checkpoints the configuration fuzzers read their inputs against, and the seed generator writes its
// seeds from: the same models on both sides, so that seeds take the parsers down their accepting paths.

#include <string>
#include <vector>

#include "models/timm_checkpoint.h"
#include "models/vision_transformer.h"
#include "models/vit_weights_file.h"

namespace vit::fuzz {

// 16x16 pixels in 4x4 patches, width 24, 2 blocks of 2 heads, 3 named classes, class token.
inline ModelMetadata token_model() {
  ModelMetadata m;
  m.config.image_size = 16;
  m.config.patch_size = 4;
  m.config.embed_dim = 24;
  m.config.depth = 2;
  m.config.num_heads = 2;
  m.config.num_classes = 3;
  m.class_names = {"cat", "dog", "bird"};
  return m;
}

// The same without a class token: average pooling, 2 register tokens, no head.
inline ModelMetadata pooled_model() {
  ModelMetadata m = token_model();
  m.config.class_token = false;
  m.config.global_pool = GlobalPool::Avg;
  m.config.reg_tokens = 2;
  m.config.num_classes = 0;
  m.class_names = {};
  return m;
}

inline std::vector<ModelMetadata> small_models() { return {token_model(), pooled_model()}; }

// The model's tensors in timm's names (freshly initialised).
inline TensorMap tensors_of(const ViTConfig& config) {
  VisionTransformer model(config);
  TensorMap tensors;
  for (const auto& item : model->named_parameters()) tensors[item.key()] = item.value().detach();
  for (const auto& item : model->named_buffers()) tensors[item.key()] = item.value().detach();
  return tensors;
}

inline TensorShapes shapes_of(const TensorMap& tensors) {
  TensorShapes shapes;
  for (const auto& [name, tensor] : tensors) shapes[name] = tensor.sizes().vec();
  return shapes;
}

}  // namespace vit::fuzz
