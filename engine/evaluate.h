#pragma once
// Loss, top-k accuracy and the confusion matrix of a model over a loader's epoch.

#include <cstdint>
#include <functional>
#include <vector>

#include <c10/core/Device.h>

#include "data/loader.h"
#include "models/vision_transformer.h"

namespace vit::engine {

struct EvalResult {
  double loss = 0.0;  // mean cross-entropy (no label smoothing)
  double top1 = 0.0;
  double top5 = 0.0;  // top-min(5, classes)
  int64_t count = 0;  // images evaluated (files that failed to decode are not counted)
  int64_t num_classes = 0;
  std::vector<int64_t> confusion;  // num_classes x num_classes, row = true class, column = predicted class
  std::vector<data::DecodeFailure> failures;  // files that failed for the first time
};

// (B, C, H, W) images on the device -> (B, K) logits.
using ForwardFn = std::function<at::Tensor(const at::Tensor& images)>;

// Runs `forward` over the loader's epoch without gradients, optionally under bf16 autocast. Labels must be
// class indices of the model's output.
EvalResult evaluate(const ForwardFn& forward, data::Loader& loader, const c10::Device& device, bool bf16);

// The same for a model being trained: in eval mode, restoring its previous mode after.
EvalResult evaluate(VisionTransformer& model, data::Loader& loader, const c10::Device& device, bool bf16);

// Number of rows of `logits` (B, K) whose label is among the k highest scores.
int64_t count_top_k(const at::Tensor& logits, const at::Tensor& labels, int64_t k);

}  // namespace vit::engine
