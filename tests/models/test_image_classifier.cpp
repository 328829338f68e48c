// Opening model files for classification: vit weights files, TorchScript files with and without vit metadata,
// the settings given on the command line, and the errors for files that are not models.

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include "models/image_classifier.h"
#include "models/open_classifier.h"
#include "models/torchscript_classifier.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::error_of;
using vit::test::small_metadata;
using vit::test::TempDir;

namespace vit {
namespace {

const c10::Device kCpu(c10::kCPU);

// A TorchScript module made without Python, as a Python user's script would: mean brightness per channel.
std::filesystem::path write_torchscript(const TempDir& dir, const std::string& name,
                                        const std::string& embedded_metadata = "") {
  torch::jit::Module module("ChannelMeans");
  module.define(R"(
def forward(self, x):
    return x.mean(dim=[2, 3])
)");
  const auto path = dir / name;
  torch::jit::ExtraFilesMap extra;
  if (!embedded_metadata.empty()) extra[kTorchScriptMetadataFile] = embedded_metadata;
  module.save(path.string(), extra);
  return path;
}

}  // namespace

TEST_CASE("classifier: metadata JSON round-trips and is read strictly", "[classifier]") {
  const ModelMetadata m = small_metadata();
  const ModelMetadata back = metadata_from_json(metadata_to_json(m), "x");
  CHECK(back.class_names == m.class_names);
  CHECK(back.preprocess.mean == m.preprocess.mean);
  CHECK(back.config.embed_dim == m.config.embed_dim);

  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = nlohmann::json::parse(metadata_to_json(m));
    edit(j);
    return error_of([&] { metadata_from_json(j.dump(), "model.pt"); });
  };
  CHECK_THAT(with([](auto& j) { j.erase("format"); }), Contains("'model.pt': vit metadata lacks \"format\""));
  CHECK_THAT(with([](auto& j) { j["format_version"] = 7; }), Contains("unsupported vit metadata version 7"));
  CHECK_THAT(with([](auto& j) { j["colour"] = 1; }), Contains("unknown key 'colour'"));
  CHECK_THAT(with([](auto& j) { j.erase("class_names"); }), Contains("lacks 'class_names'"));
  CHECK_THAT(with([](auto& j) { j["class_names"] = {"one"}; }), Contains("3 classes but 1 class names"));
  CHECK_THAT(with([](auto& j) { j["config"]["num_heads"] = 5; }), Contains("num_heads"));
  CHECK_THAT(error_of([&] { metadata_from_json("{not json", "m.pt"); }), Contains("not valid JSON"));
}

TEST_CASE("classifier: a vit weights file gives its own logits, preprocessing and class names", "[classifier]") {
  TempDir dir;
  const ModelMetadata m = small_metadata();
  VisionTransformer model(m.config);
  model->eval();
  save_weights(dir / "w.safetensors", model, m);

  auto classifier = open_classifier(dir / "w.safetensors", {}, kCpu);
  const ClassifierInfo& info = classifier->info();
  CHECK(info.kind == "vit weights file");
  CHECK(info.image_size == 16);
  CHECK(info.in_chans == 3);
  CHECK(info.class_names == m.class_names);
  CHECK(info.preprocess.crop_pct == 0.875);
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({2, 3, 16, 16});
  CHECK(torch::equal(classifier->forward(images), model->forward(images)));

  // Settings given by the user replace the file's, as in timm's validate.py.
  InferenceOverrides overrides;
  overrides.mean = std::vector<double>{0.5, 0.5, 0.5};
  overrides.crop_pct = 1.0;
  overrides.input_size = 24;  // position embeddings resampled
  auto resized = open_classifier(dir / "w.safetensors", overrides, kCpu);
  CHECK(resized->info().preprocess.mean == std::vector<double>{0.5, 0.5, 0.5});
  CHECK(resized->info().preprocess.crop_pct == 1.0);
  CHECK(resized->info().image_size == 24);
  CHECK(resized->forward(torch::randn({1, 3, 24, 24})).sizes() == std::vector<int64_t>{1, 3});

  overrides = {};
  overrides.mean = std::vector<double>{0.5};
  CHECK_THAT(error_of([&] { open_classifier(dir / "w.safetensors", overrides, kCpu); }),
             Contains("mean needs 3 values (one per channel), got 1"));
  vit::test::write_bytes(dir / "labels.txt", "a\r\n\nb\n");
  overrides = {};
  overrides.labels = dir / "labels.txt";
  CHECK_THAT(error_of([&] { open_classifier(dir / "w.safetensors", overrides, kCpu); }),
             Contains("has 2 names, but model"));
}

TEST_CASE("classifier: a Python-style TorchScript file takes its settings from the user or the defaults",
          "[classifier]") {
  TempDir dir;
  const auto path = write_torchscript(dir, "plain.pt");
  auto classifier = open_classifier(path, {}, kCpu);
  CHECK(classifier->info().kind == "TorchScript");
  CHECK(classifier->info().image_size == 224);
  CHECK(classifier->info().preprocess.mean == imagenet_preprocess().mean);
  CHECK(classifier->info().class_names.empty());  // until the first batch says how many classes there are
  const auto images = torch::rand({2, 3, 8, 8});
  const auto logits = classifier->forward(images);
  CHECK(torch::allclose(logits, images.mean({2, 3})));
  CHECK(classifier->info().class_names == std::vector<std::string>{"0", "1", "2"});

  vit::test::write_bytes(dir / "labels.txt", "red\ngreen\n");
  InferenceOverrides overrides;
  overrides.labels = dir / "labels.txt";
  overrides.mean = std::vector<double>{0.0};
  overrides.std = std::vector<double>{1.0};
  overrides.input_size = 32;
  auto gray = open_classifier(path, overrides, kCpu);
  CHECK(gray->info().in_chans == 1);  // from the length of --mean
  CHECK(gray->info().image_size == 32);
  CHECK_THAT(error_of([&] {
               gray->forward(torch::rand({1, 3, 4, 4}));
             }),
             Contains("returns 3 scores per image, but its labels name 2 classes"));
}

TEST_CASE("classifier: a TorchScript file with vit metadata carries its settings", "[classifier]") {
  TempDir dir;
  ModelMetadata m = small_metadata();
  const auto path = write_torchscript(dir, "exported.pt", metadata_to_json(m));
  auto classifier = open_classifier(path, {}, kCpu);
  CHECK(classifier->info().kind == "TorchScript (vit export)");
  CHECK(classifier->info().class_names == m.class_names);
  CHECK(classifier->info().image_size == 16);
  CHECK(classifier->info().preprocess.std == m.preprocess.std);
  InferenceOverrides overrides;
  overrides.input_size = 32;
  CHECK_THAT(error_of([&] { open_classifier(path, overrides, kCpu); }), Contains("was exported for 16x16 images"));
  const auto damaged = write_torchscript(dir, "damaged.pt", "{\"format\": \"vit-toolkit\"");
  CHECK_THAT(error_of([&] { open_classifier(damaged, {}, kCpu); }), Contains("damaged.pt': vit metadata is not valid"));
}

TEST_CASE("classifier: files that are not models are named with what was expected", "[classifier]") {
  TempDir dir;
  CHECK_THAT(error_of([&] { open_classifier(dir / "none.pt", {}, kCpu); }), Contains("none.pt' does not exist"));
  CHECK_THAT(error_of([&] { open_classifier(dir.path(), {}, kCpu); }), Contains("holds no model.safetensors"));
  vit::test::write_bytes(dir / "image.png", "\x89PNG\r\n\x1a\n and more");
  CHECK_THAT(error_of([&] { open_classifier(dir / "image.png", {}, kCpu); }),
             Contains("image.png' is neither a safetensors file"));
  vit::test::write_bytes(dir / "broken.pt", std::string("PK\x03\x04", 4) + "garbage");
  CHECK_THAT(error_of([&] { open_classifier(dir / "broken.pt", {}, kCpu); }),
             Contains("cannot load TorchScript model"));
  vit::test::write_bytes(dir / "empty.txt", "\n");
  CHECK_THAT(error_of([&] { read_labels_file(dir / "empty.txt"); }), Contains("names no classes"));
}

}  // namespace vit
