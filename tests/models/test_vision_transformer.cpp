// The model itself: names, sizes, shapes, determinism, and that it can learn.

#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <set>
#include <string>

#include "models/model_cost.h"
#include "models/pos_embed.h"
#include "models/presets.h"
#include "models/state_dict.h"
#include "models/vision_transformer.h"
#include "tests/catch.h"
#include "tests/models/small_model.h"

using vit::test::Contains;

namespace vit {
namespace {

// The shared 16x16 model, 2 blocks, with the width, heads and classes the expected shapes and losses below use.
ViTConfig tiny_config() {
  ViTConfig c = test::small_config();
  c.num_classes = 5;
  c.embed_dim = 32;
  c.num_heads = 4;
  return c;
}

int64_t module_parameter_count(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

}  // namespace

TEST_CASE("state-dict keys are timm's", "[model]") {
  torch::manual_seed(0);
  ViTConfig c = tiny_config();
  VisionTransformer model(c);
  std::set<std::string> expected{
      "cls_token",   "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias",
      "head.weight", "head.bias"};
  for (int b = 0; b < 2; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    for (const char* leaf : {"norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"}) {
      expected.insert(p + leaf + ".weight");
      expected.insert(p + leaf + ".bias");
    }
  }
  std::set<std::string> actual;
  for (const auto& [name, tensor] : state_dict(*model)) actual.insert(name);
  CHECK(actual == expected);
  const auto tensors = state_dict(*model);
  CHECK(tensors.at("pos_embed").sizes() == torch::IntArrayRef({1, 17, 32}));
  CHECK(tensors.at("blocks.1.attn.qkv.weight").sizes() == torch::IntArrayRef({96, 32}));
  CHECK(tensors.at("blocks.0.mlp.fc1.weight").sizes() == torch::IntArrayRef({128, 32}));
}

TEST_CASE("average pooling uses fc_norm and may drop the class token, as timm", "[model]") {
  ViTConfig c = tiny_config();
  c.global_pool = GlobalPool::Avg;
  c.class_token = false;
  c.fc_norm = true;
  VisionTransformer model(c);
  const auto tensors = state_dict(*model);
  CHECK(tensors.count("fc_norm.weight") == 1);
  CHECK(tensors.count("norm.weight") == 0);
  CHECK(tensors.count("cls_token") == 0);
  CHECK(tensors.at("pos_embed").sizes() == torch::IntArrayRef({1, 16, 32}));
  model->eval();
  CHECK(model->forward(torch::randn({3, 3, 16, 16})).sizes() == torch::IntArrayRef({3, 5}));
  CHECK(module_parameter_count(*model) == count_parameters(c));
}

TEST_CASE("timm's family options: their parameters under timm's names, the analytic count, a traceable batch",
          "[model]") {
  ViTConfig c = tiny_config();
  c.reg_tokens = 3;
  c.init_values = 1e-5;
  c.no_embed_class = true;
  c.pre_norm = true;
  c.qkv_bias = false;
  c.act_layer = Activation::Silu;
  c.global_pool = GlobalPool::AvgMax;
  c.fc_norm = true;
  VisionTransformer model(c);
  const auto tensors = state_dict(*model);
  CHECK(tensors.at("reg_token").sizes() == torch::IntArrayRef({1, 3, 32}));
  CHECK(tensors.at("pos_embed").sizes() == torch::IntArrayRef({1, 16, 32}));  // patches only
  CHECK(tensors.at("blocks.1.ls2.gamma").sizes() == torch::IntArrayRef({32}));
  CHECK(tensors.at("blocks.0.ls1.gamma").eq(1e-5f).all().item<bool>());  // starts at init_values
  CHECK(tensors.count("norm_pre.weight") == 1);
  CHECK(tensors.count("patch_embed.proj.bias") == 0);
  CHECK(tensors.count("blocks.0.attn.qkv.bias") == 0);
  CHECK(module_parameter_count(*model) == count_parameters(c));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({3, 3, 16, 16});
  const auto logits = model->forward(images);
  CHECK(logits.sizes() == torch::IntArrayRef({3, 5}));
  // Each image's logits do not depend on the others in the batch (prefix tokens expanded per image).
  CHECK(torch::allclose(model->forward(images.narrow(0, 1, 1)), logits.narrow(0, 1, 1), 1e-5, 1e-5));
}

TEST_CASE("every preset builds with the analytic parameter count and gives logits of the right shape", "[model]") {
  torch::NoGradGuard no_grad;
  for (const auto& name : preset_names()) {
    INFO(name);
    const ViTConfig c = find_preset(name)->config;
    VisionTransformer model(c);
    model->eval();
    CHECK(module_parameter_count(*model) == count_parameters(c));
    const auto logits = model->forward(torch::randn({2, c.in_chans, c.image_size, c.image_size}));
    CHECK(logits.sizes() == torch::IntArrayRef({2, c.num_classes}));
    CHECK(torch::isfinite(logits).all().item<bool>());
  }
}

TEST_CASE("eval mode is deterministic and samples do not leak across the batch", "[model]") {
  torch::manual_seed(1);
  ViTConfig c = tiny_config();
  c.drop_rate = c.attn_drop_rate = c.proj_drop_rate = c.pos_drop_rate = 0.3;
  c.drop_path_rate = 0.3;
  VisionTransformer model(c);
  const auto images = torch::randn({4, 3, 16, 16});

  model->eval();
  const auto a = model->forward(images);
  const auto b = model->forward(images);
  CHECK(torch::equal(a, b));
  const auto alone = model->forward(images.narrow(0, 2, 1));
  CHECK((alone - a.narrow(0, 2, 1)).abs().max().item<double>() < 1e-5);

  model->train();  // dropout and stochastic depth now change the output
  CHECK_FALSE(torch::allclose(model->forward(images), a));
}

TEST_CASE("patch_dropout_indices picks a random subset of each image's patches, select_tokens gathers them",
          "[model]") {
  torch::manual_seed(3);
  const auto kept = patch_dropout_indices(3, 8, 0.25, torch::kCPU);
  REQUIRE(kept.sizes() == torch::IntArrayRef({3, 6}));  // floor(8 * 0.75) patches kept
  REQUIRE(kept.scalar_type() == torch::kLong);
  for (int64_t b = 0; b < 3; ++b) {
    CHECK(std::get<0>(at::_unique(kept[b])).numel() == 6);  // six distinct patches
    CHECK(((kept[b] >= 0) & (kept[b] < 8)).all().item<bool>());
  }
  CHECK_FALSE(torch::equal(kept[0], kept[1]));                         // each image its own
  CHECK(patch_dropout_indices(3, 8, 0.99, torch::kCPU).size(1) == 1);  // at least one patch survives

  // Patch i of image b is 10 * b + i in both columns; shared rows (a position embedding) are i.
  const auto per_image = (torch::arange(3).view({3, 1, 1}) * 10 + torch::arange(8).view({1, 8, 1})).expand({3, 8, 2});
  CHECK(torch::equal(select_tokens(per_image, kept).select(2, 1), kept + torch::arange(3).view({3, 1}) * 10));
  const auto shared = torch::arange(8).view({1, 8, 1}).expand({1, 8, 2});
  CHECK(torch::equal(select_tokens(shared, kept).select(2, 0), kept));
}

TEST_CASE(
    "With PatchDropout the model embeds only the kept patches: the same tokens and gradients as embedding "
    "all and then selecting",
    "[model]") {
  // The class token with its position (tiny_config), and no_embed_class with registers, a bias-less embedding
  // and norms before the blocks; images of the model's size, and 18 x 20 pixels (the position embedding
  // resampled, the last rows and columns of pixels unused).
  ViTConfig positioned_prefix = tiny_config();
  ViTConfig registers = tiny_config();
  registers.no_embed_class = true;
  registers.reg_tokens = 2;
  registers.pre_norm = true;
  registers.embed_norm = true;
  for (const auto& config : {positioned_prefix, registers}) {
    for (const auto& size : {std::vector<int64_t>{16, 16}, std::vector<int64_t>{18, 20}}) {
      INFO("reg_tokens " << config.reg_tokens << ", images " << size[0] << "x" << size[1]);
      torch::manual_seed(5);
      VisionTransformer model(config);
      model->train();
      const auto images = torch::randn({4, 3, size[0], size[1]});
      const int64_t patches = (size[0] / 4) * (size[1] / 4), prefix = config.num_prefix_tokens();
      const auto gradients = [&](const torch::Tensor& tokens) {
        model->zero_grad();
        torch::manual_seed(9);
        (tokens * torch::randn(tokens.sizes())).sum().backward();
        std::vector<torch::Tensor> grads;
        for (const auto& p : model->parameters()) {
          if (p.grad().defined()) grads.push_back(p.grad().clone());
        }
        return grads;
      };

      model->set_patch_drop_rate(0.75);
      torch::manual_seed(7);
      const auto dropped = model->embed_tokens(images);
      torch::manual_seed(7);
      const auto kept = patch_dropout_indices(4, patches, 0.75, torch::kCPU);
      REQUIRE(dropped.sizes() == torch::IntArrayRef({4, prefix + kept.size(1), 32}));
      const auto dropped_grads = gradients(dropped);

      model->set_patch_drop_rate(0.0);
      const auto all = model->embed_tokens(images);
      REQUIRE(all.size(1) == prefix + patches);
      const auto reference =
          torch::cat({all.narrow(1, 0, prefix), select_tokens(all.narrow(1, prefix, patches), kept)}, 1);
      CHECK(torch::allclose(dropped, reference, 1e-5, 1e-6));
      const auto reference_grads = gradients(reference);
      // The patch embedding, position embedding, prefix tokens and norms, each with a gradient.
      REQUIRE(dropped_grads.size() == reference_grads.size());
      CHECK(dropped_grads.size() >= 3);
      for (size_t i = 0; i < dropped_grads.size(); ++i) {
        INFO("parameter " << i);
        CHECK(dropped_grads[i].abs().max().item<double>() > 0);
        CHECK(torch::allclose(dropped_grads[i], reference_grads[i], 1e-4, 1e-5));
      }
    }
  }
}

TEST_CASE("drop_path drops whole samples and keeps the expectation", "[model]") {
  torch::manual_seed(2);
  const auto x = torch::ones({1000, 3, 4});
  CHECK(torch::equal(drop_path(x, 0.5, /*training=*/false), x));
  const auto y = drop_path(x, 0.25, /*training=*/true);
  const auto per_sample = y.flatten(1);
  // Each sample is all zeros or all 1/0.75.
  CHECK(torch::equal(std::get<0>(per_sample.min(1)), std::get<0>(per_sample.max(1))));
  const auto kept = (per_sample.select(1, 0) > 0).to(torch::kFloat).mean().item<double>();
  CHECK(kept == Approx(0.75).margin(0.05));
  CHECK(per_sample.max().item<double>() == Approx(1.0 / 0.75));
}

TEST_CASE("other input sizes, square or not, run with the position embedding resampled, too small is an error",
          "[model]") {
  VisionTransformer model(tiny_config());  // 16x16, patch 4: a 4x4 grid
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK(model->forward(torch::randn({2, 3, 32, 24})).sizes() == torch::IntArrayRef({2, 5}));
  // The same as resampling the embedding once and building the model at that size (what --image-size does).
  ViTConfig wide = tiny_config();
  wide.image_size = 24;
  VisionTransformer resized(wide, /*initialize=*/false);
  auto tensors = state_dict(*model);
  tensors.at("pos_embed") = resample_pos_embed(tensors.at("pos_embed"), 6, 1);
  load_state_dict(*resized, tensors, "test");
  resized->eval();
  const auto images = torch::randn({2, 3, 24, 24});
  CHECK(torch::allclose(model->forward(images), resized->forward(images), 1e-5, 1e-5));
  // Pixels past the last whole patch are unused, as in timm: 18 rows give the same logits as the first 16.
  const auto tall = torch::randn({2, 3, 18, 16});
  CHECK(torch::allclose(model->forward(tall), model->forward(tall.narrow(2, 0, 16)), 1e-6, 1e-6));
  REQUIRE_THROWS_WITH(model->forward(torch::randn({2, 1, 16, 16})),
                      Contains("expected images of shape (B, 3, H, W) with H and W at least the patch size 4") &&
                          Contains("got [2, 1, 16, 16]"));
  REQUIRE_THROWS_WITH(model->forward(torch::randn({2, 3, 3, 16})), Contains("got [2, 3, 3, 16]"));
}

TEST_CASE("the sine-cosine position embedding is a fixed buffer with the documented values", "[model]") {
  ViTConfig c = tiny_config();
  c.pos_embed = PosEmbed::Sincos;
  VisionTransformer model(c);
  for (const auto& p : model->named_parameters()) CHECK(p.key() != "pos_embed");  // not trained
  const auto table = state_dict(*model).at("pos_embed");                          // a buffer: saved with the weights
  REQUIRE(table.sizes() == torch::IntArrayRef({1, 17, 32}));
  CHECK(table[0][0].abs().max().item<double>() == 0.0);  // the class token's row
  // Patch (row 2, column 3) is token 1 + 2 * 4 + 3; channel i < 8 is sin(column * 10000^(-i/8)), 8 + i its cos,
  // and the second half the same for the row.
  const auto patch = table[0][1 + 2 * 4 + 3];
  for (int i = 0; i < 8; ++i) {
    const double w = std::pow(10000.0, -i / 8.0);
    CHECK(patch[i].item<double>() == Approx(std::sin(3 * w)).margin(1e-6));
    CHECK(patch[8 + i].item<double>() == Approx(std::cos(3 * w)).margin(1e-6));
    CHECK(patch[16 + i].item<double>() == Approx(std::sin(2 * w)).margin(1e-6));
    CHECK(patch[24 + i].item<double>() == Approx(std::cos(2 * w)).margin(1e-6));
  }
  CHECK(module_parameter_count(*model) == count_parameters(c));
  // At another size it is evaluated on the new grid, not resampled.
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK(torch::isfinite(model->forward(torch::randn({1, 3, 24, 24}))).all().item<bool>());
  c.pos_embed = PosEmbed::None;
  VisionTransformer none(c);
  CHECK(state_dict(*none).count("pos_embed") == 0);
  CHECK(module_parameter_count(*none) == count_parameters(c));
}

TEST_CASE("every block kind, MLP, norm and pool builds with timm's names and the analytic count", "[model]") {
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({2, 3, 16, 16});
  struct Variant {
    const char* name;
    void (*change)(ViTConfig&);
    const char* expected_tensor;
  };
  const Variant variants[] = {
      {"res_post", [](ViTConfig& c) { c.block_fn = BlockFn::ResPost, c.init_values = 1e-5; }, "blocks.0.norm1.weight"},
      {"parallel_things", [](ViTConfig& c) { c.block_fn = BlockFn::ParallelThings, c.init_values = 1e-5; },
       "blocks.1.ffns.1.ls.gamma"},
      {"parallel_scaling",
       [](ViTConfig& c) { c.block_fn = BlockFn::ParallelScaling, c.qkv_bias = false, c.qk_norm = true; },
       "blocks.0.mlp_bias"},
      {"swiglu", [](ViTConfig& c) { c.mlp_layer = MlpLayer::SwiGlu, c.proj_bias = false; },
       "blocks.0.mlp.fc1_g.weight"},
      {"swiglu_packed", [](ViTConfig& c) { c.mlp_layer = MlpLayer::SwiGluPacked, c.scale_mlp_norm = true; },
       "blocks.0.mlp.norm.weight"},
      {"rmsnorm", [](ViTConfig& c) { c.norm_layer = NormLayer::RmsNorm, c.embed_norm = true; },
       "patch_embed.norm.weight"},
      {"qk_norm", [](ViTConfig& c) { c.qk_norm = true, c.scale_attn_norm = true; }, "blocks.1.attn.k_norm.bias"},
      {"map", [](ViTConfig& c) { c.global_pool = GlobalPool::Map, c.class_token = false; }, "attn_pool.latent"},
      {"distilled", [](ViTConfig& c) { c.dist_token = DistToken::Heads; }, "head_dist.weight"},
      {"dist token unused", [](ViTConfig& c) { c.dist_token = DistToken::Unused; }, "dist_token"},
      {"no final norm", [](ViTConfig& c) { c.final_norm = false, c.pool_include_prefix = true; }, "head.weight"},
  };
  for (const auto& v : variants) {
    INFO(v.name);
    ViTConfig c = tiny_config();
    v.change(c);
    VisionTransformer model(c);
    const auto tensors = state_dict(*model);
    CHECK(tensors.count(v.expected_tensor) == 1);
    CHECK(module_parameter_count(*model) == count_parameters(c));
    model->eval();
    const auto logits = model->forward(images);
    CHECK(logits.sizes() == torch::IntArrayRef({2, 5}));
    CHECK(torch::isfinite(logits).all().item<bool>());
    CHECK(torch::allclose(model->forward(images.narrow(0, 1, 1)), logits.narrow(0, 1, 1), 1e-5, 1e-5));
  }
  ViTConfig unpooled = tiny_config();  // timm's global_pool '': every token's output
  unpooled.global_pool = GlobalPool::None;
  VisionTransformer tokens(unpooled);
  tokens->eval();
  CHECK(tokens->forward(images).sizes() == torch::IntArrayRef({2, 17, 5}));
  CHECK(torch::allclose(tokens->forward_head(tokens->forward_features(images), /*pre_logits=*/true),
                        tokens->forward_features(images)));
  ViTConfig rms = tiny_config();
  rms.norm_layer = NormLayer::RmsNorm;
  CHECK(state_dict(*VisionTransformer(rms)).count("norm.bias") == 0);  // RMSNorm has no bias
}

TEST_CASE("the model over-fits a small batch: the loss falls and gradients reach every parameter", "[model]") {
  torch::manual_seed(3);
  ViTConfig c = tiny_config();
  VisionTransformer model(c);
  const auto images = torch::randn({8, 3, 16, 16});
  const auto labels = torch::arange(8) % c.num_classes;
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));

  double first_loss = 0.0;
  double last_loss = 0.0;
  for (int step = 0; step < 80; ++step) {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    if (step == 0) {
      for (const auto& item : model->named_parameters()) {
        INFO(item.key());
        REQUIRE(item.value().grad().defined());
        CHECK(item.value().grad().abs().sum().item<double>() > 0.0);
      }
      first_loss = loss.item<double>();
    }
    optimizer.step();
    last_loss = loss.item<double>();
  }
  CHECK(first_loss > 1.0);  // about ln(5) = 1.6 at initialisation
  CHECK(last_loss < 0.1 * first_loss);
}

}  // namespace vit
