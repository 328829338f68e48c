#pragma once
// Size and cost of an architecture, computed from its config without building it.

#include <cstdint>

#include "models/vit_config.h"

namespace vit {

// Number of learnable parameters (timm's count: vit_base_patch16_224 has 86,567,656).
int64_t count_parameters(const ViTConfig& config);

// Multiply-accumulates of one forward pass on one image: convolutions, linear layers and the two attention
// matrix products, the convention of timm's model tables (which call them GMACs); FLOPs are about twice this.
// Norms, softmax and GELU are left out, as there.
double count_macs(const ViTConfig& config);

// The same for a training forward pass, whose blocks see only the tokens PatchDropout keeps (patch_drop_rate).
// A training step (forward and backward) is about three times this.
double count_training_macs(const ViTConfig& config);

}  // namespace vit
