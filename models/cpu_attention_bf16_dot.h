#pragma once
// Multi-head self-attention of a bf16 qkv projection on AVX512-BF16's dot-product instruction, one (image, head) at a
// time, as a CPU model runs it under bf16 autocast where the CPU has that instruction (cpu_attention_bf16.h
// dispatches). The per-head kernels, and why they beat LibTorch's batched products, are in
// cpu_bf16_dot_attention_head.h. Differentiable once (a create_graph backward is not supported); no dropout.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

// Whether this CPU runs the kernel and it takes heads of `head_dim` channels (a multiple of 16).
bool cpu_attention_bf16_dot_available(int64_t head_dim);

// qkv (B, N, 3 * D) bf16 on the CPU, laid out as timm's Attention.qkv output: (B, N, 3, heads, D / heads) ->
// (B, N, D) bf16. The caller checks the layout (cpu_attention_bf16_available) and the CPU (above).
at::Tensor cpu_attention_bf16_dot(const at::Tensor& qkv, int64_t heads);

}  // namespace vit
