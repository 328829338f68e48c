#pragma once
// Multi-head self-attention from the fused qkv projection, softmax(q k^T / sqrt(Dh)) v, with its products on
// oneDNN (cpu_gemm.h says why) and split across cores by (image, head). q, k and v are read in place from the
// projection's output, the result is written in token order, and the backward pass writes the q, k and v
// gradients straight into one (B, N, 3 * D) tensor: none of the permute / unbind / stack / transpose copies of
// the operator-by-operator formulation (a tenth of a small model's training step). Differentiable; no dropout.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

// True when cpu_attention can run on `qkv` (cpu::use_onednn).
bool cpu_attention_available(const at::Tensor& qkv);

// qkv (B, N, 3 * D), laid out as timm's Attention.qkv output: (B, N, 3, heads, D / heads) -> (B, N, D)
at::Tensor cpu_attention(const at::Tensor& qkv, int64_t heads);

}  // namespace vit
