#include "models/cpu_attention_bf16.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <cmath>
#include <memory>

#include "models/cpu_attention_bf16_chunked.h"
#include "models/cpu_attention_bf16_dot.h"
#include "models/cpu_attention_bf16_function.h"
#include "models/cpu_parallel_for.h"
#include "models/cpu_simd.h"
#include "models/qkv_layout.h"

namespace vit {
namespace {

using c10::BFloat16;
using cpu::simd::exp_nonpositive;
using cpu::simd::load;
using cpu::simd::store;
using cpu::simd::Vec;

constexpr int64_t kPad = 16;  // a head's queries, padded to whole vectors of the widest width: a score block's lanes

// The projection's layout, and the queries padded to whole vectors.
struct Shape : QkvLayout {
  int64_t padded() const { return (tokens + kPad - 1) / kPad * kPad; }
};

// One head's slice of `count` token rows, each `head_dim` (a multiple of W) wide, as float32 rows times `scale`.
template <int W>
[[gnu::always_inline]] inline void rows_to_float(const BFloat16* first, int64_t stride, int64_t count, int64_t head_dim,
                                                 float scale, float* rows) {
  for (int64_t t = 0; t < count; ++t)
    for (int64_t c = 0; c < head_dim; c += W)
      store<W>(rows + t * head_dim + c, load<W>(first + t * stride + c) * scale);
}

// float32 rows (count, head_dim) transposed into the columns of a (head_dim, padded) block, the padding zero.
inline void rows_to_columns(const float* rows, int64_t count, int64_t head_dim, int64_t padded, float* columns) {
  for (int64_t c = 0; c < head_dim; ++c) {
    for (int64_t t = 0; t < count; ++t) columns[c * padded + t] = rows[t * head_dim + c];
    for (int64_t t = count; t < padded; ++t) columns[c * padded + t] = 0.0f;
  }
}

// out[0, M * W) = sum over r < count of coefficient(r) * the M vectors at base + r * stride, written as bf16. The
// sums stay in registers (M is a constant), in two interleaved sets that halve the chain of dependent additions.
template <int W, int M, typename Coefficient>
[[gnu::always_inline]] inline void sum_scaled_rows(int64_t count, const Coefficient& coefficient, const float* base,
                                                   int64_t stride, BFloat16* out) {
  Vec<W> even[M], odd[M];
#pragma GCC unroll 4
  for (int m = 0; m < M; ++m) even[m] = odd[m] = Vec<W>{};
  int64_t r = 0;
  for (; r + 1 < count; r += 2) {
    const float a = coefficient(r), b = coefficient(r + 1);
    const float* x = base + r * stride;
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) {
      even[m] += a * load<W>(x + m * W);
      odd[m] += b * load<W>(x + stride + m * W);
    }
  }
  if (r < count) {
    const float a = coefficient(r);
#pragma GCC unroll 4
    for (int m = 0; m < M; ++m) even[m] += a * load<W>(base + r * stride + m * W);
  }
#pragma GCC unroll 4
  for (int m = 0; m < M; ++m) store<W>(out + m * W, even[m] + odd[m]);
}

// out = sum_t weights[t * weight_stride] * rows[t, :], a head_dim-wide row written as bf16, four vectors at a time.
template <int W>
[[gnu::always_inline]] inline void weighted_rows(const float* weights, int64_t weight_stride, const float* rows,
                                                 int64_t count, int64_t head_dim, BFloat16* out) {
  const auto weight = [weights, weight_stride](int64_t t) { return weights[t * weight_stride]; };
  const int64_t vectors = head_dim / W;
  int64_t v = 0;
  for (; v + 4 <= vectors; v += 4) sum_scaled_rows<W, 4>(count, weight, rows + v * W, head_dim, out + v * W);
  switch (vectors - v) {
    case 3:
      sum_scaled_rows<W, 3>(count, weight, rows + v * W, head_dim, out + v * W);
      break;
    case 2:
      sum_scaled_rows<W, 2>(count, weight, rows + v * W, head_dim, out + v * W);
      break;
    case 1:
      sum_scaled_rows<W, 1>(count, weight, rows + v * W, head_dim, out + v * W);
      break;
    default:
      break;
  }
}

// out[j, :] = sum_c rows[j, c] * columns[c, :] for j < count: W lanes of a product with transposed columns (a
// block of W queries), four rows at a time so that four independent sums share each column's load.
template <int W>
[[gnu::always_inline]] inline void rows_times_columns(const float* rows, int64_t count, int64_t head_dim,
                                                      const float* columns, int64_t padded, float* out) {
  int64_t j = 0;
  for (; j + 4 <= count; j += 4) {
    const float* r = rows + j * head_dim;
    Vec<W> a{}, b{}, c{}, e{};
    for (int64_t x = 0; x < head_dim; ++x) {
      const Vec<W> column = load<W>(columns + x * padded);
      a += r[x] * column;
      b += r[head_dim + x] * column;
      c += r[2 * head_dim + x] * column;
      e += r[3 * head_dim + x] * column;
    }
    store<W>(out + j * padded, a);
    store<W>(out + (j + 1) * padded, b);
    store<W>(out + (j + 2) * padded, c);
    store<W>(out + (j + 3) * padded, e);
  }
  for (; j < count; ++j) {
    Vec<W> a{};
    for (int64_t x = 0; x < head_dim; ++x) a += rows[j * head_dim + x] * load<W>(columns + x * padded);
    store<W>(out + j * padded, a);
  }
}

// The layout both passes share: a head's scores, probabilities and their gradients are held transposed, (keys,
// queries padded to whole vectors), so that the softmax over the keys runs lane by lane across vectors (one query
// per lane) and needs no reduction inside a vector. Saved for the backward pass as (B * heads, N, padded).

struct Forward {
  template <int W>
  [[gnu::always_inline]] static void run(Shape s, const BFloat16* qkv, BFloat16* out, float* probs, int64_t begin,
                                         int64_t end) {
    const int64_t n = s.tokens, d = s.head_dim, padded = s.padded();
    const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    const std::unique_ptr<float[]> scratch(new float[3 * n * d + d * padded]);  // every element written before read
    float* q = scratch.get();                                                   // (n, d), scaled
    float* k = q + n * d;                                                       // (n, d)
    float* v = k + n * d;                                                       // (n, d)
    float* qt = v + n * d;                                                      // (d, padded): Q transposed
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t b = pair / s.heads, h = pair % s.heads;
      rows_to_float<W>(qkv + s.qkv_offset(b, 0, h), s.qkv_row(), n, d, scale, q);
      rows_to_float<W>(qkv + s.qkv_offset(b, 1, h), s.qkv_row(), n, d, 1.0f, k);
      rows_to_float<W>(qkv + s.qkv_offset(b, 2, h), s.qkv_row(), n, d, 1.0f, v);
      rows_to_columns(q, n, d, padded, qt);
      float* pt = probs + pair * n * padded;  // (n keys, padded queries)
      for (int64_t block = 0; block < padded; block += W) {
        rows_times_columns<W>(k, n, d, qt + block, padded, pt + block);  // S^T: scale * k_j . q_i
        Vec<W> largest = load<W>(pt + block);
        for (int64_t j = 1; j < n; ++j) {
          const Vec<W> x = load<W>(pt + j * padded + block);
          largest = x > largest ? x : largest;
        }
        Vec<W> total{};
        for (int64_t j = 0; j < n; ++j) {
          const Vec<W> e = exp_nonpositive<W>(load<W>(pt + j * padded + block) - largest);
          store<W>(pt + j * padded + block, e);
          total += e;
        }
        const Vec<W> inverse = 1.0f / total;
        for (int64_t j = 0; j < n; ++j) store<W>(pt + j * padded + block, load<W>(pt + j * padded + block) * inverse);
      }
      for (int64_t i = 0; i < n; ++i)  // o_i = sum_j p_ij v_j
        weighted_rows<W>(pt + i, padded, v, n, d, out + s.out_offset(b, h) + i * s.dim);
    }
  }
};

struct Backward {
  template <int W>
  [[gnu::always_inline]] static void run(Shape s, const BFloat16* qkv, const float* probs, const BFloat16* grad_out,
                                         BFloat16* grad_qkv, int64_t begin, int64_t end) {
    const int64_t n = s.tokens, d = s.head_dim, padded = s.padded();
    const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    const std::unique_ptr<float[]> scratch(new float[4 * n * d + d * padded + n * padded]);
    float* q = scratch.get();       // (n, d)
    float* k = q + n * d;           // (n, d)
    float* v = k + n * d;           // (n, d)
    float* go = v + n * d;          // (n, d): the output's gradient
    float* got = go + n * d;        // (d, padded): its transpose
    float* dst = got + d * padded;  // (n keys, padded queries): scale * the scores' gradient, transposed
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t b = pair / s.heads, h = pair % s.heads;
      rows_to_float<W>(qkv + s.qkv_offset(b, 0, h), s.qkv_row(), n, d, 1.0f, q);
      rows_to_float<W>(qkv + s.qkv_offset(b, 1, h), s.qkv_row(), n, d, 1.0f, k);
      rows_to_float<W>(qkv + s.qkv_offset(b, 2, h), s.qkv_row(), n, d, 1.0f, v);
      rows_to_float<W>(grad_out + s.out_offset(b, h), s.dim, n, d, 1.0f, go);
      rows_to_columns(go, n, d, padded, got);
      const float* pt = probs + pair * n * padded;
      for (int64_t block = 0; block < padded; block += W) {
        rows_times_columns<W>(v, n, d, got + block, padded, dst + block);  // dP^T: v_j . do_i
        Vec<W> dot{};
        for (int64_t j = 0; j < n; ++j) dot += load<W>(pt + j * padded + block) * load<W>(dst + j * padded + block);
        // dS_ij = p_ij (dP_ij - sum_j p_ij dP_ij), and the scale of S = scale * Q K^T folded in
        for (int64_t j = 0; j < n; ++j) {
          const Vec<W> p = load<W>(pt + j * padded + block);
          store<W>(dst + j * padded + block, p * (load<W>(dst + j * padded + block) - dot) * scale);
        }
      }
      for (int64_t t = 0; t < n; ++t) {
        weighted_rows<W>(dst + t, padded, k, n, d,
                         grad_qkv + s.qkv_offset(b, 0, h) + t * s.qkv_row());  // dq_t = sum_j dS_tj k_j
        weighted_rows<W>(dst + t * padded, 1, q, n, d,
                         grad_qkv + s.qkv_offset(b, 1, h) + t * s.qkv_row());  // dk_t = sum_i dS_it q_i
        weighted_rows<W>(pt + t * padded, 1, go, n, d,
                         grad_qkv + s.qkv_offset(b, 2, h) + t * s.qkv_row());  // dv_t = sum_i p_it do_i
      }
    }
  }
};

// Pairs of (image, head) per task: each is one to a few microseconds of work.
constexpr int64_t kPairsPerTask = 8;

struct OnePassKernel {
  static constexpr const char* kName = "vit::attention_bf16";

  // (B * heads, N, padded) float32: each head's probabilities transposed, as the passes hold them.
  static at::Tensor empty_probs(const at::Tensor& qkv, const QkvLayout& s) {
    return at::empty({s.batch * s.heads, s.tokens, Shape{s}.padded()}, qkv.options().dtype(at::kFloat));
  }

  static at::Tensor forward(const at::Tensor& qkv, const QkvLayout& layout, const at::Tensor* probs) {
    const Shape s{layout};
    at::Tensor out = at::empty({s.batch, s.tokens, s.dim}, qkv.options());
    // Inference has no use for the probabilities, but the pass writes them: a buffer of its own.
    const at::Tensor own = probs ? at::Tensor() : empty_probs(qkv, s);
    const auto* x = qkv.data_ptr<BFloat16>();
    auto* o = out.data_ptr<BFloat16>();
    float* p = (probs ? *probs : own).data_ptr<float>();
    at::parallel_for(0, s.batch * s.heads, kPairsPerTask,
                     [&](int64_t begin, int64_t end) { cpu::simd::run_vectorised<Forward>(s, x, o, p, begin, end); });
    return out;
  }

  static at::Tensor backward(const at::Tensor& qkv, const at::Tensor& probs, const QkvLayout& layout,
                             const at::Tensor& grad_out) {
    const Shape s{layout};
    at::Tensor grad_qkv = at::empty_like(qkv);
    const auto* x = qkv.data_ptr<BFloat16>();
    const float* p = probs.data_ptr<float>();
    const auto* go = grad_out.data_ptr<BFloat16>();
    auto* gx = grad_qkv.data_ptr<BFloat16>();
    at::parallel_for(0, s.batch * s.heads, kPairsPerTask, [&](int64_t begin, int64_t end) {
      cpu::simd::run_vectorised<Backward>(s, x, p, go, gx, begin, end);
    });
    return grad_qkv;
  }
};

}  // namespace

bool cpu_attention_bf16_available(const at::Tensor& qkv, int64_t heads) {
  if (!qkv.defined() || !qkv.device().is_cpu() || qkv.scalar_type() != at::kBFloat16 || qkv.dim() != 3) return false;
  if (heads <= 0 || qkv.size(2) % 3 != 0 || (qkv.size(2) / 3) % heads != 0) return false;
  return qkv.size(1) >= 1 && qkv.size(2) > 0 && !torch::jit::tracer::isTracing();
}

bool cpu_attention_bf16_one_pass(const at::Tensor& qkv, int64_t heads) {
  const int64_t head_dim = qkv.size(2) / 3 / heads;
  return qkv.size(1) <= kBf16AttentionMaxTokens && head_dim % kPad == 0 && head_dim <= 256;
}

Bf16AttentionKernel cpu_attention_bf16_kernel(const at::Tensor& qkv, int64_t heads) {
  // The dot-product kernel first, short sequences too (bench/attention_bf16.sh, one thread, batch 128, 4 heads of 32,
  // forward + backward: 0.57x the one-pass kernel's time at 13 tokens, 0.8x at 24; 0.7x the chunked kernel's at 65).
  if (cpu_attention_bf16_dot_available(qkv.size(2) / 3 / heads)) return Bf16AttentionKernel::dot_product;
  return cpu_attention_bf16_one_pass(qkv, heads) ? Bf16AttentionKernel::one_pass : Bf16AttentionKernel::chunked;
}

at::Tensor cpu_attention_bf16(const at::Tensor& qkv, int64_t heads) {
  TORCH_CHECK(cpu_attention_bf16_available(qkv, heads), "cpu_attention_bf16: qkv ", qkv.sizes(), " of ",
              qkv.scalar_type(), " with ", heads, " heads is not a bf16 CPU (B, N, 3 * D) tensor with D divisible by ",
              "the heads");
  switch (cpu_attention_bf16_kernel(qkv, heads)) {
    case Bf16AttentionKernel::dot_product:
      return cpu_attention_bf16_dot(qkv, heads);
    case Bf16AttentionKernel::one_pass:
      return run_bf16_attention<OnePassKernel>(qkv, heads);
    case Bf16AttentionKernel::chunked:
      break;
  }
  return cpu_attention_bf16_chunked(qkv, heads);
}

at::Tensor cpu_attention_bf16_one_pass_kernel(const at::Tensor& qkv, int64_t heads) {
  TORCH_CHECK(cpu_attention_bf16_available(qkv, heads) && cpu_attention_bf16_one_pass(qkv, heads),
              "cpu_attention_bf16_one_pass_kernel: qkv ", qkv.sizes(), " with ", heads,
              " heads is not a sequence the one-pass kernel takes");
  return run_bf16_attention<OnePassKernel>(qkv, heads);
}

}  // namespace vit
