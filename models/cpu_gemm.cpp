#include "models/cpu_gemm.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include "models/autocast_state.h"

#ifdef VIT_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <unordered_map>
#endif

namespace vit::cpu {

#ifdef VIT_HAVE_ONEDNN
namespace {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A oneDNN view of a buffer LibTorch owns (oneDNN takes a non-const pointer for inputs too).
dnnl::memory view(const dnnl::memory::desc& desc, const void* data) {
  return dnnl::memory(desc, cpu_engine(), const_cast<void*>(data));
}

// Runs `primitive` on LibTorch's OpenMP threads and waits for it to finish.
void run(const dnnl::primitive& primitive, const std::unordered_map<int, dnnl::memory>& arguments) {
  thread_local dnnl::stream stream(cpu_engine());
  primitive.execute(stream, arguments);
  stream.wait();
}

}  // namespace
#endif

bool onednn_available() {
#ifdef VIT_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

bool use_onednn(const at::Tensor& t) {
#ifdef VIT_HAVE_ONEDNN
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && !autocast_enabled(at::kCPU) &&
         !torch::jit::tracer::isTracing();
#else
  (void)t;
  return false;
#endif
}

bool onednn_bf16_native() {
#ifdef VIT_HAVE_ONEDNN
  // The ISA values are bit sets, each containing the ones below it: AMX machines include AVX512-BF16's bits.
  static const bool native = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;
  }();
  return native;
#else
  return false;
#endif
}

bool use_onednn_bf16(const at::Tensor& t) {
  return onednn_bf16_native() && t.defined() && t.device().is_cpu() &&
         (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16) && bf16_autocast(at::kCPU) &&
         !torch::jit::tracer::isTracing();
}

void bf16_linear(int64_t m, int64_t n, int64_t k, const void* x, const void* weight, const void* bias, void* y) {
#ifdef VIT_HAVE_ONEDNN
  using dnnl::memory;
  try {
    const dnnl::engine& engine = cpu_engine();
    const memory::desc x_md({m, k}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc weight_md({k, n}, memory::data_type::bf16, memory::format_tag::ba);  // weight^T, in place
    const memory::desc bias_md({1, n}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc y_md({m, n}, memory::data_type::bf16, memory::format_tag::ab);
    // After the first call with these sizes this is a lookup in oneDNN's primitive cache (~2 us measured).
#if DNNL_VERSION_MAJOR >= 3  // oneDNN 3 dropped the operation descriptors
    const dnnl::matmul product(dnnl::matmul::primitive_desc(engine, x_md, weight_md, bias_md, y_md));
#else
    const dnnl::matmul product(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(x_md, weight_md, bias_md, y_md), engine));
#endif
    run(product, {{DNNL_ARG_SRC, view(x_md, x)},
                  {DNNL_ARG_WEIGHTS, view(weight_md, weight)},
                  {DNNL_ARG_BIAS, view(bias_md, bias)},
                  {DNNL_ARG_DST, view(y_md, y)}});
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "oneDNN bf16 matmul failed (", e.what(), ") for m=", m, " n=", n, " k=", k);
  }
#else
  (void)m, (void)n, (void)k, (void)x, (void)weight, (void)bias, (void)y;
  TORCH_CHECK(false, "vit was built without oneDNN: check cpu::onednn_bf16_native() before cpu::bf16_linear()");
#endif
}

void bf16_linear_weight_grads(int64_t m, int64_t n, int64_t k, const void* x, const void* dy, void* dweight,
                              void* dbias) {
#ifdef VIT_HAVE_ONEDNN
  using dnnl::memory;
  try {
    const dnnl::engine& engine = cpu_engine();
    const memory::desc x_md({m, k}, memory::data_type::bf16, memory::format_tag::nc);
    const memory::desc weight_md({n, k}, memory::data_type::bf16, memory::format_tag::oi);
    const memory::desc bias_md({n}, memory::data_type::bf16, memory::format_tag::x);
    const memory::desc dy_md({m, n}, memory::data_type::bf16, memory::format_tag::nc);
    // oneDNN picks a backward implementation with the forward's descriptor as a hint. Both are lookups in its
    // primitive cache after the first call with these sizes (~6 us measured).
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::inner_product_forward::primitive_desc hint(engine, dnnl::prop_kind::forward_training, x_md, weight_md,
                                                           bias_md, dy_md);
    const dnnl::inner_product_backward_weights gradients(
        dnnl::inner_product_backward_weights::primitive_desc(engine, x_md, weight_md, bias_md, dy_md, hint));
#else
    const dnnl::inner_product_forward::primitive_desc hint(
        dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, x_md, weight_md, bias_md, dy_md), engine);
    const dnnl::inner_product_backward_weights gradients(dnnl::inner_product_backward_weights::primitive_desc(
        dnnl::inner_product_backward_weights::desc(x_md, weight_md, bias_md, dy_md), engine, hint));
#endif
    run(gradients, {{DNNL_ARG_SRC, view(x_md, x)},
                    {DNNL_ARG_DIFF_DST, view(dy_md, dy)},
                    {DNNL_ARG_DIFF_WEIGHTS, view(weight_md, dweight)},
                    {DNNL_ARG_DIFF_BIAS, view(bias_md, dbias)}});
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "oneDNN bf16 linear weight gradients failed (", e.what(), ") for m=", m, " n=", n, " k=", k);
  }
#else
  (void)m, (void)n, (void)k, (void)x, (void)dy, (void)dweight, (void)dbias;
  TORCH_CHECK(false,
              "vit was built without oneDNN: check cpu::onednn_bf16_native() before cpu::bf16_linear_weight_grads()");
#endif
}

void sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef VIT_HAVE_ONEDNN
  const dnnl_status_t status =
      dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  TORCH_CHECK(status == dnnl_success, "oneDNN sgemm failed (status ", static_cast<int>(status), ") for m=", m, " n=", n,
              " k=", k);
#else
  (void)transpose_a, (void)transpose_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb,
      (void)beta, (void)c, (void)ldc;
  TORCH_CHECK(false, "vit was built without oneDNN: check cpu::use_onednn() before cpu::sgemm()");
#endif
}

}  // namespace vit::cpu
