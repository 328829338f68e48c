#pragma once
// The hand-over from the loader's plain buffers to LibTorch, on the consumer's thread.

#include <ATen/core/Tensor.h>

#include "data/loader.h"

namespace vit::data {

struct TensorBatch {
  at::Tensor images;  // (B, C, H, W) float32, sharing the batch's buffer (no copy)
  at::Tensor labels;  // (B) int64
};

TensorBatch to_tensors(Batch&& batch, int channels, int64_t image_size);

}  // namespace vit::data
