#include "engine/mixup.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include <ATen/TensorOperators.h>
#include <ATen/ops/full.h>
#include <ATen/ops/log_softmax.h>

namespace vit::engine {
namespace {

double sample_beta(double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  const double x = gamma(rng);
  const double y = gamma(rng);
  return x + y > 0.0 ? x / (x + y) : 0.5;
}

}  // namespace

void MixupOptions::validate() const {
  if (mixup_alpha < 0.0) throw std::invalid_argument("mixup alpha must be >= 0, got " + std::to_string(mixup_alpha));
  if (cutmix_alpha < 0.0) throw std::invalid_argument("cutmix alpha must be >= 0, got " + std::to_string(cutmix_alpha));
  if (!(prob >= 0.0 && prob <= 1.0)) throw std::invalid_argument("mixup prob must be in [0, 1]");
  if (!(switch_prob >= 0.0 && switch_prob <= 1.0)) throw std::invalid_argument("mixup switch prob must be in [0, 1]");
}

at::Tensor smooth_one_hot(const at::Tensor& labels, int64_t num_classes, double smoothing) {
  const double off = smoothing / static_cast<double>(num_classes);
  auto targets = at::full({labels.size(0), num_classes}, off, labels.options().dtype(at::kFloat));
  return targets.scatter_(1, labels.unsqueeze(1), 1.0 - smoothing + off);
}

MixedBatch mix_batch(const at::Tensor& images, const at::Tensor& labels, int64_t num_classes, double smoothing,
                     const MixupOptions& options, std::mt19937_64& rng) {
  MixedBatch out{images, smooth_one_hot(labels, num_classes, smoothing), 1.0};
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (!options.enabled() || images.size(0) < 2 || uniform(rng) >= options.prob) return out;

  const bool use_cutmix =
      options.cutmix_alpha > 0.0 && (options.mixup_alpha <= 0.0 || uniform(rng) < options.switch_prob);
  double lambda = sample_beta(use_cutmix ? options.cutmix_alpha : options.mixup_alpha, rng);
  const auto flipped = images.flip(0);  // (B, C, H, W): partner of sample i is B-1-i
  if (use_cutmix) {
    // A box of area (1 - lambda) at a random centre, clipped to the image; lambda is then corrected to the
    // area actually kept, as timm does.
    const int64_t h = images.size(2);
    const int64_t w = images.size(3);
    const double cut = std::sqrt(1.0 - lambda);
    const auto cut_h = static_cast<int64_t>(static_cast<double>(h) * cut);
    const auto cut_w = static_cast<int64_t>(static_cast<double>(w) * cut);
    const auto cy = std::uniform_int_distribution<int64_t>(0, h - 1)(rng);
    const auto cx = std::uniform_int_distribution<int64_t>(0, w - 1)(rng);
    const int64_t y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, h);
    const int64_t y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, h);
    const int64_t x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, w);
    const int64_t x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, w);
    out.images = images.clone();
    if (y1 > y0 && x1 > x0) {
      out.images.narrow(2, y0, y1 - y0)
          .narrow(3, x0, x1 - x0)
          .copy_(flipped.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
    }
    lambda = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(h * w);
  } else {
    out.images = images * lambda + flipped * (1.0 - lambda);
  }
  out.targets = out.targets * lambda + out.targets.flip(0) * (1.0 - lambda);
  out.lambda = lambda;
  return out;
}

at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  return -(targets * at::log_softmax(logits.to(at::kFloat), 1)).sum(1).mean();
}

}  // namespace vit::engine
