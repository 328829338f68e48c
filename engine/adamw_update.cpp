#include "engine/adamw_update.h"

#include <cmath>

#include "models/cpu_parallel_for.h"

namespace vit::engine {

void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t count,
                  const AdamWCoefficients& k) {
  at::parallel_for(0, count, 32768, [&](int64_t begin, int64_t end) {
    float* __restrict p = param;
    const float* __restrict g = grad;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
#pragma GCC ivdep
    for (int64_t i = begin; i < end; ++i) {
      // The operators' order and rounding: mul_, lerp_ (its weight under 0.5), mul_ + addcmul_, sqrt / + eps,
      // addcdiv_.
      const float decayed = p[i] * k.decay_factor;
      const float average = m[i] + k.average_weight * (g[i] - m[i]);
      const float square = v[i] * k.beta2 + k.square_weight * g[i] * g[i];
      const float denom = std::sqrt(square) / k.bias_correction2_sqrt + k.eps;
      m[i] = average;
      v[i] = square;
      p[i] = decayed + -k.step_size * average / denom;
    }
  });
}

}  // namespace vit::engine
