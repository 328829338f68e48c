#include "models/describe_model.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "models/checkpoint_layouts.h"
#include "models/onnx_export.h"
#include "models/presets.h"
#include "models/timm_architectures.h"

namespace vit {

ModelDescription describe_model(const std::string& preset_or_path) {
  ModelDescription description;
  description.source = preset_or_path;
  if (auto preset = find_preset(preset_or_path)) {
    description.is_preset = true;
    const TimmArchitecture* timm = find_timm_architecture(preset_or_path);
    const auto own = preset_names();
    const bool vits_own = std::find(own.begin(), own.end(), preset_or_path) != own.end();
    description.kind =
        vits_own || !timm
            ? "preset"
            : "timm architecture" +
                  (timm->pretrained_tag.empty() ? std::string() : ", default pretrained tag " + timm->pretrained_tag);
    description.metadata.config = preset->config;
    description.metadata.preprocess = preset->preprocess;
    description.metadata.class_names = default_class_names(preset->config.num_classes);
    return description;
  }
  std::error_code error;
  if (!std::filesystem::exists(preset_or_path, error))
    throw std::invalid_argument(unknown_preset_message(preset_or_path) + ", nor an existing file or folder");
  // ONNX has no magic number: its files are known by their extension. vit's own carry its description.
  if (std::filesystem::path(preset_or_path).extension() == ".onnx") {
    const OnnxFileSummary onnx = read_onnx_summary(preset_or_path);
    const auto it = onnx.metadata.find("vit.json");
    if (it == onnx.metadata.end())
      throw std::invalid_argument("'" + preset_or_path + "' is an ONNX file that vit did not write (no vit.json in "
                                  "its metadata): vit describes only its own ONNX exports");
    const std::string& batch = onnx.inputs.at(0).dims.at(0);  // a size, or a symbolic dimension's name
    const bool fixed = !batch.empty() && batch.find_first_not_of("0123456789") == std::string::npos;
    description.kind = "ONNX file, opset " + std::to_string(onnx.opset) +
                       (fixed ? ", batch " + batch : ", dynamic batch") +
                       (onnx.external_initializers > 0 ? ", weights in external data" : "");
    description.metadata = metadata_from_json(it->second, preset_or_path);
    return description;
  }
  CheckpointInfo info = read_checkpoint_info(preset_or_path);
  description.kind = to_string(info.layout);
  description.metadata = std::move(info.metadata);
  return description;
}

}  // namespace vit
