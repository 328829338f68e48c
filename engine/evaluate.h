#pragma once
// Loss and top-k accuracy of a model over a loader's epoch.

#include <cstdint>
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
  std::vector<data::DecodeFailure> failures;  // files that failed for the first time
};

// Runs the model in eval mode without gradients (restoring its previous mode after), optionally under bf16 autocast.
EvalResult evaluate(VisionTransformer& model, data::Loader& loader, const c10::Device& device, bool bf16);

// Number of rows of `logits` (B, K) whose label is among the k highest scores.
int64_t count_top_k(const at::Tensor& logits, const at::Tensor& labels, int64_t k);

}  // namespace vit::engine
