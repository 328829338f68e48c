#include "models/model_source.h"

#include <filesystem>
#include <stdexcept>

#include "models/presets.h"

namespace vit {

ModelDescription describe_model(const std::string& preset_or_path) {
  ModelDescription description;
  description.source = preset_or_path;
  if (auto preset = find_preset(preset_or_path)) {
    description.is_preset = true;
    description.metadata.config = preset->config;
    description.metadata.preprocess = preset->preprocess;
    description.metadata.class_names = default_class_names(preset->config.num_classes);
    return description;
  }
  std::error_code error;
  if (!std::filesystem::exists(preset_or_path, error)) {
    std::string presets;
    for (const auto& name : preset_names()) presets += (presets.empty() ? "" : ", ") + name;
    throw std::invalid_argument("'" + preset_or_path + "' is neither a model preset nor an existing file " +
                                "(presets: " + presets + ")");
  }
  description.metadata = read_weights_metadata(preset_or_path);
  return description;
}

}  // namespace vit
