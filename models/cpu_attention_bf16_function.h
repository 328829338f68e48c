#pragma once
// What vit's three bf16 attention kernels (cpu_attention_bf16.h) share around their arithmetic: the autograd
// function that saves qkv and the kernel's probabilities for the backward pass and refuses a create_graph backward by
// name, and the inference path that keeps no probabilities. Include it in those kernels' .cpp files only.
//
// A Kernel provides:
//   static constexpr const char* kName;  // the name --trace's timeline shows, "vit::attention_bf16..."
//   static at::Tensor empty_probs(const at::Tensor& qkv, const QkvLayout& s);  // in the kernel's own layout
//   // out (B, N, D) bf16 from a contiguous qkv; the probabilities written to `probs`, or (null) kept to itself
//   static at::Tensor forward(const at::Tensor& qkv, const QkvLayout& s, const at::Tensor* probs);
//   // the qkv gradient from the output's (contiguous bf16) and the saved probabilities
//   static at::Tensor backward(const at::Tensor& qkv, const at::Tensor& probs, const QkvLayout& s,
//                              const at::Tensor& grad_out);

#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <vector>

#include "models/qkv_layout.h"

namespace vit {

template <typename Kernel>
class Bf16AttentionFunction : public torch::autograd::Function<Bf16AttentionFunction<Kernel>> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv_in, int64_t heads) {
    RECORD_FUNCTION(Kernel::kName, std::vector<c10::IValue>());
    const at::Tensor qkv = qkv_in.contiguous();
    const QkvLayout s = QkvLayout::of(qkv, heads);
    const at::Tensor probs = Kernel::empty_probs(qkv, s);
    at::Tensor out = Kernel::forward(qkv, s, &probs);
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // A second derivative would silently miss this function's part.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "cpu_attention_bf16: a differentiable backward (create_graph, for second derivatives) is not "
                "supported");
    const auto saved = ctx->get_saved_variables();
    const QkvLayout s = QkvLayout::of(saved[0], ctx->saved_data["heads"].toInt());
    const at::Tensor grad_out = grads[0].to(at::kBFloat16).contiguous();  // (B, N, D)
    return {Kernel::backward(saved[0], saved[1], s, grad_out), at::Tensor()};
  }
};

// The kernel on qkv: through autograd where a graph is recorded; otherwise its forward alone, which keeps no
// probabilities for a backward pass (one layer's B * heads * N^2 values less at peak).
template <typename Kernel>
at::Tensor run_bf16_attention(const at::Tensor& qkv, int64_t heads) {
  if (at::GradMode::is_enabled() && qkv.requires_grad()) return Bf16AttentionFunction<Kernel>::apply(qkv, heads);
  RECORD_FUNCTION(Kernel::kName, std::vector<c10::IValue>());
  const at::Tensor contiguous = qkv.contiguous();
  return Kernel::forward(contiguous, QkvLayout::of(contiguous, heads), nullptr);
}

}  // namespace vit
