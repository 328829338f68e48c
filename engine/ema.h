#pragma once
// Exponential moving average of a model's weights (timm's ModelEmaV2): a second copy of the model whose
// weights trail the trained ones, often evaluating better late in training.

#include "models/safetensors.h"
#include "models/vision_transformer.h"

namespace vit::engine {

class ModelEma {
 public:
  ModelEma(VisionTransformer& source, double decay);

  void update(VisionTransformer& source);  // ema = decay * ema + (1 - decay) * source
  VisionTransformer& model() { return ema_; }
  double decay() const { return decay_; }

 private:
  VisionTransformer ema_{nullptr};
  double decay_;
};

}  // namespace vit::engine
