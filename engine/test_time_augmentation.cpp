#include "engine/test_time_augmentation.h"

#include <ATen/ops/log_softmax.h>
#include <ATen/ops/logaddexp.h>

#include <cmath>
#include <stdexcept>

namespace vit::engine {

TestTimeAugmentation parse_test_time_augmentation(const std::string& name, const std::string& option) {
  if (name == "none") return TestTimeAugmentation::kNone;
  if (name == "hflip") return TestTimeAugmentation::kHorizontalFlip;
  throw std::invalid_argument(option + ": expected none or hflip, got '" + name + "'");
}

size_t forward_passes(TestTimeAugmentation tta) { return tta == TestTimeAugmentation::kHorizontalFlip ? 2 : 1; }

at::Tensor forward_with_tta(const ForwardFn& forward, const at::Tensor& images, TestTimeAugmentation tta) {
  if (tta == TestTimeAugmentation::kNone) return forward(images);
  // Two passes rather than one of twice the batch: the same peak memory as without augmentation.
  const at::Tensor as_is = forward(images).to(at::kFloat).log_softmax(1);
  const at::Tensor mirrored = forward(images.flip({3})).to(at::kFloat).log_softmax(1);
  return at::logaddexp(as_is, mirrored).sub_(std::log(2.0));
}

}  // namespace vit::engine
