// Attention maps: the explicit attention path gives the fused path's logits, rollout of identity attention
// highlights nothing, and the maps have the patch grid's shape and valid values.

#include <torch/torch.h>

#include "models/attention_maps.h"
#include "models/vision_transformer.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/small_model.h"

using vit::test::Contains;

namespace vit {
namespace {

// The shared 16x16 model (a 4x4 grid) with 3 blocks of 4 heads, so that blocks and heads are told apart below.
ViTConfig small_config(GlobalPool pool) {
  ViTConfig c = test::small_config();
  c.depth = 3;
  c.num_heads = 4;
  c.global_pool = pool;
  c.class_token = pool == GlobalPool::Token;
  c.fc_norm = pool == GlobalPool::Avg;
  return c;
}

// Attention that sends each token only to itself: (B, H, T, T) identities.
std::vector<torch::Tensor> identity_attention(int64_t blocks, int64_t batch, int64_t heads, int64_t tokens) {
  return std::vector<torch::Tensor>(blocks, torch::eye(tokens).expand({batch, heads, tokens, tokens}));
}

}  // namespace

TEST_CASE("the explicit attention path gives the fused path's logits and valid probabilities", "[model][attention]") {
  torch::manual_seed(0);
  for (const auto pool : {GlobalPool::Token, GlobalPool::Avg}) {
    VisionTransformer model(small_config(pool));
    model->eval();
    torch::NoGradGuard no_grad;
    const auto images = torch::randn({3, 3, 16, 16});
    const auto fused = model->forward(images);
    std::vector<torch::Tensor> attention;
    const auto explicit_logits = model->forward_head(model->forward_features(images, &attention));
    CHECK((explicit_logits - fused).abs().max().item<double>() <= 1e-5);
    REQUIRE(attention.size() == 3);
    const int64_t tokens = pool == GlobalPool::Token ? 17 : 16;
    for (const auto& a : attention) {
      REQUIRE(a.sizes() == torch::IntArrayRef{3, 4, tokens, tokens});
      CHECK(a.min().item<double>() >= 0.0);
      CHECK((a.sum(-1) - 1.0).abs().max().item<double>() < 1e-5);  // rows are distributions
    }
  }
}

TEST_CASE("rollout of identity attention highlights nothing in particular", "[model][attention]") {
  // With a class token, identity attention never moves anything from the patches to the class token.
  auto maps = attention_maps(identity_attention(4, 2, 3, 17), /*prefix_tokens=*/1, /*class_token=*/true);
  REQUIRE(maps.rollout.sizes() == torch::IntArrayRef{2, 4, 4});
  REQUIRE(maps.last_block.sizes() == torch::IntArrayRef{2, 4, 4});
  CHECK(maps.rollout.abs().max().item<double>() == 0.0);
  CHECK(maps.last_block.abs().max().item<double>() == 0.0);
  // Without one, the mean over patch rows of the identity is flat: every patch 1/16.
  maps = attention_maps(identity_attention(4, 2, 3, 16), 0, /*class_token=*/false);
  CHECK((maps.rollout - 1.0 / 16).abs().max().item<double>() < 1e-7);
  CHECK((maps.last_block - 1.0 / 16).abs().max().item<double>() < 1e-7);
  CHECK_FALSE(maps.class_token);
}

TEST_CASE("rollout follows attention through the blocks, with the residual path", "[model][attention]") {
  // One block, one head, the class token attends only to patch 5: rollout = (A + I) / 2 on that row, so half on
  // the class token itself (not a patch) and half on patch 5.
  auto a = torch::eye(17).unsqueeze(0).unsqueeze(0).clone();  // (1, 1, 17, 17)
  a[0][0][0][0] = 0.0;
  a[0][0][0][1 + 5] = 1.0;
  const auto maps = attention_maps({a}, 1, true);
  const auto rollout = maps.rollout[0].flatten();
  CHECK(rollout[5].item<double>() == Approx(0.5));
  CHECK(rollout.sum().item<double>() == Approx(0.5));
  CHECK(maps.last_block[0].flatten()[5].item<double>() == Approx(1.0));
  // Two such blocks: the class token keeps half of what it had and takes half of patch 5's (itself), so 0.75.
  CHECK(attention_maps({a, a}, 1, true).rollout[0].flatten()[5].item<double>() == Approx(0.75));
}

TEST_CASE("one head instead of the mean, and bad input named", "[model][attention]") {
  auto a = torch::zeros({1, 2, 17, 17});
  a.select(1, 0).fill_(1.0 / 17);  // head 0 uniform
  a[0][1].copy_(torch::eye(17));   // head 1 identity
  CHECK(attention_maps({a}, 1, true, 1).last_block.abs().max().item<double>() == 0.0);
  CHECK(attention_maps({a}, 1, true, 0).last_block.min().item<double>() == Approx(1.0 / 17));
  CHECK_THAT(test::error_of([&] { attention_maps({a}, 1, true, 2); }),
             Contains("attention head 2 does not exist: the model has 2 heads (0 to 1)"));
  CHECK_THAT(test::error_of([&] { attention_maps({}, 1, true); }), Contains("no attention matrices"));
  CHECK_THAT(test::error_of([&] {
               attention_maps({torch::zeros({1, 2, 18, 18})}, 1, true);
             }),
             Contains("18 tokens minus 1 prefix tokens is not a square grid of patches"));
}

}  // namespace vit
