#include "engine/ema.h"

#include <stdexcept>

#include "models/state_dict.h"

namespace vit::engine {

ModelEma::ModelEma(VisionTransformer& source, double decay) : decay_(decay) {
  if (!(decay > 0.0 && decay < 1.0))
    throw std::invalid_argument("EMA decay must be in (0, 1), got " + std::to_string(decay));
  ema_ = VisionTransformer(source->config());
  ema_->to(source->parameters().front().device());
  load_state_dict(*ema_, state_dict(*source), "EMA copy");
  ema_->eval();
  for (auto& p : ema_->parameters()) p.set_requires_grad(false);
}

void ModelEma::update(VisionTransformer& source) {
  torch::NoGradGuard no_grad;
  const auto ema = ema_->parameters();
  const auto current = source->parameters();
  for (size_t i = 0; i < ema.size(); ++i) ema[i].lerp_(current[i], 1.0 - decay_);
}

}  // namespace vit::engine
