#include "models/model_file.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/hf_checkpoint.h"
#include "models/safetensors.h"
#include "models/timm_checkpoint.h"

namespace vit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kWeightsName = "model.safetensors";

std::optional<json> read_json_if_present(const fs::path& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read '" + path.string() + "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::invalid_argument("'" + path.string() + "' is not valid JSON: " + e.what());
  }
}

struct Located {
  fs::path weights;
  std::optional<json> config;        // config.json
  std::optional<json> preprocessor;  // preprocessor_config.json
  WeightsLayout layout;
  SafetensorsHeader header;
};

Located locate(const fs::path& path) {
  Located found;
  std::error_code error;
  fs::path folder;
  if (fs::is_directory(path, error)) {
    found.weights = path / kWeightsName;
    if (!fs::exists(found.weights, error))
      throw std::invalid_argument("folder '" + path.string() + "' holds no " + kWeightsName +
                                  " (expected a timm or Hugging Face model folder)");
    folder = path;
  } else {
    found.weights = path;
    if (path.filename() == kWeightsName) folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  }
  found.header = read_safetensors_header(found.weights);
  if (!folder.empty()) {
    found.config = read_json_if_present(folder / "config.json");
    found.preprocessor = read_json_if_present(folder / "preprocessor_config.json");
  }
  const auto& shapes = found.header.shapes;
  if (found.header.metadata.count("format")) {
    found.layout = WeightsLayout::Vit;  // read_weights_metadata says what is wrong if it is not vit's
  } else if (shapes.count("vit.embeddings.patch_embeddings.projection.weight") ||
             shapes.count("embeddings.patch_embeddings.projection.weight")) {
    found.layout = WeightsLayout::HuggingFace;
    if (!found.config || !is_hf_vit_config(*found.config))
      throw std::invalid_argument("'" + found.weights.string() + "' holds Hugging Face ViT tensors but " +
                                  (found.config ? "its config.json is not a ViT's (model_type \"vit\")"
                                                : "has no config.json beside it (in a folder named as the model)"));
  } else if (shapes.count("patch_embed.proj.weight")) {
    found.layout = WeightsLayout::Timm;
  } else {
    throw std::invalid_argument("'" + found.weights.string() +
                                "' is not a Vision Transformer checkpoint vit knows: no vit metadata, and no "
                                "timm ('patch_embed.proj.weight') or Hugging Face "
                                "('vit.embeddings.patch_embeddings.projection.weight') tensors");
  }
  return found;
}

ModelMetadata metadata_of(const Located& found) {
  const std::string source = found.weights.string();
  switch (found.layout) {
    case WeightsLayout::Vit:
      return read_weights_metadata(found.weights);
    case WeightsLayout::Timm:
      return timm_metadata(found.header.shapes, found.config ? &*found.config : nullptr, source);
    case WeightsLayout::HuggingFace:
      return hf_metadata(*found.config, found.preprocessor ? &*found.preprocessor : nullptr, found.header.shapes,
                         source);
  }
  throw std::logic_error("unknown weights layout");
}

}  // namespace

std::string to_string(WeightsLayout layout) {
  switch (layout) {
    case WeightsLayout::Vit:
      return "vit weights file";
    case WeightsLayout::Timm:
      return "timm checkpoint";
    case WeightsLayout::HuggingFace:
      return "Hugging Face checkpoint";
  }
  return "unknown";
}

ModelFileInfo read_model_file_info(const fs::path& path) {
  const Located found = locate(path);
  return {found.layout, metadata_of(found)};
}

LoadedModel load_model_file(const fs::path& path, std::optional<int64_t> image_size, WeightsLayout* layout) {
  const Located found = locate(path);
  if (layout) *layout = found.layout;
  if (found.layout == WeightsLayout::Vit) return load_weights(found.weights, image_size);
  ModelMetadata metadata = metadata_of(found);
  TensorMap tensors = read_safetensors(found.weights).tensors;
  if (found.layout == WeightsLayout::HuggingFace) tensors = hf_to_timm(tensors, found.weights.string());
  return build_model(std::move(metadata), std::move(tensors), image_size, found.weights.string());
}

}  // namespace vit
