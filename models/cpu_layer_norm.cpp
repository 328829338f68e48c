#include "models/cpu_layer_norm.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/native_layer_norm_backward.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "models/cpu_vector.h"

namespace vit::cpu {
namespace {

using namespace simd;

constexpr int64_t kWidthMultiple = 16;  // rows are whole vectors of every width

// y = (x - mean) * rstd * weight + bias, row by row; each row's mean and rstd = 1 / sqrt(var + eps) kept for the
// backward. The moments by the corrected two-pass algorithm: a first mean m0, then the deviations d = x - m0, whose
// sum corrects the mean (m = m0 + mean(d)) and whose squares give the variance (mean(d^2) - mean(d)^2, the second
// term tiny), so that neither a row far from zero (where E[x^2] - mean^2 cancels) nor the first mean's rounding
// costs precision. The row is in cache for all three passes.
template <int W>
[[gnu::always_inline]] inline void forward_rows(const float* x, const float* weight, const float* bias, float* y,
                                                float* mean, float* rstd, int64_t rows, int64_t n, float eps) {
  const float inverse_n = 1.0f / static_cast<float>(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * n;
    float* out = y + r * n;
    Vec<W> total{};
    for (int64_t c = 0; c < n; c += W) total += load<W>(in + c);
    const float first_mean = sum_of<W>(total) * inverse_n;
    Vec<W> deviations{}, squares{};
    for (int64_t c = 0; c < n; c += W) {
      const Vec<W> d = load<W>(in + c) - first_mean;
      deviations += d;
      squares += d * d;
    }
    const float shift = sum_of<W>(deviations) * inverse_n;
    const float m = first_mean + shift;
    const float variance = std::max(0.0f, sum_of<W>(squares) * inverse_n - shift * shift);
    const float s = 1.0f / std::sqrt(variance + eps);
    for (int64_t c = 0; c < n; c += W)
      store<W>(out + c, (load<W>(in + c) - m) * s * load<W>(weight + c) + load<W>(bias + c));
    mean[r] = m;
    rstd[r] = s;
  }
}

// With x_hat = (x - mean) * rstd and h = g * weight, row by row:
//   dx = rstd * (h - mean(h) - x_hat * mean(h * x_hat)),
// and over the rows dweight += g * x_hat, dbias += g, into this thread's sums.
template <int W>
[[gnu::always_inline]] inline void backward_rows(const float* x, const float* g, const float* weight, const float* mean,
                                                 const float* rstd, float* dx, float* dweight, float* dbias,
                                                 int64_t rows, int64_t n) {
  const float inverse_n = 1.0f / static_cast<float>(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * n;
    const float* grad = g + r * n;
    const float m = mean[r], s = rstd[r];
    Vec<W> h_sum{}, h_xhat_sum{};
    for (int64_t c = 0; c < n; c += W) {
      const Vec<W> x_hat = (load<W>(in + c) - m) * s;
      const Vec<W> gv = load<W>(grad + c);
      const Vec<W> h = gv * load<W>(weight + c);
      h_sum += h;
      h_xhat_sum += h * x_hat;
      store<W>(dweight + c, load<W>(dweight + c) + gv * x_hat);
      store<W>(dbias + c, load<W>(dbias + c) + gv);
    }
    const float h_mean = sum_of<W>(h_sum) * inverse_n;
    const float h_xhat_mean = sum_of<W>(h_xhat_sum) * inverse_n;
    float* out = dx + r * n;
    for (int64_t c = 0; c < n; c += W) {
      const Vec<W> x_hat = (load<W>(in + c) - m) * s;
      const Vec<W> h = load<W>(grad + c) * load<W>(weight + c);
      store<W>(out + c, (h - h_mean - x_hat * h_xhat_mean) * s);
    }
  }
}

using ForwardKernel = void (*)(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                               float);
using BackwardKernel = void (*)(const float*, const float*, const float*, const float*, const float*, float*, float*,
                                float*, int64_t, int64_t);

void forward_baseline(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                      int64_t n, float eps) {
  forward_rows<4>(x, w, b, y, mean, rstd, rows, n, eps);
}
void backward_baseline(const float* x, const float* g, const float* w, const float* mean, const float* rstd, float* dx,
                       float* dw, float* db, int64_t rows, int64_t n) {
  backward_rows<4>(x, g, w, mean, rstd, dx, dw, db, rows, n);
}

#ifdef VIT_HAVE_WIDE_KERNELS
[[gnu::target("avx512f,avx512bw,avx512vl")]] void forward_avx512(const float* x, const float* w, const float* b,
                                                                 float* y, float* mean, float* rstd, int64_t rows,
                                                                 int64_t n, float eps) {
  forward_rows<16>(x, w, b, y, mean, rstd, rows, n, eps);
}
[[gnu::target("avx512f,avx512bw,avx512vl")]] void backward_avx512(const float* x, const float* g, const float* w,
                                                                  const float* mean, const float* rstd, float* dx,
                                                                  float* dw, float* db, int64_t rows, int64_t n) {
  backward_rows<16>(x, g, w, mean, rstd, dx, dw, db, rows, n);
}
[[gnu::target("avx2,fma")]] void forward_avx2(const float* x, const float* w, const float* b, float* y, float* mean,
                                              float* rstd, int64_t rows, int64_t n, float eps) {
  forward_rows<8>(x, w, b, y, mean, rstd, rows, n, eps);
}
[[gnu::target("avx2,fma")]] void backward_avx2(const float* x, const float* g, const float* w, const float* mean,
                                               const float* rstd, float* dx, float* dw, float* db, int64_t rows,
                                               int64_t n) {
  backward_rows<8>(x, g, w, mean, rstd, dx, dw, db, rows, n);
}
#endif

ForwardKernel forward_kernel() {
#ifdef VIT_HAVE_WIDE_KERNELS
  if (vector_lanes() == 16) return forward_avx512;
  if (vector_lanes() == 8) return forward_avx2;
#endif
  return forward_baseline;
}

BackwardKernel backward_kernel() {
#ifdef VIT_HAVE_WIDE_KERNELS
  if (vector_lanes() == 16) return backward_avx512;
  if (vector_lanes() == 8) return backward_avx2;
#endif
  return backward_baseline;
}

// Rows per task: a few thousand elements at least, so that a small tensor stays on the calling thread.
int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 4096 / n); }

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class LayerNorm : public torch::autograd::Function<LayerNorm> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, double eps) {
    const at::Tensor x = input.contiguous();
    const at::Tensor w = weight.contiguous();
    const at::Tensor b = bias.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    // The statistics' shape is LibTorch's own (x's with its last dimension 1), which its double backward reads.
    auto stat_sizes = x.sizes().vec();
    stat_sizes.back() = 1;
    at::Tensor mean = at::empty(stat_sizes, x.options());
    at::Tensor rstd = at::empty(stat_sizes, x.options());
    const auto kernel = forward_kernel();
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* mp = mean.data_ptr<float>();
    float* sp = rstd.data_ptr<float>();
    const auto e = static_cast<float>(eps);
    at::parallel_for(0, rows, row_grain(n), [&](int64_t begin, int64_t end) {
      kernel(xp + begin * n, wp, bp, yp + begin * n, mp + begin, sp + begin, end - begin, n, e);
    });
    ctx->save_for_backward({x, w, b, mean, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &b = saved[2], &mean = saved[3], &rstd = saved[4];
    const at::Tensor g = grads[0].to(at::kFloat).contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    if (at::GradMode::is_enabled()) {  // create_graph: the gradients must be differentiable themselves
      auto [dx, dw, db] = at::native_layer_norm_backward(g, x, {n}, mean, rstd, w, b, {true, true, true});
      return {dx, dw, db, at::Tensor()};
    }
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    // One weight and one bias sum per task, added up at the end: tasks never share a sum.
    const int64_t grain = row_grain(n);
    const int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (rows + grain - 1) / grain));
    at::Tensor partial = at::zeros({tasks, 2, n}, x.options());
    const auto kernel = backward_kernel();
    const float* xp = x.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* mp = mean.data_ptr<float>();
    const float* sp = rstd.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* pp = partial.data_ptr<float>();
    at::parallel_for(0, tasks, 1, [&](int64_t first_task, int64_t last_task) {
      for (int64_t t = first_task; t < last_task; ++t) {
        const int64_t begin = rows * t / tasks, end = rows * (t + 1) / tasks;
        kernel(xp + begin * n, gp + begin * n, wp, mp + begin, sp + begin, dxp + begin * n, pp + t * 2 * n,
               pp + t * 2 * n + n, end - begin, n);
      }
    });
    const at::Tensor sums = partial.sum(0);  // (2, n)
    return {dx, sums[0], sums[1], at::Tensor()};
  }
};

}  // namespace

bool layer_norm_available(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const auto cpu_float = [](const at::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat;
  };
  if (!cpu_float(x) || !cpu_float(weight) || !cpu_float(bias) || x.dim() < 1 || x.numel() == 0) return false;
  const int64_t n = x.size(-1);
  return n % kWidthMultiple == 0 && weight.dim() == 1 && weight.size(0) == n && bias.dim() == 1 && bias.size(0) == n &&
         !torch::jit::tracer::isTracing();
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps) {
  TORCH_CHECK(layer_norm_available(x, weight, bias),
              "vit's LayerNorm needs float32 CPU tensors whose last dimension is a multiple of 16 and matches the "
              "weight and bias, got x ",
              x.toString(), " ", x.sizes(), ", weight ", weight.sizes(), ", bias ", bias.sizes());
  return LayerNorm::apply(x, weight, bias, eps);
}

}  // namespace vit::cpu
