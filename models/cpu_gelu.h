#pragma once
// The MLP's activation, exact (erf) GELU as timm's nn.GELU(), on float32 or bf16 CPU tensors: one vectorised pass
// forward and one backward (their width chosen at run time, cpu_vector_width.h), computed in float32 and rounded to
// the tensor's type once. LibTorch 1.13's CPU backward works at the AVX2 level and, in bf16, converts between every
// operation: on the main job's fc1 output (1,664 tokens of 512, one thread) its forward took 0.76 ms and its
// backward 1.75 ms, a tenth of a training step. erf(x / sqrt 2) comes from the tail function
// erfc(z) ~ t (a1 + t (a2 + ... + t a5)) e^(-z^2), t = 1 / (1 + p z) (Abramowitz and Stegun 7.1.26, absolute error
// under 1.5e-7, the approximation LibTorch's own vectorised erf uses); the backward's
// d/dx = Phi(x) + x e^(-x^2/2) / sqrt(2 pi) shares its exponential. Values: within float32 rounding of that error
// of LibTorch's (a NaN or an infinity gives what LibTorch's gives).

#include <ATen/core/Tensor.h>

namespace vit::cpu {

// True when gelu can run: x a contiguous float32 or bf16 CPU tensor, and no TorchScript trace being recorded (a
// trace cannot see this function).
bool gelu_available(const at::Tensor& x);

// x * Phi(x) (Phi the standard normal distribution function), in x's type; differentiable (twice too: with
// create_graph the gradient is LibTorch's gelu_backward).
at::Tensor gelu(const at::Tensor& x);

}  // namespace vit::cpu
