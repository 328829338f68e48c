// The model a run starts from: presets with overrides, and --init from a weights file.

#include <torch/torch.h>

#include "engine/model_setup.h"
#include "models/state_dict.h"
#include "tests/catch.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;

namespace vit::engine {

TEST_CASE("overrides change the preset, classes come from the data, stats follow the channels", "[setup]") {
  TrainOptions o;
  o.model = "vit_tiny_patch16_224";
  o.overrides.image_size = 64;
  o.overrides.in_chans = 1;
  o.overrides.global_pool = GlobalPool::Avg;
  o.overrides.drop_path = 0.2;
  o.overrides.reg_tokens = 2;
  o.overrides.init_values = 1e-5;
  const auto m = training_metadata(o, {"a", "b", "c"});
  CHECK(m.config.reg_tokens == 2);
  CHECK(m.config.init_values == 1e-5);
  // The overrides travel in run folders' JSON (config.json, the resume state) and come back the same.
  const nlohmann::json saved = o.overrides;
  const auto restored = saved.get<ArchitectureOverrides>();
  CHECK(restored.reg_tokens == 2);
  CHECK(restored.global_pool == GlobalPool::Avg);
  CHECK_FALSE(restored.patch_size.has_value());
  CHECK(m.config.image_size == 64);
  CHECK(m.config.in_chans == 1);
  CHECK(m.config.num_classes == 3);
  CHECK(m.config.global_pool == GlobalPool::Avg);
  CHECK(m.config.fc_norm);
  CHECK(m.config.drop_path_rate == 0.2);
  CHECK(m.config.embed_dim == 192);  // from the preset
  CHECK(m.preprocess.mean == std::vector<double>{0.5});
  CHECK(m.class_names == std::vector<std::string>{"a", "b", "c"});
  o.overrides.patch_size = 10;  // a 6x6 grid, rounded down as timm's strided convolution does
  CHECK(training_metadata(o, {"a", "b"}).config.grid_size() == 6);
  o.overrides.patch_size = 100;
  CHECK_THROWS_WITH(training_metadata(o, {"a", "b"}),
                    Contains("model options: image_size must be at least patch_size 100, got 64"));
}

TEST_CASE("class_token = false (--class-token) leaves the class token out, refused with a pool that reads it",
          "[setup]") {
  TrainOptions o;
  o.model = "vit_tiny_patch16_224";
  o.overrides.class_token = false;
  o.overrides.global_pool = GlobalPool::Avg;
  o.overrides.reg_tokens = 1;
  const auto m = training_metadata(o, {"a", "b"});
  CHECK_FALSE(m.config.class_token);
  CHECK(m.config.sequence_length() == 196 + 1);  // the patches and the register
  CHECK(VisionTransformer(m.config)->named_parameters().find("cls_token") == nullptr);
  const nlohmann::json saved = o.overrides;
  CHECK(saved.at("class_token") == false);
  CHECK(saved.get<ArchitectureOverrides>().class_token == false);
  o.overrides.global_pool = GlobalPool::Token;
  CHECK_THROWS_WITH(training_metadata(o, {"a", "b"}), Contains("global_pool 'token' needs class_token = true"));
}

TEST_CASE(
    "starting from a weights file keeps the file's weights, resamples positions and re-initialises a different head",
    "[setup]") {
  vit::test::TempDir dir;
  torch::manual_seed(0);
  ModelMetadata source = vit::test::small_metadata();  // 16x16 in 4x4 patches, 2 blocks
  source.config.embed_dim = 32;
  source.config.num_classes = 5;  // not the 2 classes of the run below, so its head is replaced
  source.class_names = default_class_names(5);
  VisionTransformer trained(source.config);
  save_weights(dir / "init.safetensors", trained, source);

  TrainOptions o;
  o.init = dir / "init.safetensors";
  o.overrides.image_size = 24;
  const auto m = training_metadata(o, {"x", "y"});
  CHECK(m.config.embed_dim == 32);  // the architecture comes from the file
  CHECK(m.config.image_size == 24);
  auto model = build_training_model(m, o);
  const auto loaded = state_dict(*model);
  const auto original = state_dict(*trained);
  CHECK(torch::equal(loaded.at("blocks.1.mlp.fc2.weight"), original.at("blocks.1.mlp.fc2.weight")));
  CHECK(torch::equal(loaded.at("cls_token"), original.at("cls_token")));
  CHECK(loaded.at("pos_embed").sizes() == torch::IntArrayRef({1, 37, 32}));  // 6x6 grid + class token
  CHECK(loaded.at("head.weight").sizes() == torch::IntArrayRef({2, 32}));

  // Same classes: the head is kept too.
  const auto same = build_training_model(training_metadata(o, {"0", "1", "2", "3", "4"}), o);
  CHECK(torch::equal(state_dict(*same).at("head.weight"), original.at("head.weight")));

  // Another pooling on the same weights: the final norm stays where the file has it (here `norm`, no fc_norm).
  o.overrides.global_pool = GlobalPool::Max;
  const auto pooled = training_metadata(o, {"x", "y"});
  CHECK(pooled.config.global_pool == GlobalPool::Max);
  CHECK_FALSE(pooled.config.fc_norm);
  CHECK(state_dict(*build_training_model(pooled, o)).count("norm.weight") == 1);
}

}  // namespace vit::engine
