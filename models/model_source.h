#pragma once
// Commands take a model as either a preset name or a weights file; this resolves which one is meant.

#include <string>

#include "models/weights_file.h"

namespace vit {

struct ModelDescription {
  std::string source;  // the preset name or file path as given
  bool is_preset = false;
  ModelMetadata metadata;
};

// Looks `preset_or_path` up as a preset first, then as a weights file (reading only its header). Throws
// std::invalid_argument listing the presets when it is neither.
ModelDescription describe_model(const std::string& preset_or_path);

}  // namespace vit
