#pragma once
// AdamW with timm's parameter grouping, and the learning-rate schedule. Our own AdamW rather than
// torch::optim::AdamW: its state is then ours to save and restore exactly (LibTorch 1.13's optimizer
// serialisation does not restore group options), and the update is the same arithmetic as PyTorch's.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "models/safetensors.h"

namespace vit::engine {

struct NamedParameter {
  std::string name;
  at::Tensor tensor;
};

// A module's parameters under their state-dict names, as AdamW takes them.
std::vector<NamedParameter> named_parameters(const torch::nn::Module& module);

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.05;
};

class AdamW {
 public:
  // Biases, norm weights (all 1-D parameters), `cls_token` and `pos_embed` get no weight decay, as in timm.
  AdamW(std::vector<NamedParameter> parameters, AdamWOptions options);

  void step(double lr);  // parameters without a gradient are skipped
  void zero_grad();
  int64_t steps() const { return steps_; }

  // Moments and step count, keyed by parameter name ("exp_avg.blocks.0.attn.qkv.weight", ...).
  TensorMap state() const;
  void load_state(const TensorMap& state, int64_t steps);  // throws naming a missing or misshapen tensor

  static bool uses_weight_decay(const std::string& name, const at::Tensor& tensor);

 private:
  struct Slot {
    NamedParameter parameter;
    bool decay;
    at::Tensor exp_avg;
    at::Tensor exp_avg_sq;
  };
  void fused_step(double lr);  // CUDA with PyTorch >= 2.1
  static bool in_one_pass(const Slot& slot, const at::Tensor& grad);  // CPU: adamw_update.h

  AdamWOptions options_;
  std::vector<Slot> slots_;
  int64_t steps_ = 0;
  at::Tensor step_count_;  // steps_ on the parameters' device, for the fused kernel
};

// Scales the gradients of `parameters` down so that their global L2 norm is at most `max_norm`, as PyTorch's
// torch.nn.utils.clip_grad_norm_ does; returns the norm before clipping as a 0-d tensor on the gradients' device
// (undefined when no parameter has a gradient). The gradients must all be on one device, as a model's are.
// Unlike LibTorch 1.13's clip_grad_norm_, which returns a double, it never reads the norm back to the host: on a
// GPU that read would wait for the whole step to finish, every step.
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& parameters, double max_norm);

// Linear warm-up from ~0 to `base_lr` over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`. With a
// time limit (time_budget.h) each phase may also advance by time: `warmup_time` and `decay_time` are the
// fractions of their time spans done; whichever of steps and time is further along counts.
struct LrSchedule {
  double base_lr = 5e-4;
  double min_lr = 1e-6;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  bool warming_up(int64_t step, double warmup_time = 0.0) const { return step < warmup_steps && warmup_time < 1.0; }
  double at(int64_t step, double warmup_time = 0.0, double decay_time = 0.0) const;
};

}  // namespace vit::engine
