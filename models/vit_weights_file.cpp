#include "models/vit_weights_file.h"

#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "models/pos_embed.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "util/image_limits.h"

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

[[noreturn]] void fail_metadata(const std::string& source, const std::string& problem) {
  throw std::runtime_error("'" + source + "': " + problem);
}

void validate_or_fail(const ModelMetadata& m, const std::string& source) {
  try {
    m.validate();
  } catch (const std::exception& e) {
    fail_metadata(source, std::string("metadata is inconsistent: ") + e.what());
  }
}

Metadata encode(const ModelMetadata& m) {
  return {{kFormatKey, kFormatValue},
          {kVersionKey, kVersionValue},
          {kConfigKey, json(m.config).dump()},
          {kPreprocessKey, json(m.preprocess).dump()},
          {kClassNamesKey, json(m.class_names).dump()}};
}

ModelMetadata decode(const Metadata& raw, const fs::path& path) {
  auto fail = [&](const std::string& problem) { fail_metadata(path.string(), problem); };
  auto format = raw.find(kFormatKey);
  if (format == raw.end() || format->second != kFormatValue)
    fail(
        "not a vit weights file: its metadata lacks format = \"vit-toolkit\" (a plain timm or Hugging Face "
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
  validate_or_fail(m, path.string());
  return m;
}

}  // namespace

std::string metadata_to_json(const ModelMetadata& m) {
  return json{{kFormatKey, kFormatValue},
              {kVersionKey, std::stoi(kVersionValue)},
              {kConfigKey, m.config},
              {kPreprocessKey, m.preprocess},
              {kClassNamesKey, m.class_names}}
      .dump(2);
}

ModelMetadata metadata_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail_metadata(source, std::string("vit metadata is not valid JSON: ") + e.what());
  }
  if (!j.is_object() || j.value(kFormatKey, json()) != kFormatValue)
    fail_metadata(source, "vit metadata lacks \"format\": \"vit-toolkit\"");
  if (j.value(kVersionKey, json()) != std::stoi(kVersionValue))
    fail_metadata(source, "unsupported vit metadata version " + j.value(kVersionKey, json()).dump() +
                              " (this build reads version " + kVersionValue + ")");
  ModelMetadata m;
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == kConfigKey) {
        m.config = value.get<ViTConfig>();
      } else if (key == kPreprocessKey) {
        m.preprocess = value.get<PreprocessConfig>();
      } else if (key == kClassNamesKey) {
        m.class_names = value.get<std::vector<std::string>>();
      } else if (key != kFormatKey && key != kVersionKey) {
        fail_metadata(source, "unknown key '" + key + "' in vit metadata");
      }
    } catch (const nlohmann::json::exception& e) {
      fail_metadata(source, "vit metadata '" + key + "' is invalid: " + e.what());
    } catch (const std::invalid_argument& e) {
      fail_metadata(source, "vit metadata '" + key + "' is invalid: " + e.what());
    }
  }
  for (const char* key : {kConfigKey, kPreprocessKey, kClassNamesKey})
    if (!j.contains(key)) fail_metadata(source, std::string("vit metadata lacks '") + key + "'");
  validate_or_fail(m, source);
  return m;
}

void ModelMetadata::validate() const {
  config.validate();
  preprocess.validate(config.in_chans);
  // Evaluation resizes the short side to image_size / crop_pct: bounded here for every reader of a model (`vit info`
  // prints it), as evaluation options are where images are read.
  const double resize = static_cast<double>(config.image_size) / preprocess.crop_pct;
  if (!(resize <= kMaxEvalResizeSide))
    throw std::invalid_argument("crop_pct " + json(preprocess.crop_pct).dump() + " resizes images to a short side of " +
                                json(resize).dump() + " pixels for image_size " + std::to_string(config.image_size) +
                                "; at most " + std::to_string(static_cast<int64_t>(kMaxEvalResizeSide)));
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

LoadedModel build_model(ModelMetadata metadata, TensorMap tensors, std::optional<int64_t> image_size,
                        const std::string& source) {
  LoadedModel loaded;
  loaded.metadata = std::move(metadata);
  ViTConfig& config = loaded.metadata.config;
  if (image_size && *image_size != config.image_size) {
    config.image_size = *image_size;
    try {
      config.validate();
    } catch (const std::exception& e) {
      throw std::invalid_argument("image size " + std::to_string(*image_size) + " does not fit '" + source +
                                  "': " + e.what());
    }
    auto pos_embed = tensors.find("pos_embed");
    if (pos_embed != tensors.end() && config.pos_embed == PosEmbed::Sincos) {  // a formula: evaluated anew
      pos_embed->second =
          sincos_pos_embed(config.grid_size(), config.grid_size(), config.embed_dim, config.pos_embed_prefix_tokens());
    } else if (pos_embed != tensors.end()) {
      pos_embed->second = resample_pos_embed(pos_embed->second, config.grid_size(), config.pos_embed_prefix_tokens());
    }
  }
  loaded.model = VisionTransformer(config, /*initialize=*/false);  // every weight comes from `tensors`
  load_state_dict(*loaded.model, tensors, source);
  return loaded;
}

LoadedModel load_weights(const fs::path& path, std::optional<int64_t> image_size) {
  SafetensorsContent content = read_safetensors(path);
  return build_model(decode(content.metadata, path), std::move(content.tensors), image_size, path.string());
}

}  // namespace vit
