#include "engine/data_parallel.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/GradMode.h>

#include <stdexcept>

namespace vit::engine {

void broadcast_module(Collectives& group, torch::nn::Module& module) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = module.parameters();
  for (auto& buffer : module.buffers()) tensors.push_back(buffer);
  group.broadcast(tensors);
}

GradientAverager::GradientAverager(std::vector<at::Tensor> parameters, int64_t side_values, int64_t bucket_bytes)
    : parameters_(std::move(parameters)), side_values_(side_values), bucket_bytes_(bucket_bytes) {
  for (const auto& p : parameters_) {
    if (p.scalar_type() != parameters_.front().scalar_type() || p.device() != parameters_.front().device())
      throw std::invalid_argument("gradient averaging needs parameters of one dtype on one device");
  }
}

void GradientAverager::make_buckets() {
  // Without parameters (all frozen) only the counts and side values travel, in float32 on the CPU.
  const auto options = parameters_.empty() ? at::TensorOptions(at::kFloat) : parameters_.front().options();
  const auto element_bytes = static_cast<int64_t>(options.dtype().itemsize());
  std::vector<std::vector<Slot>> groups(1);
  std::vector<int64_t> sizes(1, 0);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (sizes.back() > 0 && (sizes.back() + parameters_[i].numel()) * element_bytes > bucket_bytes_) {
      groups.emplace_back();
      sizes.push_back(0);
    }
    groups.back().push_back({i, sizes.back(), at::Tensor()});
    sizes.back() += parameters_[i].numel();
  }
  // The last bucket also carries this rank's sample count, per parameter whether it has a gradient, and the side
  // values.
  sizes.back() += counts_size();
  for (size_t b = 0; b < groups.size(); ++b) {
    Bucket bucket{at::empty({sizes[b]}, options), std::move(groups[b])};
    for (auto& slot : bucket.slots) {
      const auto& parameter = parameters_[slot.parameter];
      slot.part = bucket.flat.narrow(0, slot.offset, parameter.numel()).view(parameter.sizes());
    }
    buckets_.push_back(std::move(bucket));
  }
}

bool GradientAverager::in_bucket(const at::Tensor& grad, const at::Tensor& part) {
  return grad.defined() && grad.data_ptr() == part.data_ptr() && grad.sizes() == part.sizes() &&
         grad.strides() == part.strides();
}

int64_t GradientAverager::counts_size() const { return 1 + static_cast<int64_t>(parameters_.size()) + side_values_; }

int64_t GradientAverager::average(Collectives& group, int64_t samples, std::vector<double>* side) {
  const auto given = side ? static_cast<int64_t>(side->size()) : 0;
  if (given != side_values_)
    throw std::invalid_argument("gradient averaging was set up for " + std::to_string(side_values_) +
                                " side values, given " + std::to_string(given));
  if (parameters_.empty() && side_values_ == 0) return samples;
  if (buckets_.empty()) make_buckets();
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> flats;
  for (auto& bucket : buckets_) {
    for (const auto& slot : bucket.slots) {
      const auto& grad = parameters_[slot.parameter].grad();
      if (!grad.defined()) {
        slot.part.zero_();
      } else if (!in_bucket(grad, slot.part)) {
        slot.part.copy_(grad);
      }  // else backward accumulated it there already
    }
    bucket.flat.mul_(static_cast<double>(samples));
    flats.push_back(bucket.flat);
  }
  // Counts are exact as floats up to 2^24 samples a step.
  auto counts = buckets_.back().flat.narrow(0, buckets_.back().flat.numel() - counts_size(), counts_size());
  std::vector<float> local(counts.numel());
  local[0] = static_cast<float>(samples);
  for (size_t i = 0; i < parameters_.size(); ++i) local[i + 1] = parameters_[i].grad().defined() ? 1.0f : 0.0f;
  const size_t side_at = 1 + parameters_.size();
  for (int64_t i = 0; i < side_values_; ++i) local[side_at + i] = static_cast<float>((*side)[i]);
  counts.copy_(at::from_blob(local.data(), {counts.numel()}, at::kFloat));
  group.all_reduce_sum(flats);

  const auto reduced_tensor = counts.to(at::kCPU, at::kFloat, false, true);  // a copy: the division must not touch it
  const float* reduced = reduced_tensor.data_ptr<float>();
  for (int64_t i = 0; i < side_values_; ++i) (*side)[i] = reduced[side_at + i];
  const auto total = static_cast<int64_t>(reduced[0]);
  for (auto& bucket : buckets_) {
    if (total > 0) {
      bucket.flat.div_(static_cast<double>(total));
    } else {
      bucket.flat.zero_();  // (the counts were read above)
    }
    for (const auto& slot : bucket.slots) {
      auto& parameter = parameters_[slot.parameter];
      // A parameter no rank has a gradient for stays without one (the optimizer skips it, as with one process).
      if (reduced[slot.parameter + 1] == 0.0f) {
        parameter.mutable_grad() = at::Tensor();
        continue;
      }
      // The gradient becomes (or stays) the parameter's view of the bucket: the next backward pass accumulates
      // into it in place (zero_grad zeroes it in place), and the next step neither copies it in nor back out.
      if (!in_bucket(parameter.grad(), slot.part)) parameter.mutable_grad() = slot.part;
    }
  }
  return total;
}

}  // namespace vit::engine
