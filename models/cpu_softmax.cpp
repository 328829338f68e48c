#include "models/cpu_softmax.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "models/cpu_parallel_for.h"
#include "models/cpu_simd.h"

namespace vit::cpu {
namespace {

using simd::exp_nonpositive;
using simd::load;
using simd::load_partial;
using simd::max_of;
using simd::store;
using simd::store_partial;
using simd::sum_of;
using simd::Vec;

constexpr float kLowest = -std::numeric_limits<float>::infinity();  // a partial vector's padding

// A row's partial last vector is read and written as a whole vector (the lanes past the row masked off) when that
// vector stays inside the rows of this call: what spills into the next rows is overwritten when their turn comes,
// in order, on the same thread. Near the end of the call it goes element by element (load_partial, store_partial).

// 1 in a partial vector's lanes that belong to the row, 0 in the others.
template <int W>
[[gnu::always_inline]] inline Vec<W> row_lanes(int64_t count) {
  Vec<W> lane;
  for (int l = 0; l < W; ++l) lane[l] = static_cast<float>(l);
  return lane < static_cast<float>(count) ? Vec<W>{} + 1.0f : Vec<W>{};
}

template <int W, typename T>
[[gnu::always_inline]] inline void forward_rows(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  const int64_t full = n / W, rest = n % W, vectors = full + (rest ? 1 : 0);
  const Vec<W> in_row = row_lanes<W>(rest);
  // One row's scaled scores, then its exponentials. Plain floats: a vector of Vec<W> would need an allocator
  // that honours 64-byte alignment.
  std::vector<float> row(static_cast<size_t>(vectors * W));
  float* buffer = row.data();
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = in + r * n;
    T* y = out + r * n;
    const bool last = (r + 1) * n + (W - rest) > rows * n;  // a whole tail vector would leave the range
    Vec<W> largest = Vec<W>{} + kLowest;
    for (int64_t c = 0; c < full; ++c) {
      const Vec<W> v = load<W>(x + c * W) * scale;
      store<W>(buffer + c * W, v);
      largest = v > largest ? v : largest;
    }
    if (rest) {
      const Vec<W> tail = last ? load_partial<W>(x + full * W, rest, 0.0f) : load<W>(x + full * W);
      const Vec<W> v = in_row > 0.0f ? tail * scale : Vec<W>{} + kLowest;
      store<W>(buffer + full * W, v);
      largest = v > largest ? v : largest;
    }
    const float row_max = max_of<W>(largest);
    Vec<W> total{};
    for (int64_t c = 0; c < vectors; ++c) {
      Vec<W> e = exp_nonpositive<W>(load<W>(buffer + c * W) - row_max);
      if (c == full) e = in_row > 0.0f ? e : Vec<W>{};  // the padding's exponentials: zero
      store<W>(buffer + c * W, e);
      total += e;
    }
    const float inverse = 1.0f / sum_of<W>(total);
    for (int64_t c = 0; c < full; ++c) store<W>(y + c * W, load<W>(buffer + c * W) * inverse);
    if (rest) {
      const Vec<W> v = load<W>(buffer + full * W) * inverse;
      if (last) {
        store_partial<W>(y + full * W, v, rest);
      } else {
        store<W>(y + full * W, v);
      }
    }
  }
}

template <int W, typename T>
[[gnu::always_inline]] inline void backward_rows(const T* p, const T* grad_out, T* grad_in, int64_t rows, int64_t n,
                                                 float scale) {
  const int64_t full = n / W, rest = n % W;
  const Vec<W> in_row = row_lanes<W>(rest);
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = p + r * n;
    const T* gr = grad_out + r * n;
    T* out = grad_in + r * n;
    const bool last = (r + 1) * n + (W - rest) > rows * n;  // a whole tail vector would leave the range
    Vec<W> dot{};
    for (int64_t c = 0; c < full; ++c) dot += load<W>(pr + c * W) * load<W>(gr + c * W);
    Vec<W> p_tail{}, g_tail{};
    if (rest) {  // selected, not multiplied by the mask: the next row may hold an infinity
      p_tail = last ? load_partial<W>(pr + full * W, rest, 0.0f) : load<W>(pr + full * W);
      g_tail = last ? load_partial<W>(gr + full * W, rest, 0.0f) : load<W>(gr + full * W);
      p_tail = in_row > 0.0f ? p_tail : Vec<W>{};
      g_tail = in_row > 0.0f ? g_tail : Vec<W>{};
      dot += p_tail * g_tail;
    }
    const float row_dot = sum_of<W>(dot);
    for (int64_t c = 0; c < full; ++c)
      store<W>(out + c * W, load<W>(pr + c * W) * (load<W>(gr + c * W) - row_dot) * scale);
    if (rest) {
      const Vec<W> tail = p_tail * (g_tail - row_dot) * scale;
      if (last) {
        store_partial<W>(out + full * W, tail, rest);
      } else {
        store<W>(out + full * W, tail);
      }
    }
  }
}

// The row kernels as run_vectorised takes them.
struct ForwardRows {
  template <int W, typename T>
  [[gnu::always_inline]] static void run(const T* in, T* out, int64_t rows, int64_t n, float scale) {
    forward_rows<W>(in, out, rows, n, scale);
  }
};
struct BackwardRows {
  template <int W, typename T>
  [[gnu::always_inline]] static void run(const T* p, const T* grad_out, T* grad_in, int64_t rows, int64_t n,
                                         float scale) {
    backward_rows<W>(p, grad_out, grad_in, rows, n, scale);
  }
};

// Rows split across LibTorch's threads, a few thousand elements at least to each.
template <typename Fn>
void for_row_ranges(int64_t rows, int64_t n, const Fn& fn) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), fn);
}

template <typename T>
void forward_split(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  for_row_ranges(rows, n, [&](int64_t begin, int64_t end) {
    simd::run_vectorised<ForwardRows>(in + begin * n, out + begin * n, end - begin, n, scale);
  });
}

template <typename T>
void backward_split(const T* p, const T* g, T* out, int64_t rows, int64_t n, float scale) {
  for_row_ranges(rows, n, [&](int64_t begin, int64_t end) {
    simd::run_vectorised<BackwardRows>(p + begin * n, g + begin * n, out + begin * n, end - begin, n, scale);
  });
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class ScaledSoftmax : public torch::autograd::Function<ScaledSoftmax> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& scores, double scale) {
    RECORD_FUNCTION("vit::scaled_softmax", std::vector<c10::IValue>());  // named in --trace's timeline
    const at::Tensor x = scores.contiguous();
    at::Tensor p = at::empty_like(x, at::MemoryFormat::Contiguous);
    const int64_t n = x.size(-1), rows = n > 0 ? x.numel() / n : 0;
    const auto s = static_cast<float>(scale);
    if (x.scalar_type() == at::kBFloat16) {
      forward_split(x.data_ptr<c10::BFloat16>(), p.data_ptr<c10::BFloat16>(), rows, n, s);
    } else {
      forward_split(x.data_ptr<float>(), p.data_ptr<float>(), rows, n, s);
    }
    ctx->save_for_backward({p});
    ctx->saved_data["scale"] = scale;
    return p;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor p = ctx->get_saved_variables()[0];
    const at::Tensor g = grads[0].to(p.scalar_type()).contiguous();
    if (at::GradMode::is_enabled()) {  // create_graph: the gradient must be differentiable itself
      const auto scale = ctx->saved_data["scale"].toDouble();
      return {p * (g - (p * g).sum(-1, /*keepdim=*/true)) * scale, at::Tensor()};
    }
    at::Tensor dx = at::empty_like(p, at::MemoryFormat::Contiguous);
    const int64_t n = p.size(-1), rows = n > 0 ? p.numel() / n : 0;
    const auto s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    if (p.scalar_type() == at::kBFloat16) {
      backward_split(p.data_ptr<c10::BFloat16>(), g.data_ptr<c10::BFloat16>(), dx.data_ptr<c10::BFloat16>(), rows, n,
                     s);
    } else {
      backward_split(p.data_ptr<float>(), g.data_ptr<float>(), dx.data_ptr<float>(), rows, n, s);
    }
    return {dx, at::Tensor()};
  }
};

}  // namespace

bool softmax_available(const at::Tensor& scores) {
  return scores.defined() && scores.device().is_cpu() && scores.dim() >= 1 &&
         (scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kBFloat16) &&
         !torch::jit::tracer::isTracing();
}

at::Tensor scaled_softmax(const at::Tensor& scores, double scale) {
  TORCH_CHECK(softmax_available(scores), "scaled_softmax needs a float32 or bf16 CPU tensor, got ", scores.toString());
  return ScaledSoftmax::apply(scores, scale);
}

void softmax_rows(const float* in, float* out, int64_t rows, int64_t n, float scale) {
  forward_split(in, out, rows, n, scale);
}

void softmax_rows(const c10::BFloat16* in, c10::BFloat16* out, int64_t rows, int64_t n, float scale) {
  forward_split(in, out, rows, n, scale);
}

void softmax_backward_rows(const float* p, const float* grad_out, float* grad_in, int64_t rows, int64_t n,
                           float scale) {
  backward_split(p, grad_out, grad_in, rows, n, scale);
}

void softmax_backward_rows(const c10::BFloat16* p, const c10::BFloat16* grad_out, c10::BFloat16* grad_in, int64_t rows,
                           int64_t n, float scale) {
  backward_split(p, grad_out, grad_in, rows, n, scale);
}

}  // namespace vit::cpu
