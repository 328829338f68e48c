// Checks against torchvision, an independent implementation: tests/reference/make_torchvision_reference.py
// writes the data (ctest runs it first) and VIT_REFERENCE_DIR points here. Hidden from a plain test run
// because it needs that data; ctest runs it as "reference_torchvision".

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/checkpoint_layouts.h"
#include "models/model_cost.h"
#include "models/open_classifier.h"
#include "models/pos_embed.h"
#include "models/safetensors.h"
#include "models/timm_architectures.h"
#include "models/torchscript_export.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

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

TEST_CASE(
    "timm's family (every option of its VisionTransformer, from registered architectures and model_args) and "
    "Hugging Face's ViT, DeiT and DINOv2 classes give the reference's logits, and keep them through every file vit "
    "writes",
    "[.][reference]") {
  // tests/reference/make_timm_family_reference.py: one model per group of options, re-implemented in Python;
  // cases.json lists them.
  const auto dir = reference_dir() / "timm_family";
  const auto cases = nlohmann::json::parse(std::ifstream(dir / "cases.json"));
  REQUIRE(cases.size() >= 21);
  torch::NoGradGuard no_grad;
  test::TempDir out;
  for (const auto& entry : cases) {
    const std::string name = entry.at("name").get<std::string>();
    INFO(name);
    const auto reference = read_safetensors(dir / name / "reference.safetensors").tensors;
    const auto& images = reference.at("images");
    const auto& expected = reference.at("logits");
    CHECK(expected.std().item<double>() > 0.5);  // logits that differ, so 1e-4 agreement means the same function
    // Most cases are timm models (some also written in a Hugging Face class); a few exist only in a Hugging Face
    // class (DeiT with its distillation token unused, DINOv2's classifier).
    const bool in_timm = entry.value("timm", true);
    WeightsLayout layout;
    auto loaded = load_checkpoint(in_timm ? dir / name : dir / (name + "_hf"), std::nullopt, &layout);
    CHECK(layout == (in_timm ? WeightsLayout::Timm : WeightsLayout::HuggingFace));
    loaded.model->eval();
    CHECK(max_abs_diff(loaded.model->forward(images), expected) <= 1e-4);
    // Another input size: the position embedding resampled on the fly, as timm's dynamic_img_size.
    if (!entry.at("other_size").is_null()) {
      CHECK(max_abs_diff(loaded.model->forward(reference.at("images_other")), reference.at("logits_other")) <= 1e-4);
    }
    // timm's parameter count: the file's tensors, and the count from the config alone.
    const auto parameters = static_cast<int64_t>(reference.at("parameters").item<double>());
    CHECK(count_parameters(loaded.metadata.config) == parameters);

    // Round trips: vit's weights file, timm's layout written by vit, TorchScript.
    save_weights(out / (name + ".safetensors"), loaded.model, loaded.metadata);
    auto back = load_weights(out / (name + ".safetensors"));
    back.model->eval();
    CHECK(max_abs_diff(back.model->forward(images), expected) <= 1e-4);
    if (in_timm) {
      save_checkpoint_folder(out / (name + "_timm"), WeightsLayout::Timm, loaded.model, loaded.metadata);
      auto timm = load_checkpoint(out / (name + "_timm"));
      timm.model->eval();
      CHECK(max_abs_diff(timm.model->forward(images), expected) <= 1e-4);
    } else {  // timm has no such model: refused with the reason
      CHECK_THROWS_AS(
          save_checkpoint_folder(out / (name + "_timm"), WeightsLayout::Timm, loaded.model, loaded.metadata),
          std::invalid_argument);
    }
    export_torchscript(loaded.model, loaded.metadata, out / (name + ".pt"));
    auto scripted = open_classifier(out / (name + ".pt"), {}, c10::Device(c10::kCPU));
    CHECK(max_abs_diff(scripted->forward(images), expected) <= 1e-4);
    if (entry.at("hf").get<bool>()) {
      // Also in its Hugging Face class (ViT: hidden_act, qkv_bias; DeiT; DINOv2), read and written by vit.
      WeightsLayout hf_layout;
      auto hf = load_checkpoint(dir / (name + "_hf"), std::nullopt, &hf_layout);
      CHECK(hf_layout == WeightsLayout::HuggingFace);
      hf.model->eval();
      CHECK(max_abs_diff(hf.model->forward(images), expected) <= 1e-4);
      save_checkpoint_folder(out / (name + "_hf"), WeightsLayout::HuggingFace, loaded.model, loaded.metadata);
      auto hf_back = load_checkpoint(out / (name + "_hf"));
      hf_back.model->eval();
      CHECK(max_abs_diff(hf_back.model->forward(images), expected) <= 1e-4);
    } else {
      // Hugging Face's ViTForImageClassification cannot express these models: refused, naming what it lacks.
      CHECK_THROWS_AS(
          save_checkpoint_folder(out / (name + "_hf"), WeightsLayout::HuggingFace, loaded.model, loaded.metadata),
          std::invalid_argument);
    }
  }
}

TEST_CASE("every timm architecture vit builds has timm's parameter count", "[.][reference]") {
  // parameter_counts.json: the Python reference's count for each of timm's registered names, from its own
  // re-implementation of timm's modules (tests/reference/make_timm_family_reference.py).
  const auto expected = nlohmann::json::parse(std::ifstream(reference_dir() / "timm_family" / "parameter_counts.json"));
  int64_t supported = 0;
  for (const auto& a : timm_architectures()) {
    INFO(a.name);
    if (!a.unsupported.empty()) {
      CHECK_FALSE(expected.contains(a.name));  // only the differential-attention models are left out
      continue;
    }
    ++supported;
    REQUIRE(expected.contains(a.name));
    CHECK(count_parameters(a.config) == expected.at(a.name).get<int64_t>());
  }
  CHECK(supported == 170);
  CHECK(timm_architectures().size() == 173);
}

}  // namespace vit
