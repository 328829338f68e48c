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

#include <utility>

namespace vit::cpu {

// Under CPU bf16 autocast (vit::bf16_autocast(kCPU), autocast_state.h) a layer_norm_to_bf16 output is what the
// next linear layer would compute with.

// True when layer_norm_to_bf16 can run: x a float32 CPU tensor, weight and bias float32 CPU vectors of x's last
// size, and no TorchScript trace being recorded (a trace cannot see this function).
bool layer_norm_to_bf16_available(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// layer_norm(x, weight, bias, eps) over the last dimension, rounded to bf16; differentiable (twice too: with
// create_graph the gradients are LibTorch operators).
at::Tensor layer_norm_to_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps);

// A pre-norm block's residual add and the norm that follows it, in one pass per row: x + branch in float32 (x the
// float32 residual stream, branch the bf16 output of the attention's last linear layer under autocast), then its
// norm rounded to bf16 for the MLP's first layer. Apart, the add writes the sum and the norm reads it back, and in the
// backward LibTorch's engine adds the norm's gradient of the sum to the next add's in a pass of its own, then the add
// casts it to bf16 for the branch in another; here the sum's two gradients are added and written in float32 and bf16
// as the norm's backward produces them, the sum recomputed from x and branch in cache (they are saved rather than the
// sum: x is kept for the block's first norm anyway, and branch is half the sum's size). Values: the add's exactly, the
// norm's as layer_norm_to_bf16's.

// True when residual_add_layer_norm_to_bf16 can run: x a contiguous float32 CPU tensor, branch a contiguous bf16
// CPU tensor of x's sizes, weight and bias as layer_norm_to_bf16 takes them.
bool residual_add_layer_norm_to_bf16_available(const at::Tensor& x, const at::Tensor& branch, const at::Tensor& weight,
                                               const at::Tensor& bias);

// {x + branch (float32), layer_norm(x + branch, weight, bias, eps) rounded to bf16}; differentiable (twice too: with
// create_graph the gradients are LibTorch operators).
std::pair<at::Tensor, at::Tensor> residual_add_layer_norm_to_bf16(const at::Tensor& x, const at::Tensor& branch,
                                                                  const at::Tensor& weight, const at::Tensor& bias,
                                                                  double eps);

}  // namespace vit::cpu
