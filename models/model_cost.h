#pragma once
// Size and cost of an architecture, computed from its config without building it.

#include <cstdint>
#include <string>

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

// Refuses a model whose parameters, at `bytes_per_parameter` each, need more than the machine's physical memory,
// before any of it is allocated (a model built far too large, --depth 100000, would otherwise be killed by the
// kernel's OOM killer). `purpose` says what the bytes are for ("float32 weights"). std::invalid_argument.
void check_parameters_fit_in_memory(const ViTConfig& config, int bytes_per_parameter, const std::string& purpose);

}  // namespace vit
