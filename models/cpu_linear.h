#pragma once
// A linear layer, y = x W^T + b, whose float32 CPU products go through oneDNN (cpu_gemm.h says why); anywhere
// else, without a bias, and whenever cpu::use_onednn() says no, it is at::linear. Differentiable.

#include <ATen/core/Tensor.h>

namespace vit {

// x (..., K), weight (N, K), bias (N) or undefined -> (..., N)
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace vit
