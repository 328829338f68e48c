#pragma once
// A linear layer, y = x W^T + b, whose float32 CPU products go through oneDNN (cpu_gemm.h says why), and whose
// forward under CPU bf16 autocast is one oneDNN matmul with the bias added in it, on CPUs with native bf16 (the
// values and gradients LibTorch's autocast linear gives). Anywhere else, without a bias, and whenever neither
// route applies, it is at::linear. Differentiable.

#include <ATen/core/Tensor.h>

namespace vit {

// x (..., K), weight (N, K), bias (N) or undefined -> (..., N)
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace vit
