#pragma once
// A ViT block's LayerNorm as its linear layer takes it under CPU bf16 autocast: the norm over the last dimension of
// a float32 tensor, written as bf16. LibTorch runs autocast's layer_norm in float32 and the linear layer then casts
// its output to bf16: two passes over the tokens, the norm's at LibTorch 1.13's AVX2 level. This is one vectorised
// pass (its width chosen at run time, cpu_vector_width.h): each row's mean, then its variance from the deviations
// (as LibTorch, no cancellation), in float32, the output rounded to bf16 once, so the values are LibTorch's up to
// the order of float32 sums. The backward takes the gradient in bf16 (as autograd hands it to a bf16 output) and
// returns float32 gradients for the input, weight and bias in two passes per row. Measured on the main job's shapes
// (1,664 tokens of 128, one thread): forward and cast 0.22 ms with LibTorch's kernels, 0.06 ms here.

#include <ATen/core/Tensor.h>

namespace vit::cpu {

// Under CPU bf16 autocast (vit::bf16_autocast(kCPU), autocast_state.h) a layer_norm_to_bf16 output is what the
// next linear layer would compute with.

// True when layer_norm_to_bf16 can run: x a float32 CPU tensor, weight and bias float32 CPU vectors of x's last
// size, and no TorchScript trace being recorded (a trace cannot see this function).
bool layer_norm_to_bf16_available(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// layer_norm(x, weight, bias, eps) over the last dimension, rounded to bf16; differentiable (twice too: with
// create_graph the gradients are LibTorch operators).
at::Tensor layer_norm_to_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);

}  // namespace vit::cpu
