#include "models/cpu_linear.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <torch/csrc/autograd/custom_function.h>

#include "models/cpu_gemm.h"

namespace vit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class OneDnnLinear : public torch::autograd::Function<OneDnnLinear> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias) {
    const int64_t k = weight.size(1), n = weight.size(0);
    const at::Tensor rows = x.reshape({-1, k}).contiguous();  // (M, K)
    const int64_t m = rows.size(0);
    at::Tensor y = at::empty({m, n}, x.options());
    cpu::sgemm(false, true, m, n, k, 1.0f, rows.data_ptr<float>(), k, weight.data_ptr<float>(), k, 0.0f,
               y.data_ptr<float>(), n);
    y.add_(bias);
    ctx->save_for_backward({rows, weight});
    auto shape = x.sizes().vec();
    shape.back() = n;
    return y.view(shape);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& rows = saved[0];    // (M, K)
    const at::Tensor& weight = saved[1];  // (N, K)
    const int64_t m = rows.size(0), k = rows.size(1), n = weight.size(0);
    const at::Tensor dy = grads[0].reshape({m, n}).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // dX = dY W
      dx = at::empty({m, k}, dy.options());
      cpu::sgemm(false, false, m, k, n, 1.0f, dy.data_ptr<float>(), n, weight.data_ptr<float>(), k, 0.0f,
                 dx.data_ptr<float>(), k);
      auto shape = grads[0].sizes().vec();
      shape.back() = k;
      dx = dx.view(shape);
    }
    if (ctx->needs_input_grad(1)) {  // dW = dY^T X
      dw = at::empty({n, k}, dy.options());
      cpu::sgemm(true, false, n, k, m, 1.0f, dy.data_ptr<float>(), n, rows.data_ptr<float>(), k, 0.0f,
                 dw.data_ptr<float>(), k);
    }
    if (ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  // Without a bias (timm's qkv_bias=False), at::linear: a custom function cannot take an undefined input.
  const bool onednn = cpu::use_onednn(x) && cpu::use_onednn(weight) && weight.is_contiguous() &&
                      cpu::use_onednn(bias) && x.dim() >= 1 && x.size(-1) == weight.size(1);
  if (!onednn) return at::linear(x, weight, bias);
  return OneDnnLinear::apply(x, weight, bias);
}

}  // namespace vit
