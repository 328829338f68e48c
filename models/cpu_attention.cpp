#include "models/cpu_attention.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "models/cpu_gemm.h"
#include "models/cpu_parallel_for.h"
#include "models/cpu_softmax.h"
#include "models/qkv_layout.h"

namespace vit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The projection's layout, and per-head matrices (scores, probabilities) as N x N blocks of (B, H, N, N).
struct Heads : QkvLayout {
  int64_t square_offset(int64_t b, int64_t h) const { return (b * heads + h) * tokens * tokens; }

  template <typename Fn>
  void for_each(const Fn& fn) const {  // fn(b, h), split across LibTorch's threads
    at::parallel_for(0, batch * heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) fn(i / heads, i % heads);
    });
  }
};

Heads heads_of(const at::Tensor& qkv, int64_t heads) { return {QkvLayout::of(qkv, heads)}; }

class CpuAttention : public torch::autograd::Function<CpuAttention> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& qkv_in, int64_t heads) {
    RECORD_FUNCTION("vit::attention", std::vector<c10::IValue>());  // named in --trace's timeline
    const at::Tensor qkv = qkv_in.contiguous();
    const Heads s = heads_of(qkv, heads);
    const int64_t n = s.tokens, d = s.head_dim;
    const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    const float* x = qkv.data_ptr<float>();

    at::Tensor scores = at::empty({s.batch, s.heads, n, n}, qkv.options());
    float* sc = scores.data_ptr<float>();
    s.for_each([&](int64_t b, int64_t h) {  // S = scale * Q K^T
      cpu::sgemm(false, true, n, n, d, scale, x + s.qkv_offset(b, 0, h), s.qkv_row(), x + s.qkv_offset(b, 1, h),
                 s.qkv_row(), 0.0f, sc + s.square_offset(b, h), n);
    });
    const at::Tensor probs = at::empty_like(scores);
    cpu::softmax_rows(sc, probs.data_ptr<float>(), s.batch * s.heads * n, n, 1.0f);  // the scale is in S
    const float* p = probs.data_ptr<float>();
    at::Tensor out = at::empty({s.batch, n, s.dim}, qkv.options());
    float* o = out.data_ptr<float>();
    s.for_each([&](int64_t b, int64_t h) {  // O = P V, written at the head's columns of each token
      cpu::sgemm(false, false, n, d, n, 1.0f, p + s.square_offset(b, h), n, x + s.qkv_offset(b, 2, h), s.qkv_row(),
                 0.0f, o + s.out_offset(b, h), s.dim);
    });
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // Its products write raw buffers: a gradient that would itself be differentiated must not come back silently
    // cut off from the graph.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "cpu_attention: a differentiable backward (create_graph, for second derivatives) is not supported");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& qkv = saved[0];
    const at::Tensor& probs = saved[1];
    const Heads s = heads_of(qkv, ctx->saved_data["heads"].toInt());
    const int64_t n = s.tokens, d = s.head_dim;
    const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    const at::Tensor dout = grads[0].contiguous();  // (B, N, D)
    const float* x = qkv.data_ptr<float>();
    const float* p = probs.data_ptr<float>();
    const float* go = dout.data_ptr<float>();

    at::Tensor dqkv = at::empty_like(qkv);
    at::Tensor dprobs = at::empty_like(probs);
    float* dx = dqkv.data_ptr<float>();
    float* dp = dprobs.data_ptr<float>();
    s.for_each([&](int64_t b, int64_t h) {
      // dV = P^T dO, dP = dO V^T
      cpu::sgemm(true, false, n, d, n, 1.0f, p + s.square_offset(b, h), n, go + s.out_offset(b, h), s.dim, 0.0f,
                 dx + s.qkv_offset(b, 2, h), s.qkv_row());
      cpu::sgemm(false, true, n, n, d, 1.0f, go + s.out_offset(b, h), s.dim, x + s.qkv_offset(b, 2, h), s.qkv_row(),
                 0.0f, dp + s.square_offset(b, h), n);
    });
    at::Tensor dscores = at::empty_like(probs);
    float* ds = dscores.data_ptr<float>();
    cpu::softmax_backward_rows(p, dp, ds, s.batch * s.heads * n, n, 1.0f);
    s.for_each([&](int64_t b, int64_t h) {
      // dQ = scale * dS K, dK = scale * dS^T Q
      cpu::sgemm(false, false, n, d, n, scale, ds + s.square_offset(b, h), n, x + s.qkv_offset(b, 1, h), s.qkv_row(),
                 0.0f, dx + s.qkv_offset(b, 0, h), s.qkv_row());
      cpu::sgemm(true, false, n, d, n, scale, ds + s.square_offset(b, h), n, x + s.qkv_offset(b, 0, h), s.qkv_row(),
                 0.0f, dx + s.qkv_offset(b, 1, h), s.qkv_row());
    });
    return {dqkv, at::Tensor()};
  }
};

}  // namespace

bool cpu_attention_available(const at::Tensor& qkv) { return cpu::use_onednn(qkv) && qkv.dim() == 3; }

at::Tensor cpu_attention(const at::Tensor& qkv, int64_t heads) { return CpuAttention::apply(qkv, heads); }

}  // namespace vit
