#pragma once
// Training targets: label smoothing, and timm's batch-level Mixup / CutMix, as soft target distributions
// with a soft-target cross-entropy (which equals label-smoothed cross-entropy when nothing is mixed).

#include <cstdint>
#include <random>

#include <ATen/core/Tensor.h>

namespace vit::engine {

struct MixupOptions {
  double mixup_alpha = 0.0;   // Beta(alpha, alpha) mixing of whole images; 0 = off
  double cutmix_alpha = 0.0;  // Beta(alpha, alpha) box pasting; 0 = off
  double prob = 1.0;          // probability of mixing a batch at all
  double switch_prob = 0.5;   // with both on: probability of CutMix rather than Mixup
  bool enabled() const { return mixup_alpha > 0.0 || cutmix_alpha > 0.0; }
  void validate() const;  // std::invalid_argument naming the field
};

// (B) labels -> (B, num_classes): 1 - smoothing + smoothing / num_classes on the label, smoothing / num_classes
// elsewhere.
at::Tensor smooth_one_hot(const at::Tensor& labels, int64_t num_classes, double smoothing);

struct MixedBatch {
  at::Tensor images;    // (B, C, H, W)
  at::Tensor targets;   // (B, num_classes), rows sum to 1
  double lambda = 1.0;  // weight of the original images (1 = unmixed)
};

// Mixes each image with the batch's mirror image (index B-1-i), as timm's 'batch' mode. `rng` decides
// whether, which and how much.
MixedBatch mix_batch(const at::Tensor& images, const at::Tensor& labels, int64_t num_classes, double smoothing,
                     const MixupOptions& options, std::mt19937_64& rng);

// mean over the batch of -sum(targets * log_softmax(logits)); computed in float32 whatever the logits' dtype.
at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace vit::engine
