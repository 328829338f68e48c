// Configs, presets and the analytic size/compute figures: no model is built here.

#include <algorithm>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "models/describe_model.h"
#include "models/model_cost.h"
#include "models/presets.h"
#include "models/timm_architectures.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit {

TEST_CASE("every preset is valid and findable by its name", "[config]") {
  const auto names = preset_names();
  REQUIRE(names.size() >= 7);
  REQUIRE(std::set<std::string>(names.begin(), names.end()).size() == names.size());
  for (const auto& name : names) {
    auto preset = find_preset(name);
    REQUIRE(preset.has_value());
    REQUIRE_NOTHROW(preset->config.validate());
    REQUIRE_NOTHROW(preset->preprocess.validate(preset->config.in_chans));
  }
  REQUIRE_FALSE(find_preset("vit_huge_patch99_1").has_value());
}

TEST_CASE("timm's registered architectures: found by name (with or without a tag), with their options", "[config]") {
  const auto& all = timm_architectures();
  REQUIRE(all.size() == 173);
  const auto supported = std::count_if(all.begin(), all.end(), [](const auto& a) { return a.unsupported.empty(); });
  CHECK(supported == 170);
  for (const auto& a : all) {
    INFO(a.name);
    if (a.unsupported.empty()) CHECK_NOTHROW(a.config.validate());
  }

  const auto deit3 = find_preset("deit3_small_patch16_224.fb_in1k");
  REQUIRE(deit3.has_value());
  CHECK(deit3->config.no_embed_class);
  CHECK(deit3->config.init_values == 1e-6);
  CHECK(deit3->config.num_heads == 6);
  CHECK(deit3->preprocess.mean == std::vector<double>{0.485, 0.456, 0.406});  // its pretrained cfg's
  const auto siglip = find_preset("vit_so400m_patch14_siglip_384")->config;
  CHECK(siglip.global_pool == GlobalPool::Map);
  CHECK(siglip.image_size == 384);
  CHECK(siglip.grid_size() == 27);         // timm's strided convolution leaves the last 6 pixels out
  CHECK(siglip.mlp_hidden_dim() == 4304);  // int(1152 * 3.7362), truncated as timm
  const auto aimv2 = find_preset("aimv2_large_patch14_224")->config;
  CHECK(aimv2.norm_layer == NormLayer::RmsNorm);
  CHECK(aimv2.norm_eps == 1e-5);
  CHECK(aimv2.embed_norm);
  CHECK(aimv2.mlp_layer == MlpLayer::SwiGlu);
  CHECK_FALSE(aimv2.proj_bias);
  CHECK_FALSE(aimv2.fc_norm);                                          // timm's fc_norm=False beside global_pool 'avg'
  CHECK(find_preset("vit_wee_patch16_reg1_gap_256")->config.fc_norm);  // timm's default pairing for 'avg'
  CHECK(find_preset("deit_tiny_distilled_patch16_224")->config.dist_token == DistToken::Heads);
  CHECK(find_preset("vit_base_patch16_rpn_224")->config.block_fn == BlockFn::ResPost);
  CHECK(find_preset("vit_base_patch16_gap_224")->config.num_heads == 16);  // a base whose heads are not 12
  REQUIRE_THROWS_WITH(find_preset("vit_dwee_patch16_reg1_gap_256"),
                      Contains("architecture 'vit_dwee_patch16_reg1_gap_256': timm option attn_layer = \"diff\" "
                               "is not supported by vit"));
  CHECK(find_timm_architecture("vit_base_patch16_224.augreg2_in21k_ft_in1k")->pretrained_tag ==
        "augreg2_in21k_ft_in1k");
  CHECK(find_timm_architecture("vit_base_patch16_225") == nullptr);
}

TEST_CASE("timm's constructor arguments: applied, or refused naming the argument", "[config]") {
  ViTConfig c;
  apply_timm_args(nlohmann::json{{"global_pool", "max"}, {"norm_layer", "rmsnorm"}, {"img_size", {256, 256}}}, c,
                  "arch", TimmArgs::All);
  CHECK(c.global_pool == GlobalPool::Max);
  CHECK(c.fc_norm);  // timm's None: on for the reducing pools
  CHECK(c.norm_layer == NormLayer::RmsNorm);
  CHECK(c.image_size == 256);
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"img_size", {256, 192}}}, c, "arch", TimmArgs::All),
                    Contains("architecture 'arch': timm option img_size = [256,192] is not supported"));
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"block_fn", "diff_parallel_scaling"}}, c, "arch", TimmArgs::All),
                    Contains("timm option block_fn = \"diff_parallel_scaling\" is not supported"));
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"embed_dimm", 3}}, c, "arch", TimmArgs::All),
                    Contains("model_args has an unknown key 'embed_dimm' (architecture 'arch')"));
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"depth", "twelve"}}, c, "arch", TimmArgs::All),
                    Contains("architecture 'arch': model_args depth must be a whole number, got \"twelve\""));
  // A float for an integer is refused, never cast: 1e300 would be undefined behaviour, 6.5 a silent truncation.
  for (const auto& depth : {nlohmann::json(1e300), nlohmann::json(6.5)}) {
    CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"depth", depth}}, c, "arch", TimmArgs::All),
                      Contains("model_args depth must be a whole number, got " + depth.dump()));
  }
  CHECK_NOTHROW(apply_timm_args(nlohmann::json{{"depth", 6.0}}, c, "arch", TimmArgs::All));
  CHECK(c.depth == 6);
  // Shapes already told the depth: a checkpoint's model_args must agree, a registry's is ignored.
  c.depth = 4;
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"depth", 6}}, c, "arch", TimmArgs::CheckShapes),
                    Contains("model_args depth = 6 does not fit the checkpoint's tensors"));
  // An MLP ratio whose width no integer holds is refused as not fitting, never converted (fuzz_timm_config).
  CHECK_THROWS_WITH(apply_timm_args(nlohmann::json{{"mlp_ratio", 4.7e17}}, c, "arch", TimmArgs::CheckShapes),
                    Contains("model_args mlp_ratio = 4.7e+17 does not fit the checkpoint's tensors"));
  CHECK_NOTHROW(apply_timm_args(nlohmann::json{{"mlp_ratio", c.mlp_ratio}}, c, "arch", TimmArgs::CheckShapes));
  apply_timm_args(nlohmann::json{{"depth", 6}, {"act_layer", "silu"}}, c, "arch", TimmArgs::NotInShapes);
  CHECK(c.depth == 4);
  CHECK(c.act_layer == Activation::Silu);
}

TEST_CASE("parameter counts match timm's", "[config]") {
  // Figures from timm's model tables / sum(p.numel() for p in model.parameters()).
  CHECK(count_parameters(vit_tiny_patch16_224().config) == 5'717'416);
  CHECK(count_parameters(vit_small_patch16_224().config) == 22'050'664);
  CHECK(count_parameters(vit_base_patch16_224().config) == 86'567'656);
  CHECK(count_parameters(vit_base_patch32_224().config) == 88'224'232);
  CHECK(count_parameters(vit_large_patch16_224().config) == 304'326'632);
}

TEST_CASE("compute matches timm's GMACs for ViT-B/16", "[config]") {
  // timm lists vit_base_patch16_224 at 17.6 GMACs and vit_base_patch32_224 at 4.4.
  CHECK(count_macs(vit_base_patch16_224().config) / 1e9 == Approx(17.56).epsilon(0.01));
  CHECK(count_macs(vit_base_patch32_224().config) / 1e9 == Approx(4.41).epsilon(0.01));
}

TEST_CASE("training compute counts only the patches PatchDropout keeps, embedding included", "[config]") {
  ViTConfig c = vit_base_patch16_224().config;  // 196 patches, a class token, width 768, MLP 3072, 12 blocks
  c.patch_drop_rate = 0.5;                      // 98 patches kept, 99 tokens
  const double d = 768, kept = 98, t = 99;
  const double embed = kept * d * 3 * 16 * 16;
  const double block = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * 3072;
  CHECK(count_training_macs(c) == Approx(embed + 12 * block + d * 1000).epsilon(1e-9));
  c.patch_drop_rate = 0.0;  // no PatchDropout: the same as inference
  CHECK(count_training_macs(c) == count_macs(c));
}

TEST_CASE("invalid configs are rejected with the field and value", "[config]") {
  ViTConfig c = vit_tiny_patch16_224().config;
  SECTION("heads must divide the width") {
    c.embed_dim = 100;
    REQUIRE_THROWS_WITH(c.validate(), Contains("embed_dim 100 must be divisible by num_heads 3"));
  }
  SECTION("image size must hold a patch (past the last whole patch, pixels are unused, as in timm)") {
    c.image_size = 225;
    CHECK(c.grid_size() == 14);
    CHECK_NOTHROW(c.validate());
    c.image_size = 8;
    REQUIRE_THROWS_WITH(c.validate(), Contains("image_size must be at least patch_size 16, got 8"));
  }
  SECTION("channels are 1 or 3") {
    c.in_chans = 4;
    REQUIRE_THROWS_WITH(c.validate(), Contains("in_chans must be 1 or 3, got 4"));
  }
  SECTION("token pooling needs a class token") {
    c.class_token = false;
    REQUIRE_THROWS_WITH(c.validate(), Contains("global_pool 'token' needs class_token = true"));
  }
  SECTION("rates are probabilities") {
    c.drop_path_rate = 1.5;
    REQUIRE_THROWS_WITH(c.validate(), Contains("drop_path_rate must be in [0, 1), got 1.5"));
    c.drop_path_rate = 0.0;
    c.patch_drop_rate = -0.1;
    REQUIRE_THROWS_WITH(c.validate(), Contains("patch_drop_rate must be in [0, 1), got -0.1"));
  }
  SECTION("real-valued sizes are finite, and the MLP width fits an integer") {
    c.init_values = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_WITH(c.validate(), Contains("init_values must be >= 0 (0: no layer scale), got inf"));
    c.init_values = 0.0;
    c.mlp_ratio = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_WITH(c.validate(), Contains("mlp_ratio must be positive and give an MLP width under 2^31, got inf"));
    c.mlp_ratio = 1e9;  // 1.9e11 hidden units: refused before any allocation is tried
    REQUIRE_THROWS_WITH(c.validate(), Contains("got 1e+09"));
    c.mlp_ratio = 4.0;
    CHECK_NOTHROW(c.validate());
  }
  SECTION("a ratio that gives no width from 1 to 2^31 - 1 gives 0, never an out-of-range conversion") {
    REQUIRE(c.embed_dim == 192);
    for (const double ratio : {std::numeric_limits<double>::quiet_NaN(), -4.0, 0.001, 4.7e17, 2147483648.0 / 192}) {
      c.mlp_ratio = ratio;
      CHECK(c.mlp_hidden_dim() == 0);
      CHECK_THROWS_WITH(c.validate(), Contains("mlp_ratio must be positive and give an MLP width under 2^31"));
    }
    c.mlp_ratio = 2147483647.0 / 192;  // the widest width an int holds
    CHECK(c.mlp_hidden_dim() == 2147483647);
    CHECK_NOTHROW(c.validate());
    c.mlp_ratio = 4.0;
    CHECK(c.mlp_hidden_dim() == 768);
  }
}

TEST_CASE("preprocessing must fit the channel count", "[config]") {
  PreprocessConfig p;  // three channels
  REQUIRE_THROWS_WITH(p.validate(1), Contains("mean needs 1 values (one per channel), got 3"));
  p.crop_pct = 0.0;
  REQUIRE_THROWS_WITH(p.validate(3), Contains("crop_pct must be in (0, 1], got 0"));
}

TEST_CASE("configs round-trip through JSON and bad JSON names the key", "[config]") {
  ViTConfig c = vit_mini_patch7_28().config;
  c.global_pool = GlobalPool::Avg;
  c.fc_norm = true;
  c.drop_path_rate = 0.1;
  c.patch_drop_rate = 0.25;
  const nlohmann::json j = c;
  const auto back = j.get<ViTConfig>();
  CHECK(nlohmann::json(back) == j);
  CHECK(back.global_pool == GlobalPool::Avg);
  CHECK(back.depth == c.depth);
  CHECK_FALSE(j.contains("reg_tokens"));  // newer options only when used: older builds still read the file

  ViTConfig family = c;
  family.reg_tokens = 4;
  family.no_embed_class = true;
  family.init_values = 1e-6;
  family.pre_norm = true;
  family.qkv_bias = false;
  family.act_layer = Activation::QuickGelu;
  family.global_pool = GlobalPool::AvgMax;
  const nlohmann::json family_json = family;
  CHECK(family_json.at("act_layer") == "quick_gelu");
  const auto family_back = family_json.get<ViTConfig>();
  CHECK(nlohmann::json(family_back) == family_json);
  CHECK(family_back.reg_tokens == 4);
  CHECK(family_back.act_layer == Activation::QuickGelu);

  nlohmann::json missing = j;
  missing.erase("depth");
  REQUIRE_THROWS_WITH(missing.get<ViTConfig>(), Contains("model config: missing key 'depth'"));
  nlohmann::json wrong_type = j;
  wrong_type["depth"] = "six";
  REQUIRE_THROWS_WITH(wrong_type.get<ViTConfig>(),
                      Contains("model config: key 'depth' must be a whole number, got \"six\""));
  nlohmann::json unknown = j;
  unknown["dpeth"] = 6;
  REQUIRE_THROWS_WITH(unknown.get<ViTConfig>(), Contains("unknown key 'dpeth'"));
  nlohmann::json bad_pool = j;
  bad_pool["global_pool"] = "prr";  // timm's parameter-free refinement pool, not built by vit
  REQUIRE_THROWS_WITH(
      bad_pool.get<ViTConfig>(),
      Contains("global_pool must be 'token', 'avg', 'max', 'avgmax', 'map', 'token_avg' or '', got 'prr'"));
  nlohmann::json bad_act = j;
  bad_act["act_layer"] = "relu";
  REQUIRE_THROWS_WITH(bad_act.get<ViTConfig>(),
                      Contains("act_layer must be 'gelu', 'gelu_tanh', 'quick_gelu' or 'silu'"));

  // patch_drop_rate came later: files without it still read, as 0.
  nlohmann::json older = j;
  older.erase("patch_drop_rate");
  CHECK(older.get<ViTConfig>().patch_drop_rate == 0.0);

  PreprocessConfig p = vit_mini_patch7_28().preprocess;
  const nlohmann::json pj = p;
  CHECK(nlohmann::json(pj.get<PreprocessConfig>()) == pj);
}

TEST_CASE("a model argument is a preset or a file, and neither is a clear error", "[config]") {
  const auto preset = describe_model("vit_base_patch16_224");
  CHECK(preset.is_preset);
  CHECK(preset.metadata.class_names.size() == 1000);
  CHECK(preset.metadata.class_names[999] == "999");
  REQUIRE_THROWS_WITH(describe_model("vit_bsae_patch16_224"),
                      Contains("unknown model 'vit_bsae_patch16_224': neither one of vit's presets") &&
                          Contains("vit_base_patch16_224"));
}

}  // namespace vit
