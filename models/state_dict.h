#pragma once
// Moving named tensors in and out of a module, with the strictness a weights loader needs: every tensor the
// architecture has must be supplied with the right shape, and nothing else may be.

#include <string>

#include <torch/nn/module.h>

#include "models/safetensors.h"

namespace vit {

// Parameters and buffers by their dotted names (`blocks.0.attn.qkv.weight`), sharing storage with the module.
TensorMap state_dict(const torch::nn::Module& module);

// Copies `tensors` into the module's parameters and buffers (converting floating-point dtypes, e.g. F16 or
// BF16 checkpoints into an F32 model). Throws std::runtime_error prefixed by `source` (usually the file name)
// naming every missing tensor, the first unexpected one, or the first with the wrong shape or a non-float
// dtype; the module is left unchanged when anything is wrong.
void load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const std::string& source);

}  // namespace vit
