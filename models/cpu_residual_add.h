#pragma once
// A block's residual add as CPU bf16 autocast leaves it: the float32 residual stream plus a bf16 branch (the
// attention's or the MLP's last linear layer), summed in float32. LibTorch 1.13 first copies the bf16 operand
// to a float32 temporary and then adds: three tensors read and two written, where this kernel reads the two
// operands and writes the sum once, widening bf16 in registers (vectorised, its width chosen at run time:
// cpu_vector_width.h). The sum is exactly LibTorch's: bf16 widens to float32 exactly and each element is one
// float32 addition. Measured on vit_mini_patch4_32's blocks (batch 256, 65 tokens of 128, 2 threads, a trace of
// one inference step): LibTorch's copy and add ~1.9 ms per residual, ~15% of a bf16 inference step.

#include <ATen/core/Tensor.h>

namespace vit::cpu {

// True when residual_add can run: x a contiguous float32 CPU tensor, branch a contiguous bf16 CPU tensor of the
// same sizes, and no TorchScript trace being recorded (a trace cannot see this function).
bool residual_add_available(const at::Tensor& x, const at::Tensor& branch);

// x + branch in float32; differentiable (x's gradient is the output's, branch's that gradient rounded to bf16, as
// autograd gives a bf16 input).
at::Tensor residual_add(const at::Tensor& x, const at::Tensor& branch);

}  // namespace vit::cpu
