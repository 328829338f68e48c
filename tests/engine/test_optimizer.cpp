// AdamW and gradient clipping against LibTorch's own, parameter grouping, the schedule, and state round trips.

#include <torch/optim/adamw.h>
#include <torch/torch.h>

#include <cmath>

#include "engine/optimizer.h"
#include "tests/catch.h"

namespace vit::engine {
namespace {

// Quadratic loss with a known gradient, so both optimizers see exactly the same gradients.
void set_gradients(const std::vector<torch::Tensor>& params, int step) {
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = (params[i].detach() * 0.5 + static_cast<double>(step + static_cast<int>(i))).clone();
  }
}

}  // namespace

TEST_CASE("AdamW matches torch::optim::AdamW step for step", "[optimizer]") {
  // timm's default betas, and others (--opt-betas) in both bias corrections and both averages.
  const auto [beta1, beta2] = GENERATE(std::pair{0.9, 0.999}, std::pair{0.8, 0.95});
  INFO("betas " << beta1 << ", " << beta2);
  torch::manual_seed(0);
  const auto a = torch::randn({4, 3}), b = torch::randn({5, 2});
  std::vector<torch::Tensor> ours{a.clone(), b.clone()};
  std::vector<torch::Tensor> theirs{a.clone(), b.clone()};
  AdamW adamw({{"w1", ours[0]}, {"w2", ours[1]}}, AdamWOptions{beta1, beta2, 1e-8, 0.05});
  torch::optim::AdamW reference(theirs, torch::optim::AdamWOptions(1e-2).betas({beta1, beta2}).weight_decay(0.05));
  for (int step = 0; step < 10; ++step) {
    set_gradients(ours, step);
    set_gradients(theirs, step);
    adamw.step(1e-2);
    reference.step();
  }
  CHECK((ours[0] - theirs[0]).abs().max().item<double>() < 1e-6);
  CHECK((ours[1] - theirs[1]).abs().max().item<double>() < 1e-6);
  CHECK((ours[0] - a).abs().max().item<double>() > 1e-2);  // it did move
}

TEST_CASE("AdamW's single pass on float32 CPU parameters gives its operator sequence's values", "[optimizer]") {
  // Contiguous float32 tensors take adamw_update.h's pass; transposed views of the same values (not contiguous)
  // the operators. A weight with decay, a bias without, over 10 steps and a changing learning rate.
  torch::manual_seed(2);
  const auto w = torch::randn({40, 30}), b = torch::randn({30});
  std::vector<torch::Tensor> pass{w.clone(), b.clone()};
  std::vector<torch::Tensor> operators{w.t().contiguous().t(), b.clone()};
  REQUIRE_FALSE(operators[0].is_contiguous());
  const AdamWOptions options{0.8, 0.95, 1e-8, 0.05};  // betas other than the defaults, as --opt-betas gives
  AdamW one({{"fc.weight", pass[0]}, {"fc.bias", pass[1]}}, options);
  AdamW other({{"fc.weight", operators[0]}, {"fc.bias", operators[1]}}, options);
  for (int step = 0; step < 10; ++step) {
    set_gradients(pass, step);
    set_gradients(operators, step);  // laid out as the transposed weight is, as autograd's would be
    one.step(1e-2 / (1 + step));
    other.step(1e-2 / (1 + step));
  }
  for (size_t i = 0; i < 2; ++i) {
    CHECK((pass[i] - operators[i]).abs().max().item<double>() < 1e-6);
    CHECK((pass[i] - (i == 0 ? w : b)).abs().max().item<double>() > 1e-2);  // it did move
  }
  // The squared-gradient average grows to ~100 (gradients near 10): float32 rounding, measured relative to it.
  for (const auto& [name, tensor] : one.state()) {
    INFO(name);
    const at::Tensor theirs = other.state().at(name);
    CHECK(((tensor - theirs).abs() / theirs.abs().clamp_min(1.0)).max().item<double>() < 1e-6);
  }
}

TEST_CASE("gradient clipping matches LibTorch's clip_grad_norm_, above and below the limit", "[optimizer]") {
  torch::manual_seed(1);
  for (const double max_norm : {0.5, 1e3}) {
    std::vector<torch::Tensor> ours{torch::zeros({3, 4}), torch::zeros({7}), torch::zeros({2})};
    std::vector<torch::Tensor> theirs{torch::zeros({3, 4}), torch::zeros({7}), torch::zeros({2})};
    for (size_t i = 0; i < 2; ++i) {  // the last parameter has no gradient (frozen, or unused in this step)
      const auto grad = torch::randn(ours[i].sizes()) * 3.0;
      ours[i].mutable_grad() = grad.clone();
      theirs[i].mutable_grad() = grad.clone();
    }
    const double expected_norm = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    const auto norm = clip_grad_norm(ours, max_norm);
    CHECK(norm.item<double>() == Approx(expected_norm).epsilon(1e-6));
    for (size_t i = 0; i < 2; ++i) CHECK(torch::allclose(ours[i].grad(), theirs[i].grad(), 1e-6, 1e-7));
    CHECK_FALSE(ours[2].grad().defined());
    const double after = std::hypot(ours[0].grad().norm().item<double>(), ours[1].grad().norm().item<double>());
    CHECK(after == Approx(std::min(expected_norm, max_norm)).epsilon(1e-5));  // the limit holds, or nothing moved
  }
  CHECK_FALSE(clip_grad_norm({torch::zeros({2})}, 1.0).defined());  // no gradients at all: nothing to clip
}

TEST_CASE("no weight decay on biases, norms, cls_token and pos_embed", "[optimizer]") {
  CHECK(AdamW::uses_weight_decay("blocks.0.attn.qkv.weight", torch::zeros({6, 2})));
  CHECK(AdamW::uses_weight_decay("patch_embed.proj.weight", torch::zeros({4, 3, 2, 2})));
  CHECK_FALSE(AdamW::uses_weight_decay("blocks.0.attn.qkv.bias", torch::zeros({6})));
  CHECK_FALSE(AdamW::uses_weight_decay("norm.weight", torch::zeros({6})));
  CHECK_FALSE(AdamW::uses_weight_decay("cls_token", torch::zeros({1, 1, 6})));
  CHECK_FALSE(AdamW::uses_weight_decay("pos_embed", torch::zeros({1, 5, 6})));
  CHECK_FALSE(AdamW::uses_weight_decay("reg_token", torch::zeros({1, 4, 6})));
  CHECK_FALSE(AdamW::uses_weight_decay("dist_token", torch::zeros({1, 1, 6})));
  CHECK_FALSE(AdamW::uses_weight_decay("blocks.0.ls1.gamma", torch::zeros({6})));

  // With a zero gradient only decay moves a weight: the matrix shrinks, the bias does not.
  auto matrix = torch::ones({2, 2});
  auto bias = torch::ones({2});
  AdamW adamw({{"fc.weight", matrix}, {"fc.bias", bias}}, AdamWOptions{0.9, 0.999, 1e-8, 0.1});
  matrix.mutable_grad() = torch::zeros({2, 2});
  bias.mutable_grad() = torch::zeros({2});
  adamw.step(0.5);
  CHECK(matrix[0][0].item<double>() == Approx(1.0 - 0.5 * 0.1));
  CHECK(bias[0].item<double>() == 1.0);
}

TEST_CASE("optimizer state round-trips: a restored optimizer continues identically", "[optimizer]") {
  torch::manual_seed(1);
  const auto start = torch::randn({3, 3});
  auto run = [&](int split_at) {
    std::vector<torch::Tensor> p{start.clone()};
    auto adamw = std::make_unique<AdamW>(std::vector<NamedParameter>{{"w", p[0]}}, AdamWOptions{});
    for (int step = 0; step < 8; ++step) {
      if (step == split_at) {  // replace the optimizer by one restored from the saved state
        const auto state = adamw->state();
        const auto steps = adamw->steps();
        adamw = std::make_unique<AdamW>(std::vector<NamedParameter>{{"w", p[0]}}, AdamWOptions{});
        adamw->load_state(state, steps);
      }
      set_gradients(p, step);
      adamw->step(1e-2);
    }
    return p[0];
  };
  CHECK(torch::equal(run(-1), run(4)));
  AdamW adamw({{"w", torch::zeros({2})}}, AdamWOptions{});
  REQUIRE_THROWS_WITH(adamw.load_state({}, 3), vit::test::Contains("optimizer state lacks 'exp_avg.w'"));
}

TEST_CASE("the schedule warms up linearly, then follows a cosine to min_lr", "[optimizer]") {
  LrSchedule s{1e-3, 1e-5, 10, 110};
  CHECK(s.at(0) == Approx(1e-4));
  CHECK(s.at(9) == Approx(1e-3));
  CHECK(s.at(10) == Approx(1e-3));
  CHECK(s.at(60) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5)));  // half way through the decay
  CHECK(s.at(110) == Approx(1e-5));
  CHECK(s.at(500) == Approx(1e-5));
  for (int64_t step = 11; step < 110; ++step) CHECK(s.at(step) < s.at(step - 1));
}

TEST_CASE("with progress by time, each phase follows whichever of steps and time is further along", "[optimizer]") {
  LrSchedule s{1e-3, 1e-5, 10, 110};
  const double half_way = 1e-5 + 0.5 * (1e-3 - 1e-5);
  CHECK(s.at(5, 0.3) == Approx(6e-4));  // warm-up: 6 of 10 steps ahead of 30% of its time
  CHECK(s.at(5, 0.9) == Approx(9e-4));  // warm-up: time ahead
  CHECK(s.warming_up(5, 0.9));
  CHECK_FALSE(s.warming_up(5, 1.0));  // over by time before its steps
  CHECK(s.at(5, 1.0, 0.0) == Approx(1e-3));
  CHECK(s.at(60, 1.0, 0.0) == Approx(half_way));  // decay: steps ahead
  CHECK(s.at(20, 1.0, 0.5) == Approx(half_way));  // decay: time ahead
  CHECK(s.at(20, 1.0, 1.0) == Approx(1e-5));
  CHECK(s.at(500, 1.0, 0.2) == Approx(1e-5));
}

}  // namespace vit::engine
