#include "models/vit_config.h"

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/json_numbers.h"

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
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      out = whole_number_as<T>(*it, std::string(what) + ": key '" + key + "'");  // never a cast from a float
    } else {
      out = it->get<T>();
    }
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

namespace {

// Each enum's values with their names, in declaration order.
template <typename Enum>
struct EnumTable;
template <>
struct EnumTable<GlobalPool> {
  static constexpr const char* what = "global_pool";
  static constexpr std::pair<GlobalPool, const char*> entries[] = {
      {GlobalPool::Token, "token"},   {GlobalPool::Avg, "avg"}, {GlobalPool::Max, "max"},
      {GlobalPool::AvgMax, "avgmax"}, {GlobalPool::Map, "map"}, {GlobalPool::TokenAvg, "token_avg"},
      {GlobalPool::None, ""}};
};
template <>
struct EnumTable<Activation> {
  static constexpr const char* what = "act_layer";
  static constexpr std::pair<Activation, const char*> entries[] = {{Activation::Gelu, "gelu"},
                                                                   {Activation::GeluTanh, "gelu_tanh"},
                                                                   {Activation::QuickGelu, "quick_gelu"},
                                                                   {Activation::Silu, "silu"}};
};
template <>
struct EnumTable<NormLayer> {
  static constexpr const char* what = "norm_layer";
  static constexpr std::pair<NormLayer, const char*> entries[] = {{NormLayer::LayerNorm, "layernorm"},
                                                                  {NormLayer::RmsNorm, "rmsnorm"}};
};
template <>
struct EnumTable<MlpLayer> {
  static constexpr const char* what = "mlp_layer";
  static constexpr std::pair<MlpLayer, const char*> entries[] = {
      {MlpLayer::Mlp, "mlp"}, {MlpLayer::SwiGlu, "swiglu"}, {MlpLayer::SwiGluPacked, "swiglu_packed"}};
};
template <>
struct EnumTable<BlockFn> {
  static constexpr const char* what = "block_fn";
  static constexpr std::pair<BlockFn, const char*> entries[] = {{BlockFn::Block, "block"},
                                                                {BlockFn::ResPost, "res_post"},
                                                                {BlockFn::ParallelThings, "parallel_things"},
                                                                {BlockFn::ParallelScaling, "parallel_scaling"}};
};
template <>
struct EnumTable<PosEmbed> {
  static constexpr const char* what = "pos_embed";
  static constexpr std::pair<PosEmbed, const char*> entries[] = {
      {PosEmbed::Learn, "learn"}, {PosEmbed::Sincos, "sincos"}, {PosEmbed::None, "none"}};
};
template <>
struct EnumTable<DistToken> {
  static constexpr const char* what = "dist_token";
  static constexpr std::pair<DistToken, const char*> entries[] = {
      {DistToken::None, "none"}, {DistToken::Heads, "heads"}, {DistToken::Unused, "unused"}};
};
template <>
struct EnumTable<Interpolation> {
  static constexpr const char* what = "interpolation";
  static constexpr std::pair<Interpolation, const char*> entries[] = {{Interpolation::Bilinear, "bilinear"},
                                                                      {Interpolation::Bicubic, "bicubic"}};
};

template <typename Enum>
std::string name_of(Enum value) {
  for (const auto& [v, name] : EnumTable<Enum>::entries) {
    if (v == value) return name;
  }
  return "unknown";
}

}  // namespace

template <typename Enum>
Enum parse_enum(const std::string& text) {
  std::vector<std::string> names;
  for (const auto& [value, name] : EnumTable<Enum>::entries) {
    if (text == name) return value;
    names.push_back("'" + std::string(name) + "'");
  }
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  fail(std::string(EnumTable<Enum>::what) + " must be " + list + ", got '" + text + "'");
}

template <typename Enum>
std::vector<std::string> enum_names() {
  std::vector<std::string> names;
  for (const auto& entry : EnumTable<Enum>::entries) names.emplace_back(entry.second);
  return names;
}

// One definition per enum of the header's to_string / parse_enum / JSON forms.
#define VIT_ENUM_NAMES(Enum)                                                 \
  std::string to_string(Enum value) { return name_of(value); }               \
  template Enum parse_enum<Enum>(const std::string& text);                   \
  template std::vector<std::string> enum_names<Enum>();                      \
  void to_json(nlohmann::json& j, const Enum& value) { j = name_of(value); } \
  void from_json(const nlohmann::json& j, Enum& value) { value = parse_enum<Enum>(j.get<std::string>()); }
VIT_ENUM_NAMES(GlobalPool)
VIT_ENUM_NAMES(Activation)
VIT_ENUM_NAMES(NormLayer)
VIT_ENUM_NAMES(MlpLayer)
VIT_ENUM_NAMES(BlockFn)
VIT_ENUM_NAMES(PosEmbed)
VIT_ENUM_NAMES(DistToken)
#undef VIT_ENUM_NAMES

std::string to_string(Interpolation value) { return name_of(value); }
Interpolation parse_interpolation(const std::string& text) { return parse_enum<Interpolation>(text); }

void ViTConfig::validate() const {
  if (patch_size <= 0) fail("patch_size must be positive, got " + str(patch_size));
  // Like timm's strided convolution, the grid is image_size / patch_size rounded down (SigLIP's 384 / 14 = 27).
  if (image_size < patch_size)
    fail("image_size must be at least patch_size " + str(patch_size) + ", got " + str(image_size));
  if (in_chans != 1 && in_chans != 3) fail("in_chans must be 1 or 3, got " + str(in_chans));
  if (num_classes < 0) fail("num_classes must be >= 0, got " + str(num_classes));
  if (embed_dim <= 0) fail("embed_dim must be positive, got " + str(embed_dim));
  if (depth <= 0) fail("depth must be positive, got " + str(depth));
  if (num_heads <= 0 || embed_dim % num_heads != 0)
    fail("embed_dim " + str(embed_dim) + " must be divisible by num_heads " + str(num_heads));
  if (mlp_hidden_dim() == 0) fail("mlp_ratio must be positive and give an MLP width under 2^31, got " + str(mlp_ratio));
  if ((global_pool == GlobalPool::Token || global_pool == GlobalPool::TokenAvg) && !class_token)
    fail("global_pool '" + to_string(global_pool) + "' needs class_token = true");
  if (!(norm_eps > 0.0)) fail("norm_eps must be positive, got " + str(norm_eps));
  check_rate("drop_rate", drop_rate);
  check_rate("pos_drop_rate", pos_drop_rate);
  check_rate("proj_drop_rate", proj_drop_rate);
  check_rate("attn_drop_rate", attn_drop_rate);
  check_rate("drop_path_rate", drop_path_rate);
  check_rate("patch_drop_rate", patch_drop_rate);
  if (reg_tokens < 0) fail("reg_tokens must be >= 0, got " + str(reg_tokens));
  if (!(std::isfinite(init_values) && init_values >= 0.0))
    fail("init_values must be >= 0 (0: no layer scale), got " + str(init_values));
  if (mlp_layer == MlpLayer::SwiGluPacked && mlp_hidden_dim() % 2 != 0)
    fail("mlp_layer 'swiglu_packed' needs an even MLP width, got " + str(mlp_hidden_dim()));
  if (dist_token != DistToken::None && (!class_token || reg_tokens > 0 || global_pool != GlobalPool::Token))
    fail("dist_token (DeiT's distillation token) needs class_token, global_pool 'token' and no register tokens");
  if (block_fn == BlockFn::ParallelScaling && (scale_attn_norm || scale_mlp_norm || mlp_layer != MlpLayer::Mlp))
    fail("block_fn 'parallel_scaling' has neither scale norms nor a gated MLP");
  if (pos_embed == PosEmbed::Sincos && embed_dim % 4 != 0)
    fail("pos_embed 'sincos' needs embed_dim divisible by 4, got " + str(embed_dim));
}

void PreprocessConfig::validate(int64_t in_chans) const {
  if (!(crop_pct > 0.0 && crop_pct <= 1.0)) fail("crop_pct must be in (0, 1], got " + str(crop_pct));
  const auto channels = static_cast<size_t>(in_chans);
  if (mean.size() != channels)
    fail("mean needs " + str(channels) + " values (one per channel), got " + str(mean.size()));
  if (std.size() != channels) fail("std needs " + str(channels) + " values (one per channel), got " + str(std.size()));
  // Bounds that keep (pixel - mean) / std finite in float32 with room to spare; real values lie in [0, 1] (timm)
  // or [0, 255] (pixel scale).
  constexpr double kLargest = 1000.0;
  constexpr double kSmallestStd = 1e-6;
  for (double m : mean) {
    if (!(std::abs(m) <= kLargest)) fail("mean values must be finite numbers within +-1000, got " + str(m));
  }
  for (double s : std) {
    if (!(s >= kSmallestStd && s <= kLargest)) fail("std values must be between 1e-6 and 1000, got " + str(s));
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
