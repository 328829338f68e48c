#pragma once
// Architecture and preprocessing of a Vision Transformer: plain data, no LibTorch, so that every layer of the
// toolkit (weights files, the command line, the image pipeline) can describe a model without building one.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vit {

// How the token sequence is reduced to one feature vector for the head (timm's `global_pool`).
enum class GlobalPool {
  Token,   // the class token's output ("token")
  Avg,     // mean over the patch tokens, prefix tokens excluded ("avg")
  Max,     // maximum over the patch tokens ("max")
  AvgMax,  // half the sum of the two ("avgmax")
};

std::string to_string(GlobalPool pool);
GlobalPool parse_global_pool(const std::string& text);  // throws std::invalid_argument naming the value
// As JSON: the string form.
void to_json(nlohmann::json& j, const GlobalPool& pool);
void from_json(const nlohmann::json& j, GlobalPool& pool);

// The MLP's activation (timm's `act_layer`).
enum class Activation {
  Gelu,       // exact (erf) GELU, nn.GELU ("gelu")
  GeluTanh,   // tanh approximation ("gelu_tanh")
  QuickGelu,  // x * sigmoid(1.702 x), OpenAI CLIP's ("quick_gelu")
  Silu,       // x * sigmoid(x) ("silu")
};

std::string to_string(Activation activation);
Activation parse_activation(const std::string& text);  // throws std::invalid_argument naming the value
void to_json(nlohmann::json& j, const Activation& activation);
void from_json(const nlohmann::json& j, Activation& activation);

// One struct for the whole architecture; field names follow timm's VisionTransformer arguments.
struct ViTConfig {
  int64_t image_size = 224;    // square input side in pixels; must be a multiple of patch_size
  int64_t patch_size = 16;     // side of the square patches (conv kernel = stride)
  int64_t in_chans = 3;        // 1 (grayscale) or 3 (RGB)
  int64_t num_classes = 1000;  // 0 gives a model without head that returns pooled features
  int64_t embed_dim = 768;     // token width D
  int64_t depth = 12;          // number of encoder blocks
  int64_t num_heads = 12;      // attention heads; embed_dim must divide evenly
  double mlp_ratio = 4.0;      // MLP hidden width = embed_dim * mlp_ratio
  bool class_token = true;     // prepend a learned class token (required by GlobalPool::Token)
  GlobalPool global_pool = GlobalPool::Token;
  // timm's fc_norm: with average pooling the final LayerNorm moves after the pooling (`fc_norm`) instead of
  // before it (`norm`); this is timm's default, and the state-dict keys differ accordingly.
  bool fc_norm = false;
  double norm_eps = 1e-6;        // LayerNorm epsilon (timm/torchvision 1e-6; Hugging Face ViT 1e-12)
  double drop_rate = 0.0;        // dropout before the head
  double pos_drop_rate = 0.0;    // dropout after adding position embeddings
  double proj_drop_rate = 0.0;   // dropout after the attention projection and inside the MLP
  double attn_drop_rate = 0.0;   // dropout on attention probabilities
  double drop_path_rate = 0.0;   // stochastic depth, rising linearly from 0 to this over the blocks
  double patch_drop_rate = 0.0;  // training only: fraction of patch tokens dropped per image (timm's PatchDropout)
  int64_t reg_tokens = 0;        // register tokens after the class token (DINOv2 with registers: `reg_token`)
  bool no_embed_class = false;   // position embeddings over the patches only; prefix tokens added after (DeiT-III)
  double init_values = 0.0;      // layer scale (`ls1.gamma`, `ls2.gamma`) starting at this value; 0 = none
  bool pre_norm = false;         // LayerNorm `norm_pre` before the blocks, patch embedding without bias (CLIP)
  bool qkv_bias = true;          // bias in the attention's qkv projection
  Activation act_layer = Activation::Gelu;

  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t num_prefix_tokens() const { return (class_token ? 1 : 0) + reg_tokens; }
  int64_t sequence_length() const { return num_patches() + num_prefix_tokens(); }
  // Prefix tokens that have a position embedding: none with no_embed_class.
  int64_t pos_embed_prefix_tokens() const { return no_embed_class ? 0 : num_prefix_tokens(); }
  int64_t pos_embed_length() const { return num_patches() + pos_embed_prefix_tokens(); }
  int64_t head_dim() const { return embed_dim / num_heads; }
  // Rounded, not truncated: a ratio read back from a checkpoint (3840 / 704) must give the same width.
  int64_t mlp_hidden_dim() const { return std::llround(static_cast<double>(embed_dim) * mlp_ratio); }

  // Throws std::invalid_argument naming the first field that is out of range, with its value.
  void validate() const;
};

// What the field table (for_each_field) says about one ViTConfig field.
struct FieldInfo {
  const char* key;                 // its name in vit's JSON: weights-file metadata, run folders
  const char* timm_arg = nullptr;  // its name in timm's model_args, for fields timm's config.json carries
  bool read_from_timm = false;     // read from timm's model_args: the tensor shapes cannot tell it
  bool optional = false;           // absent from files that predate it (then its default), and written only when set
};

// Every ViTConfig field once, as visit(FieldInfo, &ViTConfig::member). The JSON reader and writer, the unknown-key
// check and timm's config.json all walk this table, so a new architecture option is one row here (plus its
// meaning in validate() and the model, and a command-line override in engine/train_options.h if it wants one).
template <typename Visit>
void for_each_field(Visit&& visit) {
  visit(FieldInfo{"image_size", "img_size"}, &ViTConfig::image_size);
  visit(FieldInfo{"patch_size", "patch_size"}, &ViTConfig::patch_size);
  visit(FieldInfo{"in_chans", "in_chans"}, &ViTConfig::in_chans);
  visit(FieldInfo{"num_classes", "num_classes"}, &ViTConfig::num_classes);
  visit(FieldInfo{"embed_dim", "embed_dim"}, &ViTConfig::embed_dim);
  visit(FieldInfo{"depth", "depth"}, &ViTConfig::depth);
  visit(FieldInfo{"num_heads", "num_heads", true}, &ViTConfig::num_heads);
  visit(FieldInfo{"mlp_ratio", "mlp_ratio"}, &ViTConfig::mlp_ratio);
  visit(FieldInfo{"class_token", "class_token"}, &ViTConfig::class_token);
  visit(FieldInfo{"global_pool", "global_pool"}, &ViTConfig::global_pool);
  visit(FieldInfo{"fc_norm", "fc_norm"}, &ViTConfig::fc_norm);
  visit(FieldInfo{"norm_eps"}, &ViTConfig::norm_eps);
  visit(FieldInfo{"drop_rate"}, &ViTConfig::drop_rate);
  visit(FieldInfo{"pos_drop_rate"}, &ViTConfig::pos_drop_rate);
  visit(FieldInfo{"proj_drop_rate"}, &ViTConfig::proj_drop_rate);
  visit(FieldInfo{"attn_drop_rate"}, &ViTConfig::attn_drop_rate);
  visit(FieldInfo{"drop_path_rate"}, &ViTConfig::drop_path_rate);
  visit(FieldInfo{"patch_drop_rate", nullptr, false, true}, &ViTConfig::patch_drop_rate);  // added in format 1
  visit(FieldInfo{"reg_tokens", "reg_tokens", false, true}, &ViTConfig::reg_tokens);
  visit(FieldInfo{"no_embed_class", "no_embed_class", true, true}, &ViTConfig::no_embed_class);
  visit(FieldInfo{"init_values", "init_values", true, true}, &ViTConfig::init_values);
  visit(FieldInfo{"pre_norm", "pre_norm", false, true}, &ViTConfig::pre_norm);
  visit(FieldInfo{"qkv_bias", "qkv_bias", false, true}, &ViTConfig::qkv_bias);
  visit(FieldInfo{"act_layer", "act_layer", true, true}, &ViTConfig::act_layer);
}

enum class Interpolation { Bilinear, Bicubic };
std::string to_string(Interpolation interpolation);
Interpolation parse_interpolation(const std::string& text);

// How images are turned into model input at evaluation time (timm's pretrained_cfg): resize the short side to
// image_size / crop_pct, center-crop image_size, scale to [0, 1], normalise. Travels with the weights.
struct PreprocessConfig {
  Interpolation interpolation = Interpolation::Bicubic;
  double crop_pct = 0.9;                    // fraction of the resized short side kept by the center crop
  std::vector<double> mean{0.5, 0.5, 0.5};  // one value per input channel
  std::vector<double> std{0.5, 0.5, 0.5};

  void validate(int64_t in_chans) const;  // throws std::invalid_argument naming the field
};

// JSON forms used in weights-file metadata and run directories. Reading is strict: a missing key, a value of
// the wrong type or an unknown key throws std::invalid_argument naming it.
void to_json(nlohmann::json& j, const ViTConfig& config);
void from_json(const nlohmann::json& j, ViTConfig& config);
void to_json(nlohmann::json& j, const PreprocessConfig& preprocess);
void from_json(const nlohmann::json& j, PreprocessConfig& preprocess);

}  // namespace vit
