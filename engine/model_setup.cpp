#include "engine/model_setup.h"

#include <stdexcept>

#include "models/model_file.h"
#include "models/presets.h"
#include "models/state_dict.h"

namespace vit::engine {
namespace {

void apply_overrides(ViTConfig& c, const ModelOverrides& o) {
  if (o.image_size) c.image_size = *o.image_size;
  if (o.patch_size) c.patch_size = *o.patch_size;
  if (o.in_chans) c.in_chans = *o.in_chans;
  if (o.embed_dim) c.embed_dim = *o.embed_dim;
  if (o.depth) c.depth = *o.depth;
  if (o.num_heads) c.num_heads = *o.num_heads;
  if (o.mlp_ratio) c.mlp_ratio = *o.mlp_ratio;
  if (o.drop_rate) c.drop_rate = *o.drop_rate;
  if (o.drop_path) c.drop_path_rate = *o.drop_path;
  if (o.patch_drop) c.patch_drop_rate = *o.patch_drop;
  if (o.global_pool) {
    c.global_pool = parse_global_pool(*o.global_pool);
    c.fc_norm = c.global_pool == GlobalPool::Avg;  // timm's default for average pooling
  }
}

// Normalisation statistics follow the channel count: 3 -> 1 channel averages them, 1 -> 3 repeats them.
std::vector<double> fit_channels(const std::vector<double>& values, int64_t channels) {
  if (static_cast<int64_t>(values.size()) == channels) return values;
  double mean = 0.0;
  for (double v : values) mean += v / static_cast<double>(values.size());
  return std::vector<double>(static_cast<size_t>(channels), mean);
}

ModelPreset find_named_preset(const std::string& model) {
  auto preset = find_preset(model);
  if (!preset) {
    std::string names;
    for (const auto& name : preset_names()) names += (names.empty() ? "" : ", ") + name;
    throw std::invalid_argument("--model: unknown preset '" + model + "' (presets: " + names + ")");
  }
  return *preset;
}

}  // namespace

ViTConfig preset_config(const std::string& model, const ModelOverrides& overrides) {
  ViTConfig config = find_named_preset(model).config;
  apply_overrides(config, overrides);
  return config;
}

ModelMetadata training_metadata(const TrainOptions& options, const std::vector<std::string>& class_names) {
  ModelMetadata m;
  if (options.init) {
    m = read_model_file_info(*options.init).metadata;
  } else {
    const ModelPreset preset = find_named_preset(options.model);
    m.config = preset.config;
    m.preprocess = preset.preprocess;
  }
  apply_overrides(m.config, options.overrides);
  m.config.num_classes = static_cast<int64_t>(class_names.size());
  m.class_names = class_names;
  m.preprocess.mean = fit_channels(m.preprocess.mean, m.config.in_chans);
  m.preprocess.std = fit_channels(m.preprocess.std, m.config.in_chans);
  try {
    m.validate();
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("model options: ") + e.what());
  }
  return m;
}

VisionTransformer build_training_model(const ModelMetadata& metadata, const TrainOptions& options) {
  VisionTransformer model(metadata.config);
  if (!options.init) return model;

  auto init = load_model_file(*options.init, metadata.config.image_size);
  TensorMap tensors = state_dict(*init.model);
  if (init.metadata.config.num_classes != metadata.config.num_classes) {
    // A new task: keep the fresh head of `model`, take everything else from the file.
    const TensorMap fresh = state_dict(*model);
    for (const char* name : {"head.weight", "head.bias"}) {
      tensors.erase(name);
      if (fresh.count(name)) tensors.emplace(name, fresh.at(name));
    }
  }
  load_state_dict(*model, tensors, options.init->string());
  return model;
}

}  // namespace vit::engine
