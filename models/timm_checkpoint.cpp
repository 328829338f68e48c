#include "models/timm_checkpoint.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/imagenet_classes.h"
#include "models/timm_architectures.h"

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

bool has(const TensorShapes& shapes, const std::string& name) { return shapes.count(name) > 0; }

// The architecture as far as tensor shapes tell it (the grid and image size come after, in timm_metadata).
ViTConfig config_from_shapes(const TensorShapes& shapes, const std::string& source) {
  ViTConfig c;
  const auto& proj = shape_of(shapes, "patch_embed.proj.weight", source);  // (D, C, P, P)
  if (proj.size() != 4 || proj[2] != proj[3])
    fail(source, "tensor 'patch_embed.proj.weight' has shape " + shape_text(proj) +
                     ", expected (embed_dim, in_chans, patch, patch)");
  c.embed_dim = proj[0];
  c.in_chans = proj[1];
  c.patch_size = proj[2];
  c.class_token = has(shapes, "cls_token");
  if (has(shapes, "dist_token")) c.dist_token = DistToken::Heads;
  if (const auto reg = shapes.find("reg_token"); reg != shapes.end()) {
    if (reg->second.size() != 3)
      fail(source, "tensor 'reg_token' has shape " + shape_text(reg->second) + ", expected (1, registers, embed_dim)");
    c.reg_tokens = reg->second[1];
  }
  c.pos_embed = has(shapes, "pos_embed") ? PosEmbed::Learn : PosEmbed::None;
  c.embed_norm = has(shapes, "patch_embed.norm.weight");
  c.pre_norm = has(shapes, "norm_pre.weight");

  // Each block kind keeps its first norm, attention and MLP under its own names.
  std::string norm1 = "norm1";
  std::string attn = "attn.";
  std::string mlp = "mlp.";
  if (has(shapes, "blocks.0.attns.0.norm.weight")) {
    c.block_fn = BlockFn::ParallelThings;
    norm1 = "attns.0.norm";
    attn = "attns.0.attn.";
    mlp = "ffns.0.mlp.";
  } else if (has(shapes, "blocks.0.in_norm.weight")) {
    c.block_fn = BlockFn::ParallelScaling;
    norm1 = "in_norm";
  }
  c.depth = 0;
  while (has(shapes, "blocks." + std::to_string(c.depth) + "." + norm1 + ".weight")) ++c.depth;
  if (c.depth == 0) fail(source, "no tensor 'blocks.0.norm1.weight': not a timm Vision Transformer checkpoint");
  c.norm_layer = has(shapes, "blocks.0." + norm1 + ".bias") ? NormLayer::LayerNorm : NormLayer::RmsNorm;
  const std::string b = "blocks.0.";
  if (c.block_fn == BlockFn::ParallelScaling) {
    const auto& in_proj = shape_of(shapes, b + "in_proj.weight", source);  // (hidden + 3 D, D)
    c.mlp_ratio = static_cast<double>(in_proj.at(0) - 3 * c.embed_dim) / static_cast<double>(c.embed_dim);
    c.qkv_bias = has(shapes, b + "in_proj.bias");
    c.proj_bias = has(shapes, b + "attn_out_proj.bias");
    c.qk_norm = has(shapes, b + "q_norm.weight");
    if (has(shapes, b + "ls.gamma")) c.init_values = 1e-5;
  } else {
    c.qkv_bias = has(shapes, b + attn + "qkv.bias");
    c.proj_bias = has(shapes, b + attn + "proj.bias");
    c.qk_norm = has(shapes, b + attn + "q_norm.weight");
    c.scale_attn_norm = has(shapes, b + attn + "norm.weight");
    c.scale_mlp_norm = has(shapes, b + mlp + "norm.weight");
    std::string fc1 = b + mlp + "fc1.weight";
    if (has(shapes, b + mlp + "fc1_g.weight")) {
      c.mlp_layer = MlpLayer::SwiGlu;
      fc1 = b + mlp + "fc1_x.weight";
    }
    const int64_t hidden = shape_of(shapes, fc1, source).at(0);
    // The packed SwiGLU's fc2 reads half of fc1's width.
    if (c.mlp_layer == MlpLayer::Mlp && shape_of(shapes, b + mlp + "fc2.weight", source).at(1) * 2 == hidden)
      c.mlp_layer = MlpLayer::SwiGluPacked;
    c.mlp_ratio = static_cast<double>(hidden) / static_cast<double>(c.embed_dim);
    // Layer scale: its starting value only matters for training from scratch; the architecture's args may give it.
    if (has(shapes, b + "ls1.gamma") || has(shapes, b + "attns.0.ls.gamma")) c.init_values = 1e-5;
  }
  const auto head = shapes.find("head.weight");
  c.num_classes = head == shapes.end() ? 0 : head->second.at(0);
  if (has(shapes, "attn_pool.latent")) c.global_pool = GlobalPool::Map;
  // timm moves the final norm after the pooling (fc_norm) exactly when it pools by reducing the tokens.
  c.fc_norm = has(shapes, "fc_norm.weight");
  c.final_norm = c.fc_norm || has(shapes, "norm.weight");
  if (c.global_pool != GlobalPool::Map)
    c.global_pool = c.fc_norm || !c.class_token ? GlobalPool::Avg : GlobalPool::Token;
  c.norm_eps = 1e-6;
  c.num_heads = 0;  // unknown so far
  return c;
}

// timm's ViT families: (name part, width, heads), for architectures outside timm's registry. Heads are 64 wide up
// to large, wider beyond, so the width alone does not tell them; the family must match the width, or the checkpoint
// is not what its name says.
struct Family {
  const char* name;
  int64_t width;
  int64_t heads;
};
constexpr Family kFamilies[] = {{"_tiny_", 192, 3},   {"_small_", 384, 6},   {"_medium_", 512, 8},
                                {"_base_", 768, 12},  {"_large_", 1024, 16}, {"_so400m_", 1152, 16},
                                {"_huge_", 1280, 16}, {"_giant_", 1408, 16}, {"_gigantic_", 1664, 16}};

// Heads by the family a name says, else by width alone (each width above is one family's); 0 if unknown.
int64_t family_heads(const std::string& architecture, int64_t width) {
  for (const auto& f : kFamilies) {
    if (architecture.find(f.name) != std::string::npos && f.width == width) return f.heads;
  }
  for (const auto& f : kFamilies) {
    if (f.width == width) return f.heads;
  }
  return 0;
}

// The pretrained config: under "pretrained_cfg", or in timm's older flat configs the top level itself.
const json& pretrained_of(const json& config) {
  return config.contains("pretrained_cfg") ? config.at("pretrained_cfg") : config;
}

// pretrained_cfg's input_size: [channels, height, width], positive integers; throws naming the value otherwise.
const json* stated_input_size(const json& pretrained) {
  if (!pretrained.contains("input_size")) return nullptr;
  const json& size = pretrained.at("input_size");
  bool valid = size.is_array() && size.size() == 3;
  for (size_t i = 0; valid && i < 3; ++i) valid = size.at(i).is_number_integer() && size.at(i).get<int64_t>() > 0;
  if (!valid)
    throw std::invalid_argument("pretrained_cfg input_size must be [channels, height, width] in positive whole "
                                "numbers, got " + size.dump());
  return &size;
}

// timm's label_names: a list in class order, or an object from class index ("0", "1", ...) to name.
std::vector<std::string> label_names(const json& labels) {
  if (!labels.is_object()) return labels.get<std::vector<std::string>>();
  std::vector<std::string> names(labels.size());
  for (const auto& [key, value] : labels.items()) {
    size_t index = names.size();
    try {
      index = std::stoul(key);
    } catch (const std::exception&) {
    }
    if (index >= names.size())
      throw std::invalid_argument("label_names: key '" + key + "' is not a class index below " +
                                  std::to_string(names.size()));
    names[index] = value.get<std::string>();
  }
  return names;
}

void read_config_json(const json& j, ModelMetadata& m) {
  ViTConfig& c = m.config;
  const std::string architecture = j.contains("architecture") ? j.at("architecture").get<std::string>() : "unnamed";
  stated_input_size(pretrained_of(j));  // malformed is an error, whether or not the size is needed
  // What the shapes cannot tell comes from the architecture timm registers under that name, then model_args.
  if (const TimmArchitecture* registered = find_timm_architecture(architecture)) {
    if (!registered->unsupported.empty())
      throw std::invalid_argument("architecture '" + architecture + "': timm option " + registered->unsupported +
                                  " is not supported by vit");
    json args = *registered->args;
    if (args.value("embed_dim", int64_t{0}) != c.embed_dim) args.erase("num_heads");  // model_args resized it
    apply_timm_args(args, c, architecture, TimmArgs::NotInShapes);
    if (registered->config.in_chans == c.in_chans) m.preprocess = registered->preprocess;
  }
  if (j.contains("model_args")) apply_timm_args(j.at("model_args"), c, architecture, TimmArgs::CheckShapes);
  if (j.contains("global_pool")) {
    try {
      c.global_pool = j.at("global_pool").get<GlobalPool>();
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("architecture '" + architecture + "': timm option global_pool = " +
                                  j.at("global_pool").dump() + " is not supported by vit");
    }
  }
  if (c.num_heads == 0) c.num_heads = family_heads(architecture, c.embed_dim);
  if (c.pos_embed == PosEmbed::None) {  // no position embedding to tell the image size: the config's
    if (j.contains("model_args") && j.at("model_args").contains("img_size")) {
      apply_timm_args({{"img_size", j.at("model_args").at("img_size")}}, c, architecture, TimmArgs::All);
    } else if (const json* size = stated_input_size(pretrained_of(j))) {
      c.image_size = size->at(2).get<int64_t>();
    }
  }
  // The head's class count is the tensors'; a stated one must be a count, and the same.
  if (j.contains("num_classes")) {
    const json& n = j.at("num_classes");
    if (!n.is_number_integer() || n.get<int64_t>() < 0)
      throw std::invalid_argument("num_classes must be a whole number >= 0, got " + n.dump());
    if (n.get<int64_t>() != c.num_classes)
      throw std::invalid_argument("num_classes " + n.dump() + " does not fit the checkpoint's tensors, whose head has " +
                                  std::to_string(c.num_classes) + " classes");
  }
  const json& p = pretrained_of(j);
  if (p.contains("interpolation"))
    m.preprocess.interpolation = parse_interpolation(p.at("interpolation").get<std::string>());
  if (p.contains("crop_pct")) m.preprocess.crop_pct = p.at("crop_pct").get<double>();
  if (p.contains("mean")) m.preprocess.mean = p.at("mean").get<std::vector<double>>();
  if (p.contains("std")) m.preprocess.std = p.at("std").get<std::vector<double>>();
  // timm reads label names from the top level too, and prefers them; descriptions ("tench, Tinca tinca" for
  // the label "n01440764") read better than the labels they describe.
  const json* labels = j.contains("label_names")   ? &j.at("label_names")
                       : p.contains("label_names") ? &p.at("label_names")
                                                   : nullptr;
  if (labels) m.class_names = label_names(*labels);
  const json* descriptions = j.contains("label_descriptions")   ? &j.at("label_descriptions")
                             : p.contains("label_descriptions") ? &p.at("label_descriptions")
                                                                : nullptr;
  if (descriptions && descriptions->is_object()) {
    for (auto& name : m.class_names) {
      if (descriptions->contains(name)) name = descriptions->at(name).get<std::string>();
    }
  }
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
  // config.json's pool and position embedding must be the ones the tensors hold.
  if ((c.global_pool == GlobalPool::Map) != has(shapes, "attn_pool.latent"))
    fail(source, c.global_pool == GlobalPool::Map
                     ? "config.json asks for global_pool 'map', but there is no attention pool 'attn_pool.latent'"
                     : "the checkpoint has an attention pool 'attn_pool.latent', but config.json's global_pool is '" +
                           to_string(c.global_pool) + "'");
  if ((c.pos_embed == PosEmbed::None) == has(shapes, "pos_embed"))
    fail(source, "config.json's pos_embed '" + to_string(c.pos_embed) + "' does not fit the checkpoint, which " +
                     (has(shapes, "pos_embed") ? "has" : "has no") + " tensor 'pos_embed'");
  // The architecture's args and model_args settled no_embed_class: the grid follows from the position embedding's
  // length (without one, config.json gave the size).
  if (c.pos_embed == PosEmbed::Learn) {
    const auto& pos = shapes.at("pos_embed");
    const int64_t length = pos.size() == 3 ? pos[1] : 0;
    int64_t grid = square_side(length - c.pos_embed_prefix_tokens());
    if (grid == 0 && !c.no_embed_class && c.num_prefix_tokens() > 0 &&
        (!config || !config->contains("model_args") || !config->at("model_args").contains("no_embed_class"))) {
      grid = square_side(length);  // a length that only fits without the prefix tokens: timm's no_embed_class
      c.no_embed_class = grid > 0;
    }
    if (pos.size() != 3 || grid == 0)
      fail(source, "tensor 'pos_embed' has shape " + shape_text(pos) + ", expected (1, " +
                       std::to_string(c.pos_embed_prefix_tokens()) + " + grid * grid, embed_dim)" +
                       (c.no_embed_class ? " (no_embed_class)" : ""));
    c.image_size = grid * c.patch_size;
    // A stated input size with the same grid wins: timm's SigLIP at 384 px uses 27 patches of 14 (378 px).
    const json* stated = config ? stated_input_size(pretrained_of(*config)) : nullptr;  // checked by now
    if (stated) {
      const auto side = stated->at(2).get<int64_t>();
      if (side / c.patch_size == grid) c.image_size = side;
    }
  } else if (!config) {
    fail(source, "no tensor 'pos_embed' and no config.json to tell the image size");
  }
  if (c.num_heads == 0) c.num_heads = family_heads("", c.embed_dim);
  if (c.num_heads == 0)
    fail(source, "cannot tell the number of attention heads of a " + std::to_string(c.embed_dim) +
                     "-wide model: add \"model_args\": {\"num_heads\": N} to its config.json");
  if (m.class_names.empty()) m.class_names = fallback_class_names(c.num_classes);
  try {
    m.validate();
  } catch (const std::invalid_argument& e) {
    fail(source, std::string("the checkpoint does not describe a usable model: ") + e.what());
  }
  return m;
}

namespace {

// Options timm's config.json can only carry through the architecture's name: timm takes them as classes (or
// partials) that JSON cannot hold.
bool same_named_options(const ViTConfig& a, const ViTConfig& b) {
  return a.mlp_layer == b.mlp_layer && a.block_fn == b.block_fn && a.dist_token == b.dist_token &&
         a.embed_norm == b.embed_norm && a.norm_eps == b.norm_eps;
}

// The registered architecture whose name gives `c`'s named options and, among those, the one whose arguments
// differ from `c`'s in the fewest places (none: model_args then change nothing but the class count).
std::string timm_architecture_for(const ViTConfig& c) {
  const TimmArchitecture* best = nullptr;
  int best_differences = 0;
  for (const auto& a : timm_architectures()) {
    if (!a.unsupported.empty() || !same_named_options(a.config, c)) continue;
    int differences = 0;
    for_each_field([&](const FieldInfo& field, auto member) {
      if (field.timm_arg && std::string(field.key) != "num_classes" && !(a.config.*member == c.*member)) ++differences;
    });
    if (!best || differences < best_differences) {
      best = &a;
      best_differences = differences;
    }
  }
  if (!best) {
    std::ostringstream message;
    message << "timm's config.json cannot express this model: no timm architecture has mlp_layer '"
            << to_string(c.mlp_layer) << "', block_fn '" << to_string(c.block_fn) << "', norm eps " << c.norm_eps
            << (c.embed_norm ? ", a patch-embedding norm" : "")
            << (c.dist_token != DistToken::None ? ", a distillation token '" + to_string(c.dist_token) + "'" : "");
    throw std::invalid_argument(message.str());
  }
  return best->name;
}

}  // namespace

json timm_config(const ModelMetadata& m) {
  const ViTConfig& c = m.config;
  if (c.global_pool == GlobalPool::TokenAvg)
    throw std::invalid_argument(
        "timm has no pool like 'token_avg' (Hugging Face's DINOv2 classifier): export this "
        "model as vit weights, in Hugging Face's layout or as TorchScript instead");
  const std::string architecture = timm_architecture_for(c);
  const std::string pool = to_string(c.global_pool);
  const std::vector<int64_t> input_size{c.in_chans, c.image_size, c.image_size};
  json model_args = json::object();  // every argument timm.create_model needs to build this architecture
  const ViTConfig defaults;
  for_each_field([&](const FieldInfo& field, auto member) {
    // Newer options only when used, as in vit's own files (timm's defaults are the same). The named options
    // travel in the architecture's name.
    const std::string key = field.key;
    if (key == "mlp_layer" || key == "block_fn") return;
    if (field.timm_arg && (!field.optional || c.*member != defaults.*member)) model_args[field.timm_arg] = c.*member;
  });
  if (c.pos_embed == PosEmbed::Sincos) model_args["pos_embed"] = "learn";  // its values are in the weights
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
