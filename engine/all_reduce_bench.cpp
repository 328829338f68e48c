#include "engine/all_reduce_bench.h"

#include <ATen/ops/ones_like.h>

#include <algorithm>
#include <chrono>

#include "engine/data_parallel.h"
#include "models/vision_transformer.h"

namespace vit::engine {

double AllReduceTiming::median() const {
  if (seconds.empty()) return 0.0;
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

AllReduceTiming time_gradient_all_reduce(Collectives& group, const ViTConfig& config, int64_t repeats,
                                         const c10::Device& device) {
  VisionTransformer model(config);
  model->to(device);
  std::vector<at::Tensor> parameters = model->parameters();
  AllReduceTiming timing;
  timing.backend = group.backend();
  timing.shared_memory = group.sums_in_shared_memory();
  timing.world_size = group.world_size();
  for (auto& p : parameters) {
    p.mutable_grad() = at::ones_like(p);
    timing.floats += p.numel();
  }
  GradientAverager averager(parameters);
  for (int64_t i = 0; i < 3 + repeats; ++i) {
    group.barrier();  // every rank starts together: the time is the collective's, not a straggler's
    const auto start = std::chrono::steady_clock::now();
    averager.average(group, 1);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= 3) timing.seconds.push_back(seconds);
  }
  return timing;
}

}  // namespace vit::engine
