#include "models/weights_file.h"

#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "models/pos_embed.h"
#include "models/safetensors.h"
#include "models/state_dict.h"

namespace vit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Metadata keys. Values are JSON text, because safetensors metadata maps strings to strings.
constexpr const char* kFormatKey = "format";
constexpr const char* kFormatValue = "vit-toolkit";
constexpr const char* kVersionKey = "format_version";
constexpr const char* kVersionValue = "1";
constexpr const char* kConfigKey = "config";
constexpr const char* kPreprocessKey = "preprocess";
constexpr const char* kClassNamesKey = "class_names";

Metadata encode(const ModelMetadata& m) {
  return {{kFormatKey, kFormatValue},
          {kVersionKey, kVersionValue},
          {kConfigKey, json(m.config).dump()},
          {kPreprocessKey, json(m.preprocess).dump()},
          {kClassNamesKey, json(m.class_names).dump()}};
}

ModelMetadata decode(const Metadata& raw, const fs::path& path) {
  auto fail = [&](const std::string& problem) -> void {
    throw std::runtime_error("'" + path.string() + "': " + problem);
  };
  auto format = raw.find(kFormatKey);
  if (format == raw.end() || format->second != kFormatValue)
    fail("not a vit weights file: its metadata lacks format = \"vit-toolkit\" (a plain timm or Hugging Face "
         "checkpoint has no architecture description)");
  auto version = raw.find(kVersionKey);
  if (version == raw.end() || version->second != kVersionValue)
    fail("unsupported vit weights format version '" + (version == raw.end() ? "" : version->second) +
         "' (this build reads version " + kVersionValue + ")");
  // Each value is JSON text; parse errors and type errors alike name the key.
  auto parse = [&](const char* key, auto& out) {
    auto it = raw.find(key);
    if (it == raw.end()) fail(std::string("metadata lacks '") + key + "'");
    try {
      out = json::parse(it->second).get<std::decay_t<decltype(out)>>();
    } catch (const std::exception& e) {
      fail(std::string("metadata '") + key + "' is invalid: " + e.what());
    }
  };
  ModelMetadata m;
  parse(kConfigKey, m.config);
  parse(kPreprocessKey, m.preprocess);
  parse(kClassNamesKey, m.class_names);
  try {
    m.validate();
  } catch (const std::exception& e) {
    fail(std::string("metadata is inconsistent: ") + e.what());
  }
  return m;
}

}  // namespace

void ModelMetadata::validate() const {
  config.validate();
  preprocess.validate(config.in_chans);
  if (static_cast<int64_t>(class_names.size()) != config.num_classes)
    throw std::invalid_argument("model has " + std::to_string(config.num_classes) + " classes but " +
                                std::to_string(class_names.size()) + " class names");
}

std::vector<std::string> default_class_names(int64_t num_classes) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < num_classes; ++i) names.push_back(std::to_string(i));
  return names;
}

void save_weights(const fs::path& path, VisionTransformer& model, const ModelMetadata& metadata) {
  metadata.validate();
  write_safetensors(path, state_dict(*model), encode(metadata));
}

ModelMetadata read_weights_metadata(const fs::path& path) { return decode(read_safetensors_metadata(path), path); }

LoadedModel load_weights(const fs::path& path, std::optional<int64_t> image_size) {
  SafetensorsContent content = read_safetensors(path);
  LoadedModel loaded;
  loaded.metadata = decode(content.metadata, path);
  ViTConfig& config = loaded.metadata.config;
  if (image_size && *image_size != config.image_size) {
    config.image_size = *image_size;
    try {
      config.validate();
    } catch (const std::exception& e) {
      throw std::invalid_argument("image size " + std::to_string(*image_size) + " does not fit '" +
                                  path.string() + "': " + e.what());
    }
    auto pos_embed = content.tensors.find("pos_embed");
    if (pos_embed != content.tensors.end()) {
      pos_embed->second = resample_pos_embed(pos_embed->second, config.grid_size(), config.num_prefix_tokens());
    }
  }
  loaded.model = VisionTransformer(config);
  load_state_dict(*loaded.model, content.tensors, path.string());
  return loaded;
}

}  // namespace vit
