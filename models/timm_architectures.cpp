#include "models/timm_architectures.h"

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "models/json_numbers.h"

namespace vit {

extern const char kTimmArchitecturesJson[];  // models/timm_architectures.json, compiled in by CMake

namespace {

using nlohmann::json;

[[noreturn]] void unsupported(const std::string& key, const json& value, const std::string& architecture) {
  throw std::invalid_argument("architecture '" + architecture + "': timm option " + key + " = " + value.dump() +
                              " is not supported by vit");
}

// timm's VisionTransformer arguments that vit does not build, with the value that leaves them off.
const std::map<std::string, json>& unsupported_args() {
  static const std::map<std::string, json> args{{"dynamic_img_pad", false},       {"embed_layer", nullptr},
                                                {"attn_layer", nullptr},          {"attn_pool_num_heads", nullptr},
                                                {"attn_pool_mlp_ratio", nullptr}, {"ignore_head", false},
                                                {"embed_proj_bias", true},        {"dist_token", false}};
  return args;
}

// Arguments without effect on the function a checkpoint computes: training-time rates and initialisation.
bool is_training_only(const std::string& key) {
  static const std::set<std::string> keys{"drop_rate",      "pos_drop_rate",  "patch_drop_rate", "proj_drop_rate",
                                          "attn_drop_rate", "drop_path_rate", "weight_init",     "fix_init"};
  return keys.count(key) > 0;
}

// timm's img_size: one side, or (height, width).
int64_t square_side(const json& value, const std::string& architecture) {
  if (value.is_array()) {
    if (value.size() != 2 || value[0] != value[1]) unsupported("img_size", value, architecture);  // not square
    return whole_number(value[0], "architecture '" + architecture + "': model_args img_size");
  }
  return whole_number(value, "architecture '" + architecture + "': model_args img_size");
}

// Sets a field-table member from timm's value; null (timm's None) is the field's default. `what` names the value
// in errors.
template <typename T>
void set_field(const json& value, T& member, const T& default_value, const std::string& what) {
  if (value.is_null()) {
    member = default_value;
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    member = whole_number_as<T>(value, what);  // never a cast from a float
  } else {
    value.get_to(member);
  }
}

}  // namespace

void apply_timm_args(const json& args, ViTConfig& c, const std::string& architecture, TimmArgs which) {
  if (!args.is_object())
    throw std::invalid_argument("architecture '" + architecture + "': model_args must be a JSON object");
  const bool all = which == TimmArgs::All;
  const ViTConfig defaults;
  bool fc_norm_given = false;
  bool norm_layer_given = false;
  std::optional<NormLayer> embed_norm_kind;
  std::optional<double> embed_norm_eps;
  for (const auto& [key, value] : args.items()) {
    try {
      if (key == "img_size") {
        if (all) c.image_size = square_side(value, architecture);
      } else if (key == "norm_layer") {  // the tensor shapes tell it too: RMSNorm has no bias
        norm_layer_given = !value.is_null();
        if (all) set_field(value, c.norm_layer, defaults.norm_layer, "model_args norm_layer");
      } else if (key == "norm_eps") {  // the registry's: timm spells it as a partial(norm_layer, eps=...)
        c.norm_eps = value.get<double>();
      } else if (key == "embed_norm_layer") {
        if (!value.is_null()) embed_norm_kind = value.get<NormLayer>();
        if (all) c.embed_norm = !value.is_null();
      } else if (key == "embed_norm_eps") {
        embed_norm_eps = value.get<double>();
      } else if (key == "distilled") {
        if (all) c.dist_token = value.get<bool>() ? DistToken::Heads : DistToken::None;
      } else if (key == "fc_norm") {  // None: timm's default, below
        fc_norm_given = !value.is_null();
        if (all && fc_norm_given) c.fc_norm = value.get<bool>();
      } else if (key == "global_pool") {
        c.global_pool = value.get<GlobalPool>();
      } else if (key == "pos_embed") {
        c.pos_embed = value == "" ? PosEmbed::None : value.get<PosEmbed>();
        if (c.pos_embed == PosEmbed::Sincos) unsupported(key, value, architecture);  // not a timm value
      } else if (const auto off = unsupported_args().find(key); off != unsupported_args().end()) {
        if (value != off->second) unsupported(key, value, architecture);
      } else if (!is_training_only(key)) {
        bool known = false;
        // key and value by name: a structured binding cannot be captured in C++17 (clang refuses it)
        for_each_field([&, &key = key, &value = value](const FieldInfo& field, auto member) {
          if (!field.timm_arg || key != field.timm_arg) return;
          known = true;
          const std::string what = "architecture '" + architecture + "': model_args " + key;
          if (all || field.read_from_timm) {
            set_field(value, c.*member, defaults.*member, what);
          } else if (which == TimmArgs::CheckShapes && !value.is_null()) {
            ViTConfig stated = c;
            set_field(value, stated.*member, defaults.*member, what);
            // mlp_ratio as the width it gives: 5.33334 and 8192 / 1536 are the same model; a ratio giving no width
            // (0: 4.7e17, found by fuzz_timm_config) fits no tensor
            const bool agrees =
                key == "mlp_ratio" ? stated.mlp_hidden_dim() == c.mlp_hidden_dim() : stated.*member == c.*member;
            if (!agrees)
              throw std::invalid_argument("architecture '" + architecture + "': model_args " + key + " = " +
                                          value.dump() + " does not fit the checkpoint's tensors");
          }
        });
        if (!known)
          throw std::invalid_argument("model_args has an unknown key '" + key + "' (architecture '" + architecture +
                                      "'): not an argument of timm's VisionTransformer");
      }
    } catch (const json::exception& e) {
      throw std::invalid_argument("architecture '" + architecture + "': timm option " + key + " = " + value.dump() +
                                  " has the wrong type (" + e.what() + ")");
    } catch (const std::invalid_argument& e) {
      // A value outside vit's names for an option (a pool, block or layer it does not build) is unsupported.
      if (std::string(e.what()).rfind(key + " must be", 0) == 0) unsupported(key, value, architecture);
      throw;
    }
  }
  // A norm named by string replaces the architecture's partial(norm, eps=...): timm's default eps again.
  if (norm_layer_given && !args.contains("norm_eps")) c.norm_eps = defaults.norm_eps;
  // timm's fc_norm None: the norm follows the pooling exactly for the reducing pools.
  if (all && !fc_norm_given)
    c.fc_norm =
        c.global_pool == GlobalPool::Avg || c.global_pool == GlobalPool::Max || c.global_pool == GlobalPool::AvgMax;
  // vit's patch-embedding norm is of the model's kind and eps.
  if (embed_norm_kind && *embed_norm_kind != c.norm_layer)
    unsupported("embed_norm_layer", to_string(*embed_norm_kind), architecture);
  if (embed_norm_eps && *embed_norm_eps != c.norm_eps) unsupported("embed_norm_eps", *embed_norm_eps, architecture);
}

const std::vector<TimmArchitecture>& timm_architectures() {
  static const json document = json::parse(kTimmArchitecturesJson);
  static const std::vector<TimmArchitecture> architectures = [] {
    std::vector<TimmArchitecture> out;
    for (const auto& record : document.at("architectures")) {
      TimmArchitecture a;
      a.name = record.at("name").get<std::string>();
      a.pretrained_tag = record.at("pretrained_tag").get<std::string>();
      a.args = &record.at("args");
      const json& p = record.at("preprocess");
      a.preprocess.interpolation = parse_interpolation(p.at("interpolation").get<std::string>());
      a.preprocess.crop_pct = p.at("crop_pct").get<double>();
      a.preprocess.mean = p.at("mean").get<std::vector<double>>();
      a.preprocess.std = p.at("std").get<std::vector<double>>();
      try {
        apply_timm_args(*a.args, a.config, a.name, TimmArgs::All);
        a.config.validate();
      } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        const auto option = message.find("timm option ");
        a.unsupported = option == std::string::npos ? message : message.substr(option + 12);
        const auto tail = a.unsupported.find(" is not supported");
        if (tail != std::string::npos) a.unsupported.resize(tail);
      }
      out.push_back(std::move(a));
    }
    return out;
  }();
  return architectures;
}

const TimmArchitecture* find_timm_architecture(std::string_view name) {
  const std::string_view base = name.substr(0, name.find('.'));  // without the pretrained tag
  for (const auto& a : timm_architectures()) {
    if (a.name == base) return &a;
  }
  return nullptr;
}

}  // namespace vit
