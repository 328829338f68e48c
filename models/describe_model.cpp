#include "models/describe_model.h"

#include <filesystem>
#include <stdexcept>

#include "models/checkpoint_layouts.h"
#include "models/presets.h"
#include "util/text.h"

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
  if (!std::filesystem::exists(preset_or_path, error))
    throw std::invalid_argument("'" + preset_or_path + "' is neither a model preset nor an existing file or folder " +
                                "(presets: " + join(preset_names()) + ")");
  CheckpointInfo info = read_checkpoint_info(preset_or_path);
  description.kind = to_string(info.layout);
  description.metadata = std::move(info.metadata);
  return description;
}

}  // namespace vit
