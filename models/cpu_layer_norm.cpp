#include "models/cpu_layer_norm.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mean.h>
#include <ATen/ops/rsqrt.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "models/cpu_parallel_for.h"
#include "models/cpu_simd.h"

namespace vit::cpu {
namespace {

using simd::load;
using simd::load_partial;
using simd::store;
using simd::store_partial;
using simd::sum_of;
using simd::Vec;

// Rows of n floats each: the vectors of W whole lanes, then the last partial one, read element by element (its
// padding chosen so that it adds nothing: the row's mean for x, 0 for the others).

// One row: y = (x - mean) * rstd * weight + bias, with the row's mean and rstd = 1 / sqrt(variance + eps) kept for
// the backward.
template <int W>
[[gnu::always_inline]] inline void normalise_row(const float* in, const float* weight, const float* bias,
                                                 c10::BFloat16* out, int64_t n, float eps, float& mean, float& rstd) {
  const int64_t full = n - n % W, rest = n - full;
  const float inverse_n = 1.0f / static_cast<float>(n);
  Vec<W> total{};
  for (int64_t c = 0; c < full; c += W) total += load<W>(in + c);
  if (rest) total += load_partial<W>(in + full, rest, 0.0f);
  const float m = sum_of<W>(total) * inverse_n;
  Vec<W> squares{};
  for (int64_t c = 0; c < full; c += W) {
    const Vec<W> d = load<W>(in + c) - m;
    squares += d * d;
  }
  if (rest) {
    const Vec<W> d = load_partial<W>(in + full, rest, m) - m;
    squares += d * d;
  }
  const float s = 1.0f / std::sqrt(sum_of<W>(squares) * inverse_n + eps);
  for (int64_t c = 0; c < full; c += W)
    store<W>(out + c, (load<W>(in + c) - m) * s * load<W>(weight + c) + load<W>(bias + c));
  if (rest) {
    const Vec<W> normed = (load_partial<W>(in + full, rest, m) - m) * s;
    store_partial<W>(out + full,
                     normed * load_partial<W>(weight + full, rest, 0.0f) + load_partial<W>(bias + full, rest, 0.0f),
                     rest);
  }
  mean = m;
  rstd = s;
}

struct Forward {
  template <int W>
  [[gnu::always_inline]] static void run(const float* x, const float* weight, const float* bias, c10::BFloat16* y,
                                         float* mean, float* rstd, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r) normalise_row<W>(x + r * n, weight, bias, y + r * n, n, eps, mean[r], rstd[r]);
  }
};

// The residual add first: sum = x + branch (bf16 widened exactly, one float32 addition, as LibTorch's), written
// out, then normalised while the row is still in cache.
struct AddForward {
  template <int W>
  [[gnu::always_inline]] static void run(const float* x, const c10::BFloat16* branch, const float* weight,
                                         const float* bias, float* sum, c10::BFloat16* y, float* mean, float* rstd,
                                         int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
      float* out = sum + r * n;
      simd::add_widened<W>(x + r * n, branch + r * n, out, n);
      normalise_row<W>(out, weight, bias, y + r * n, n, eps, mean[r], rstd[r]);
    }
  }
};

// One row, with xhat = (x - mean) * rstd and gw = grad_out * weight:
//   grad_in = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),
// and grad_out * xhat and grad_out added to grad_weight and grad_bias (this thread's sums over its rows).
template <int W>
[[gnu::always_inline]] inline void normalise_row_backward(const c10::BFloat16* g, const float* in, const float* weight,
                                                          float m, float s, float* out, float* grad_weight,
                                                          float* grad_bias, int64_t n) {
  const int64_t full = n - n % W, rest = n - full;
  const float inverse_n = 1.0f / static_cast<float>(n);
  Vec<W> gw_total{}, gw_xhat_total{};
  for (int64_t c = 0; c < full; c += W) {
    const Vec<W> go = load<W>(g + c);
    const Vec<W> xhat = (load<W>(in + c) - m) * s;
    const Vec<W> gw = go * load<W>(weight + c);
    gw_total += gw;
    gw_xhat_total += gw * xhat;
    store<W>(grad_weight + c, load<W>(grad_weight + c) + go * xhat);
    store<W>(grad_bias + c, load<W>(grad_bias + c) + go);
  }
  Vec<W> go_rest{}, xhat_rest{}, w_rest{};
  if (rest) {
    go_rest = load_partial<W>(g + full, rest, 0.0f);
    xhat_rest = (load_partial<W>(in + full, rest, m) - m) * s;
    w_rest = load_partial<W>(weight + full, rest, 0.0f);
    const Vec<W> gw = go_rest * w_rest;
    gw_total += gw;
    gw_xhat_total += gw * xhat_rest;
    store_partial<W>(grad_weight + full, load_partial<W>(grad_weight + full, rest, 0.0f) + go_rest * xhat_rest, rest);
    store_partial<W>(grad_bias + full, load_partial<W>(grad_bias + full, rest, 0.0f) + go_rest, rest);
  }
  const float a = sum_of<W>(gw_total) * inverse_n, b = sum_of<W>(gw_xhat_total) * inverse_n;
  for (int64_t c = 0; c < full; c += W) {
    const Vec<W> xhat = (load<W>(in + c) - m) * s;
    store<W>(out + c, (load<W>(g + c) * load<W>(weight + c) - a - xhat * b) * s);
  }
  if (rest) store_partial<W>(out + full, (go_rest * w_rest - a - xhat_rest * b) * s, rest);
}

struct Backward {
  template <int W>
  [[gnu::always_inline]] static void run(const c10::BFloat16* grad_out, const float* x, const float* weight,
                                         const float* mean, const float* rstd, float* grad_in, float* grad_weight,
                                         float* grad_bias, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; ++r) {
      normalise_row_backward<W>(grad_out + r * n, x + r * n, weight, mean[r], rstd[r], grad_in + r * n, grad_weight,
                                grad_bias, n);
    }
  }
};

// The residual add's backward joined to the norm's: x + branch recomputed into `scratch` (n floats: one row, in
// cache), the norm's gradient for it, plus grad_sum (what reached the sum directly), written as x's gradient in
// float32 and the branch's in bf16 (as autograd gives a bf16 input).
struct AddBackward {
  template <int W>
  [[gnu::always_inline]] static void run(const c10::BFloat16* grad_out, const float* grad_sum, const float* x,
                                         const c10::BFloat16* branch, const float* weight, const float* mean,
                                         const float* rstd, float* grad_x, c10::BFloat16* grad_branch,
                                         float* grad_weight, float* grad_bias, float* scratch, int64_t rows,
                                         int64_t n) {
    const int64_t full = n - n % W, rest = n - full;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r * n;
      simd::add_widened<W>(x + o, branch + o, scratch, n);
      normalise_row_backward<W>(grad_out + o, scratch, weight, mean[r], rstd[r], grad_x + o, grad_weight, grad_bias, n);
      for (int64_t c = 0; c < full; c += W) {
        const Vec<W> total = load<W>(grad_x + o + c) + load<W>(grad_sum + o + c);
        store<W>(grad_x + o + c, total);
        store<W>(grad_branch + o + c, total);
      }
      if (rest) {
        const Vec<W> total =
            load_partial<W>(grad_x + o + full, rest, 0.0f) + load_partial<W>(grad_sum + o + full, rest, 0.0f);
        store_partial<W>(grad_x + o + full, total, rest);
        store_partial<W>(grad_branch + o + full, total, rest);
      }
    }
  }
};

// Rows split across LibTorch's threads, a few thousand elements at least to each.
int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)); }

// The same gradients as LibTorch operators, for a backward that must itself be differentiable (create_graph).
torch::autograd::variable_list differentiable_backward(const at::Tensor& grad, const at::Tensor& x,
                                                       const at::Tensor& weight, double eps) {
  const at::Tensor g = grad.to(at::kFloat);
  const at::Tensor centred = x - x.mean(-1, /*keepdim=*/true);
  const at::Tensor rstd = at::rsqrt(centred.pow(2).mean(-1, /*keepdim=*/true) + eps);
  const at::Tensor xhat = centred * rstd;
  const at::Tensor gw = g * weight;
  const at::Tensor dx = rstd * (gw - gw.mean(-1, /*keepdim=*/true) - xhat * (gw * xhat).mean(-1, /*keepdim=*/true));
  if (x.dim() == 1) return {dx, g * xhat, g, at::Tensor()};
  std::vector<int64_t> rows(static_cast<size_t>(x.dim() - 1));
  std::iota(rows.begin(), rows.end(), 0);
  return {dx, (g * xhat).sum(rows), g.sum(rows), at::Tensor()};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The weight's and the bias's gradients: `rows` split across LibTorch's threads, each adding its rows' terms into
// its own sums (run(begin, end, weight sums, bias sums)), which are added up at the end.
template <typename RunRows>
std::pair<at::Tensor, at::Tensor> weight_and_bias_gradients(int64_t rows, int64_t n, const at::TensorOptions& options,
                                                            const RunRows& run) {
  const int threads = at::get_num_threads();
  std::vector<float> partial(static_cast<size_t>(threads) * 2 * static_cast<size_t>(n), 0.0f);
  at::parallel_for(0, rows, row_grain(n), [&](int64_t begin, int64_t end) {
    const int thread = at::get_thread_num();
    TORCH_INTERNAL_ASSERT(thread < threads, "a thread beyond at::get_num_threads()");
    float* sums = partial.data() + static_cast<size_t>(thread) * 2 * static_cast<size_t>(n);
    run(begin, end, sums, sums + n);
  });
  at::Tensor dw = at::zeros({n}, options);
  at::Tensor db = at::zeros({n}, options);
  float* dwp = dw.data_ptr<float>();
  float* dbp = db.data_ptr<float>();
  for (int t = 0; t < threads; ++t) {
    const float* sums = partial.data() + static_cast<size_t>(t) * 2 * static_cast<size_t>(n);
    for (int64_t c = 0; c < n; ++c) {
      dwp[c] += sums[c];
      dbp[c] += sums[n + c];
    }
  }
  return {dw, db};
}

class LayerNormToBf16 : public torch::autograd::Function<LayerNormToBf16> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, double eps) {
    RECORD_FUNCTION("vit::layer_norm_bf16", std::vector<c10::IValue>());  // named in --trace's timeline
    const at::Tensor x = input.contiguous();
    const at::Tensor w = weight.contiguous();
    const at::Tensor b = bias.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(at::kBFloat16));
    at::Tensor mean = at::empty({rows}, x.options());
    at::Tensor rstd = at::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    c10::BFloat16* yp = y.data_ptr<c10::BFloat16>();
    float* mp = mean.data_ptr<float>();
    float* sp = rstd.data_ptr<float>();
    const auto e = static_cast<float>(eps);
    at::parallel_for(0, rows, row_grain(n), [&](int64_t begin, int64_t end) {
      simd::run_vectorised<Forward>(xp + begin * n, wp, bp, yp + begin * n, mp + begin, sp + begin, end - begin, n, e);
    });
    // The tensors as given, not contiguous copies: the copies would not be part of the graph that a
    // create_graph backward differentiates through.
    ctx->save_for_backward({input, weight, mean, rstd});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (at::GradMode::is_enabled())
      return differentiable_backward(grads[0], saved[0], saved[1], ctx->saved_data["eps"].toDouble());
    const at::Tensor x = saved[0].contiguous();
    const at::Tensor w = saved[1].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    // bf16, as autograd hands a bf16 output its gradient.
    const at::Tensor g = grads[0].to(at::kBFloat16).contiguous();
    const c10::BFloat16* gp = g.data_ptr<c10::BFloat16>();
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* mp = saved[2].data_ptr<float>();
    const float* sp = saved[3].data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    auto [dw, db] = weight_and_bias_gradients(
        rows, n, x.options(), [&](int64_t begin, int64_t end, float* dw_sums, float* db_sums) {
          simd::run_vectorised<Backward>(gp + begin * n, xp + begin * n, wp, mp + begin, sp + begin, dxp + begin * n,
                                         dw_sums, db_sums, end - begin, n);
        });
    return {dx, dw, db, at::Tensor()};
  }
};

class ResidualAddLayerNormToBf16 : public torch::autograd::Function<ResidualAddLayerNormToBf16> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& branch,
                               const at::Tensor& weight, const at::Tensor& bias, double eps) {
    RECORD_FUNCTION("vit::residual_add_layer_norm_bf16", std::vector<c10::IValue>());  // named in --trace's timeline
    const at::Tensor w = weight.contiguous();
    const at::Tensor b = bias.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    at::Tensor sum = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(at::kBFloat16));
    at::Tensor mean = at::empty({rows}, x.options());
    at::Tensor rstd = at::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const c10::BFloat16* bp = branch.data_ptr<c10::BFloat16>();
    const float* wp = w.data_ptr<float>();
    const float* biasp = b.data_ptr<float>();
    float* sump = sum.data_ptr<float>();
    c10::BFloat16* yp = y.data_ptr<c10::BFloat16>();
    float* mp = mean.data_ptr<float>();
    float* sp = rstd.data_ptr<float>();
    const auto e = static_cast<float>(eps);
    at::parallel_for(0, rows, row_grain(n), [&](int64_t begin, int64_t end) {
      simd::run_vectorised<AddForward>(xp + begin * n, bp + begin * n, wp, biasp, sump + begin * n, yp + begin * n,
                                       mp + begin, sp + begin, end - begin, n, e);
    });
    // The two operands rather than their sum: x is kept for its own block's norm anyway, the bf16 branch is half
    // the sum's size, and the backward recomputes the sum row by row in cache.
    ctx->save_for_backward({x, branch, weight, mean, rstd});
    ctx->saved_data["eps"] = eps;
    return {sum, y};
  }

  // grads: the sum's (float32: what the next residual add passes back) and the normed output's.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      const double eps = ctx->saved_data["eps"].toDouble();
      const at::Tensor sum = saved[0] + saved[1].to(at::kFloat);
      auto norm = differentiable_backward(grads[1], sum, saved[2], eps);
      const at::Tensor total = grads[0] + norm[0];
      return {total, total.to(at::kBFloat16), norm[1], norm[2], at::Tensor()};
    }
    const at::Tensor& x = saved[0];
    const at::Tensor& branch = saved[1];
    const at::Tensor w = saved[2].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    const at::Tensor g_sum = grads[0].to(at::kFloat).contiguous();
    const at::Tensor g = grads[1].to(at::kBFloat16).contiguous();
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor dbranch = at::empty_like(branch, at::MemoryFormat::Contiguous);
    const c10::BFloat16* gp = g.data_ptr<c10::BFloat16>();
    const float* gsp = g_sum.data_ptr<float>();
    const float* xp = x.data_ptr<float>();
    const c10::BFloat16* bp = branch.data_ptr<c10::BFloat16>();
    const float* wp = w.data_ptr<float>();
    const float* mp = saved[3].data_ptr<float>();
    const float* sp = saved[4].data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    c10::BFloat16* dbp = dbranch.data_ptr<c10::BFloat16>();
    auto [dw, db] = weight_and_bias_gradients(
        rows, n, x.options(), [&](int64_t begin, int64_t end, float* dw_sums, float* db_sums) {
          std::vector<float> scratch(static_cast<size_t>(n));
          const int64_t o = begin * n;
          simd::run_vectorised<AddBackward>(gp + o, gsp + o, xp + o, bp + o, wp, mp + begin, sp + begin, dxp + o,
                                            dbp + o, dw_sums, db_sums, scratch.data(), end - begin, n);
        });
    return {dx, dbranch, dw, db, at::Tensor()};
  }
};

bool float_cpu(const at::Tensor& t) { return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat; }

}  // namespace

bool layer_norm_to_bf16_available(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return float_cpu(x) && float_cpu(weight) && float_cpu(bias) && x.dim() >= 1 && x.size(-1) > 0 && weight.dim() == 1 &&
         bias.dim() == 1 && weight.size(0) == x.size(-1) && bias.size(0) == x.size(-1) &&
         !torch::jit::tracer::isTracing();
}

at::Tensor layer_norm_to_bf16(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  TORCH_CHECK(layer_norm_to_bf16_available(x, weight, bias),
              "layer_norm_to_bf16 needs a float32 CPU tensor and float32 CPU weight and bias of its last size, got ",
              x.toString(), " ", x.sizes(), ", ", weight.toString(), ", ", bias.toString());
  return LayerNormToBf16::apply(x, weight, bias, eps);
}

bool residual_add_layer_norm_to_bf16_available(const at::Tensor& x, const at::Tensor& branch, const at::Tensor& weight,
                                               const at::Tensor& bias) {
  return layer_norm_to_bf16_available(x, weight, bias) && x.is_contiguous() && branch.defined() &&
         branch.device().is_cpu() && branch.scalar_type() == at::kBFloat16 && branch.sizes() == x.sizes() &&
         branch.is_contiguous();
}

std::pair<at::Tensor, at::Tensor> residual_add_layer_norm_to_bf16(const at::Tensor& x, const at::Tensor& branch,
                                                                  const at::Tensor& weight, const at::Tensor& bias,
                                                                  double eps) {
  TORCH_CHECK(residual_add_layer_norm_to_bf16_available(x, branch, weight, bias),
              "residual_add_layer_norm_to_bf16 needs a contiguous float32 CPU tensor, a contiguous bf16 CPU tensor of "
              "its sizes and float32 CPU weight and bias of its last size, got ",
              x.toString(), " ", x.sizes(), ", ", branch.toString(), " ", branch.sizes(), ", ", weight.toString(), ", ",
              bias.toString());
  auto outputs = ResidualAddLayerNormToBf16::apply(x, branch, weight, bias, eps);
  return {outputs[0], outputs[1]};
}

}  // namespace vit::cpu
