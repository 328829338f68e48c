#include "models/model_source.h"

#include <filesystem>
#include <stdexcept>

#include "models/model_file.h"
#include "models/presets.h"

namespace vit {

ModelDescription describe_model(const std::string& preset_or_path) {
  ModelDescription description;
  description.source = preset_or_path;
  if (auto preset = find_preset(preset_or_path)) {
    description.is_preset = true;
    description.kind = "preset";
    description.metadata.config = preset->config;
    description.metadata.preprocess = preset->preprocess;
    description.metadata.class_names = default_class_names(preset->config.num_classes);
    return description;
  }
  std::error_code error;
  if (!std::filesystem::exists(preset_or_path, error)) {
    std::string presets;
    for (const auto& name : preset_names()) presets += (presets.empty() ? "" : ", ") + name;
    throw std::invalid_argument("'" + preset_or_path + "' is neither a model preset nor an existing file or folder " +
                                "(presets: " + presets + ")");
  }
  ModelFileInfo info = read_model_file_info(preset_or_path);
  description.kind = to_string(info.layout);
  description.metadata = std::move(info.metadata);
  return description;
}

}  // namespace vit
