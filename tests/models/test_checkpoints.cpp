// timm and Hugging Face checkpoints: what their shapes and config files say, the name mapping both ways, and
// the errors for checkpoints that do not fit. (Logits against torchvision: test_reference.cpp.)

#include <torch/nn/module.h>

#include <fstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "models/checkpoint_layouts.h"
#include "models/hf_checkpoint.h"
#include "models/imagenet_classes.h"
#include "models/presets.h"
#include "models/state_dict.h"
#include "models/timm_architectures.h"
#include "models/timm_checkpoint.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using nlohmann::json;
using vit::test::Contains;
using vit::test::error_of;
using vit::test::small_metadata;
using vit::test::TempDir;

namespace vit {
namespace {

TensorShapes shapes_of(const TensorMap& tensors) {
  TensorShapes shapes;
  for (const auto& [name, tensor] : tensors) shapes.emplace(name, tensor.sizes().vec());
  return shapes;
}

TensorMap small_tensors(ViTConfig config) {
  VisionTransformer model(config);
  return state_dict(*model);
}

}  // namespace

TEST_CASE("timm: the architecture from tensor shapes, the rest from timm's defaults", "[checkpoint]") {
  ViTConfig c = small_metadata().config;  // 16x16, patch 4, width 24, depth 2, 3 classes
  c.embed_dim = 192;
  c.num_heads = 3;
  c.mlp_ratio = 3.0;
  const auto m = timm_metadata(shapes_of(small_tensors(c)), nullptr, "ckpt");
  CHECK(m.config.image_size == 16);
  CHECK(m.config.patch_size == 4);
  CHECK(m.config.depth == 2);
  CHECK(m.config.mlp_ratio == 3.0);
  CHECK(m.config.num_classes == 3);
  CHECK(m.config.num_heads == 3);  // timm's 192-wide family (tiny)
  CHECK(m.config.global_pool == GlobalPool::Token);
  CHECK(m.preprocess.interpolation == Interpolation::Bicubic);
  CHECK(m.preprocess.crop_pct == 0.9);
  CHECK(m.class_names == std::vector<std::string>{"0", "1", "2"});

  c.embed_dim = 1280;  // huge: 80-wide heads, not 64
  c.num_heads = 16;
  c.depth = 1;
  c.num_classes = 0;
  CHECK(timm_metadata(shapes_of(small_tensors(c)), nullptr, "ckpt").config.num_heads == 16);
  c.embed_dim = 24;
  c.num_heads = 2;
  CHECK_THAT(error_of([&] { timm_metadata(shapes_of(small_tensors(c)), nullptr, "ckpt"); }),
             Contains("'ckpt': cannot tell the number of attention heads of a 24-wide model"));
  TensorShapes no_pos = shapes_of(small_tensors(small_metadata().config));
  no_pos.erase("pos_embed");
  CHECK_THAT(error_of([&] { timm_metadata(no_pos, nullptr, "ckpt"); }), Contains("no tensor 'pos_embed'"));
}

TEST_CASE("timm: label names as a list or by index, their descriptions, flat configs, ImageNet's names",
          "[checkpoint]") {
  ViTConfig c = small_metadata().config;
  const auto shapes = shapes_of(small_tensors(c));  // 3 classes
  json config{{"architecture", "vit_tiny_patch16_224"},
              {"model_args", {{"num_heads", 2}}},
              {"mean", {0.1, 0.2, 0.3}},  // timm's older flat config: the pretrained config at the top level
              {"std", {0.4, 0.5, 0.6}},
              {"crop_pct", 0.8},
              {"label_names", {{"2", "n3"}, {"0", "n1"}, {"1", "n2"}}},
              {"label_descriptions", {{"n1", "tench, Tinca tinca"}, {"n3", "goldfish"}}}};
  const auto m = timm_metadata(shapes, &config, "ckpt");
  CHECK(m.class_names == std::vector<std::string>{"tench, Tinca tinca", "n2", "goldfish"});
  CHECK(m.preprocess.mean == std::vector<double>{0.1, 0.2, 0.3});
  CHECK(m.preprocess.crop_pct == 0.8);
  config["label_names"] = {{"0", "a"}, {"1", "b"}, {"7", "c"}};
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("label_names: key '7' is not a class index below 3"));

  // A 1000-class checkpoint that names none: ImageNet-1k's names.
  c.num_classes = 1000;
  c.embed_dim = 192;  // tiny's width: its heads need no config
  c.num_heads = 3;
  const auto imagenet = timm_metadata(shapes_of(small_tensors(c)), nullptr, "ckpt");
  CHECK(imagenet.class_names.at(207) == "golden retriever");
  CHECK(imagenet.class_names.at(281) == "tabby");
  CHECK(imagenet_class_names().size() == 1000);
}

TEST_CASE("timm: config.json gives heads, pooling, preprocessing and label names", "[checkpoint]") {
  ViTConfig c = small_metadata().config;
  c.global_pool = GlobalPool::Avg;
  c.fc_norm = true;
  const auto shapes = shapes_of(small_tensors(c));
  json config = timm_config(small_metadata());
  config["model_args"]["num_heads"] = 3;
  config["global_pool"] = "avg";
  config["label_names"] = {"x", "y", "z"};  // top level wins over pretrained_cfg, as in timm
  config["pretrained_cfg"]["interpolation"] = "bilinear";
  const auto m = timm_metadata(shapes, &config, "ckpt");
  CHECK(m.config.num_heads == 3);
  CHECK(m.config.global_pool == GlobalPool::Avg);
  CHECK(m.config.fc_norm);
  CHECK(m.class_names == std::vector<std::string>{"x", "y", "z"});
  CHECK(m.preprocess.interpolation == Interpolation::Bilinear);
  CHECK(m.preprocess.mean == small_metadata().preprocess.mean);

  config["pretrained_cfg"]["interpolation"] = "lanczos";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }), Contains("'ckpt': config.json: "));
  config["pretrained_cfg"]["interpolation"] = "bicubic";
  config["label_names"] = {"only one"};
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }), Contains("3 classes but 1 class names"));
  config["label_names"] = {"x", "y", "z"};
  // A crop_pct whose resize no int holds is refused by name, never converted to a size (vit info, evaluation).
  config["pretrained_cfg"]["crop_pct"] = 1e-300;
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("crop_pct 1e-300 resizes images to a short side of ") &&
                 Contains(" pixels for image_size " + std::to_string(m.config.image_size) + "; at most 65536"));
  config["pretrained_cfg"]["crop_pct"] = 0.875;
  CHECK(timm_metadata(shapes, &config, "ckpt").preprocess.crop_pct == 0.875);
}

TEST_CASE("timm: config.json values that are malformed or contradict the tensors are refused, naming them",
          "[checkpoint]") {
  const auto shapes = shapes_of(small_tensors(small_metadata().config));
  const json valid = timm_config(small_metadata());
  const auto refusal = [&](void (*change)(json&)) {
    json config = valid;
    change(config);
    return error_of([&] { timm_metadata(shapes, &config, "ckpt"); });
  };
  CHECK_NOTHROW(timm_metadata(shapes, &valid, "ckpt"));
  // Preprocessing that would turn every input into infinities (and every answer into NaN).
  CHECK_THAT(refusal([](json& c) { c["pretrained_cfg"]["mean"] = {1e308, 1e308, 1e308}; }),
             Contains("mean values must be finite numbers within +-1000, got 1e+308"));
  CHECK_THAT(refusal([](json& c) { c["pretrained_cfg"]["std"] = {1e-300, 1, 1}; }),
             Contains("std values must be between 1e-6 and 1000, got 1e-300"));
  // The head's class count: a malformed or contradicting one.
  CHECK_THAT(refusal([](json& c) { c["num_classes"] = -5; }), Contains("num_classes must be a whole number >= 0, got -5"));
  CHECK_THAT(refusal([](json& c) { c["num_classes"] = 1e9; }), Contains("num_classes must be a whole number"));
  CHECK_THAT(refusal([](json& c) { c["num_classes"] = "3"; }), Contains("num_classes must be a whole number"));
  CHECK_THAT(refusal([](json& c) { c["num_classes"] = 0; }),
             Contains("num_classes 0 does not fit the checkpoint's tensors, whose head has 3 classes"));
  // model_args that contradict the shapes or have the wrong type.
  CHECK_THAT(refusal([](json& c) { c["model_args"]["patch_size"] = 0; }),
             Contains("model_args patch_size = 0 does not fit the checkpoint's tensors"));
  CHECK_THAT(refusal([](json& c) { c["model_args"]["patch_size"] = "x"; }),
             Contains("model_args patch_size must be a whole number, got \"x\""));
  CHECK_THAT(refusal([](json& c) { c["model_args"]["depth"] = json::array(); }),
             Contains("model_args depth must be a whole number, got []"));
  // A stated input size must be one.
  CHECK_THAT(refusal([](json& c) { c["pretrained_cfg"]["input_size"] = {3, -224, 224}; }),
             Contains("input_size must be [channels, height, width] in positive whole numbers, got [3,-224,224]"));
  CHECK_THAT(refusal([](json& c) { c["pretrained_cfg"]["input_size"] = 224; }), Contains("got 224"));
}

TEST_CASE("timm: the family's options from tensor shapes and model_args, unsupported or unknown ones named",
          "[checkpoint]") {
  ViTConfig c = small_metadata().config;
  c.reg_tokens = 4;
  c.init_values = 1e-6;
  c.no_embed_class = true;
  c.pre_norm = true;
  c.qkv_bias = false;
  const auto shapes = shapes_of(small_tensors(c));
  CHECK(shapes.count("reg_token") == 1);
  CHECK(shapes.count("patch_embed.proj.bias") == 0);                 // timm leaves it out with pre_norm
  CHECK(shapes.at("pos_embed") == std::vector<int64_t>{1, 16, 24});  // the 4x4 patches only
  json config = timm_config(small_metadata());
  config["model_args"] = {{"num_heads", 2}, {"act_layer", "quick_gelu"}, {"init_values", 1e-6}};
  const auto m = timm_metadata(shapes, &config, "ckpt");
  CHECK(m.config.reg_tokens == 4);
  CHECK(m.config.no_embed_class);
  CHECK(m.config.pre_norm);
  CHECK_FALSE(m.config.qkv_bias);
  CHECK(m.config.init_values == 1e-6);
  CHECK(m.config.act_layer == Activation::QuickGelu);
  // Written back, timm's model_args carry the options the shapes cannot tell.
  const json written = timm_config(m);
  CHECK(written["model_args"]["act_layer"] == "quick_gelu");
  CHECK(written["model_args"]["no_embed_class"] == true);
  CHECK(written["model_args"]["reg_tokens"] == 4);

  config["architecture"] = "vit_base_patch16_qknorm";  // not a registered name: model_args alone
  config["model_args"]["qk_norm"] = false;             // as the tensors say: fine
  CHECK(timm_metadata(shapes, &config, "ckpt").config.reg_tokens == 4);
  config["model_args"]["qk_norm"] = true;  // but the tensors have no q_norm
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("architecture 'vit_base_patch16_qknorm': model_args qk_norm = true does not fit the "
                      "checkpoint's tensors"));
  config["model_args"].erase("qk_norm");
  config["model_args"]["qkv_bais"] = false;
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }), Contains("unknown key 'qkv_bais'"));
  config["model_args"].erase("qkv_bais");
  config["model_args"]["attn_layer"] = "diff";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("timm option attn_layer = \"diff\" is not supported by vit"));
  config["model_args"].erase("attn_layer");
  config["global_pool"] = "";  // timm's no pooling: every token's output
  CHECK(timm_metadata(shapes, &config, "ckpt").config.global_pool == GlobalPool::None);
  config["global_pool"] = "prr";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("architecture 'vit_base_patch16_qknorm': timm option global_pool = \"prr\" is not supported"));
  config["global_pool"] = "map";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("global_pool 'map', but there is no attention pool"));
  config["global_pool"] = "token";
  config["model_args"]["pos_embed"] = "learn";  // timm's default: fine
  CHECK(timm_metadata(shapes, &config, "ckpt").config.reg_tokens == 4);
  config["model_args"]["pos_embed"] = "none";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("pos_embed 'none' does not fit the checkpoint, which has tensor 'pos_embed'"));
  // A registered architecture that vit does not build is named with its option.
  config["model_args"].erase("pos_embed");
  config["architecture"] = "vit_dwee_patch16_reg1_gap_256.untrained";
  CHECK_THAT(error_of([&] { timm_metadata(shapes, &config, "ckpt"); }),
             Contains("architecture 'vit_dwee_patch16_reg1_gap_256.untrained': timm option attn_layer = \"diff\""));
}

TEST_CASE("timm: model_args settle a position-embedding length that reads both ways, odd head counts by name",
          "[checkpoint]") {
  // Class token + 4 registers and 9 position embeddings: 4 patches with the prefix embedded, or 9 without.
  ViTConfig c = small_metadata().config;
  c.image_size = 12;  // 3x3 patches of 4
  c.reg_tokens = 4;
  c.no_embed_class = true;
  const auto shapes = shapes_of(small_tensors(c));
  const json heads_only = {{"model_args", {{"num_heads", 2}}}};
  CHECK(timm_metadata(shapes, &heads_only, "ckpt").config.image_size == 8);  // the shapes alone: the first reading
  json config = timm_config(small_metadata());
  config["model_args"] = {{"num_heads", 2}, {"no_embed_class", true}};
  const auto settled = timm_metadata(shapes, &config, "ckpt");
  CHECK(settled.config.no_embed_class);
  CHECK(settled.config.image_size == 12);

  // vit_base_patch16_gap_224 is 768 wide like the base family, but has 16 heads.
  ViTConfig gap = small_metadata().config;
  gap.embed_dim = 768;
  gap.num_heads = 16;
  gap.depth = 1;
  gap.class_token = false;
  gap.global_pool = GlobalPool::Avg;
  json named = {{"architecture", "vit_base_patch16_gap_224.untrained"}, {"global_pool", "avg"}};
  CHECK(timm_metadata(shapes_of(small_tensors(gap)), &named, "ckpt").config.num_heads == 16);
  named["architecture"] = "vit_base_patch16_224";
  CHECK(timm_metadata(shapes_of(small_tensors(gap)), &named, "ckpt").config.num_heads == 12);
}

TEST_CASE("timm: the config written for export names a timm architecture and every argument", "[checkpoint]") {
  ModelMetadata m = small_metadata();
  json config = timm_config(m);
  // A registered plain ViT (the closest one); model_args carry the real sizes.
  REQUIRE(find_timm_architecture(config["architecture"].get<std::string>()) != nullptr);
  CHECK(find_preset(config["architecture"].get<std::string>())->config.mlp_layer == MlpLayer::Mlp);
  // A fine-tuned registered architecture keeps its name; options JSON cannot carry pick a name that has them.
  const ModelPreset deit3 = *find_preset("deit3_small_patch16_224");
  ModelMetadata tuned{deit3.config, deit3.preprocess, {"a", "b", "c"}};
  tuned.config.num_classes = 3;
  CHECK(timm_config(tuned)["architecture"] == "deit3_small_patch16_224");
  ModelMetadata swiglu = m;
  swiglu.config.mlp_layer = MlpLayer::SwiGlu;
  swiglu.config.norm_layer = NormLayer::RmsNorm;
  swiglu.config.norm_eps = 1e-5;
  swiglu.config.embed_norm = true;
  CHECK(timm_config(swiglu)["architecture"].get<std::string>().rfind("aimv2_", 0) == 0);
  swiglu.config.norm_eps = 1e-6;  // no registered architecture has SwiGLU with this eps
  CHECK_THAT(error_of([&] { timm_config(swiglu); }),
             Contains("timm's config.json cannot express this model: no timm architecture has mlp_layer 'swiglu'"));
  CHECK(config["model_args"]["embed_dim"] == 24);
  CHECK(config["pretrained_cfg"]["label_names"] == json(m.class_names));
  CHECK(config["pretrained_cfg"]["input_size"] == json({3, 16, 16}));
  // ... and reads back as the same model.
  const auto back = timm_metadata(shapes_of(small_tensors(m.config)), &config, "x");
  CHECK(back.config.num_heads == m.config.num_heads);
  CHECK(back.class_names == m.class_names);
  CHECK(back.preprocess.std == m.preprocess.std);
}

TEST_CASE("Hugging Face: names map to timm's and back bit for bit, q, k, v fused in order", "[checkpoint]") {
  const ModelMetadata m = small_metadata();
  const TensorMap timm = small_tensors(m.config);
  const TensorMap hf = timm_to_hf(timm, m.config);
  CHECK(hf.count("vit.encoder.layer.1.attention.attention.key.weight") == 1);
  CHECK(hf.count("classifier.bias") == 1);
  CHECK(torch::equal(hf.at("vit.encoder.layer.0.attention.attention.value.bias"),
                     timm.at("blocks.0.attn.qkv.bias").slice(0, 48, 72)));
  const TensorMap back = hf_to_timm(hf, "x");
  REQUIRE(back.size() == timm.size());
  for (const auto& [name, tensor] : timm) CHECK(torch::equal(back.at(name), tensor));

  TensorMap broken = hf;
  broken.emplace("vit.embeddings.mask_token", torch::zeros({1, 1, 24}));
  CHECK_THAT(error_of([&] { hf_to_timm(broken, "f"); }), Contains("unexpected tensor 'vit.embeddings.mask_token'"));
  broken = hf;
  broken.erase("vit.encoder.layer.0.attention.attention.key.weight");
  CHECK_THAT(error_of([&] { hf_to_timm(broken, "f"); }),
             Contains("the k part of 'blocks.0.attn.qkv.weight' is missing"));
}

TEST_CASE("Hugging Face: config.json and preprocessor_config.json", "[checkpoint]") {
  const ModelMetadata m = small_metadata();
  const auto shapes = shapes_of(timm_to_hf(small_tensors(m.config), m.config));
  json config = hf_config(m);
  config.erase("layer_norm_eps");  // HF's default then: 1e-12
  const json preprocessor{{"image_mean", {0.1, 0.2, 0.3}}, {"image_std", {1, 1, 1}}, {"resample", 3}};
  const auto read = hf_metadata(config, &preprocessor, shapes, "hf");
  CHECK(read.config.norm_eps == 1e-12);
  CHECK(read.config.num_heads == m.config.num_heads);
  CHECK(read.config.mlp_ratio == m.config.mlp_ratio);
  CHECK(read.class_names == m.class_names);
  CHECK(read.preprocess.interpolation == Interpolation::Bicubic);
  CHECK(read.preprocess.mean == std::vector<double>{0.1, 0.2, 0.3});
  CHECK(read.preprocess.crop_pct == 1.0);

  json wrong = config;
  wrong["id2label"] = {{"0", "a"}};
  CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }),
             Contains("id2label has 1 labels but the classifier has 3 outputs"));
  wrong = config;
  wrong["hidden_act"] = "relu";
  CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }), Contains("hidden_act 'relu'"));
  json tanh = config;
  tanh["hidden_act"] = "gelu_new";  // transformers' name for the tanh approximation
  CHECK(hf_metadata(tanh, nullptr, shapes, "hf").config.act_layer == Activation::GeluTanh);
  wrong = config;
  wrong.erase("hidden_size");
  CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }), Contains("'hf': config.json does not fit"));
  // Found by fuzz_hf_config: a count beyond int64_t was converted with a cast (undefined behaviour), and a
  // fractional one was silently truncated.
  for (const json& heads : {json(2.5e126), json(1.5), json("2")}) {
    wrong = config;
    wrong["num_attention_heads"] = heads;
    CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }),
               Contains("config.json num_attention_heads must be a whole number, got " + heads.dump()) ||
                   Contains("'hf': config.json does not fit"));
  }
  // Found by fuzz_hf_config: values of the wrong JSON type escaped as the JSON library's type errors.
  wrong = config;
  wrong["id2label"]["1"] = 7;
  CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }),
             Contains("'hf': config.json id2label \"1\" must be a string, got 7"));
  wrong = config;
  wrong["model_type"] = 5;
  CHECK_FALSE(is_hf_config(wrong));
  wrong = config;
  wrong["num_attention_heads"] = 2.0;  // a whole number written as a float reads as that number
  CHECK(hf_metadata(wrong, nullptr, shapes, "hf").config.num_heads == 2);
  const json bad_resample{{"resample", 3e30}};
  CHECK_THAT(error_of([&] { hf_metadata(config, &bad_resample, shapes, "hf"); }),
             Contains("'hf': preprocessor_config.json resample is out of range, got 3e+30") ||
                 Contains("'hf': preprocessor_config.json resample must be a whole number, got 3e+30"));
  // Found by fuzz_hf_config: a negative channel count sized the default mean and std (a std::length_error).
  for (const int channels : {-1, 0, 2}) {
    wrong = config;
    wrong["num_channels"] = channels;
    CHECK_THAT(error_of([&] { hf_metadata(wrong, nullptr, shapes, "hf"); }),
               Contains("'hf': config.json num_channels must be 1 or 3, got " + std::to_string(channels)));
  }
  // A DINOv2 SwiGLU ratio whose width no integer holds (like fuzz_timm_config's 4.7e17) is refused by name, never
  // converted. With hidden_size 24: 1.5 / 24 is a product of 1.5, whose whole part's two thirds truncate to 0; 7e7
  // a product that fits an int but whose packed fc1 (2 x 1,120,000,000) does not.
  const auto swiglu = [&](int64_t hidden_size, double ratio) {
    json dinov2 = config;
    dinov2["model_type"] = "dinov2";
    dinov2["use_swiglu_ffn"] = true;
    dinov2["hidden_size"] = hidden_size;
    dinov2["mlp_ratio"] = ratio;
    return dinov2;
  };
  const auto swiglu_error = [&](int64_t hidden_size, double ratio) {
    return error_of([&] { hf_metadata(swiglu(hidden_size, ratio), nullptr, shapes, "hf"); });
  };
  for (const double ratio : {4.7e17, -4.0, 1e-9, 1.5 / 24.0, 7e7}) {
    CHECK_THAT(swiglu_error(24, ratio), Contains("'hf': config.json mlp_ratio " + json(ratio).dump() +
                                                 " with hidden_size 24 gives no SwiGLU width: their product must be "
                                                 "at least 2 and under 1610612726"));
  }
  // The bounds, on exact products (hidden_size 2): 2 gives width 8, 1,610,612,725 the widest, 1,073,741,816, whose
  // packed fc1 (twice that) still fits an int; one more either way and there is no width.
  for (const auto& [ratio, width] : {std::pair{1.0, int64_t{8}}, std::pair{805306362.5, int64_t{1073741816}}}) {
    const ViTConfig accepted = hf_metadata(swiglu(2, ratio), nullptr, shapes, "hf").config;
    CHECK(accepted.mlp_layer == MlpLayer::SwiGluPacked);
    CHECK(accepted.mlp_ratio == static_cast<double>(width));  // the packed fc1 (2 x width) over hidden_size 2
  }
  CHECK_THAT(swiglu_error(2, 805306363.0), Contains("with hidden_size 2 gives no SwiGLU width"));
  CHECK_THAT(swiglu_error(2, 0.5), Contains("with hidden_size 2 gives no SwiGLU width"));
}

TEST_CASE("model files: layouts told apart, with errors naming the file and tensor", "[checkpoint]") {
  TempDir dir;
  const ModelMetadata m = small_metadata();
  const TensorMap timm = small_tensors(m.config);
  std::filesystem::create_directories(dir / "hf");
  write_safetensors(dir / "hf" / "model.safetensors", timm_to_hf(timm, m.config));
  CHECK_THAT(error_of([&] { load_checkpoint(dir / "hf"); }), Contains("has no config.json beside it"));
  std::ofstream(dir / "hf" / "config.json") << hf_config(m).dump();
  WeightsLayout layout;
  auto loaded = load_checkpoint(dir / "hf", std::nullopt, &layout);
  CHECK(layout == WeightsLayout::HuggingFace);
  CHECK(torch::equal(state_dict(*loaded.model).at("blocks.1.attn.qkv.weight"), timm.at("blocks.1.attn.qkv.weight")));
  CHECK(read_checkpoint_info(dir / "hf" / "model.safetensors").metadata.class_names == m.class_names);

  TensorMap missing = timm;
  missing.erase("blocks.1.mlp.fc2.bias");
  std::filesystem::create_directories(dir / "timm");
  write_safetensors(dir / "timm" / "model.safetensors", missing);
  std::ofstream(dir / "timm" / "config.json") << timm_config(m).dump();
  CHECK_THAT(error_of([&] { load_checkpoint(dir / "timm"); }), Contains("missing tensor 'blocks.1.mlp.fc2.bias'"));
  write_safetensors(dir / "other.safetensors", {{"weight", torch::zeros({2})}});
  CHECK_THAT(error_of([&] { load_checkpoint(dir / "other.safetensors"); }),
             Contains("not a Vision Transformer checkpoint vit knows"));
  CHECK_THAT(error_of([&] { load_checkpoint(dir.path()); }), Contains("holds no model.safetensors"));
}

}  // namespace vit
