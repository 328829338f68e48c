#include "models/timm_checkpoint.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/presets.h"

namespace vit {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw std::invalid_argument("'" + source + "': " + problem);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream text;
  text << c10::IntArrayRef(shape);
  return text.str();
}

const std::vector<int64_t>& shape_of(const TensorShapes& shapes, const std::string& name, const std::string& source) {
  auto it = shapes.find(name);
  if (it == shapes.end()) fail(source, "no tensor '" + name + "': not a timm Vision Transformer checkpoint");
  return it->second;
}

// The side of a square of n cells; 0 when n is not a square.
int64_t square_side(int64_t n) {
  const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(0, n)))));
  return side * side == n ? side : 0;
}

// The architecture as far as tensor shapes tell it.
ViTConfig config_from_shapes(const TensorShapes& shapes, const std::string& source) {
  ViTConfig c;
  const auto& proj = shape_of(shapes, "patch_embed.proj.weight", source);  // (D, C, P, P)
  if (proj.size() != 4 || proj[2] != proj[3])
    fail(source, "tensor 'patch_embed.proj.weight' has shape " + shape_text(proj) +
                     ", expected (embed_dim, in_chans, patch, patch)");
  c.embed_dim = proj[0];
  c.in_chans = proj[1];
  c.patch_size = proj[2];
  c.class_token = shapes.count("cls_token") > 0;
  if (const auto reg = shapes.find("reg_token"); reg != shapes.end()) {
    if (reg->second.size() != 3)
      fail(source, "tensor 'reg_token' has shape " + shape_text(reg->second) + ", expected (1, registers, embed_dim)");
    c.reg_tokens = reg->second[1];
  }
  // (1, prefix + grid * grid, D), or (1, grid * grid, D) when the prefix tokens have no position embedding
  // (timm's no_embed_class); model_args can settle the rare length that reads both ways.
  const auto& pos = shape_of(shapes, "pos_embed", source);
  const int64_t length = pos.size() == 3 ? pos[1] : 0;
  int64_t grid = square_side(length - c.num_prefix_tokens());
  if (grid == 0 && c.num_prefix_tokens() > 0) {
    grid = square_side(length);
    c.no_embed_class = grid > 0;
  }
  if (pos.size() != 3 || grid == 0)
    fail(source, "tensor 'pos_embed' has shape " + shape_text(pos) + ", expected (1, " +
                     std::to_string(c.num_prefix_tokens()) +
                     " + grid * grid, embed_dim) or (1, grid * grid, embed_dim)");
  c.image_size = grid * c.patch_size;
  c.depth = 0;
  while (shapes.count("blocks." + std::to_string(c.depth) + ".norm1.weight")) ++c.depth;
  if (c.depth == 0) fail(source, "no tensor 'blocks.0.norm1.weight': not a timm Vision Transformer checkpoint");
  c.mlp_ratio =
      static_cast<double>(shape_of(shapes, "blocks.0.mlp.fc1.weight", source).at(0)) / static_cast<double>(c.embed_dim);
  const auto head = shapes.find("head.weight");
  c.num_classes = head == shapes.end() ? 0 : head->second.at(0);
  // timm moves the final norm after the pooling (fc_norm) exactly when it pools by averaging.
  c.fc_norm = shapes.count("fc_norm.weight") > 0;
  c.global_pool = c.fc_norm || !c.class_token ? GlobalPool::Avg : GlobalPool::Token;
  c.norm_eps = 1e-6;
  c.pre_norm = shapes.count("norm_pre.weight") > 0;
  c.qkv_bias = shapes.count("blocks.0.attn.qkv.bias") > 0;
  // Layer scale: its starting value only matters for training from scratch; model_args may give timm's.
  if (shapes.count("blocks.0.ls1.gamma")) c.init_values = 1e-5;
  c.num_heads = 0;  // unknown so far
  return c;
}

// timm's ViT families: (name part, width, heads). Heads are 64 wide up to large, wider beyond, so the width alone
// does not tell them; the family must match the width, or the checkpoint is not what its name says.
struct Family {
  const char* name;
  int64_t width;
  int64_t heads;
};
constexpr Family kFamilies[] = {{"_tiny_", 192, 3},   {"_small_", 384, 6},   {"_medium_", 512, 8},
                                {"_base_", 768, 12},  {"_large_", 1024, 16}, {"_so400m_", 1152, 16},
                                {"_huge_", 1280, 16}, {"_giant_", 1408, 16}, {"_gigantic_", 1664, 16}};

// Registered names whose heads differ from their family's (the name says base, the heads are not 12).
constexpr std::pair<const char*, int64_t> kOddHeads[] = {{"vit_base_patch16_gap_224", 16}};

// Heads by timm's architecture name, else by width alone (each width above is one family's); 0 if unknown.
int64_t timm_heads(const std::string& architecture, int64_t width) {
  const std::string name = architecture.substr(0, architecture.find('.'));  // without the pretrained tag
  for (const auto& [odd, heads] : kOddHeads) {
    if (name == odd) return heads;
  }
  for (const auto& f : kFamilies) {
    if (architecture.find(f.name) != std::string::npos && f.width == width) return f.heads;
  }
  for (const auto& f : kFamilies) {
    if (f.width == width) return f.heads;
  }
  return 0;
}

// timm's VisionTransformer arguments that vit does not implement yet, with the value that leaves them off: a
// model_args entry at that value is fine, any other names the option as unsupported.
const std::map<std::string, json>& unsupported_timm_args() {
  static const std::map<std::string, json> args{
      {"qk_norm", false},
      {"proj_bias", true},
      {"final_norm", true},
      {"dynamic_img_size", false},
      {"dynamic_img_pad", false},
      {"pool_include_prefix", false},
      {"scale_attn_norm", false},
      {"scale_mlp_norm", false},
      {"norm_layer", nullptr},
      {"embed_norm_layer", nullptr},
      {"mlp_layer", nullptr},
      {"block_fn", nullptr},
      {"embed_layer", nullptr},
      {"attn_layer", nullptr},
      {"dist_token", false},
      {"distilled", false},
      {"attn_pool_num_heads", nullptr},
      {"attn_pool_mlp_ratio", nullptr},
      {"ignore_head", false},
      {"embed_proj_bias", true},
      {"pos_embed", "learn"},
  };
  return args;
}

// The rest of timm's arguments: told by the tensor shapes or by the field table, or without effect on the
// function a checkpoint computes (training-time rates and initialisation).
bool is_known_timm_arg(const std::string& key) {
  static const std::set<std::string> others{
      "img_size",       "patch_size",  "in_chans",      "num_classes",     "embed_dim",      "depth",
      "mlp_ratio",      "class_token", "global_pool",   "fc_norm",         "reg_tokens",     "pre_norm",
      "qkv_bias",       "drop_rate",   "pos_drop_rate", "patch_drop_rate", "proj_drop_rate", "attn_drop_rate",
      "drop_path_rate", "weight_init", "fix_init"};
  bool in_table = false;
  for_each_field(
      [&](const FieldInfo& field, auto) { in_table = in_table || (field.timm_arg && key == field.timm_arg); });
  return in_table || others.count(key) > 0;
}

void check_model_args(const json& args, const std::string& architecture) {
  for (const auto& [key, value] : args.items()) {
    if (key == "global_pool" && value.is_string()) {  // pools vit builds; timm's '' and 'map' are not
      try {
        parse_global_pool(value.get<std::string>());
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("model_args " + std::string(e.what()) + " (architecture '" + architecture +
                                    "'): not supported by vit yet");
      }
    }
    const auto unsupported = unsupported_timm_args().find(key);
    if (unsupported != unsupported_timm_args().end()) {
      if (value != unsupported->second)
        throw std::invalid_argument("model_args " + key + " = " + value.dump() + " (architecture '" + architecture +
                                    "') is not supported by vit yet");
    } else if (!is_known_timm_arg(key)) {
      throw std::invalid_argument("model_args has an unknown key '" + key + "' (architecture '" + architecture +
                                  "'): not an argument of timm's VisionTransformer");
    }
  }
}

void read_config_json(const json& j, ModelMetadata& m) {
  ViTConfig& c = m.config;
  const std::string architecture = j.contains("architecture") ? j.at("architecture").get<std::string>() : "unnamed";
  if (j.contains("model_args")) check_model_args(j.at("model_args"), architecture);
  // Without config.json, timm's default pairing: average pooling exactly when the norm follows the pooling.
  if (j.contains("global_pool")) {
    try {
      c.global_pool = parse_global_pool(j.at("global_pool").get<std::string>());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(e.what()) + " (architecture '" + architecture +
                                  "'): not supported by vit yet");
    }
  }
  // What the shapes cannot tell comes from model_args, else (the heads) from the architecture's name.
  const json* args = j.contains("model_args") ? &j.at("model_args") : nullptr;
  for_each_field([&](const FieldInfo& field, auto member) {
    if (!field.read_from_timm || !args || !args->contains(field.timm_arg)) return;
    const json& value = args->at(field.timm_arg);
    if (!value.is_null()) value.get_to(c.*member);  // timm writes None (null) for an option left off
  });
  if (!(args && args->contains("num_heads")) && j.contains("architecture"))
    c.num_heads = timm_heads(j.at("architecture").get<std::string>(), c.embed_dim);
  const json* pretrained = j.contains("pretrained_cfg") ? &j.at("pretrained_cfg") : nullptr;
  if (pretrained) {
    const json& p = *pretrained;
    if (p.contains("interpolation"))
      m.preprocess.interpolation = parse_interpolation(p.at("interpolation").get<std::string>());
    if (p.contains("crop_pct")) m.preprocess.crop_pct = p.at("crop_pct").get<double>();
    if (p.contains("mean")) m.preprocess.mean = p.at("mean").get<std::vector<double>>();
    if (p.contains("std")) m.preprocess.std = p.at("std").get<std::vector<double>>();
    if (p.contains("label_names")) m.class_names = p.at("label_names").get<std::vector<std::string>>();
  }
  // timm reads label names from the top level too, and prefers them.
  if (j.contains("label_names")) m.class_names = j.at("label_names").get<std::vector<std::string>>();
}

}  // namespace

ModelMetadata timm_metadata(const TensorShapes& shapes, const json* config, const std::string& source) {
  ModelMetadata m;
  m.config = config_from_shapes(shapes, source);
  ViTConfig& c = m.config;
  m.preprocess.interpolation = Interpolation::Bicubic;
  m.preprocess.crop_pct = 0.9;
  m.preprocess.mean.assign(static_cast<size_t>(c.in_chans), 0.5);
  m.preprocess.std.assign(static_cast<size_t>(c.in_chans), 0.5);
  if (config) {
    try {
      read_config_json(*config, m);
    } catch (const json::exception& e) {
      fail(source, std::string("config.json does not fit timm's format: ") + e.what());
    } catch (const std::invalid_argument& e) {
      fail(source, std::string("config.json: ") + e.what());
    }
  }
  // model_args may have settled no_embed_class: the grid follows from the position embedding's length.
  const int64_t grid = square_side(shapes.at("pos_embed").at(1) - c.pos_embed_prefix_tokens());
  if (grid == 0)
    fail(source, "tensor 'pos_embed' of length " + std::to_string(shapes.at("pos_embed").at(1)) +
                     " does not fit model_args no_embed_class " + (c.no_embed_class ? "true" : "false"));
  c.image_size = grid * c.patch_size;
  if (c.num_heads == 0) c.num_heads = timm_heads("", c.embed_dim);
  if (c.num_heads == 0)
    fail(source, "cannot tell the number of attention heads of a " + std::to_string(c.embed_dim) +
                     "-wide model: add \"model_args\": {\"num_heads\": N} to its config.json");
  if (m.class_names.empty()) m.class_names = default_class_names(c.num_classes);
  try {
    m.validate();
  } catch (const std::invalid_argument& e) {
    fail(source, std::string("the checkpoint does not describe a usable model: ") + e.what());
  }
  return m;
}

json timm_config(const ModelMetadata& m) {
  const ViTConfig& c = m.config;
  // A preset's name when the architecture is one; otherwise any ViT name, since model_args set every field.
  std::string architecture = "vit_base_patch16_224";
  for (const auto& name : preset_names()) {
    if (name.rfind("vit_mini", 0) == 0) continue;  // vit's own small presets are not timm names
    const ViTConfig p = find_preset(name)->config;
    bool same = true;  // in every argument timm builds the architecture from; the class count is free
    for_each_field([&](const FieldInfo& field, auto member) {
      if (field.timm_arg && std::string(field.key) != "num_classes") same = same && p.*member == c.*member;
    });
    if (same) architecture = name;
  }
  const std::string pool = to_string(c.global_pool);
  const std::vector<int64_t> input_size{c.in_chans, c.image_size, c.image_size};
  json model_args = json::object();  // every argument timm.create_model needs to build this architecture
  const ViTConfig defaults;
  for_each_field([&](const FieldInfo& field, auto member) {
    // Newer options only when used, as in vit's own files (timm's defaults are the same).
    if (field.timm_arg && (!field.optional || c.*member != defaults.*member)) model_args[field.timm_arg] = c.*member;
  });
  return {{"architecture", architecture},
          {"num_classes", c.num_classes},
          {"num_features", c.embed_dim},
          {"global_pool", pool},
          {"model_args", model_args},
          {"pretrained_cfg",
           {{"input_size", input_size},
            {"interpolation", to_string(m.preprocess.interpolation)},
            {"crop_pct", m.preprocess.crop_pct},
            {"crop_mode", "center"},
            {"mean", m.preprocess.mean},
            {"std", m.preprocess.std},
            {"num_classes", c.num_classes},
            {"label_names", m.class_names},
            {"first_conv", "patch_embed.proj"},
            {"classifier", "head"}}}};
}

}  // namespace vit
