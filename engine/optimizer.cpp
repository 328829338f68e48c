#include "engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <ATen/TensorOperators.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include "engine/adamw_update.h"

// PyTorch 2.1 and later have a fused multi-tensor AdamW kernel for CUDA.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define VIT_HAVE_FUSED_ADAMW 1
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/zeros.h>
#else
#define VIT_HAVE_FUSED_ADAMW 0
#endif

namespace vit::engine {

std::vector<NamedParameter> named_parameters(const torch::nn::Module& module) {
  std::vector<NamedParameter> out;
  for (const auto& item : module.named_parameters()) out.push_back({item.key(), item.value()});
  return out;
}

bool AdamW::uses_weight_decay(const std::string& name, const at::Tensor& tensor) {
  // timm's VisionTransformer.no_weight_decay(), plus every vector (norms, biases, layer scales).
  return tensor.dim() > 1 && name != "cls_token" && name != "reg_token" && name != "dist_token" && name != "pos_embed";
}

AdamW::AdamW(std::vector<NamedParameter> parameters, AdamWOptions options) : options_(options) {
  for (auto& p : parameters) {
    const bool decay = uses_weight_decay(p.name, p.tensor);
    auto exp_avg = at::zeros_like(p.tensor);
    auto exp_avg_sq = at::zeros_like(p.tensor);
    slots_.push_back({std::move(p), decay, exp_avg, exp_avg_sq});
  }
}

void AdamW::zero_grad() {
  for (auto& slot : slots_) {
    auto& grad = slot.parameter.tensor.mutable_grad();
    if (grad.defined()) grad.zero_();
  }
}

#if VIT_HAVE_FUSED_ADAMW
// CUDA: one multi-tensor kernel per weight-decay group instead of five kernels per parameter; with ~150
// parameters a step otherwise launches ~750 small kernels. Same update as the loop below.
void AdamW::fused_step(double lr) {
  if (!step_count_.defined()) step_count_ = at::zeros({}, slots_.front().parameter.tensor.options().dtype(at::kFloat));
  step_count_.fill_(static_cast<double>(steps_));
  for (const bool decay : {true, false}) {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (auto& slot : slots_) {
      if (slot.decay != decay || !slot.parameter.tensor.grad().defined()) continue;
      params.push_back(slot.parameter.tensor);
      grads.push_back(slot.parameter.tensor.grad());
      exp_avgs.push_back(slot.exp_avg);
      exp_avg_sqs.push_back(slot.exp_avg_sq);
      steps.push_back(step_count_);  // the kernel reads the step count for its bias corrections
    }
    if (params.empty()) continue;
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, options_.beta1,
                      options_.beta2, decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
}
#endif

// adamw_update.h's single pass: float32 CPU tensors, contiguous. (Under autocast the parameters stay float32.)
bool AdamW::in_one_pass(const Slot& slot, const at::Tensor& grad) {
  const at::Tensor& param = slot.parameter.tensor;
  for (const at::Tensor* t : {&param, &grad, &slot.exp_avg, &slot.exp_avg_sq}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous()) return false;
  }
  return grad.numel() == param.numel() && slot.exp_avg.numel() == param.numel();
}

void AdamW::step(double lr) {
  // A named range in profiles (vit bench --trace): the single pass has no operators of its own to show.
  RECORD_FUNCTION("vit::AdamW::step", std::vector<c10::IValue>());
  c10::NoGradGuard no_grad;
  ++steps_;
#if VIT_HAVE_FUSED_ADAMW
  if (!slots_.empty() && slots_.front().parameter.tensor.is_cuda()) return fused_step(lr);
#endif
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (auto& slot : slots_) {
    at::Tensor& param = slot.parameter.tensor;
    const at::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    const bool decays = slot.decay && options_.weight_decay != 0.0;
    const double decay_factor = decays ? 1.0 - lr * options_.weight_decay : 1.0;
    if (in_one_pass(slot, grad)) {
      const AdamWCoefficients k{static_cast<float>(decay_factor),
                                static_cast<float>(1.0 - options_.beta1),
                                static_cast<float>(options_.beta2),
                                static_cast<float>(1.0 - options_.beta2),
                                static_cast<float>(bias_correction2_sqrt),
                                static_cast<float>(options_.eps),
                                static_cast<float>(step_size)};
      adamw_update(param.data_ptr<float>(), grad.data_ptr<float>(), slot.exp_avg.data_ptr<float>(),
                   slot.exp_avg_sq.data_ptr<float>(), param.numel(), k);
      continue;
    }
    // The same sequence of operations as torch.optim.AdamW (single-tensor path).
    if (decays) param.mul_(decay_factor);
    slot.exp_avg.lerp_(grad, 1.0 - options_.beta1);
    slot.exp_avg_sq.mul_(options_.beta2).addcmul_(grad, grad, 1.0 - options_.beta2);
    const auto denom = (slot.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options_.eps);
    param.addcdiv_(slot.exp_avg, denom, -step_size);
  }
}

TensorMap AdamW::state() const {
  TensorMap state;
  for (const auto& slot : slots_) {
    state.emplace("exp_avg." + slot.parameter.name, slot.exp_avg);
    state.emplace("exp_avg_sq." + slot.parameter.name, slot.exp_avg_sq);
  }
  return state;
}

void AdamW::load_state(const TensorMap& state, int64_t steps) {
  for (const auto& slot : slots_) {  // check all before changing anything
    for (const std::string prefix : {"exp_avg.", "exp_avg_sq."}) {
      auto it = state.find(prefix + slot.parameter.name);
      if (it == state.end()) throw std::runtime_error("optimizer state lacks '" + prefix + slot.parameter.name + "'");
      if (it->second.sizes() != slot.parameter.tensor.sizes())
        throw std::runtime_error("optimizer state '" + prefix + slot.parameter.name + "' has the wrong shape");
    }
  }
  c10::NoGradGuard no_grad;
  for (auto& slot : slots_) {
    slot.exp_avg.copy_(state.at("exp_avg." + slot.parameter.name));
    slot.exp_avg_sq.copy_(state.at("exp_avg_sq." + slot.parameter.name));
  }
  steps_ = steps;
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& parameters, double max_norm) {
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  }
  if (norms.empty()) return {};
  const at::Tensor total = at::stack(norms).norm();
  // min(1, max_norm / (norm + 1e-6)) multiplies every gradient: a no-op below the limit, with no branch on a value
  // the host would have to wait for.
  const at::Tensor scale = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : parameters) {
    if (p.grad().defined()) p.grad().mul_(scale.to(p.grad().scalar_type()));
  }
  return total;
}

double LrSchedule::at(int64_t step, double warmup_time, double decay_time) const {
  if (warming_up(step, warmup_time)) {
    return base_lr * std::max(static_cast<double>(step + 1) / static_cast<double>(warmup_steps), warmup_time);
  }
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
  const double by_steps = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps);
  const double progress = std::clamp(std::max(by_steps, decay_time), 0.0, 1.0);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace vit::engine
