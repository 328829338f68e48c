#include "models/presets.h"

#include <array>
#include <stdexcept>
#include <utility>

#include "models/timm_architectures.h"

namespace vit {
namespace {

ModelPreset imagenet_preset(int64_t patch_size, int64_t embed_dim, int64_t depth, int64_t num_heads) {
  ModelPreset preset;
  preset.config.image_size = 224;
  preset.config.patch_size = patch_size;
  preset.config.embed_dim = embed_dim;
  preset.config.depth = depth;
  preset.config.num_heads = num_heads;
  return preset;  // other fields keep the ViTConfig / PreprocessConfig defaults, which are timm's
}

ModelPreset small_image_preset(int64_t image_size, int64_t patch_size, int64_t in_chans) {
  ModelPreset preset;
  ViTConfig& c = preset.config;
  c.image_size = image_size;
  c.patch_size = patch_size;
  c.in_chans = in_chans;
  c.num_classes = 10;
  c.embed_dim = 128;
  c.depth = 6;
  c.num_heads = 4;
  c.mlp_ratio = 2.0;
  PreprocessConfig& p = preset.preprocess;
  p.interpolation = Interpolation::Bilinear;
  p.crop_pct = 1.0;
  p.mean.assign(static_cast<size_t>(in_chans), 0.5);
  p.std.assign(static_cast<size_t>(in_chans), 0.5);
  return preset;
}

using PresetFn = ModelPreset (*)();
constexpr std::array<std::pair<std::string_view, PresetFn>, 7> kPresets{{
    {"vit_tiny_patch16_224", vit_tiny_patch16_224},
    {"vit_small_patch16_224", vit_small_patch16_224},
    {"vit_base_patch16_224", vit_base_patch16_224},
    {"vit_base_patch32_224", vit_base_patch32_224},
    {"vit_large_patch16_224", vit_large_patch16_224},
    {"vit_mini_patch7_28", vit_mini_patch7_28},
    {"vit_mini_patch4_32", vit_mini_patch4_32},
}};

}  // namespace

ModelPreset vit_tiny_patch16_224() { return imagenet_preset(16, 192, 12, 3); }
ModelPreset vit_small_patch16_224() { return imagenet_preset(16, 384, 12, 6); }
ModelPreset vit_base_patch16_224() { return imagenet_preset(16, 768, 12, 12); }
ModelPreset vit_base_patch32_224() { return imagenet_preset(32, 768, 12, 12); }
ModelPreset vit_large_patch16_224() { return imagenet_preset(16, 1024, 24, 16); }
ModelPreset vit_mini_patch7_28() { return small_image_preset(28, 7, 1); }
ModelPreset vit_mini_patch4_32() { return small_image_preset(32, 4, 3); }

std::optional<ModelPreset> find_preset(std::string_view name) {
  for (const auto& [preset_name, make] : kPresets) {
    if (preset_name == name) return make();
  }
  const TimmArchitecture* timm = find_timm_architecture(name);
  if (!timm) return std::nullopt;
  if (!timm->unsupported.empty())
    throw std::invalid_argument("architecture '" + timm->name + "': timm option " + timm->unsupported +
                                " is not supported by vit");
  return ModelPreset{timm->config, timm->preprocess};
}

std::string unknown_preset_message(std::string_view name) {
  std::string presets;
  for (const auto& entry : kPresets) presets += (presets.empty() ? "" : ", ") + std::string(entry.first);
  return "unknown model '" + std::string(name) + "': neither one of vit's presets (" + presets +
         ") nor one of timm's Vision Transformer architectures (vit info --list)";
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& entry : kPresets) names.emplace_back(entry.first);
  return names;
}

}  // namespace vit
