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

}  // namespace vit
