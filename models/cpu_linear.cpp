#include "models/cpu_linear.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "models/cpu_gemm.h"

namespace vit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// `shape` with its last size replaced: (..., K) -> (..., N).
std::vector<int64_t> with_last_size(at::IntArrayRef shape, int64_t last) {
  auto sizes = shape.vec();
  sizes.back() = last;
  return sizes;
}

// float32 operands: oneDNN's sgemm, forward and backward. bf16 operands, under CPU bf16 autocast (the caller casts
// them as autocast would): one oneDNN matmul that adds the bias as it writes the output; in the backward, LibTorch's
// bf16 product for dX and one oneDNN pass for dW and db together, the gradients autocast's linear gives (float32
// accumulation, rounded to bf16 once).
class OneDnnLinear : public torch::autograd::Function<OneDnnLinear> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias) {
    RECORD_FUNCTION("vit::linear", std::vector<c10::IValue>());  // named in --trace's timeline
    const int64_t k = weight.size(1), n = weight.size(0);
    const at::Tensor rows = x.view({-1, k});  // (M, K); linear() hands x over contiguous
    const int64_t m = rows.size(0);
    at::Tensor y = at::empty({m, n}, rows.options());
    if (rows.scalar_type() == at::kBFloat16) {
      cpu::bf16_linear(m, n, k, rows.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr());
    } else {
      cpu::sgemm(false, true, m, n, k, 1.0f, rows.data_ptr<float>(), k, weight.data_ptr<float>(), k, 0.0f,
                 y.data_ptr<float>(), n);
      y.add_(bias);
    }
    // x itself, not its rows: a saved input stays connected to the graph, so a create_graph backward can
    // differentiate through it (rows is a view of it: nothing more is kept).
    ctx->save_for_backward({x, weight});
    return y.view(with_last_size(x.sizes(), n));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];  // (N, K)
    const int64_t k = weight.size(1), n = weight.size(0);
    const at::Tensor rows = x.view({-1, k});  // (M, K); x came contiguous
    const int64_t m = rows.size(0);
    const at::Tensor dy = grads[0].reshape({m, n}).contiguous();  // oneDNN's calls take plain rows
    // vit's oneDNN calls write raw buffers; under create_graph (grad mode on here) the gradients must themselves be
    // differentiable, so LibTorch's operators run, as they do for bf16 wherever no fused call applies.
    const bool raw_calls = !at::GradMode::is_enabled();
    const bool bf16 = rows.scalar_type() == at::kBFloat16;
    const bool libtorch_ops = bf16 || !raw_calls;
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // dX = dY W
      if (libtorch_ops) {
        dx = dy.mm(weight);
      } else {
        dx = at::empty({m, k}, dy.options());
        cpu::sgemm(false, false, m, k, n, 1.0f, dy.data_ptr<float>(), n, weight.data_ptr<float>(), k, 0.0f,
                   dx.data_ptr<float>(), k);
      }
      dx = dx.view(with_last_size(grads[0].sizes(), k));
    }
    if (raw_calls && bf16 && ctx->needs_input_grad(1) && ctx->needs_input_grad(2)) {
      dw = at::empty({n, k}, dy.options());  // dW = dY^T X and db in one pass
      db = at::empty({n}, dy.options());
      cpu::bf16_linear_weight_grads(m, n, k, rows.data_ptr(), dy.data_ptr(), dw.data_ptr(), db.data_ptr());
      return {dx, dw, db};
    }
    if (ctx->needs_input_grad(1)) {  // dW = dY^T X
      if (libtorch_ops) {
        dw = dy.t().mm(rows);
      } else {
        dw = at::empty({n, k}, dy.options());
        cpu::sgemm(true, false, n, k, m, 1.0f, dy.data_ptr<float>(), n, rows.data_ptr<float>(), k, 0.0f,
                   dw.data_ptr<float>(), k);
      }
    }
    if (ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  // Checked after the operands' own tests (which include defined(): without a bias, as timm's qkv_bias=False,
  // at::linear runs, since a custom function cannot take an undefined input).
  const auto shapes_fit = [&] {
    return weight.dim() == 2 && bias.dim() == 1 && bias.size(0) == weight.size(0) && x.dim() >= 1 &&
           x.size(-1) == weight.size(1) && x.numel() > 0;
  };
  if (cpu::use_onednn_bf16(x) && cpu::use_onednn_bf16(weight) && cpu::use_onednn_bf16(bias) && shapes_fit()) {
    // The casts autocast's at::linear makes, the float32 parameters' ones cached for the autocast region.
    const auto bf16 = [](const at::Tensor& t) { return at::autocast::cached_cast(at::kBFloat16, t, at::kCPU); };
    return OneDnnLinear::apply(bf16(x).contiguous(), bf16(weight).contiguous(), bf16(bias).contiguous());
  }
  if (cpu::use_onednn(x) && cpu::use_onednn(weight) && cpu::use_onednn(bias) && weight.is_contiguous() &&
      shapes_fit()) {
    return OneDnnLinear::apply(x.contiguous(), weight, bias);  // a strided view's copy is kept, not its base
  }
  return at::linear(x, weight, bias);
}

}  // namespace vit
