// Targets, label smoothing, Mixup and CutMix.

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "engine/mixup.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::engine {

TEST_CASE("smoothed one-hot targets", "[mixup]") {
  const auto t = smooth_one_hot(torch::tensor({2, 0}, torch::kLong), 4, 0.2);
  CHECK(torch::allclose(t, torch::tensor({{0.05f, 0.05f, 0.85f, 0.05f}, {0.85f, 0.05f, 0.05f, 0.05f}})));
}

TEST_CASE("soft-target cross-entropy equals LibTorch's label-smoothed cross-entropy", "[mixup]") {
  torch::manual_seed(0);
  const auto logits = torch::randn({6, 5});
  const auto labels = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kLong);
  const auto ours = soft_cross_entropy(logits, smooth_one_hot(labels, 5, 0.1));
  const auto theirs = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(0.1));
  CHECK(ours.item<double>() == Approx(theirs.item<double>()).epsilon(1e-6));
}

TEST_CASE("without mixing, images pass through and targets are only smoothed", "[mixup]") {
  std::mt19937_64 rng(1);
  const auto images = torch::randn({4, 3, 8, 8});
  const auto labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto out = mix_batch(images, labels, 3, 0.0, MixupOptions{}, rng);
  CHECK(torch::equal(out.images, images));
  CHECK(torch::equal(out.targets.argmax(1), labels));
  CHECK(out.lambda == 1.0);
}

TEST_CASE("mixup blends each image with its mirror partner, targets likewise", "[mixup]") {
  std::mt19937_64 rng(2);
  const auto images = torch::randn({4, 1, 5, 5});
  const auto labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
  MixupOptions options;
  options.mixup_alpha = 0.8;
  const auto out = mix_batch(images, labels, 4, 0.0, options, rng);
  REQUIRE(out.lambda > 0.0);
  REQUIRE(out.lambda < 1.0);
  CHECK(torch::allclose(out.images[1], images[1] * out.lambda + images[2] * (1.0 - out.lambda)));
  CHECK(out.targets[0][0].item<double>() == Approx(out.lambda));
  CHECK(out.targets[0][3].item<double>() == Approx(1.0 - out.lambda));
  CHECK(torch::allclose(out.targets.sum(1), torch::ones({4})));
}

TEST_CASE("cutmix pastes a box and weighs targets by the area kept", "[mixup]") {
  std::mt19937_64 rng(3);
  const auto images = torch::zeros({2, 1, 10, 10});
  images[1].fill_(1.0);
  MixupOptions options;
  options.cutmix_alpha = 1.0;
  const auto out = mix_batch(images, torch::tensor({0, 1}, torch::kLong), 2, 0.0, options, rng);
  const double pasted = out.images[0].sum().item<double>() / 100.0;  // sample 0 got ones from sample 1
  CHECK(pasted > 0.0);
  CHECK(out.lambda == Approx(1.0 - pasted));
  CHECK(out.targets[0][1].item<double>() == Approx(pasted));
  MixupOptions bad;
  bad.prob = 2.0;
  CHECK_THROWS_WITH(bad.validate(), Contains("mixup prob must be in [0, 1]"));
}

}  // namespace vit::engine
