#pragma once
// One image's and head's self-attention, forward and backward, on AVX512-BF16's dot-product instruction (vdpbf16ps:
// 16 float32 sums, each of two bf16 products, per instruction). The kernels behind cpu_attention_bf16_dot.h; no
// LibTorch here (raw bf16 bit patterns), so that this file's AVX-512 code stays in functions compiled for it.
//
// Why: LibTorch 1.13's batched products multiply a head's 65x32 by 32x65 matrices at ~43% of the measured bf16 peak
// (bench/attention_bf16.sh), and need each head's q, k, v copied into head order first. Here each product is a
// register tile of rows by 16-key (or 16-channel) vectors, one operand broadcast as bf16 pairs straight from the
// projection's token order, the other packed once per head into pairs (a few KiB, in L1). The arithmetic: float32
// sums of bf16 products, as oneDNN's; the scores stay float32 through the softmax (LibTorch's path rounds them to
// bf16 first); the probabilities are rounded to bf16 before they multiply v (as LibTorch's), and kept so for the
// backward pass; the output and the q, k, v gradients rounded to bf16 once.

#include <cstddef>
#include <cstdint>

namespace vit::cpu {

// Whether this CPU runs AVX512-BF16 (and the AVX-512 BW, VL and DQ instructions the kernels use beside it); false
// on any CPU but x86-64, where the kernels do nothing.
bool has_bf16_dot();

// Whether the kernels take heads of `head_dim` channels: a multiple of 16 (whole vectors).
bool bf16_dot_head_dim_supported(int64_t head_dim);

// One head of `tokens` tokens and `head_dim` channels. Pointers are to bf16 bit patterns; q, k, v and their
// gradients at token t lie `qkv_row` elements after token 0's, the output and its gradient `out_row` after. Every
// row stride and head offset is even (a bf16 pair is read as one 32-bit word).
struct Bf16DotHead {
  int64_t tokens, head_dim;

  // The probabilities' row: the keys rounded up to a pair, the padding zero. A head's are (tokens, prob_row()).
  int64_t prob_row() const { return (tokens + 1) / 2 * 2; }
  // float32 elements of scratch memory the forward and the backward pass need (one per thread, reused per head).
  size_t forward_scratch() const;
  size_t backward_scratch() const;

  // out = softmax(q k^T * scale) v; the probabilities written to `probs` (bf16, tokens x prob_row()).
  void forward(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t qkv_row, float scale, uint16_t* out,
               int64_t out_row, uint16_t* probs, float* scratch) const;

  // The q, k, v gradients from the output's gradient and the forward pass's probabilities.
  void backward(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t qkv_row, float scale,
                const uint16_t* grad_out, int64_t out_row, const uint16_t* probs, uint16_t* grad_q, uint16_t* grad_k,
                uint16_t* grad_v, float* scratch) const;
};

}  // namespace vit::cpu
