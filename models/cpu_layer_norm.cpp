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

// y = (x - mean) * rstd * weight + bias, row by row, with each row's mean and rstd = 1 / sqrt(variance + eps) kept
// for the backward.
struct Forward {
  template <int W>
  [[gnu::always_inline]] static void run(const float* x, const float* weight, const float* bias, c10::BFloat16* y,
                                         float* mean, float* rstd, int64_t rows, int64_t n, float eps) {
    const int64_t full = n - n % W, rest = n - full;
    const float inverse_n = 1.0f / static_cast<float>(n);
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x + r * n;
      c10::BFloat16* out = y + r * n;
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
      mean[r] = m;
      rstd[r] = s;
    }
  }
};

// With xhat = (x - mean) * rstd and gw = grad_out * weight, row by row:
//   grad_in = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),
// and grad_out * xhat and grad_out added to grad_weight and grad_bias (this thread's sums over its rows).
struct Backward {
  template <int W>
  [[gnu::always_inline]] static void run(const c10::BFloat16* grad_out, const float* x, const float* weight,
                                         const float* mean, const float* rstd, float* grad_in, float* grad_weight,
                                         float* grad_bias, int64_t rows, int64_t n) {
    const int64_t full = n - n % W, rest = n - full;
    const float inverse_n = 1.0f / static_cast<float>(n);
    for (int64_t r = 0; r < rows; ++r) {
      const c10::BFloat16* g = grad_out + r * n;
      const float* in = x + r * n;
      float* out = grad_in + r * n;
      const float m = mean[r], s = rstd[r];
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
        store_partial<W>(grad_weight + full, load_partial<W>(grad_weight + full, rest, 0.0f) + go_rest * xhat_rest,
                         rest);
        store_partial<W>(grad_bias + full, load_partial<W>(grad_bias + full, rest, 0.0f) + go_rest, rest);
      }
      const float a = sum_of<W>(gw_total) * inverse_n, b = sum_of<W>(gw_xhat_total) * inverse_n;
      for (int64_t c = 0; c < full; c += W) {
        const Vec<W> xhat = (load<W>(in + c) - m) * s;
        store<W>(out + c, (load<W>(g + c) * load<W>(weight + c) - a - xhat * b) * s);
      }
      if (rest) store_partial<W>(out + full, (go_rest * w_rest - a - xhat_rest * b) * s, rest);
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
    // Each thread's sums of the weight's and the bias's gradients over its rows, added up below.
    const int threads = at::get_num_threads();
    std::vector<float> partial(static_cast<size_t>(threads) * 2 * static_cast<size_t>(n), 0.0f);
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* mp = saved[2].data_ptr<float>();
    const float* sp = saved[3].data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, rows, row_grain(n), [&](int64_t begin, int64_t end) {
      const int thread = at::get_thread_num();
      TORCH_INTERNAL_ASSERT(thread < threads, "a thread beyond at::get_num_threads()");
      float* sums = partial.data() + static_cast<size_t>(thread) * 2 * static_cast<size_t>(n);
      simd::run_vectorised<Backward>(gp + begin * n, xp + begin * n, wp, mp + begin, sp + begin, dxp + begin * n, sums,
                                     sums + n, end - begin, n);
    });
    at::Tensor dw = at::zeros({n}, x.options());
    at::Tensor db = at::zeros({n}, x.options());
    float* dwp = dw.data_ptr<float>();
    float* dbp = db.data_ptr<float>();
    for (int t = 0; t < threads; ++t) {
      const float* sums = partial.data() + static_cast<size_t>(t) * 2 * static_cast<size_t>(n);
      for (int64_t c = 0; c < n; ++c) {
        dwp[c] += sums[c];
        dbp[c] += sums[n + c];
      }
    }
    return {dx, dw, db, at::Tensor()};
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

}  // namespace vit::cpu
