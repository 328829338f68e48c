#pragma once
// LayerNorm over the last dimension on CPU, for float32 tensors (the residual stream, also under bf16 autocast):
// each row's mean and variance in two passes over the row while it is in cache, the vector width following
// cpu_lanes.h, and a backward that computes the input, weight and bias gradients in one pass, the weight and bias
// sums kept per thread. Why: LibTorch 1.13's CPU LayerNorm (Welford moments at its AVX2 level, a backward in
// several passes) took about a sixth of a training step of the main job's model here (README, "Performance").

#include <ATen/core/Tensor.h>

namespace vit::cpu {

// True when layer_norm can run: x, weight and bias float32 CPU tensors, the normalised width (x's last dimension,
// the weight's and bias's length) a multiple of 16 (every ViT width: rows are whole vectors), and no TorchScript
// trace being recorded (a trace cannot see this function: it must go through LibTorch's operators).
bool layer_norm_available(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// (x - mean) / sqrt(var + eps) * weight + bias over x's last dimension (var the biased variance, as
// torch.nn.LayerNorm); differentiable in x, weight and bias.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);

}  // namespace vit::cpu
