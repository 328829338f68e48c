#include "models/cpu_residual_add.h"

#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include "models/cpu_parallel_for.h"
#include "models/cpu_simd.h"

namespace vit::cpu {
namespace {

// out = x + branch over `count` elements.
struct AddWidened {
  template <int W>
  [[gnu::always_inline]] static void run(const float* x, const c10::BFloat16* branch, float* out, int64_t count) {
    simd::add_widened<W>(x, branch, out, count);
  }
};

// Elements per task: enough that a task is worth a thread's wake-up, few enough that both threads get work at
// the main job's sizes (1,664 x 128).
constexpr int64_t kGrain = 16384;

class ResidualAdd : public torch::autograd::Function<ResidualAdd> {
 public:
  using AutogradContext = torch::autograd::AutogradContext;
  using variable_list = torch::autograd::variable_list;

  static at::Tensor forward(AutogradContext* /*ctx*/, const at::Tensor& x, const at::Tensor& branch) {
    RECORD_FUNCTION("vit::residual_add", std::vector<c10::IValue>());  // named in --trace's timeline
    at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
    const float* xp = x.data_ptr<float>();
    const c10::BFloat16* bp = branch.data_ptr<c10::BFloat16>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      simd::run_vectorised<AddWidened>(xp + begin, bp + begin, op + begin, end - begin);
    });
    return out;
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list grads) {
    return {grads[0], grads[0].to(at::kBFloat16)};
  }
};

}  // namespace

bool residual_add_available(const at::Tensor& x, const at::Tensor& branch) {
  return x.defined() && branch.defined() && x.device().is_cpu() && branch.device().is_cpu() &&
         x.scalar_type() == at::kFloat && branch.scalar_type() == at::kBFloat16 && x.sizes() == branch.sizes() &&
         x.is_contiguous() && branch.is_contiguous() && !torch::jit::tracer::isTracing();
}

at::Tensor residual_add(const at::Tensor& x, const at::Tensor& branch) {
  TORCH_CHECK(residual_add_available(x, branch),
              "residual_add needs a contiguous float32 CPU tensor and a contiguous bf16 CPU tensor of its sizes, got ",
              x.toString(), " ", x.sizes(), " and ", branch.toString(), " ", branch.sizes());
  return ResidualAdd::apply(x, branch);
}

}  // namespace vit::cpu
