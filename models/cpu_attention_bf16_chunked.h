#pragma once
// Multi-head self-attention of a bf16 qkv projection, chunk of images by chunk of images, as a CPU model runs it
// under bf16 autocast for sequences longer than the one-pass kernel takes (cpu_attention_bf16.h dispatches).
// Why: oneDNN 2.6 multiplies bf16 on its fast kernel (brgemm) only when each head's matrices are dense, so
// LibTorch's operator path copies q, k, v out of the projection into head order, writes the scores and the
// probabilities of the whole batch, copies the output back to token order, and in the backward pass stacks the
// three gradients and permutes them again: passes over tensors far larger than the caches, each as slow as memory.
// Here each thread takes a few images at a time, sized so that their q, k, v and scores stay in its cache (about
// 1 MiB), gathers them into head order, runs the same batched products (LibTorch's, on oneDNN) and vit's softmax on
// them, and writes the output (the q, k, v gradients in the backward pass) straight into token order. Only the
// probabilities go to memory, for the backward pass, and only where autograd records one. The arithmetic is the
// operator path's: the same bf16 products with float32 accumulation, the scores rounded to bf16 before the softmax as
// there. Differentiable once (a create_graph backward is not supported); no dropout.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

// qkv (B, N, 3 * D) bf16 on the CPU, laid out as timm's Attention.qkv output: (B, N, 3, heads, D / heads) ->
// (B, N, D) bf16. The caller checks the layout (cpu_attention_bf16_available).
at::Tensor cpu_attention_bf16_chunked(const at::Tensor& qkv, int64_t heads);

}  // namespace vit
