#pragma once
// Named model presets in timm's style: `vit_base_patch16_224()` and friends, plus small ones that train in
// minutes on a 2-core CPU.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/vit_config.h"

namespace vit {

struct ModelPreset {
  ViTConfig config;
  PreprocessConfig preprocess;
};

// ImageNet-sized models with timm's architectures and timm's augreg preprocessing
// (bicubic, crop_pct 0.9, mean = std = 0.5).
ModelPreset vit_tiny_patch16_224();
ModelPreset vit_small_patch16_224();
ModelPreset vit_base_patch16_224();
ModelPreset vit_base_patch32_224();
ModelPreset vit_large_patch16_224();

// Small models for small images, no center crop (such images are already framed): 4x4 = 16 patches of 7x7
// pixels on 28x28 grayscale (Fashion-MNIST; few tokens keep a 2-core CPU at thousands of images/s), and 8x8 = 64
// patches of 4x4 on 32x32 RGB (CIFAR-sized).
ModelPreset vit_mini_patch7_28();
ModelPreset vit_mini_patch4_32();

// vit's presets above, then timm's registered architectures (timm_architectures.h) with their default
// preprocessing; std::nullopt for an unknown name. Throws std::invalid_argument naming the option for a timm
// architecture vit does not build.
std::optional<ModelPreset> find_preset(std::string_view name);
std::vector<std::string> preset_names();  // vit's own
// "unknown model 'x': neither one of vit's presets (...) nor one of timm's architectures (vit info --list)".
std::string unknown_preset_message(std::string_view name);

}  // namespace vit
