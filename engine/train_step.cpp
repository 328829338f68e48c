#include "engine/train_step.h"

#include <ATen/TensorOperators.h>

#include "engine/autocast.h"
#include "engine/mixup.h"

namespace vit::engine {

ForwardBackward forward_backward(VisionTransformer& model, const at::Tensor& images, const at::Tensor& targets,
                                 bool bf16, double loss_divisor) {
  at::Tensor logits;
  {
    AutocastGuard autocast(images.device().type(), bf16);
    logits = model->forward(images);
  }
  auto loss = soft_cross_entropy(logits, targets);
  (loss_divisor == 1.0 ? loss : loss / loss_divisor).backward();
  return {loss.detach(), logits.detach()};
}

}  // namespace vit::engine
