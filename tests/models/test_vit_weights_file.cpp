// The weights file: what goes in comes out, and every way a file can fail the architecture is named.

#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include "models/describe_model.h"
#include "models/pos_embed.h"
#include "models/presets.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::small_metadata;
using vit::test::TempDir;

namespace vit {
namespace {

// A weights file whose tensors are edited by `edit` before writing: for building broken files.
std::filesystem::path write_edited(const TempDir& dir, const std::function<void(TensorMap&, Metadata&)>& edit) {
  const ModelMetadata m = small_metadata();
  VisionTransformer model(m.config);
  const auto good = dir / "good.safetensors";
  save_weights(good, model, m);
  auto content = read_safetensors(good);
  edit(content.tensors, content.metadata);
  const auto path = dir / "edited.safetensors";
  write_safetensors(path, content.tensors, content.metadata);
  return path;
}

std::string load_error(const std::filesystem::path& path) {
  try {
    load_weights(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL("loading did not throw");
  return {};
}

}  // namespace

TEST_CASE("weights round trip: identical tensors, metadata and logits", "[weights]") {
  TempDir dir;
  torch::manual_seed(0);
  const ModelMetadata m = small_metadata();
  VisionTransformer model(m.config);
  model->eval();
  const auto path = dir / "model.safetensors";
  save_weights(path, model, m);

  auto loaded = load_weights(path);
  loaded.model->eval();
  CHECK(nlohmann::json(loaded.metadata.config) == nlohmann::json(m.config));
  CHECK(nlohmann::json(loaded.metadata.preprocess) == nlohmann::json(m.preprocess));
  CHECK(loaded.metadata.class_names == m.class_names);
  const auto original = state_dict(*model);
  for (const auto& [name, tensor] : state_dict(*loaded.model)) {
    INFO(name);
    CHECK(torch::equal(tensor, original.at(name)));
  }
  const auto images = torch::randn({2, 3, 16, 16});
  CHECK(torch::equal(loaded.model->forward(images), model->forward(images)));

  const auto header_only = read_weights_metadata(path);
  CHECK(header_only.class_names == m.class_names);
  const auto described = describe_model(path.string());
  CHECK_FALSE(described.is_preset);
  CHECK(described.metadata.config.embed_dim == 24);
}

TEST_CASE("half-precision checkpoints load into a float model", "[weights]") {
  TempDir dir;
  TensorMap halves;
  const auto path = write_edited(dir, [&](TensorMap& tensors, Metadata&) {
    for (auto& [name, tensor] : tensors)
      tensor = tensor.to(name.find("blocks.0") == 0 ? torch::kBFloat16 : torch::kHalf);
    halves = tensors;
  });
  auto loaded = load_weights(path);
  for (const auto& [name, tensor] : state_dict(*loaded.model)) {
    INFO(name);
    CHECK(tensor.scalar_type() == torch::kFloat);
    CHECK(torch::equal(tensor, halves.at(name).to(torch::kFloat)));
  }
}

TEST_CASE("weights: a tensor the architecture needs is missing", "[weights][malformed]") {
  TempDir dir;
  const auto path = write_edited(dir, [](TensorMap& t, Metadata&) {
    t.erase("blocks.1.attn.qkv.weight");
    t.erase("head.bias");
  });
  CHECK_THAT(load_error(path), Contains("edited.safetensors': missing tensor 'blocks.1.attn.qkv.weight' and 1 more"));
}

TEST_CASE("weights: a tensor the architecture does not have", "[weights][malformed]") {
  TempDir dir;
  const auto path = write_edited(dir, [](TensorMap& t, Metadata&) { t["blocks.7.norm1.weight"] = torch::ones({24}); });
  CHECK_THAT(load_error(path), Contains("unexpected tensor 'blocks.7.norm1.weight'"));
}

TEST_CASE("weights: a tensor of the wrong shape", "[weights][malformed]") {
  TempDir dir;
  const auto path = write_edited(dir, [](TensorMap& t, Metadata&) { t["head.weight"] = torch::zeros({4, 24}); });
  CHECK_THAT(load_error(path), Contains("tensor 'head.weight' has shape [4, 24], the architecture expects [3, 24]"));
}

TEST_CASE("weights: a tensor of integer dtype", "[weights][malformed]") {
  TempDir dir;
  const auto path =
      write_edited(dir, [](TensorMap& t, Metadata&) { t["norm.bias"] = torch::zeros({24}, torch::kLong); });
  CHECK_THAT(load_error(path), Contains("tensor 'norm.bias' has dtype Long, expected a floating-point type"));
}

TEST_CASE("weights: a safetensors file without vit metadata", "[weights][malformed]") {
  TempDir dir;
  const auto path = write_edited(dir, [](TensorMap&, Metadata& m) { m.clear(); });
  CHECK_THAT(load_error(path), Contains("not a vit weights file"));
}

TEST_CASE("weights: a damaged architecture description", "[weights][malformed]") {
  TempDir dir;
  const auto bad_json = write_edited(dir, [](TensorMap&, Metadata& m) { m["config"] = "{\"depth\": "; });
  CHECK_THAT(load_error(bad_json), Contains("metadata 'config' is invalid"));
  const auto bad_value = write_edited(dir, [](TensorMap&, Metadata& m) {
    auto config = nlohmann::json::parse(m["config"]);
    config["num_heads"] = 5;
    m["config"] = config.dump();
  });
  CHECK_THAT(load_error(bad_value), Contains("embed_dim 24 must be divisible by num_heads 5"));
  const auto few_names = write_edited(dir, [](TensorMap&, Metadata& m) { m["class_names"] = R"(["cat"])"; });
  CHECK_THAT(load_error(few_names), Contains("model has 3 classes but 1 class names"));
  const auto future = write_edited(dir, [](TensorMap&, Metadata& m) { m["format_version"] = "9"; });
  CHECK_THAT(load_error(future), Contains("unsupported vit weights format version '9'"));
}

TEST_CASE("loading at another image size resamples the position embeddings", "[weights]") {
  TempDir dir;
  torch::manual_seed(4);
  const ModelMetadata m = small_metadata();  // 16x16 pixels, 4x4 grid
  VisionTransformer model(m.config);
  const auto path = dir / "model.safetensors";
  save_weights(path, model, m);

  auto bigger = load_weights(path, 24);  // 6x6 grid
  CHECK(bigger.metadata.config.image_size == 24);
  const auto resampled = state_dict(*bigger.model).at("pos_embed");
  const auto original = state_dict(*model).at("pos_embed");
  REQUIRE(resampled.sizes() == torch::IntArrayRef({1, 37, 24}));
  CHECK(torch::equal(resampled.narrow(1, 0, 1), original.narrow(1, 0, 1)));  // class token row kept
  // Bicubic resampling of a constant grid is that constant.
  CHECK(torch::allclose(resample_pos_embed(torch::ones({1, 17, 8}), 6, 1), torch::ones({1, 37, 8})));
  bigger.model->eval();
  CHECK(bigger.model->forward(torch::randn({1, 3, 24, 24})).sizes() == torch::IntArrayRef({1, 3}));

  // The same size is no resampling at all.
  CHECK(torch::equal(state_dict(*load_weights(path, 16).model).at("pos_embed"), original));
  REQUIRE_THROWS_WITH(load_weights(path, 3), Contains("image size 3 does not fit"));
  REQUIRE_THROWS_WITH(resample_pos_embed(torch::ones({1, 11, 8}), 3, 1), Contains("pos_embed: expected shape"));
}

}  // namespace vit
