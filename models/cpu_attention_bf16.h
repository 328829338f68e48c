#pragma once
// Multi-head self-attention from a bf16 qkv projection, as a CPU model runs it under bf16 autocast. Three kernels,
// the dispatcher (cpu_attention_bf16, below) taking the first that fits:
// - on AVX512-BF16's dot-product instruction, one (image, head) at a time (cpu_attention_bf16_dot.h): any sequence,
//   heads of a multiple of 16 channels, where the CPU has the instruction;
// - a short sequence (kBf16AttentionMaxTokens, below) in one pass on float32 vectors of any width, here;
// - anything else in chunks of images that stay in cache, through LibTorch's batched products
//   (cpu_attention_bf16_chunked.h).
//
// The one-pass kernel: softmax(q k^T / sqrt(Dh)) v for each image and head in one pass over that head's few tokens, in
// float32 registers (the scores are not rounded to bf16 before the softmax, as LibTorch's bf16 batched products
// round them), the output and the q, k, v gradients rounded to bf16 once. Why: on a short sequence (the main job's
// 13 tokens of 4 heads of 32) LibTorch 1.13's path is six oneDNN batched products of 13x32 matrices a block, each
// mostly call overhead, plus the permute / unbind / transpose copies around them and their backward; here q, k and
// v are read in place from the projection and the gradients written straight into one (B, N, 3 * D) tensor.
// Vectorised over the head dimension and the tokens at the width cpu_vector_width.h chooses; split across
// LibTorch's threads by (image, head). Differentiable once (a create_graph backward is not supported); no dropout.

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/version.h>

namespace vit {

// Whether a CPU model's attention takes it under bf16 autocast (layers.cpp): with LibTorch 1.x, whose CPU
// attention is operator by operator. LibTorch 2.x has a flash-attention CPU kernel, which the model keeps.
constexpr bool kBf16AttentionKernel = TORCH_VERSION_MAJOR < 2;

// The longest sequence the one-pass kernel takes. Against the operator path, forward and backward
// (bench/attention_bf16.sh: one thread, batch 128, 4 heads of 32): 0.7-0.8x its time at 13 tokens, 0.76-0.94x at 17-24,
// parity at 28, slower beyond (1.6x at 50: its products, n^2 Dh multiply-adds by broadcasts, fall behind oneDNN's bf16
// kernels).
constexpr int64_t kBf16AttentionMaxTokens = 24;

// True when cpu_attention_bf16 can run: qkv a bf16 CPU tensor (B, N, 3 * D) with `heads` dividing D, and no
// TorchScript trace being recorded.
bool cpu_attention_bf16_available(const at::Tensor& qkv, int64_t heads);

// Whether the one-pass kernel takes an available qkv: N <= kBf16AttentionMaxTokens and heads of a multiple of 16
// elements (at most 256).
bool cpu_attention_bf16_one_pass(const at::Tensor& qkv, int64_t heads);

enum class Bf16AttentionKernel { dot_product, one_pass, chunked };

// The kernel cpu_attention_bf16 runs an available qkv on.
Bf16AttentionKernel cpu_attention_bf16_kernel(const at::Tensor& qkv, int64_t heads);

// qkv (B, N, 3 * D) bf16, laid out as timm's Attention.qkv output: (B, N, 3, heads, D / heads) -> (B, N, D) bf16.
at::Tensor cpu_attention_bf16(const at::Tensor& qkv, int64_t heads);

// The one-pass kernel itself, for a qkv it takes (tests and benchmarks compare the kernels).
at::Tensor cpu_attention_bf16_one_pass_kernel(const at::Tensor& qkv, int64_t heads);

}  // namespace vit
