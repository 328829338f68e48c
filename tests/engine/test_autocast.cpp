// bf16 autocast on CPU as vit's training and inference turn it on (engine/autocast.h): a block's LayerNorms hand
// their linear layers bf16 from vit's own kernel (models/cpu_layer_norm.h), with LibTorch's values, and a whole
// block trains as it does in float32 up to bf16's precision.

#include <torch/torch.h>

#include "engine/autocast.h"
#include "models/autocast_state.h"
#include "models/cpu_attention_bf16.h"
#include "models/cpu_layer_norm.h"
#include "models/layers.h"
#include "models/presets.h"
#include "models/vision_transformer.h"
#include "tests/catch.h"

namespace vit::engine {
namespace {

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a * b).sum() / (a.norm() * b.norm())).item<double>();
}

}  // namespace

TEST_CASE("AutocastGuard turns bf16 autocast on for its own device while alive, and only when enabled", "[autocast]") {
  REQUIRE_FALSE(autocast_enabled(at::kCPU));
  {
    AutocastGuard off(c10::DeviceType::CPU, false);
    CHECK_FALSE(autocast_enabled(at::kCPU));
  }
  {
    AutocastGuard on(c10::DeviceType::CPU, true);
    CHECK(autocast_enabled(at::kCPU));
    CHECK(bf16_autocast(at::kCPU));
    CHECK_FALSE(autocast_enabled(at::kCUDA));  // the other device's state is untouched
    CHECK(torch::matmul(torch::ones({2, 3}), torch::ones({3, 2})).scalar_type() == torch::kBFloat16);
  }
  CHECK_FALSE(autocast_enabled(at::kCPU));
  CHECK_FALSE(bf16_autocast(at::kCPU));
  CHECK(torch::matmul(torch::ones({2, 3}), torch::ones({3, 2})).scalar_type() == torch::kFloat);
}

TEST_CASE("under CPU bf16 autocast a LayerNorm feeding a linear layer writes bf16 itself, with LibTorch's values",
          "[autocast]") {
  torch::manual_seed(0);
  Norm norm(64, NormLayer::LayerNorm, 1e-6);
  Norm rms(64, NormLayer::RmsNorm, 1e-6);
  {
    torch::NoGradGuard no_grad;
    norm->weight.normal_();
    norm->bias.normal_();
  }
  const auto x = torch::randn({4, 9, 64}) + 2.0;
  CHECK(torch::equal(norm->forward_for_linear(x), norm->forward(x)));  // float32 without autocast
  {
    AutocastGuard autocast(c10::DeviceType::CPU, true);
    REQUIRE(bf16_autocast(at::kCPU));
    const auto ours = norm->forward_for_linear(x);
    const auto theirs = norm->forward(x);  // LibTorch's layer_norm, float32 under autocast
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    REQUIRE(theirs.scalar_type() == torch::kFloat);
    CHECK(((ours.to(torch::kFloat) - theirs).abs() <= theirs.abs() / 256 + 1e-6).all().item<bool>());
    CHECK(torch::equal(rms->forward_for_linear(x), rms->forward(x)));  // an RMSNorm keeps its own path
  }
  CHECK_FALSE(bf16_autocast(at::kCPU));
}

TEST_CASE(
    "every kind of ViT block and norm, forward and backward, under CPU bf16 autocast matches float32 to bf16 precision",
    "[autocast]") {
  // Each kind adds its branches to the float32 residual stream in its own place (vit's residual add where a branch
  // ends in bf16, cpu_residual_add.h), and norms of a bf16 branch meet float32 weights (LibTorch 1.13's CPU
  // layer_norm refuses the mix); a wrongly wired add would move the output or lose a gradient.
  using Variant = void (*)(ViTConfig&);
  const auto [name, variant] = GENERATE(table<const char*, Variant>({
      {"pre-norm", [](ViTConfig&) {}},
      {"res-post", [](ViTConfig& c) { c.block_fn = BlockFn::ResPost; }},
      {"parallel", [](ViTConfig& c) { c.block_fn = BlockFn::ParallelThings; }},
      {"parallel scaling", [](ViTConfig& c) { c.block_fn = BlockFn::ParallelScaling; }},
      {"q/k norms", [](ViTConfig& c) { c.qk_norm = true; }},
      {"inner norms", [](ViTConfig& c) { c.scale_attn_norm = c.scale_mlp_norm = true; }},
      {"RMSNorm", [](ViTConfig& c) { c.norm_layer = NormLayer::RmsNorm; }},
  }));
  CAPTURE(name);
  torch::manual_seed(1);
  ViTConfig config = vit_mini_patch7_28().config;
  variant(config);
  auto block = make_block(config, 0);
  block->train();
  {
    torch::NoGradGuard no_grad;
    for (auto& item : block->named_parameters()) {
      const std::string& parameter_name = item.key();
      torch::Tensor& parameter = item.value();
      parameter.normal_(0.0, 0.1);  // the block leaves them to the model
      // Norms' weights near 1, as trained ones are (the only norm parameters named "*norm*.weight").
      const bool norm_weight = parameter_name.find("norm") != std::string::npos && parameter.dim() == 1 &&
                               parameter_name.find("weight") != std::string::npos;
      if (norm_weight) parameter.add_(1.0);
    }
  }
  const auto x = torch::randn({8, 13, config.embed_dim});
  const auto upstream = torch::randn({8, 13, config.embed_dim});
  std::vector<torch::Tensor> outputs, input_grads, parameter_grads;
  for (const bool bf16 : {false, true}) {
    block->zero_grad();
    auto input = x.clone().requires_grad_(true);
    torch::Tensor out;
    {
      AutocastGuard autocast(c10::DeviceType::CPU, bf16);
      out = block->forward(input, nullptr);
    }
    REQUIRE(out.scalar_type() == torch::kFloat);  // the residual stream stays float32
    (out * upstream).sum().backward();
    outputs.push_back(out.detach());
    input_grads.push_back(input.grad());
    std::vector<torch::Tensor> grads;
    for (const auto& parameter : block->parameters()) {
      REQUIRE(parameter.grad().defined());
      grads.push_back(parameter.grad().flatten());
    }
    parameter_grads.push_back(torch::cat(grads));
  }
  CHECK(cosine(outputs[1], outputs[0]) > 0.9999);
  CHECK(cosine(input_grads[1], input_grads[0]) > 0.999);
  CHECK(cosine(parameter_grads[1], parameter_grads[0]) > 0.99);
}

TEST_CASE("a whole model under CPU bf16 autocast, with each pooling, trains as in float32 to bf16 precision",
          "[autocast]") {
  // Attention pooling ("map", SigLIP's) normalises a bf16 branch with float32 weights: under LibTorch 1.13 that
  // failed with "expected scalar type BFloat16 but found Float" until norms took the wider type.
  const auto pool = GENERATE(GlobalPool::Token, GlobalPool::Avg, GlobalPool::Map, GlobalPool::TokenAvg);
  CAPTURE(to_string(pool));
  torch::manual_seed(3);
  ViTConfig config = vit_mini_patch7_28().config;
  config.depth = 2;
  config.global_pool = pool;
  VisionTransformer model(config);
  model->train();
  const auto images = torch::randn({4, config.in_chans, config.image_size, config.image_size});
  std::vector<torch::Tensor> logits, grads;
  for (const bool bf16 : {false, true}) {
    model->zero_grad();
    torch::Tensor out;
    {
      AutocastGuard autocast(c10::DeviceType::CPU, bf16);
      out = model->forward(images);
    }
    out.to(torch::kFloat).logsumexp(-1).sum().backward();
    logits.push_back(out.detach().to(torch::kFloat));
    std::vector<torch::Tensor> all;
    for (const auto& parameter : model->parameters()) {
      if (parameter.grad().defined()) all.push_back(parameter.grad().flatten());
    }
    grads.push_back(torch::cat(all));
  }
  REQUIRE(grads[0].numel() == grads[1].numel());  // the same parameters took part
  CHECK(cosine(logits[1], logits[0]) > 0.999);
  CHECK(cosine(grads[1], grads[0]) > 0.99);
}

TEST_CASE("under CPU bf16 autocast a short sequence's attention runs vit's bf16 kernel, level with LibTorch's path",
          "[autocast]") {
  torch::manual_seed(2);
  const ViTConfig config = vit_mini_patch7_28().config;  // 4 heads of 32
  Attention attention(config);
  attention->train();
  auto parameters = attention->named_parameters();
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : attention->parameters()) parameter.normal_(0.0, 0.1);  // the model initialises them
  }
  const auto x = torch::randn({6, 13, config.embed_dim});
  AutocastGuard autocast(c10::DeviceType::CPU, true);
  torch::Tensor probs;
  const auto ours = attention->forward(x);
  const auto theirs = attention->forward(x, &probs);  // attention maps asked for: LibTorch's operators
  // The same layer by hand: the projection, vit's kernel, the output projection.
  const auto qkv = torch::linear(x, parameters["qkv.weight"], parameters["qkv.bias"]);
  REQUIRE(cpu_attention_bf16_available(qkv, config.num_heads));
  const auto by_hand =
      torch::linear(cpu_attention_bf16(qkv, config.num_heads), parameters["proj.weight"], parameters["proj.bias"]);
  CHECK(torch::equal(ours, by_hand));
  // LibTorch's bf16 products round the scores to bf16 before the softmax; vit keeps them in float32.
  CHECK(cosine(ours.to(torch::kFloat), theirs.to(torch::kFloat)) > 0.9999);
}

}  // namespace vit::engine
