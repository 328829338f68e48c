// Test-time augmentation: the averaged answer against a float64 reference, numerically safe for classes a pass
// rules out, and the model's own logits without it.

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <stdexcept>

#include "engine/test_time_augmentation.h"
#include "engine/train_options.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::engine {
namespace {

// A linear classifier over the flattened pixels: not mirror-symmetric, so the two passes differ.
struct LinearModel {
  at::Tensor weight;  // (K, C*H*W)
  int calls = 0;
  at::Tensor operator()(const at::Tensor& images) {
    ++calls;
    return images.flatten(1).matmul(weight.t());
  }
};

}  // namespace

TEST_CASE("tta: hflip gives the log of the mean of the image's and its mirror image's probabilities", "[tta]") {
  at::manual_seed(5);
  LinearModel model{at::randn({4, 2 * 3 * 5})};
  const at::Tensor images = at::randn({6, 2, 3, 5});
  const at::Tensor out = forward_with_tta(std::ref(model), images, TestTimeAugmentation::kHorizontalFlip);
  CHECK(model.calls == 2);
  REQUIRE(out.sizes() == at::IntArrayRef({6, 4}));
  CHECK(out.scalar_type() == at::kFloat);

  // The reference in float64, mirroring by hand: column w of the mirror image is column W-1-w of the image.
  const at::Tensor mirrored = images.index_select(3, at::arange(4, -1, -1, at::kLong));
  const at::Tensor w = model.weight.to(at::kDouble);
  const at::Tensor p = (at::softmax(images.to(at::kDouble).flatten(1).matmul(w.t()), 1) +
                        at::softmax(mirrored.to(at::kDouble).flatten(1).matmul(w.t()), 1)) /
                       2;
  CHECK(out.to(at::kDouble).exp().sub(p).abs().max().item<double>() < 1e-6);
  // Valid logits: the probabilities sum to one, so softmax of the answer is the mean itself.
  CHECK(out.to(at::kDouble).exp().sum(1).sub(1).abs().max().item<double>() < 1e-6);
  // Not the plain answer: this model's two passes disagree.
  CHECK(out.sub(at::log_softmax(model(images), 1)).abs().max().item<float>() > 1e-3);
}

TEST_CASE("tta: a class both passes rule out keeps a finite log-probability", "[tta]") {
  // Logits so far apart that float32 softmax underflows to 0: a log taken after averaging would be -inf, and the
  // cross-entropy of an image of that class infinite.
  const auto forward = [](const at::Tensor& images) {
    return at::tensor({0.0f, 0.0f, -300.0f}).expand({images.size(0), 3}).clone();
  };
  const at::Tensor out = forward_with_tta(forward, at::zeros({2, 1, 2, 2}), TestTimeAugmentation::kHorizontalFlip);
  REQUIRE(out.isfinite().all().item<bool>());
  // Both passes agree, so the answer is their own log-softmax: log(1/2) for the first two classes.
  CHECK(out[0][0].item<double>() == Approx(std::log(0.5)).margin(1e-6));
  CHECK(out[1][2].item<double>() == Approx(-300.0 + std::log(0.5)).margin(1e-3));
}

TEST_CASE("tta: none returns the model's logits unchanged, from one pass", "[tta]") {
  at::manual_seed(6);
  LinearModel model{at::randn({3, 4})};
  const at::Tensor images = at::randn({2, 1, 2, 2});
  const at::Tensor out = forward_with_tta(std::ref(model), images, TestTimeAugmentation::kNone);
  CHECK(model.calls == 1);
  CHECK(out.equal(images.flatten(1).matmul(model.weight.t())));
}

TEST_CASE("tta: names are parsed, and a wrong one names the option", "[tta]") {
  CHECK(parse_test_time_augmentation("none", "--tta") == TestTimeAugmentation::kNone);
  CHECK(parse_test_time_augmentation("hflip", "--tta") == TestTimeAugmentation::kHorizontalFlip);
  CHECK(forward_passes(TestTimeAugmentation::kNone) == 1);
  CHECK(forward_passes(TestTimeAugmentation::kHorizontalFlip) == 2);
  CHECK_THROWS_WITH(parse_test_time_augmentation("vflip", "--val-tta"),
                    Contains("--val-tta") && Contains("hflip") && Contains("'vflip'"));
}

TEST_CASE("tta: train options (a resumed run's saved ones too) refuse another --val-tta, naming it", "[tta]") {
  TrainOptions options;
  options.val_tta = "hflip";
  CHECK_NOTHROW(options.validate());
  options.val_tta = "vflip";
  CHECK_THROWS_WITH(options.validate(), Contains("--val-tta: expected none or hflip, got 'vflip'"));
}

}  // namespace vit::engine
