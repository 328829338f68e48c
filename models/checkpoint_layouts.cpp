#include "models/checkpoint_layouts.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/hf_checkpoint.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "models/timm_checkpoint.h"
#include "models/torchscript_classifier.h"
#include "util/atomic_file.h"

namespace vit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kWeightsName = "model.safetensors";
constexpr const char* kConfigName = "config.json";
constexpr const char* kPreprocessorName = "preprocessor_config.json";  // Hugging Face only

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
  if (is_zip_archive(found.weights))
    throw std::invalid_argument("'" + found.weights.string() +
                                "' is a TorchScript file; this needs weights (a vit weights file, or a timm or "
                                "Hugging Face checkpoint)");
  found.header = read_safetensors_header(found.weights);
  if (!folder.empty()) {
    found.config = read_json_if_present(folder / kConfigName);
    found.preprocessor = read_json_if_present(folder / kPreprocessorName);
  }
  const auto& shapes = found.header.shapes;
  const auto format = found.header.metadata.find("format");
  // timm and transformers write {"format": "pt"}; vit writes "vit-toolkit" and a version, which
  // read_weights_metadata checks.
  if (format != found.header.metadata.end() && format->second == "vit-toolkit") {
    found.layout = WeightsLayout::Vit;
  } else if (shapes.count("vit.embeddings.patch_embeddings.projection.weight") ||
             shapes.count("deit.embeddings.patch_embeddings.projection.weight") ||
             shapes.count("dinov2.embeddings.patch_embeddings.projection.weight") ||
             shapes.count("embeddings.patch_embeddings.projection.weight")) {
    found.layout = WeightsLayout::HuggingFace;
    if (!found.config || !is_hf_config(*found.config))
      throw std::invalid_argument(
          "'" + found.weights.string() + "' holds Hugging Face Vision Transformer tensors but " +
          (found.config
               ? "its config.json is not a ViT's, DeiT's or DINOv2's (model_type \"vit\", \"deit\", \"dinov2\")"
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

void write_json(const fs::path& path, const json& content) {
  write_file_atomically(path, [&](std::ostream& out) { out << content.dump(2) << '\n'; });
}

}  // namespace

void save_checkpoint_folder(const fs::path& dir, WeightsLayout layout, VisionTransformer& model,
                            const ModelMetadata& metadata) {
  metadata.validate();
  const ViTConfig& c = metadata.config;
  if (layout == WeightsLayout::HuggingFace) check_hf_expressible(c);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw std::runtime_error("cannot create folder '" + dir.string() + "': " + error.message());
  switch (layout) {
    case WeightsLayout::Vit:
      throw std::invalid_argument("a vit weights file is a single file: use save_weights");
    case WeightsLayout::Timm:
      save_weights(dir / kWeightsName, model, metadata);
      write_json(dir / kConfigName, timm_config(metadata));
      return;
    case WeightsLayout::HuggingFace:
      write_safetensors(dir / kWeightsName, timm_to_hf(state_dict(*model), c), {{"format", "pt"}});
      write_json(dir / kConfigName, hf_config(metadata));
      write_json(dir / kPreprocessorName, hf_preprocessor_config(metadata));
      return;
  }
}

std::vector<fs::path> checkpoint_folder_files(const fs::path& dir, WeightsLayout layout) {
  std::vector<fs::path> files{dir / kWeightsName, dir / kConfigName};
  if (layout == WeightsLayout::HuggingFace) files.push_back(dir / kPreprocessorName);
  return files;
}

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

CheckpointInfo read_checkpoint_info(const fs::path& path) {
  const Located found = locate(path);
  return {found.layout, metadata_of(found)};
}

LoadedModel load_checkpoint(const fs::path& path, std::optional<int64_t> image_size, WeightsLayout* layout) {
  const Located found = locate(path);
  if (layout) *layout = found.layout;
  if (found.layout == WeightsLayout::Vit) return load_weights(found.weights, image_size);
  ModelMetadata metadata = metadata_of(found);
  TensorMap tensors = read_safetensors(found.weights).tensors;
  if (found.layout == WeightsLayout::HuggingFace) tensors = hf_to_timm(tensors, found.weights.string());
  return build_model(std::move(metadata), std::move(tensors), image_size, found.weights.string());
}

}  // namespace vit
