#pragma once
// Commands take a model as either a preset name or a model file or folder (model_file.h); this resolves which one
// is meant.

#include <string>

#include "models/vit_weights_file.h"

namespace vit {

struct ModelDescription {
  std::string source;  // the preset name or file path as given
  bool is_preset = false;
  std::string kind;  // "preset", or the file's layout: "vit weights file", "timm checkpoint", ...
  ModelMetadata metadata;
};

// Looks `preset_or_path` up as a preset first, then as a model file (reading only headers and JSON). Throws
// std::invalid_argument listing the presets when it is neither.
ModelDescription describe_model(const std::string& preset_or_path);

}  // namespace vit
