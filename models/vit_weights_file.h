#pragma once
// This toolkit's own weights file (checkpoint_layouts.h reads the others): safetensors with timm's tensor names, and in
// "__metadata__" everything needed to rebuild and use the model without guessing: architecture, class names and
// preprocessing.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/safetensors.h"
#include "models/vision_transformer.h"
#include "models/vit_config.h"

namespace vit {

struct ModelMetadata {
  ViTConfig config;
  PreprocessConfig preprocess;
  std::vector<std::string> class_names;  // one per output class, index order

  // Throws std::invalid_argument if the parts do not fit each other (class count, channel count).
  void validate() const;
};

// The metadata as one JSON object, {"format": "vit-toolkit", "format_version": 1, "config": {...},
// "preprocess": {...}, "class_names": [...]}, as TorchScript exports embed it. Parsing is strict and validates;
// errors name `source` (the file it came from).
std::string metadata_to_json(const ModelMetadata& metadata);
ModelMetadata metadata_from_json(const std::string& text, const std::string& source);

// "0", "1", ... for models trained without named classes.
std::vector<std::string> default_class_names(int64_t num_classes);

// Writes the model's weights and metadata atomically.
void save_weights(const std::filesystem::path& path, VisionTransformer& model, const ModelMetadata& metadata);

// Reads only the header: the model description without loading any weights.
ModelMetadata read_weights_metadata(const std::filesystem::path& path);

struct LoadedModel {
  VisionTransformer model{nullptr};
  ModelMetadata metadata;
};

// Builds the model the file describes and loads its weights strictly (every tensor present with its shape).
// With `image_size` set to another size than the file's, the model is built for that size and the position
// embeddings are resampled to fit. Errors name the file and the problem.
LoadedModel load_weights(const std::filesystem::path& path, std::optional<int64_t> image_size = std::nullopt);

// The same from tensors in timm's names, wherever they came from (`source` names them in errors).
LoadedModel build_model(ModelMetadata metadata, TensorMap tensors, std::optional<int64_t> image_size,
                        const std::string& source);

}  // namespace vit
