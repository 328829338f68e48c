#include "models/hf_checkpoint.h"

#include <optional>
#include <regex>
#include <stdexcept>

#include <ATen/ops/cat.h>
#include <nlohmann/json.hpp>

namespace vit {
namespace {

// transformers' ACT2FN names for the activations vit's MLP has (gelu_new is the tanh approximation too).
std::optional<Activation> hf_activation(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return Activation::GeluTanh;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  return std::nullopt;
}

std::string hf_activation_name(Activation activation) {
  switch (activation) {
    case Activation::Gelu:
      return "gelu";
    case Activation::GeluTanh:
      return "gelu_pytorch_tanh";
    case Activation::QuickGelu:
      return "quick_gelu";
    case Activation::Silu:
      return "silu";
  }
  return "gelu";
}

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw std::invalid_argument("'" + source + "': " + problem);
}

// Names inside one encoder layer: HF's suffix -> timm's, for the tensors that map one to one.
const std::vector<std::pair<std::string, std::string>> kLayerNames{
    {"layernorm_before", "norm1"}, {"attention.output.dense", "attn.proj"},
    {"layernorm_after", "norm2"},  {"intermediate.dense", "mlp.fc1"},
    {"output.dense", "mlp.fc2"},
};

const std::vector<std::pair<std::string, std::string>> kTopNames{
    {"embeddings.cls_token", "cls_token"},
    {"embeddings.position_embeddings", "pos_embed"},
    {"embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"},
    {"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias"},
    {"layernorm.weight", "norm.weight"},
    {"layernorm.bias", "norm.bias"},
};

// "vit." prefixes ViTForImageClassification's encoder; ViTModel saves without it.
std::string strip_vit_prefix(const std::string& name) { return name.rfind("vit.", 0) == 0 ? name.substr(4) : name; }

}  // namespace

bool is_hf_vit_config(const json& config) {
  return config.is_object() && config.value("model_type", std::string()) == "vit";
}

ModelMetadata hf_metadata(const json& config, const json* preprocessor, const TensorShapes& shapes,
                          const std::string& source) {
  ModelMetadata m;
  ViTConfig& c = m.config;
  try {
    c.embed_dim = config.at("hidden_size").get<int64_t>();
    c.depth = config.at("num_hidden_layers").get<int64_t>();
    c.num_heads = config.at("num_attention_heads").get<int64_t>();
    c.mlp_ratio = static_cast<double>(config.at("intermediate_size").get<int64_t>()) / static_cast<double>(c.embed_dim);
    const json& size = config.at("image_size");
    c.image_size = size.is_array() ? size.at(0).get<int64_t>() : size.get<int64_t>();
    if (size.is_array() && size.at(1).get<int64_t>() != c.image_size)
      fail(source, "config.json image_size " + size.dump() + " is not square; vit's models are");
    const json& patch = config.at("patch_size");
    c.patch_size = patch.is_array() ? patch.at(0).get<int64_t>() : patch.get<int64_t>();
    c.in_chans = config.value("num_channels", int64_t{3});
    c.norm_eps = config.value("layer_norm_eps", 1e-12);
    const std::string act = config.value("hidden_act", std::string("gelu"));
    const auto activation = hf_activation(act);
    if (!activation)
      fail(source, "config.json hidden_act '" + act +
                       "' is not supported (vit's MLP has gelu, gelu_pytorch_tanh / gelu_new, quick_gelu, silu)");
    c.act_layer = *activation;
    c.qkv_bias = config.value("qkv_bias", true);  // without it, no query/key/value biases in the file
  } catch (const json::exception& e) {
    fail(source, std::string("config.json does not fit Hugging Face's ViTConfig: ") + e.what());
  }
  c.class_token = true;
  c.global_pool = GlobalPool::Token;
  c.fc_norm = false;
  const auto classifier = shapes.find("classifier.weight");
  c.num_classes = classifier == shapes.end() ? 0 : classifier->second.at(0);

  m.class_names = default_class_names(c.num_classes);
  if (c.num_classes > 0 && config.contains("id2label")) {
    const json& id2label = config.at("id2label");
    if (static_cast<int64_t>(id2label.size()) != c.num_classes)
      fail(source, "config.json id2label has " + std::to_string(id2label.size()) + " labels but the classifier has " +
                       std::to_string(c.num_classes) + " outputs");
    for (int64_t i = 0; i < c.num_classes; ++i) {
      const auto key = std::to_string(i);
      if (!id2label.contains(key)) fail(source, "config.json id2label lacks \"" + key + "\"");
      m.class_names[static_cast<size_t>(i)] = id2label.at(key).get<std::string>();
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
      if (p.contains("resample")) {
        const int resample = p.at("resample").get<int>();  // PIL's codes
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
  static const std::regex layer_pattern(R"(encoder\.layer\.(\d+)\.(.+)\.(weight|bias))");
  TensorMap out;
  std::map<std::string, std::array<at::Tensor, 3>> qkv;  // "blocks.N.attn.qkv.weight" -> q, k, v
  for (const auto& [hf_name, tensor] : tensors) {
    const std::string name = strip_vit_prefix(hf_name);
    if (name.rfind("pooler.", 0) == 0) continue;  // ViTModel's pooler: not part of classification
    if (name.rfind("classifier.", 0) == 0) {
      out.emplace("head." + name.substr(11), tensor);
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
      auto same = std::find_if(kLayerNames.begin(), kLayerNames.end(), [&](const auto& n) { return n.first == part; });
      if (same != kLayerNames.end()) {
        out.emplace(block + same->second + "." + kind, tensor);
        continue;
      }
    }
    fail(source, "unexpected tensor '" + hf_name + "' for a Hugging Face ViT");
  }
  for (const auto& [name, parts] : qkv) {
    for (size_t i = 0; i < 3; ++i) {
      if (!parts[i].defined()) fail(source, std::string("the ") + "qkv"[i] + " part of '" + name + "' is missing");
    }
    out.emplace(name, at::cat({parts[0], parts[1], parts[2]}, 0));  // rows in q, k, v order, as timm's qkv
  }
  return out;
}

TensorMap timm_to_hf(const TensorMap& tensors) {
  static const std::regex block_pattern(R"(blocks\.(\d+)\.(.+)\.(weight|bias))");
  TensorMap out;
  for (const auto& [name, tensor] : tensors) {
    if (name.rfind("head.", 0) == 0) {
      out.emplace("classifier." + name.substr(5), tensor);
      continue;
    }
    auto top = std::find_if(kTopNames.begin(), kTopNames.end(), [&](const auto& n) { return n.second == name; });
    if (top != kTopNames.end()) {
      out.emplace("vit." + top->first, tensor);
      continue;
    }
    std::smatch match;
    if (!std::regex_match(name, match, block_pattern))
      throw std::invalid_argument("tensor '" + name + "' has no place in a Hugging Face ViT");
    const std::string layer = "vit.encoder.layer." + match[1].str() + ".";
    const std::string part = match[2].str();
    const std::string kind = match[3].str();
    if (part == "attn.qkv") {
      const auto pieces = tensor.chunk(3, 0);  // q, k, v
      out.emplace(layer + "attention.attention.query." + kind, pieces[0].contiguous());
      out.emplace(layer + "attention.attention.key." + kind, pieces[1].contiguous());
      out.emplace(layer + "attention.attention.value." + kind, pieces[2].contiguous());
      continue;
    }
    auto same = std::find_if(kLayerNames.begin(), kLayerNames.end(), [&](const auto& n) { return n.second == part; });
    if (same == kLayerNames.end())
      throw std::invalid_argument("tensor '" + name + "' has no place in a Hugging Face ViT");
    out.emplace(layer + same->first + "." + kind, tensor);
  }
  return out;
}

json hf_config(const ModelMetadata& m) {
  const ViTConfig& c = m.config;
  json id2label = json::object();
  json label2id = json::object();
  for (size_t i = 0; i < m.class_names.size(); ++i) {
    id2label[std::to_string(i)] = m.class_names[i];
    label2id[m.class_names[i]] = i;
  }
  return {{"architectures", {"ViTForImageClassification"}},
          {"model_type", "vit"},
          {"hidden_size", c.embed_dim},
          {"num_hidden_layers", c.depth},
          {"num_attention_heads", c.num_heads},
          {"intermediate_size", c.mlp_hidden_dim()},
          {"hidden_act", hf_activation_name(c.act_layer)},
          {"hidden_dropout_prob", 0.0},
          {"attention_probs_dropout_prob", 0.0},
          {"initializer_range", 0.02},
          {"layer_norm_eps", c.norm_eps},
          {"image_size", c.image_size},
          {"patch_size", c.patch_size},
          {"num_channels", c.in_chans},
          {"qkv_bias", c.qkv_bias},
          {"encoder_stride", c.patch_size},
          {"id2label", id2label},
          {"label2id", label2id}};
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
