#include "models/cpu_attention_bf16_dot.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/BFloat16.h>

#include <cmath>
#include <memory>

#include "models/cpu_attention_bf16_function.h"
#include "models/cpu_bf16_dot_attention_head.h"
#include "models/cpu_parallel_for.h"
#include "models/qkv_layout.h"

namespace vit {
namespace {

// (image, head) pairs per task: each is a few microseconds of work.
constexpr int64_t kPairsPerTask = 4;

uint16_t* bits(const at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<c10::BFloat16>()); }

// fn(b, h, scratch) for every (image, head) pair, split across LibTorch's threads; `scratch` floats per thread.
template <typename Fn>
void for_each_head(const QkvLayout& s, size_t scratch, const Fn& fn) {
  at::parallel_for(0, s.batch * s.heads, kPairsPerTask, [&](int64_t begin, int64_t end) {
    const std::unique_ptr<float[]> buffer(new float[scratch]);
    for (int64_t pair = begin; pair < end; ++pair) fn(pair / s.heads, pair % s.heads, buffer.get());
  });
}

struct DotKernel {
  static constexpr const char* kName = "vit::attention_bf16_dot";

  static cpu::Bf16DotHead head_of(const QkvLayout& s) { return {s.tokens, s.head_dim}; }
  static float scale_of(const QkvLayout& s) {
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  }

  // (B * heads, N, prob_row()): a head's probabilities, their rows padded to a pair of keys.
  static at::Tensor empty_probs(const at::Tensor& qkv, const QkvLayout& s) {
    return at::empty({s.batch * s.heads, s.tokens, head_of(s).prob_row()}, qkv.options());
  }

  static at::Tensor forward(const at::Tensor& qkv, const QkvLayout& s, const at::Tensor* probs) {
    at::Tensor out = at::empty({s.batch, s.tokens, s.dim}, qkv.options());
    const cpu::Bf16DotHead head = head_of(s);
    const uint16_t* x = bits(qkv);
    uint16_t* o = bits(out);
    uint16_t* p = probs ? bits(*probs) : nullptr;
    const int64_t head_probs = s.tokens * head.prob_row();
    // Without `probs` (inference) each head's probabilities stay in its thread's scratch memory, in cache.
    const size_t own_probs = p ? 0 : static_cast<size_t>(head_probs + 1) / 2;  // floats holding one head's bf16
    for_each_head(s, head.forward_scratch() + own_probs, [&](int64_t b, int64_t h, float* scratch) {
      uint16_t* head_p =
          p ? p + (b * s.heads + h) * head_probs : reinterpret_cast<uint16_t*>(scratch + head.forward_scratch());
      head.forward(x + s.qkv_offset(b, 0, h), x + s.qkv_offset(b, 1, h), x + s.qkv_offset(b, 2, h), s.qkv_row(),
                   scale_of(s), o + s.out_offset(b, h), s.dim, head_p, scratch);
    });
    return out;
  }

  static at::Tensor backward(const at::Tensor& qkv, const at::Tensor& probs, const QkvLayout& s,
                             const at::Tensor& grad_out) {
    at::Tensor grad_qkv = at::empty_like(qkv);
    const cpu::Bf16DotHead head = head_of(s);
    const uint16_t* x = bits(qkv);
    const uint16_t* p = bits(probs);
    const uint16_t* go = bits(grad_out);
    uint16_t* gx = bits(grad_qkv);
    const int64_t head_probs = s.tokens * head.prob_row();
    for_each_head(s, head.backward_scratch(), [&](int64_t b, int64_t h, float* scratch) {
      head.backward(x + s.qkv_offset(b, 0, h), x + s.qkv_offset(b, 1, h), x + s.qkv_offset(b, 2, h), s.qkv_row(),
                    scale_of(s), go + s.out_offset(b, h), s.dim, p + (b * s.heads + h) * head_probs,
                    gx + s.qkv_offset(b, 0, h), gx + s.qkv_offset(b, 1, h), gx + s.qkv_offset(b, 2, h), scratch);
    });
    return grad_qkv;
  }
};

}  // namespace

bool cpu_attention_bf16_dot_available(int64_t head_dim) {
  return cpu::has_bf16_dot() && cpu::bf16_dot_head_dim_supported(head_dim);
}

at::Tensor cpu_attention_bf16_dot(const at::Tensor& qkv, int64_t heads) {
  return run_bf16_attention<DotKernel>(qkv, heads);
}

}  // namespace vit
