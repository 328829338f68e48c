#include "models/cpu_attention_bf16_chunked.h"

#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/cpu_attention_bf16_function.h"
#include "models/cpu_parallel_for.h"
#include "models/cpu_softmax.h"
#include "models/qkv_layout.h"

namespace vit {
namespace {

using c10::BFloat16;

// What one chunk of images may hold in a thread's cache: its q, k, v in head order and its scores.
constexpr int64_t kChunkBytes = int64_t{1} << 20;

// A chunk of `images` images from image `first`, and the layout of the whole batch.
struct Chunk {
  QkvLayout s;
  int64_t first, images;

  int64_t heads() const { return images * s.heads; }  // the batch of its products
  int64_t token_rows() const { return images * s.tokens; }
  float scale() const { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim))); }

  // Between token order, rows of (parts, heads, Dh) as the projection (parts = 3) or the output (parts = 1) lie,
  // from this chunk's first image, and head order, (parts, images * heads, N, Dh), as the batched products take
  // them: Dh-element row copies, token order read (to_heads) or written (!to_heads) contiguously.
  void reorder(int64_t parts, bool to_heads, const BFloat16* from, BFloat16* to) const {
    const int64_t n = s.tokens, d = s.head_dim, row = parts * s.dim;
    const auto bytes = static_cast<size_t>(d) * sizeof(BFloat16);
    for (int64_t r = 0; r < token_rows(); ++r) {
      const int64_t b = r / n, t = r % n;
      for (int64_t part = 0; part < parts; ++part) {
        for (int64_t h = 0; h < s.heads; ++h) {
          const int64_t token_order = (first * n + r) * row + (part * s.heads + h) * d;
          const int64_t head_order = (((part * images + b) * s.heads + h) * n + t) * d;
          if (to_heads) {
            std::memcpy(to + head_order, from + token_order, bytes);
          } else {
            std::memcpy(to + token_order, from + head_order, bytes);
          }
        }
      }
    }
  }
};

// fn(chunk) for the batch in chunks of images, split across LibTorch's threads. A chunk holds as many images as fit
// in kChunkBytes (one at least), and no more than an even share of the batch per thread.
template <typename Fn>
void for_each_chunk(const QkvLayout& s, const Fn& fn) {
  const int64_t image_bytes = s.heads * s.tokens * (3 * s.head_dim + s.tokens) * static_cast<int64_t>(sizeof(BFloat16));
  const int64_t share = (s.batch + at::get_num_threads() - 1) / at::get_num_threads();
  const int64_t per_chunk = std::max<int64_t>(1, std::min(kChunkBytes / std::max<int64_t>(image_bytes, 1), share));
  at::parallel_for(0, (s.batch + per_chunk - 1) / per_chunk, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * per_chunk;
      fn(Chunk{s, first, std::min(per_chunk, s.batch - first)});
    }
  });
}

struct ChunkedKernel {
  static constexpr const char* kName = "vit::attention_bf16_chunked";

  static at::Tensor empty_probs(const at::Tensor& qkv, const QkvLayout& s) {
    return at::empty({s.batch * s.heads, s.tokens, s.tokens}, qkv.options());
  }

  // With `probs` ((B * heads, N, N)), the probabilities are written there for the backward pass; without
  // (inference), each chunk's stay in its own buffer, in cache.
  static at::Tensor forward(const at::Tensor& qkv, const QkvLayout& s, const at::Tensor* probs) {
    const int64_t n = s.tokens;
    at::Tensor out = at::empty({s.batch, n, s.dim}, qkv.options());
    const auto* x = qkv.data_ptr<BFloat16>();
    auto* o = out.data_ptr<BFloat16>();
    for_each_chunk(s, [&](const Chunk& c) {
      const at::Tensor qkv_heads = at::empty({3, c.heads(), n, s.head_dim}, qkv.options());
      c.reorder(3, true, x, qkv_heads.data_ptr<BFloat16>());
      const at::Tensor scores = at::bmm(qkv_heads[0], qkv_heads[1].transpose(1, 2));  // q k^T
      const at::Tensor p = probs ? probs->narrow(0, c.first * s.heads, c.heads()) : at::empty_like(scores);
      cpu::softmax_rows(scores.data_ptr<BFloat16>(), p.data_ptr<BFloat16>(), c.heads() * n, n, c.scale());
      const at::Tensor out_heads = at::bmm(p, qkv_heads[2]);  // P v
      c.reorder(1, false, out_heads.data_ptr<BFloat16>(), o);
    });
    return out;
  }

  static at::Tensor backward(const at::Tensor& qkv, const at::Tensor& probs, const QkvLayout& s,
                             const at::Tensor& grad_out) {
    const int64_t n = s.tokens;
    at::Tensor grad_qkv = at::empty_like(qkv);
    const auto* x = qkv.data_ptr<BFloat16>();
    const auto* go = grad_out.data_ptr<BFloat16>();
    auto* gx = grad_qkv.data_ptr<BFloat16>();
    for_each_chunk(s, [&](const Chunk& c) {
      const at::Tensor qkv_heads = at::empty({3, c.heads(), n, s.head_dim}, qkv.options());
      c.reorder(3, true, x, qkv_heads.data_ptr<BFloat16>());
      const at::Tensor grad_out_heads = at::empty({c.heads(), n, s.head_dim}, qkv.options());
      c.reorder(1, true, go, grad_out_heads.data_ptr<BFloat16>());
      const at::Tensor q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
      const at::Tensor p = probs.narrow(0, c.first * s.heads, c.heads());

      const at::Tensor grad_p = at::bmm(grad_out_heads, v.transpose(1, 2));  // dP = dO v^T
      const at::Tensor grad_scores = at::empty_like(grad_p);                 // dS, the scale folded in
      cpu::softmax_backward_rows(p.data_ptr<BFloat16>(), grad_p.data_ptr<BFloat16>(), grad_scores.data_ptr<BFloat16>(),
                                 c.heads() * n, n, c.scale());
      at::Tensor grad_heads = at::empty_like(qkv_heads);
      at::Tensor grad_q = grad_heads[0], grad_k = grad_heads[1], grad_v = grad_heads[2];  // written in place
      at::bmm_out(grad_q, grad_scores, k);                                                // dq = dS k
      at::bmm_out(grad_k, grad_scores.transpose(1, 2), q);                                // dk = dS^T q
      at::bmm_out(grad_v, p.transpose(1, 2), grad_out_heads);                             // dv = P^T dO
      c.reorder(3, false, grad_heads.data_ptr<BFloat16>(), gx);
    });
    return grad_qkv;
  }
};

}  // namespace

at::Tensor cpu_attention_bf16_chunked(const at::Tensor& qkv, int64_t heads) {
  // In inference no probabilities are kept (measured: no faster, 1.00x side by side, the write being in the
  // products' shadow, but one layer's B * heads * N^2 bf16 values less at peak).
  return run_bf16_attention<ChunkedKernel>(qkv, heads);
}

}  // namespace vit
