#pragma once
// Float32 matrix products on CPU through oneDNN's sgemm, for the model's linear layers and attention
// (cpu_linear.h, cpu_attention.h), and bf16 linear layers through oneDNN's matmul primitive (cpu_linear.h).
//
// Why not LibTorch's own: Debian's LibTorch 1.13 multiplies float32 matrices with OpenBLAS, and batches of them
// (attention's B x H small products) as a serial loop of select() + sgemm that leaves all but one core idle.
// Measured on this project's 2-core AVX-512 machine on a ViT's shapes (bench/sgemm_shapes.py): oneDNN's sgemm
// 192-215 GFLOP/s against OpenBLAS's 141-178; and the attention products are split across cores.
// In bf16 LibTorch 1.13 already multiplies on oneDNN, but adds a linear layer's bias by first copying it into every
// row of the output (addmm with beta = 1), a pass over memory as long as the product's output; oneDNN's matmul
// primitive adds it as the output is written.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit::cpu {

// True when this build has oneDNN (Debian's libdnnl-dev was found).
bool onednn_available();

// True when products on `t` may take the oneDNN route: this build has oneDNN, `t` is a float32 CPU tensor,
// autocast is off on CPU (under bf16 autocast LibTorch's own bf16 kernels are the fast ones), and no TorchScript
// trace is being recorded (a trace cannot see these calls, so it must go through LibTorch's operators).
bool use_onednn(const at::Tensor& t);

// True when this build has oneDNN and oneDNN runs bf16 products on this CPU's own bf16 instructions (AVX512-BF16
// or AMX), where bf16_linear was measured; elsewhere LibTorch's path is kept.
bool onednn_bf16_native();

// The bf16 twin of use_onednn: true when `t` may enter a bf16 product on oneDNN once cast as autocast casts it:
// onednn_bf16_native(), CPU bf16 autocast on, `t` a float32 or bf16 CPU tensor, and no TorchScript trace being
// recorded.
bool use_onednn_bf16(const at::Tensor& t);

// Row-major bf16 y (m x n) = x (m x k) weight^T + bias, weight (n x k) and bias (n) bf16, all contiguous: float32
// accumulation, the bias added in float32, y rounded to bf16 once (as LibTorch's addmm on oneDNN rounds it).
// Runs on LibTorch's threads.
void bf16_linear(int64_t m, int64_t n, int64_t k, const void* x, const void* weight, const void* bias, void* y);

// The weight and bias gradients of bf16_linear, both bf16 and contiguous: dweight (n x k) = dy^T x and dbias (n) =
// dy's column sums, from x (m x k) and dy (m x n). One oneDNN inner-product backward pass that sums dy's columns as
// it streams dy through the product (LibTorch sums them in a pass of its own), float32 accumulation, each result
// rounded to bf16 once. Runs on LibTorch's threads.
void bf16_linear_weight_grads(int64_t m, int64_t n, int64_t k, const void* x, const void* dy, void* dweight,
                              void* dbias);

// Row-major C = alpha * op(A) * op(B) + beta * C, op = transpose where asked; A is m x k after op, B k x n.
// Runs on LibTorch's threads, or on the calling thread inside an at::parallel_for.
void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace vit::cpu
