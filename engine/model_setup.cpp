#include "engine/model_setup.h"

#include <stdexcept>

#include "models/checkpoint_layouts.h"
#include "models/presets.h"
#include "models/state_dict.h"

namespace vit::engine {
namespace {

// Normalisation statistics follow the channel count: 3 -> 1 channel averages them, 1 -> 3 repeats them.
std::vector<double> fit_channels(const std::vector<double>& values, int64_t channels) {
  if (static_cast<int64_t>(values.size()) == channels) return values;
  double mean = 0.0;
  for (double v : values) mean += v / static_cast<double>(values.size());
  return std::vector<double>(static_cast<size_t>(channels), mean);
}

ModelPreset find_named_preset(const std::string& model) {
  auto preset = find_preset(model);
  if (!preset) throw std::invalid_argument("--model: " + unknown_preset_message(model));
  return *preset;
}

}  // namespace

ViTConfig preset_config(const std::string& model, const ArchitectureOverrides& overrides) {
  ViTConfig config = find_named_preset(model).config;
  apply_overrides(config, overrides);
  return config;
}

ModelMetadata training_metadata(const TrainOptions& options, const std::vector<std::string>& class_names) {
  ModelMetadata m;
  if (options.init) {
    m = read_checkpoint_info(*options.init).metadata;
  } else {
    const ModelPreset preset = find_named_preset(options.model);
    m.config = preset.config;
    m.preprocess = preset.preprocess;
  }
  const bool file_fc_norm = m.config.fc_norm;
  // The file's tensors decide the position embedding: a learned one cannot become fixed, nor appear from nothing.
  if (options.init && options.overrides.pos_embed && *options.overrides.pos_embed != m.config.pos_embed)
    throw std::invalid_argument("--pos-embed " + to_string(*options.overrides.pos_embed) +
                                ": the starting model (--init) has pos_embed '" + to_string(m.config.pos_embed) +
                                "'; leave --pos-embed out when fine-tuning");
  apply_overrides(m.config, options.overrides);
  // The file's weights decide where its final norm sits (norm or fc_norm): --global-pool then changes only the
  // pooling, as timm's reset_classifier does.
  if (options.init) m.config.fc_norm = file_fc_norm;
  m.config.num_classes = static_cast<int64_t>(class_names.size());
  if (m.config.global_pool == GlobalPool::None)
    throw std::invalid_argument(
        "model options: global_pool '' (no pooling) gives one output per token, not per "
        "image; choose a pool with --global-pool");
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

  auto init = load_checkpoint(*options.init, metadata.config.image_size);
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
