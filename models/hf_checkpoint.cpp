#include "models/hf_checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <regex>
#include <stdexcept>

#include <ATen/ops/cat.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <nlohmann/json.hpp>

#include "models/imagenet_classes.h"
#include "models/json_numbers.h"
#include "util/text.h"

namespace vit {
namespace {

// transformers' ACT2FN names for the activations vit's MLP has, both ways: each activation's first name is the
// one written (gelu_new is the tanh approximation too, swish another name of silu).
struct HfActivation {
  const char* name;
  Activation activation;
};
constexpr HfActivation kHfActivations[] = {
    {"gelu", Activation::Gelu},         {"gelu_pytorch_tanh", Activation::GeluTanh},
    {"gelu_new", Activation::GeluTanh}, {"quick_gelu", Activation::QuickGelu},
    {"silu", Activation::Silu},         {"swish", Activation::Silu},
};

std::optional<Activation> hf_activation(const std::string& name) {
  for (const auto& a : kHfActivations)
    if (name == a.name) return a.activation;
  return std::nullopt;
}

std::string hf_activation_name(Activation activation) {
  for (const auto& a : kHfActivations)
    if (a.activation == activation) return a.name;
  return "gelu";
}

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw std::invalid_argument("'" + source + "': " + problem);
}

// The transformers classes vit reads and writes (hf_checkpoint.h).
enum class HfClass { Vit, DeiT, DeiTWithTeacher, Dinov2 };

// Each class's name and model_type, which is also the prefix of its encoder's tensors ("deit.encoder...").
struct HfClassNames {
  HfClass hf_class;
  const char* class_name;
  const char* model_type;
};
constexpr HfClassNames kHfClasses[] = {
    {HfClass::Vit, "ViTForImageClassification", "vit"},
    {HfClass::DeiT, "DeiTForImageClassification", "deit"},
    {HfClass::DeiTWithTeacher, "DeiTForImageClassificationWithTeacher", "deit"},
    {HfClass::Dinov2, "Dinov2ForImageClassification", "dinov2"},
};

const HfClassNames& names_of(HfClass c) {
  for (const auto& names : kHfClasses)
    if (names.hf_class == c) return names;
  return kHfClasses[0];
}
std::string model_type(HfClass c) { return names_of(c).model_type; }
std::string class_name(HfClass c) { return names_of(c).class_name; }

// Names inside one encoder layer: HF's suffix -> timm's, for the tensors that map one to one. ViT and DeiT name
// them alike; DINOv2 has its own names (and the packed SwiGLU's weights_in / weights_out).
const std::vector<std::pair<std::string, std::string>> kLayerNames{
    {"layernorm_before", "norm1"}, {"attention.output.dense", "attn.proj"},
    {"layernorm_after", "norm2"},  {"intermediate.dense", "mlp.fc1"},
    {"output.dense", "mlp.fc2"},
};
const std::vector<std::pair<std::string, std::string>> kDinov2LayerNames{
    {"norm1", "norm1"},
    {"attention.output.dense", "attn.proj"},
    {"norm2", "norm2"},
    {"mlp.fc1", "mlp.fc1"},
    {"mlp.fc2", "mlp.fc2"},
    {"mlp.weights_in", "mlp.fc1"},
    {"mlp.weights_out", "mlp.fc2"},
    {"layer_scale1", "ls1"},
    {"layer_scale2", "ls2"},
};

const std::vector<std::pair<std::string, std::string>> kTopNames{
    {"embeddings.cls_token", "cls_token"},
    {"embeddings.distillation_token", "dist_token"},
    {"embeddings.position_embeddings", "pos_embed"},
    {"embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"},
    {"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias"},
    {"layernorm.weight", "norm.weight"},
    {"layernorm.bias", "norm.bias"},
};

// The heads: HF's name -> timm's.
const std::vector<std::pair<std::string, std::string>> kHeadNames{
    {"classifier.", "head."}, {"cls_classifier.", "head."}, {"distillation_classifier.", "head_dist."}};

// "vit." / "deit." / "dinov2." prefix the encoder in the classification classes; the bare models save without it.
std::string strip_prefix(const std::string& name, std::string* prefix = nullptr) {
  for (const char* p : {"vit.", "deit.", "dinov2."}) {
    if (name.rfind(p, 0) == 0) {
      if (prefix) *prefix = p;
      return name.substr(std::char_traits<char>::length(p));
    }
  }
  return name;
}

// DINOv2's SwiGLU hidden width for the whole part of hidden_size * mlp_ratio: transformers' Dinov2SwiGLUFFN takes
// two thirds of it and rounds up to a multiple of 8.
constexpr int64_t dinov2_swiglu_width_of(int64_t product) { return (product * 2 / 3 + 7) / 8 * 8; }

// The products that give a width vit holds: at least 8 (a product of 1 gives 0), and the packed fc1, 2 x the width,
// within an int.
constexpr int64_t kMinDinov2SwigluProduct = 2;
constexpr int64_t kMaxDinov2SwigluProduct = 1610612725;
static_assert(dinov2_swiglu_width_of(kMinDinov2SwigluProduct - 1) == 0 &&
              dinov2_swiglu_width_of(kMinDinov2SwigluProduct) == 8);
static_assert(2 * dinov2_swiglu_width_of(kMaxDinov2SwigluProduct) <= std::numeric_limits<int32_t>::max() &&
              2 * dinov2_swiglu_width_of(kMaxDinov2SwigluProduct + 1) > std::numeric_limits<int32_t>::max());

// The width for a config, 0 where its product is outside those bounds (a NaN, negative or huge one too).
int64_t dinov2_swiglu_hidden(int64_t hidden_size, double mlp_ratio) {
  const int64_t product = layer_width_or_zero(static_cast<double>(hidden_size) * mlp_ratio);
  return product >= kMinDinov2SwigluProduct && product <= kMaxDinov2SwigluProduct ? dinov2_swiglu_width_of(product) : 0;
}

// The mlp_ratio a DINOv2 config.json needs for vit's packed SwiGLU of fc1 width 2H: 1.5 H / D, which the
// rounding above maps back to H when H is a multiple of 8.
double dinov2_swiglu_ratio(const ViTConfig& c) {
  return 1.5 * static_cast<double>(c.mlp_hidden_dim() / 2) / static_cast<double>(c.embed_dim);
}

// The class a model maps to, or the list of what no class can express.
HfClass hf_class_for(const ViTConfig& c, std::vector<std::string>& unsupported) {
  HfClass out = HfClass::Vit;
  if (c.global_pool == GlobalPool::TokenAvg) {
    out = HfClass::Dinov2;
  } else if (c.dist_token == DistToken::Heads) {
    out = HfClass::DeiTWithTeacher;
  } else if (c.dist_token == DistToken::Unused) {
    out = HfClass::DeiT;
  }
  if (!c.class_token || (c.global_pool != GlobalPool::Token && c.global_pool != GlobalPool::TokenAvg))
    unsupported.push_back("global_pool " + to_string(c.global_pool));
  if (c.has_fc_norm()) unsupported.push_back("fc_norm");
  if (!c.final_norm) unsupported.push_back("no final norm");
  if (c.num_classes == 0) unsupported.push_back("no head");
  if (c.reg_tokens > 0) unsupported.push_back("register tokens");
  if (c.no_embed_class) unsupported.push_back("no_embed_class");
  if (c.init_values > 0.0 && out != HfClass::Dinov2) unsupported.push_back("layer scale");
  if (c.pre_norm) unsupported.push_back("pre_norm");
  if (c.dist_token != DistToken::None && out == HfClass::Dinov2) unsupported.push_back("distillation token");
  if (c.norm_layer != NormLayer::LayerNorm) unsupported.push_back("norm_layer " + to_string(c.norm_layer));
  if (c.embed_norm) unsupported.push_back("patch-embedding norm");
  const bool dinov2_swiglu = out == HfClass::Dinov2 && c.mlp_layer == MlpLayer::SwiGluPacked &&
                             c.act_layer == Activation::Silu &&
                             dinov2_swiglu_hidden(c.embed_dim, dinov2_swiglu_ratio(c)) * 2 == c.mlp_hidden_dim();
  if (c.mlp_layer != MlpLayer::Mlp && !dinov2_swiglu) unsupported.push_back("mlp_layer " + to_string(c.mlp_layer));
  if (c.block_fn != BlockFn::Block) unsupported.push_back("block_fn " + to_string(c.block_fn));
  if (!c.proj_bias) unsupported.push_back("projections without bias");
  if (c.qk_norm) unsupported.push_back("qk_norm");
  if (c.scale_attn_norm || c.scale_mlp_norm) unsupported.push_back("scale norms");
  if (c.pos_embed == PosEmbed::None) unsupported.push_back("no position embedding");
  return out;
}

// config.json's model_type, "" when absent or not a string (json::value would throw a type error on a number).
std::string model_type_of(const json& config) {
  const auto it = config.find("model_type");
  return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool is_hf_config(const json& config) {
  if (!config.is_object()) return false;
  const std::string type = model_type_of(config);
  return type == "vit" || type == "deit" || type == "dinov2";
}

ModelMetadata hf_metadata(const json& config, const json* preprocessor, const TensorShapes& shapes,
                          const std::string& source) {
  ModelMetadata m;
  ViTConfig& c = m.config;
  const std::string type = config.contains("model_type") ? model_type_of(config) : std::string("vit");
  HfClass hf_class = HfClass::Vit;
  if (type == "dinov2") {
    hf_class = HfClass::Dinov2;
  } else if (type == "deit") {
    hf_class = shapes.count("cls_classifier.weight") ? HfClass::DeiTWithTeacher : HfClass::DeiT;
  }
  // A key's value as a whole number, or an error naming the file and the key.
  auto whole = [&](const json& value, const char* key) {
    return whole_number(value, "'" + source + "': config.json " + key);
  };
  try {
    c.embed_dim = whole(config.at("hidden_size"), "hidden_size");
    c.depth = whole(config.at("num_hidden_layers"), "num_hidden_layers");
    c.num_heads = whole(config.at("num_attention_heads"), "num_attention_heads");
    if (hf_class != HfClass::Dinov2) {
      c.mlp_ratio = static_cast<double>(whole(config.at("intermediate_size"), "intermediate_size")) /
                    static_cast<double>(c.embed_dim);
    } else if (config.value("use_swiglu_ffn", false)) {  // transformers' Dinov2SwiGLUFFN: always SiLU
      const double ratio = config.value("mlp_ratio", 4.0);
      const int64_t hidden = dinov2_swiglu_hidden(c.embed_dim, ratio);
      if (hidden == 0)
        fail(source, "config.json mlp_ratio " + json(ratio).dump() + " with hidden_size " +
                         std::to_string(c.embed_dim) + " gives no SwiGLU width: their product must be at least " +
                         std::to_string(kMinDinov2SwigluProduct) + " and under " +
                         std::to_string(kMaxDinov2SwigluProduct + 1) +
                         " (the width is two thirds of it rounded up to a multiple of 8; the packed fc1 of twice "
                         "that must fit an int)");
      c.mlp_layer = MlpLayer::SwiGluPacked;
      c.mlp_ratio = static_cast<double>(2 * hidden) / static_cast<double>(c.embed_dim);
    } else {
      c.mlp_ratio = config.value("mlp_ratio", 4.0);
    }
    const json& size = config.at("image_size");
    c.image_size = whole(size.is_array() ? size.at(0) : size, "image_size");
    if (size.is_array() && whole(size.at(1), "image_size") != c.image_size)
      fail(source, "config.json image_size " + size.dump() + " is not square; vit's models are");
    const json& patch = config.at("patch_size");
    c.patch_size = whole(patch.is_array() ? patch.at(0) : patch, "patch_size");
    c.in_chans = config.contains("num_channels") ? whole(config.at("num_channels"), "num_channels") : 3;
    // Checked here, not only by the config's validation: the default mean and std below are sized by it (found by
    // fuzz_hf_config: a negative count asked for a vector of 2^64 - 1 values).
    if (c.in_chans != 1 && c.in_chans != 3)
      fail(source, "config.json num_channels must be 1 or 3, got " + std::to_string(c.in_chans));
    c.norm_eps = config.value("layer_norm_eps", hf_class == HfClass::Dinov2 ? 1e-6 : 1e-12);
    const std::string act = config.value("hidden_act", std::string("gelu"));
    const auto activation = hf_activation(act);
    if (!activation)
      fail(source, "config.json hidden_act '" + act +
                       "' is not supported (vit's MLP has gelu, gelu_pytorch_tanh / gelu_new, quick_gelu, silu)");
    c.act_layer = c.mlp_layer == MlpLayer::SwiGluPacked ? Activation::Silu : *activation;
    c.qkv_bias = config.value("qkv_bias", true);  // without it, no query/key/value biases in the file
    // DINOv2's layer scale; its starting value only matters for training.
    if (hf_class == HfClass::Dinov2) c.init_values = config.value("layerscale_value", 1.0);
  } catch (const json::exception& e) {
    fail(source, std::string("config.json does not fit Hugging Face's ") + type + " config: " + e.what());
  }
  c.class_token = true;
  c.global_pool = GlobalPool::Token;
  c.fc_norm = false;
  if (hf_class == HfClass::DeiTWithTeacher) c.dist_token = DistToken::Heads;
  if (hf_class == HfClass::DeiT) c.dist_token = DistToken::Unused;
  auto classifier = shapes.find(hf_class == HfClass::DeiTWithTeacher ? "cls_classifier.weight" : "classifier.weight");
  c.num_classes = classifier == shapes.end() ? 0 : classifier->second.at(0);
  // DINOv2's classifier reads the class token and the patches' mean side by side.
  if (hf_class == HfClass::Dinov2 && c.num_classes > 0) c.global_pool = GlobalPool::TokenAvg;

  m.class_names = fallback_class_names(c.num_classes);
  if (c.num_classes > 0 && config.contains("id2label")) {
    const json& id2label = config.at("id2label");
    if (static_cast<int64_t>(id2label.size()) != c.num_classes)
      fail(source, "config.json id2label has " + std::to_string(id2label.size()) + " labels but the classifier has " +
                       std::to_string(c.num_classes) + " outputs");
    for (int64_t i = 0; i < c.num_classes; ++i) {
      const auto key = std::to_string(i);
      if (!id2label.contains(key)) fail(source, "config.json id2label lacks \"" + key + "\"");
      const json& label = id2label.at(key);
      if (!label.is_string())  // found by fuzz_hf_config: a number escaped as the JSON library's type error
        fail(source, "config.json id2label \"" + key + "\" must be a string, got " + label.dump());
      m.class_names[static_cast<size_t>(i)] = label.get<std::string>();
    }
  }

  m.preprocess.interpolation = Interpolation::Bilinear;
  m.preprocess.crop_pct = 1.0;
  m.preprocess.mean.assign(static_cast<size_t>(c.in_chans), 0.5);
  m.preprocess.std.assign(static_cast<size_t>(c.in_chans), 0.5);
  if (preprocessor) {
    try {
      const json& p = *preprocessor;
      if (p.contains("image_mean")) m.preprocess.mean = p.at("image_mean").get<std::vector<double>>();
      if (p.contains("image_std")) m.preprocess.std = p.at("image_std").get<std::vector<double>>();
      // DeiT's and DINOv2's processors resize the short side, then center-crop: timm's crop_pct.
      if (p.value("do_center_crop", false) && p.contains("crop_size") && p.contains("size") &&
          p.at("size").contains("shortest_edge")) {
        const json& crop = p.at("crop_size");
        const auto crop_side = crop.is_object() ? crop.at("height").get<double>() : crop.get<double>();
        m.preprocess.crop_pct = std::min(1.0, crop_side / p.at("size").at("shortest_edge").get<double>());
      }
      if (p.contains("resample")) {
        const int resample = whole_number_as<int>(
            p.at("resample"), "'" + source + "': preprocessor_config.json resample");  // PIL's codes
        if (resample != 2 && resample != 3)
          fail(source, "preprocessor_config.json resample " + std::to_string(resample) +
                           " is not supported (2 = bilinear, 3 = bicubic)");
        m.preprocess.interpolation = resample == 3 ? Interpolation::Bicubic : Interpolation::Bilinear;
      }
    } catch (const json::exception& e) {
      fail(source, std::string("preprocessor_config.json is not valid: ") + e.what());
    }
  }
  try {
    m.validate();
  } catch (const std::invalid_argument& e) {
    fail(source, std::string("the checkpoint does not describe a usable model: ") + e.what());
  }
  return m;
}

TensorMap hf_to_timm(const TensorMap& tensors, const std::string& source) {
  static const std::regex layer_pattern(R"(encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1))");
  TensorMap out;
  std::map<std::string, std::array<at::Tensor, 3>> qkv;  // "blocks.N.attn.qkv.weight" -> q, k, v
  for (const auto& [hf_name, tensor] : tensors) {
    std::string prefix;
    const std::string name = strip_prefix(hf_name, &prefix);
    if (name.rfind("pooler.", 0) == 0) continue;  // ViTModel's pooler: not part of classification
    if (prefix == "dinov2." && name == "embeddings.mask_token") continue;  // masked-image pretraining only
    auto head = std::find_if(kHeadNames.begin(), kHeadNames.end(),
                             [&](const auto& n) { return prefix.empty() && name.rfind(n.first, 0) == 0; });
    if (head != kHeadNames.end()) {
      out.emplace(head->second + name.substr(head->first.size()), tensor);
      continue;
    }
    auto top = std::find_if(kTopNames.begin(), kTopNames.end(), [&](const auto& n) { return n.first == name; });
    if (top != kTopNames.end()) {
      out.emplace(top->second, tensor);
      continue;
    }
    std::smatch match;
    if (std::regex_match(name, match, layer_pattern)) {
      const std::string block = "blocks." + match[1].str() + ".";
      const std::string part = match[2].str();
      const std::string kind = match[3].str();
      static const std::array<std::string, 3> kQkv{"attention.attention.query", "attention.attention.key",
                                                   "attention.attention.value"};
      const auto q = std::find(kQkv.begin(), kQkv.end(), part);
      if (q != kQkv.end()) {
        qkv[block + "attn.qkv." + kind][static_cast<size_t>(q - kQkv.begin())] = tensor;
        continue;
      }
      const auto& names = prefix == "dinov2." ? kDinov2LayerNames : kLayerNames;
      auto same = std::find_if(names.begin(), names.end(), [&](const auto& n) { return n.first == part; });
      if (same != names.end()) {
        out.emplace(block + same->second + "." + (kind == "lambda1" ? "gamma" : kind), tensor);
        continue;
      }
    }
    fail(source, "unexpected tensor '" + hf_name + "' for a Hugging Face ViT, DeiT or DINOv2");
  }
  for (const auto& [name, parts] : qkv) {
    for (size_t i = 0; i < 3; ++i) {
      if (!parts[i].defined()) fail(source, std::string("the ") + "qkv"[i] + " part of '" + name + "' is missing");
    }
    out.emplace(name, at::cat({parts[0], parts[1], parts[2]}, 0));  // rows in q, k, v order, as timm's qkv
  }
  return out;
}

namespace {

// The class `config` is written as; throws when none can express it.
HfClass expressible_class(const ViTConfig& config) {
  std::vector<std::string> unsupported;
  const HfClass hf_class = hf_class_for(config, unsupported);
  if (!unsupported.empty())
    throw std::invalid_argument(
        "Hugging Face's ViT, DeiT and DINOv2 classes classify from the class token after the final norm (DeiT also "
        "from its distillation token, DINOv2 with the patches' mean), with plain blocks; this model (" +
        join(unsupported) + ") cannot be written so: export it in timm's layout or as TorchScript instead");
  return hf_class;
}

}  // namespace

void check_hf_expressible(const ViTConfig& config) { expressible_class(config); }

TensorMap timm_to_hf(const TensorMap& tensors, const ViTConfig& config) {
  const HfClass hf_class = expressible_class(config);
  const std::string prefix = model_type(hf_class) + ".";
  const auto& layer_names = hf_class == HfClass::Dinov2 ? kDinov2LayerNames : kLayerNames;
  static const std::regex block_pattern(R"(blocks\.(\d+)\.(.+)\.(weight|bias|gamma))");
  TensorMap out;
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind("head.", 0) == 0 || name.rfind("head_dist.", 0) == 0) {
      const bool dist = name.rfind("head_dist.", 0) == 0;
      const std::string hf_head = dist                                   ? "distillation_classifier."
                                  : hf_class == HfClass::DeiTWithTeacher ? "cls_classifier."
                                                                         : "classifier.";
      out.emplace(hf_head + name.substr(dist ? 10 : 5), tensor);
      continue;
    }
    // (a structured binding cannot be captured in C++17: clang refuses it)
    auto top =
        std::find_if(kTopNames.begin(), kTopNames.end(), [&name = name](const auto& n) { return n.second == name; });
    if (top != kTopNames.end()) {
      out.emplace(prefix + top->first, tensor);
      continue;
    }
    std::smatch match;
    if (!std::regex_match(name, match, block_pattern))
      throw std::invalid_argument("tensor '" + name + "' has no place in a Hugging Face " + class_name(hf_class));
    const std::string layer = prefix + "encoder.layer." + match[1].str() + ".";
    const std::string part = match[2].str();
    const std::string kind = match[3].str();
    if (part == "attn.qkv") {
      const auto pieces = tensor.chunk(3, 0);  // q, k, v
      out.emplace(layer + "attention.attention.query." + kind, pieces[0].contiguous());
      out.emplace(layer + "attention.attention.key." + kind, pieces[1].contiguous());
      out.emplace(layer + "attention.attention.value." + kind, pieces[2].contiguous());
      continue;
    }
    // DINOv2's MLP names follow its kind: fc1 / fc2, or the packed SwiGLU's weights_in / weights_out.
    std::string hf_part;
    if (hf_class == HfClass::Dinov2 && config.mlp_layer == MlpLayer::SwiGluPacked && part.rfind("mlp.", 0) == 0) {
      hf_part = part == "mlp.fc1" ? "mlp.weights_in" : "mlp.weights_out";
    } else {
      auto same = std::find_if(layer_names.begin(), layer_names.end(), [&](const auto& n) { return n.second == part; });
      if (same == layer_names.end())
        throw std::invalid_argument("tensor '" + name + "' has no place in a Hugging Face " + class_name(hf_class));
      hf_part = same->first;
    }
    out.emplace(layer + hf_part + "." + (kind == "gamma" ? "lambda1" : kind), tensor);
  }
  if (hf_class == HfClass::Dinov2) {
    const auto d = config.embed_dim;
    // DINOv2 always has layer scales (ones are the identity) and a mask token (unused when classifying).
    for (int64_t i = 0; i < config.depth; ++i) {
      for (const char* scale : {"layer_scale1", "layer_scale2"}) {
        const std::string key = prefix + "encoder.layer." + std::to_string(i) + "." + scale + ".lambda1";
        if (!out.count(key)) out.emplace(key, at::ones({d}));
      }
    }
    out.emplace(prefix + "embeddings.mask_token", at::zeros({1, d}));
  }
  return out;
}

json hf_config(const ModelMetadata& m) {
  const ViTConfig& c = m.config;
  const HfClass hf_class = expressible_class(c);
  json id2label = json::object();
  json label2id = json::object();
  for (size_t i = 0; i < m.class_names.size(); ++i) {
    id2label[std::to_string(i)] = m.class_names[i];
    label2id[m.class_names[i]] = i;
  }
  json out{{"architectures", {class_name(hf_class)}},
           {"model_type", model_type(hf_class)},
           {"hidden_size", c.embed_dim},
           {"num_hidden_layers", c.depth},
           {"num_attention_heads", c.num_heads},
           {"hidden_act", hf_activation_name(c.act_layer)},
           {"hidden_dropout_prob", 0.0},
           {"attention_probs_dropout_prob", 0.0},
           {"initializer_range", 0.02},
           {"layer_norm_eps", c.norm_eps},
           {"image_size", c.image_size},
           {"patch_size", c.patch_size},
           {"num_channels", c.in_chans},
           {"qkv_bias", c.qkv_bias},
           {"id2label", id2label},
           {"label2id", label2id}};
  if (hf_class == HfClass::Dinov2) {
    const bool swiglu = c.mlp_layer == MlpLayer::SwiGluPacked;
    out["mlp_ratio"] = swiglu ? dinov2_swiglu_ratio(c) : c.mlp_ratio;
    out["use_swiglu_ffn"] = swiglu;
    out["layerscale_value"] = c.init_values > 0.0 ? c.init_values : 1.0;
    out["drop_path_rate"] = 0.0;
  } else {
    out["intermediate_size"] = c.mlp_hidden_dim();
    out["encoder_stride"] = c.patch_size;
  }
  return out;
}

json hf_preprocessor_config(const ModelMetadata& m) {
  return {{"image_processor_type", "ViTImageProcessor"},
          {"do_resize", true},
          {"size", {{"height", m.config.image_size}, {"width", m.config.image_size}}},
          {"resample", m.preprocess.interpolation == Interpolation::Bicubic ? 3 : 2},  // PIL's codes
          {"do_rescale", true},
          {"rescale_factor", 1.0 / 255.0},
          {"do_normalize", true},
          {"image_mean", m.preprocess.mean},
          {"image_std", m.preprocess.std}};
}

}  // namespace vit
