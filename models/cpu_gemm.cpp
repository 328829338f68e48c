#include "models/cpu_gemm.h"

#include <c10/util/Exception.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include "models/autocast_state.h"

#ifdef VIT_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace vit::cpu {

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
