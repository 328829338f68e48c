// Export: TorchScript that reproduces the model for any batch size and carries its settings, and checkpoint
// folders that read back bit for bit.

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstdlib>

#include "models/checkpoint_layouts.h"
#include "models/image_classifier.h"
#include "models/open_classifier.h"
#include "models/state_dict.h"
#include "models/torchscript_classifier.h"
#include "models/torchscript_export.h"
#include "tests/catch.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::small_metadata;
using vit::test::TempDir;

namespace vit {

TEST_CASE("export: TorchScript reproduces the model for batch sizes 1 and 7, under timm's names", "[export]") {
  TempDir dir;
  const ModelMetadata m = small_metadata();
  torch::manual_seed(1);
  VisionTransformer model(m.config);
  export_torchscript(model, m, dir / "model.pt");

  torch::jit::ExtraFilesMap extra{{kTorchScriptMetadataFile, ""}};
  torch::jit::Module loaded = torch::jit::load((dir / "model.pt").string(), c10::nullopt, extra);
  std::vector<std::string> names;
  for (const auto& p : loaded.named_parameters()) names.push_back(p.name);
  std::vector<std::string> expected_names;
  for (const auto& p : model->named_parameters()) expected_names.push_back(p.key());
  CHECK(names == expected_names);
  CHECK(metadata_from_json(extra.at(kTorchScriptMetadataFile), "x").class_names == m.class_names);

  torch::NoGradGuard no_grad;
  for (int64_t batch : {1, 7}) {
    const auto images = torch::randn({batch, 3, 16, 16});
    const auto expected = model->forward(images);
    const auto got = loaded.forward({images}).toTensor();
    REQUIRE(got.sizes() == expected.sizes());
    CHECK((got - expected).abs().max().item<double>() <= 1e-5);
  }
  auto classifier = open_classifier(dir / "model.pt", {}, c10::Device(c10::kCPU));
  CHECK(classifier->info().kind == "TorchScript (vit export)");
  CHECK(classifier->info().preprocess.mean == m.preprocess.mean);
}

TEST_CASE("export: vit -> Hugging Face -> vit and vit -> timm -> vit are bit-identical", "[export]") {
  TempDir dir;
  const ModelMetadata m = small_metadata();
  VisionTransformer model(m.config);
  const TensorMap original = state_dict(*model);
  for (auto layout : {WeightsLayout::HuggingFace, WeightsLayout::Timm}) {
    const auto folder = dir / to_string(layout);
    save_checkpoint_folder(folder, layout, model, m);
    WeightsLayout found;
    auto back = load_checkpoint(folder, std::nullopt, &found);
    save_weights(dir / "back.safetensors", back.model, back.metadata);
    const auto reread = read_safetensors(dir / "back.safetensors").tensors;
    REQUIRE(reread.size() == original.size());
    for (const auto& [name, tensor] : original) CHECK(torch::equal(reread.at(name), tensor));
    CHECK(back.metadata.class_names == m.class_names);
    CHECK(back.metadata.preprocess.mean == m.preprocess.mean);
    CHECK(back.metadata.config.num_heads == m.config.num_heads);
  }
}

TEST_CASE("export: a model Hugging Face's class cannot express is refused with the reason", "[export]") {
  TempDir dir;
  ModelMetadata m = small_metadata();
  m.config.global_pool = GlobalPool::Avg;
  m.config.fc_norm = true;
  VisionTransformer model(m.config);
  try {
    save_checkpoint_folder(dir / "hf", WeightsLayout::HuggingFace, model, m);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Contains("global_pool avg, fc_norm"));
  }
}

TEST_CASE("writes a TorchScript, a timm and a Hugging Face export for Python to check", "[.][export-files]") {
  // Hidden: ctest runs it with VIT_EXPORT_DIR set, then tests/reference/check_exports.py reads the files with
  // torch.jit.load, timm and transformers (where installed) and compares their logits with these.
  const char* out = std::getenv("VIT_EXPORT_DIR");
  REQUIRE(out != nullptr);
  const std::filesystem::path dir(out);
  std::filesystem::create_directories(dir);
  ModelMetadata m = small_metadata();  // token pooling, class token: what all three formats can express
  m.config.image_size = 32;
  m.config.patch_size = 8;
  m.config.embed_dim = 64;
  m.config.num_heads = 4;
  torch::manual_seed(5);
  VisionTransformer model(m.config);
  export_torchscript(model, m, dir / "model.pt");
  save_checkpoint_folder(dir / "timm", WeightsLayout::Timm, model, m);
  save_checkpoint_folder(dir / "hf", WeightsLayout::HuggingFace, model, m);
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({7, 3, 32, 32});
  write_safetensors(dir / "reference.safetensors", {{"images", images}, {"logits", model->forward(images)}});
}

}  // namespace vit
