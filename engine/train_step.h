#pragma once
// One training step's forward and backward pass: shared by `vit train` and `vit bench`, so the benchmark times
// exactly the arithmetic that training does.

#include <ATen/core/Tensor.h>

#include "models/vision_transformer.h"

namespace vit::engine {

struct ForwardBackward {
  at::Tensor loss;    // scalar, float32, on the model's device: not read back here, so no host sync
  at::Tensor logits;  // (B, num_classes), detached
};

// Forward under bf16 autocast when `bf16`, soft-target cross-entropy against `targets` (B, num_classes), and the
// backward pass of loss / `loss_divisor` (the micro-batch count under gradient accumulation).
ForwardBackward forward_backward(VisionTransformer& model, const at::Tensor& images, const at::Tensor& targets,
                                 bool bf16, double loss_divisor = 1.0);

}  // namespace vit::engine
