#include "models/vit_config.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace vit {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

template <typename T>
std::string str(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// Reads `key` from a JSON object with a type check, so a corrupt or hand-edited config names the bad field
// instead of failing deep inside nlohmann with a generic type error.
template <typename T>
void read_field(const nlohmann::json& j, const char* what, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) fail(std::string(what) + ": missing key '" + key + "'");
  try {
    out = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(std::string(what) + ": key '" + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

void reject_unknown_keys(const nlohmann::json& j, const char* what, const std::set<std::string>& known) {
  if (!j.is_object()) fail(std::string(what) + ": expected a JSON object, got " + j.type_name());
  for (const auto& item : j.items()) {
    if (known.count(item.key()) == 0) fail(std::string(what) + ": unknown key '" + item.key() + "'");
  }
}

void check_rate(const char* name, double value) {
  if (!(value >= 0.0 && value < 1.0)) fail(std::string(name) + " must be in [0, 1), got " + str(value));
}

}  // namespace

std::string to_string(GlobalPool pool) {
  switch (pool) {
    case GlobalPool::Token:
      return "token";
    case GlobalPool::Avg:
      return "avg";
    case GlobalPool::Max:
      return "max";
    case GlobalPool::AvgMax:
      return "avgmax";
  }
  return "unknown";
}

void to_json(nlohmann::json& j, const GlobalPool& pool) { j = to_string(pool); }

void from_json(const nlohmann::json& j, GlobalPool& pool) { pool = parse_global_pool(j.get<std::string>()); }

GlobalPool parse_global_pool(const std::string& text) {
  for (GlobalPool pool : {GlobalPool::Token, GlobalPool::Avg, GlobalPool::Max, GlobalPool::AvgMax}) {
    if (text == to_string(pool)) return pool;
  }
  fail("global_pool must be 'token', 'avg', 'max' or 'avgmax', got '" + text + "'");
}

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::Gelu:
      return "gelu";
    case Activation::GeluTanh:
      return "gelu_tanh";
    case Activation::QuickGelu:
      return "quick_gelu";
    case Activation::Silu:
      return "silu";
  }
  return "unknown";
}

Activation parse_activation(const std::string& text) {
  for (Activation a : {Activation::Gelu, Activation::GeluTanh, Activation::QuickGelu, Activation::Silu}) {
    if (text == to_string(a)) return a;
  }
  fail("act_layer must be 'gelu', 'gelu_tanh', 'quick_gelu' or 'silu', got '" + text + "'");
}

void to_json(nlohmann::json& j, const Activation& activation) { j = to_string(activation); }

void from_json(const nlohmann::json& j, Activation& activation) { activation = parse_activation(j.get<std::string>()); }

std::string to_string(Interpolation interpolation) {
  return interpolation == Interpolation::Bicubic ? "bicubic" : "bilinear";
}

Interpolation parse_interpolation(const std::string& text) {
  if (text == "bicubic") return Interpolation::Bicubic;
  if (text == "bilinear") return Interpolation::Bilinear;
  fail("interpolation must be 'bilinear' or 'bicubic', got '" + text + "'");
}

void ViTConfig::validate() const {
  if (patch_size <= 0) fail("patch_size must be positive, got " + str(patch_size));
  if (image_size <= 0 || image_size % patch_size != 0)
    fail("image_size must be a positive multiple of patch_size " + str(patch_size) + ", got " + str(image_size));
  if (in_chans != 1 && in_chans != 3) fail("in_chans must be 1 or 3, got " + str(in_chans));
  if (num_classes < 0) fail("num_classes must be >= 0, got " + str(num_classes));
  if (embed_dim <= 0) fail("embed_dim must be positive, got " + str(embed_dim));
  if (depth <= 0) fail("depth must be positive, got " + str(depth));
  if (num_heads <= 0 || embed_dim % num_heads != 0)
    fail("embed_dim " + str(embed_dim) + " must be divisible by num_heads " + str(num_heads));
  if (!(mlp_ratio > 0.0) || mlp_hidden_dim() <= 0) fail("mlp_ratio must be positive, got " + str(mlp_ratio));
  if (global_pool == GlobalPool::Token && !class_token) fail("global_pool 'token' needs class_token = true");
  if (!(norm_eps > 0.0)) fail("norm_eps must be positive, got " + str(norm_eps));
  check_rate("drop_rate", drop_rate);
  check_rate("pos_drop_rate", pos_drop_rate);
  check_rate("proj_drop_rate", proj_drop_rate);
  check_rate("attn_drop_rate", attn_drop_rate);
  check_rate("drop_path_rate", drop_path_rate);
  check_rate("patch_drop_rate", patch_drop_rate);
  if (reg_tokens < 0) fail("reg_tokens must be >= 0, got " + str(reg_tokens));
  if (!(init_values >= 0.0)) fail("init_values must be >= 0 (0: no layer scale), got " + str(init_values));
}

void PreprocessConfig::validate(int64_t in_chans) const {
  if (!(crop_pct > 0.0 && crop_pct <= 1.0)) fail("crop_pct must be in (0, 1], got " + str(crop_pct));
  const auto channels = static_cast<size_t>(in_chans);
  if (mean.size() != channels)
    fail("mean needs " + str(channels) + " values (one per channel), got " + str(mean.size()));
  if (std.size() != channels) fail("std needs " + str(channels) + " values (one per channel), got " + str(std.size()));
  for (double s : std) {
    if (!(s > 0.0)) fail("std values must be positive, got " + str(s));
  }
}

void to_json(nlohmann::json& j, const ViTConfig& c) {
  const ViTConfig defaults;
  j = nlohmann::json::object();
  for_each_field([&](const FieldInfo& field, auto member) {
    // An optional field at its default is left out, so that files stay readable by builds that predate it.
    if (!field.optional || c.*member != defaults.*member) j[field.key] = c.*member;
  });
}

void from_json(const nlohmann::json& j, ViTConfig& c) {
  const char* what = "model config";
  std::set<std::string> known;
  for_each_field([&](const FieldInfo& field, auto) { known.insert(field.key); });
  reject_unknown_keys(j, what, known);
  ViTConfig out;
  for_each_field([&](const FieldInfo& field, auto member) {
    if (!field.optional || j.contains(field.key)) read_field(j, what, field.key, out.*member);
  });
  out.validate();
  c = out;
}

void to_json(nlohmann::json& j, const PreprocessConfig& p) {
  j = nlohmann::json{
      {"interpolation", to_string(p.interpolation)}, {"crop_pct", p.crop_pct}, {"mean", p.mean}, {"std", p.std}};
}

void from_json(const nlohmann::json& j, PreprocessConfig& p) {
  const char* what = "preprocessing config";
  reject_unknown_keys(j, what, {"interpolation", "crop_pct", "mean", "std"});
  PreprocessConfig out;
  std::string interpolation;
  read_field(j, what, "interpolation", interpolation);
  out.interpolation = parse_interpolation(interpolation);
  read_field(j, what, "crop_pct", out.crop_pct);
  read_field(j, what, "mean", out.mean);
  read_field(j, what, "std", out.std);
  p = out;
}

}  // namespace vit
