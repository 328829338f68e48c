#include "models/cpu_gelu.h"

#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/gelu_backward.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include "models/cpu_parallel_for.h"
#include "models/cpu_simd.h"

namespace vit::cpu {
namespace {

using simd::load;
using simd::load_partial;
using simd::store;
using simd::store_partial;
using simd::Vec;

// Phi(x) and e^(-x^2/2) for one vector. Phi comes from erfc(|x| / sqrt 2) on either side of 0 (Phi(x) = erfc / 2
// below it, 1 - erfc / 2 above), so that far below 0 it keeps its relative precision instead of cancelling in
// 1 + erf.
template <int W>
struct NormalCdf {
  Vec<W> phi;
  Vec<W> gaussian;  // e^(-x^2/2)
};

template <int W>
[[gnu::always_inline]] inline NormalCdf<W> normal_cdf(const Vec<W>& x) {
  const Vec<W> z = (x < 0.0f ? -x : x) * 0.70710678118654752f;  // |x| / sqrt 2 (a NaN stays NaN)
  const Vec<W> t = 1.0f / (1.0f + 0.3275911f * z);
  Vec<W> p = -1.453152027f + t * 1.061405429f;
  p = 1.421413741f + t * p;
  p = -0.284496736f + t * p;
  p = 0.254829592f + t * p;
  const Vec<W> gaussian = simd::exp_nonpositive<W>(-(z * z));
  const Vec<W> half_erfc = 0.5f * t * p * gaussian;
  return {x < 0.0f ? half_erfc : 1.0f - half_erfc, gaussian};
}

// y = x * Phi(x) over `count` elements.
struct Forward {
  template <int W, typename T>
  [[gnu::always_inline]] static void run(const T* x, T* y, int64_t count) {
    int64_t i = 0;
    for (; i + W <= count; i += W) {
      const Vec<W> v = load<W>(x + i);
      store<W>(y + i, v * normal_cdf<W>(v).phi);
    }
    if (i < count) {
      const Vec<W> v = load_partial<W>(x + i, count - i, 0.0f);
      store_partial<W>(y + i, v * normal_cdf<W>(v).phi, count - i);
    }
  }
};

// dx = dy * (Phi(x) + x e^(-x^2/2) / sqrt(2 pi)) over `count` elements.
struct Backward {
  template <int W>
  [[gnu::always_inline]] static Vec<W> derivative(const Vec<W>& v) {
    const NormalCdf<W> cdf = normal_cdf<W>(v);
    return cdf.phi + v * cdf.gaussian * 0.39894228040143268f;
  }

  template <int W, typename T>
  [[gnu::always_inline]] static void run(const T* grad_out, const T* x, T* grad_in, int64_t count) {
    int64_t i = 0;
    for (; i + W <= count; i += W) store<W>(grad_in + i, load<W>(grad_out + i) * derivative<W>(load<W>(x + i)));
    if (i < count) {
      const int64_t rest = count - i;
      store_partial<W>(grad_in + i,
                       load_partial<W>(grad_out + i, rest, 0.0f) * derivative<W>(load_partial<W>(x + i, rest, 0.0f)),
                       rest);
    }
  }
};

// Elements per task: enough that a task is worth a thread's wake-up, few enough that both threads get work at
// the main job's sizes (1,664 x 512).
constexpr int64_t kGrain = 16384;

template <typename T>
void run_forward(const at::Tensor& x, const at::Tensor& y) {
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    simd::run_vectorised<Forward>(xp + begin, yp + begin, end - begin);
  });
}

template <typename T>
void run_backward(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& grad_in) {
  const T* gp = grad_out.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  T* dp = grad_in.data_ptr<T>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    simd::run_vectorised<Backward>(gp + begin, xp + begin, dp + begin, end - begin);
  });
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class Gelu : public torch::autograd::Function<Gelu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    RECORD_FUNCTION("vit::gelu", std::vector<c10::IValue>());  // named in --trace's timeline
    at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
    if (x.scalar_type() == at::kBFloat16) {
      run_forward<c10::BFloat16>(x, y);
    } else {
      run_forward<float>(x, y);
    }
    ctx->save_for_backward({x});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    // LibTorch's operator where the gradient must itself be differentiable (create_graph).
    if (at::GradMode::is_enabled()) return {at::gelu_backward(grads[0], x)};
    RECORD_FUNCTION("vit::gelu_backward", std::vector<c10::IValue>());
    const at::Tensor g = grads[0].to(x.scalar_type()).contiguous();
    at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    if (x.scalar_type() == at::kBFloat16) {
      run_backward<c10::BFloat16>(g, x, dx);
    } else {
      run_backward<float>(g, x, dx);
    }
    return {dx};
  }
};

}  // namespace

bool gelu_available(const at::Tensor& x) {
  return x.defined() && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         x.is_contiguous() && !torch::jit::tracer::isTracing();
}

at::Tensor gelu(const at::Tensor& x) {
  TORCH_CHECK(gelu_available(x), "gelu needs a contiguous float32 or bf16 CPU tensor, got ", x.toString(), " ",
              x.sizes());
  return Gelu::apply(x);
}

}  // namespace vit::cpu
