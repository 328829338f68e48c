#pragma once
// Attention's softmax on CPU, softmax(scale * scores) over the last dimension, for float32 and bf16 tensors:
// computed in float32 with a vectorised exp, its vector width (AVX-512, AVX2 or SSE) chosen at run time
// (cpu_vector_width.h), the scale folded in (no separate q * scale pass) and bf16 read and written directly.
// Why: LibTorch 1.13's CPU softmax runs at its AVX2 level and converts bf16 element by element; on attention's
// short rows (13 to a few hundred tokens) its forward and backward were a third of a bf16 attention layer here
// (bench/attention_bf16.sh).

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <torch/version.h>

namespace vit::cpu {

// Whether a CPU model's attention, where vit's attention kernels do not take it, runs on this softmax, in training
// and inference (layers.cpp): with LibTorch 1.x, whose CPU attention is operator by operator. LibTorch 2.x has a
// flash-attention CPU kernel, which the model keeps.
constexpr bool kSoftmaxInAttention = TORCH_VERSION_MAJOR < 2;

// True when scaled_softmax can run on `scores`: a CPU tensor of float32 or bf16, and no TorchScript trace being
// recorded (a trace cannot see this function: it must go through LibTorch's operators).
bool softmax_available(const at::Tensor& scores);

// softmax(scale * scores, dim = -1) in the scores' dtype; differentiable.
at::Tensor scaled_softmax(const at::Tensor& scores, double scale);

// The kernels on raw rows (`rows` rows of `n` contiguous floats), for callers inside their own autograd function
// (cpu_attention.h, cpu_attention_bf16_chunked.h). Split across LibTorch's threads (run serially when called inside
// an at::parallel_for); `out` and `grad_in` must not overlap the inputs. bf16 rows are computed in float32 and
// rounded once, as scaled_softmax computes them.
void softmax_rows(const float* in, float* out, int64_t rows, int64_t n, float scale);
void softmax_rows(const c10::BFloat16* in, c10::BFloat16* out, int64_t rows, int64_t n, float scale);
// grad_in = scale * p * (grad_out - sum(p * grad_out)), row by row: the gradient of softmax(scale * x) for x.
void softmax_backward_rows(const float* p, const float* grad_out, float* grad_in, int64_t rows, int64_t n, float scale);
void softmax_backward_rows(const c10::BFloat16* p, const c10::BFloat16* grad_out, c10::BFloat16* grad_in, int64_t rows,
                           int64_t n, float scale);

}  // namespace vit::cpu
