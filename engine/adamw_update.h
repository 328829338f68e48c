#pragma once
// AdamW's update of one float32 CPU parameter in a single pass over its values: the arithmetic of
// torch.optim.AdamW's single-tensor path (optimizer.cpp's operator sequence), element by element. Why: as LibTorch
// operators that sequence is eight passes over memory and eight dispatches per parameter, and a small model's
// step has ~80 parameters (README, "Why vit is faster here").

#include <cstdint>

namespace vit::engine {

// The step's scalars, as the operators would round them to float32.
struct AdamWCoefficients {
  float decay_factor;           // 1 - lr * weight_decay, or 1 for a parameter without weight decay
  float average_weight;         // 1 - beta1: exp_avg moves this far towards the gradient
  float beta2;                  // exp_avg_sq's decay
  float square_weight;          // 1 - beta2
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
  float step_size;  // lr / (1 - beta1^step)
};

// All four arrays hold `count` values and do not overlap; split across LibTorch's threads.
void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t count,
                  const AdamWCoefficients& k);

}  // namespace vit::engine
