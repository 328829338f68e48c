// Checks against torchvision, an independent implementation: tests/reference/make_torchvision_reference.py
// writes the data (ctest runs it first) and VIT_REFERENCE_DIR points here. Hidden from a plain test run
// because it needs that data; ctest runs it as "reference_torchvision".

#include <cstdlib>

#include "models/checkpoint_layouts.h"
#include "models/pos_embed.h"
#include "models/safetensors.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"

namespace vit {
namespace {

std::filesystem::path reference_dir() {
  const char* dir = std::getenv("VIT_REFERENCE_DIR");
  if (dir == nullptr) FAIL("VIT_REFERENCE_DIR is not set: run these through ctest, which makes the reference data");
  return dir;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("logits match torchvision's VisionTransformer with the same weights", "[.][reference]") {
  const auto dir = reference_dir();
  auto loaded = load_weights(dir / "torchvision_vit.safetensors");
  CHECK(loaded.metadata.class_names.at(3) == "class 3");
  const auto reference = read_safetensors(dir / "reference.safetensors").tensors;
  loaded.model->eval();
  torch::NoGradGuard no_grad;
  const auto logits = loaded.model->forward(reference.at("images"));
  REQUIRE(logits.sizes() == reference.at("logits").sizes());
  // The logits vary by several units across classes, so agreement to 1e-4 means the same function.
  CHECK(reference.at("logits").std().item<double>() > 0.5);
  CHECK(max_abs_diff(logits, reference.at("logits")) <= 1e-4);
}

TEST_CASE("timm and Hugging Face checkpoints of the same weights give torchvision's logits", "[.][reference]") {
  const auto dir = reference_dir();
  const auto reference = read_safetensors(dir / "reference.safetensors").tensors;
  torch::NoGradGuard no_grad;
  // (folder, expected layout, logits of torchvision with the weights rounded as the file stores them)
  const std::vector<std::tuple<std::string, WeightsLayout, std::string>> cases{
      {"timm", WeightsLayout::Timm, "logits"},
      {"hf", WeightsLayout::HuggingFace, "logits"},
      {"timm_f16", WeightsLayout::Timm, "logits_f16_weights"},
      {"hf_bf16", WeightsLayout::HuggingFace, "logits_bf16_weights"},
  };
  for (const auto& [folder, layout, expected] : cases) {
    INFO(folder);
    WeightsLayout found;
    auto loaded = load_checkpoint(dir / folder, std::nullopt, &found);
    CHECK(found == layout);
    CHECK(loaded.metadata.class_names.at(7) == "class 7");  // label_names / id2label
    CHECK(loaded.metadata.config.num_heads == 4);           // model_args / num_attention_heads
    CHECK(loaded.model->parameters().front().scalar_type() == at::kFloat);
    loaded.model->eval();
    CHECK(max_abs_diff(loaded.model->forward(reference.at("images")), reference.at(expected)) <= 1e-4);
  }
  // The rounding is visible: F16 weights do not give the F32 logits to 1e-4, so the check above has teeth.
  CHECK(max_abs_diff(reference.at("logits_bf16_weights"), reference.at("logits")) > 1e-3);
}

TEST_CASE("position-embedding resampling matches torch's antialiased bicubic interpolation", "[.][reference]") {
  const auto reference = read_safetensors(reference_dir() / "reference.safetensors").tensors;
  const auto& pos_embed = reference.at("pos_embed");
  CHECK(max_abs_diff(resample_pos_embed(pos_embed, 6, 1), reference.at("pos_embed_grid6")) <= 1e-5);
  CHECK(max_abs_diff(resample_pos_embed(pos_embed, 3, 1), reference.at("pos_embed_grid3")) <= 1e-5);
}

}  // namespace vit
