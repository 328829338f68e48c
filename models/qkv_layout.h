#pragma once
// Where each image's and head's q, k and v lie in a fused qkv projection (B, N, 3 * D), laid out as timm's
// Attention.qkv output (B, N, 3, heads, D / heads), and where each head's output goes in (B, N, D): the one
// layout the CPU attention kernels (cpu_attention.h, cpu_attention_bf16.h) read and write in place.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

struct QkvLayout {
  int64_t batch, tokens, heads, head_dim, dim;

  // The layout of `qkv` (B, N, 3 * D) split into `heads` heads.
  static QkvLayout of(const at::Tensor& qkv, int64_t heads) {
    const int64_t dim = qkv.size(2) / 3;
    return {qkv.size(0), qkv.size(1), heads, dim / heads, dim};
  }
  // Elements from one token's row of the projection to the next.
  int64_t qkv_row() const { return 3 * dim; }
  // Token 0 of part (0: q, 1: k, 2: v) of head h in image b; token t is t * qkv_row() further.
  int64_t qkv_offset(int64_t b, int64_t part, int64_t h) const {
    return b * tokens * 3 * dim + part * dim + h * head_dim;
  }
  // Token 0 of head h's output in image b of (B, N, D); token t is t * dim further.
  int64_t out_offset(int64_t b, int64_t h) const { return b * tokens * dim + h * head_dim; }
};

}  // namespace vit
