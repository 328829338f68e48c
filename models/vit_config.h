#pragma once
// Architecture and preprocessing of a Vision Transformer: plain data, no LibTorch, so that every layer of the
// toolkit (weights files, the command line, the image pipeline) can describe a model without building one.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vit {

// The architecture's choices between building blocks, each an enum whose names are timm's spelling of it. Every
// enum E has to_string(E), parse_enum<E>(text) (throws std::invalid_argument listing the names) and a JSON form
// (the name).

// How the token sequence is reduced to one feature vector for the head (timm's `global_pool`).
enum class GlobalPool {
  Token,   // the class token's output ("token")
  Avg,     // mean over the patch tokens, prefix tokens excluded unless pool_include_prefix ("avg")
  Max,     // maximum over the same tokens ("max")
  AvgMax,  // half the sum of the two ("avgmax")
  Map,     // attention pooling with a learned latent query, timm's AttentionPoolLatent (`attn_pool`) ("map")
  // The class token's output concatenated with the patches' mean, a 2 * embed_dim input to the head: Hugging
  // Face's Dinov2ForImageClassification ("token_avg"; not a timm pool)
  TokenAvg,
  None,  // no pooling: every token's output, (B, T, D) features or (B, T, classes) ("", timm's '')
};

// The MLP's activation (timm's `act_layer`).
enum class Activation {
  Gelu,       // exact (erf) GELU, nn.GELU ("gelu")
  GeluTanh,   // tanh approximation ("gelu_tanh")
  QuickGelu,  // x * sigmoid(1.702 x), OpenAI CLIP's ("quick_gelu")
  Silu,       // x * sigmoid(x) ("silu")
};

// Every normalisation layer of the model (timm's `norm_layer`).
enum class NormLayer {
  LayerNorm,  // ("layernorm")
  RmsNorm,    // x / sqrt(mean(x^2) + eps) * weight, no bias ("rmsnorm")
};

// The feed-forward layer of each block (timm's `mlp_layer`).
enum class MlpLayer {
  Mlp,           // fc1, activation, fc2 ("mlp")
  SwiGlu,        // act(fc1_g x) * fc1_x x, then fc2 (timm's SwiGLU) ("swiglu")
  SwiGluPacked,  // one fc1 whose halves are act(first) * second, fc2 from half the width (timm's SwiGLUPacked)
                 // ("swiglu_packed")
};

// How attention and MLP are composed in each block (timm's `block_fn`).
enum class BlockFn {
  Block,            // pre-norm: x + attn(norm1(x)), then x + mlp(norm2(x)) ("block")
  ResPost,          // norm after each branch: x + norm1(attn(x)), then x + norm2(mlp(x)) ("res_post")
  ParallelThings,   // two attentions summed, then two MLPs summed, each pre-norm (`attns.N`, `ffns.N`)
                    // ("parallel_things")
  ParallelScaling,  // ViT-22B's: one in_norm and in_proj feed attention and MLP side by side ("parallel_scaling")
};

// DeiT's distillation token `dist_token`, after the class token.
enum class DistToken {
  None,    // ("none")
  Heads,   // with its own head `head_dist`, the two heads' logits averaged: timm's VisionTransformerDistilled and
           // Hugging Face's DeiTForImageClassificationWithTeacher ("heads")
  Unused,  // in the sequence, but only the class token feeds the head: Hugging Face's DeiTForImageClassification
           // ("unused")
};

// The position embedding (timm's `pos_embed`, plus the fixed sine-cosine one).
enum class PosEmbed {
  Learn,   // a learned parameter `pos_embed` ("learn")
  Sincos,  // fixed 2-D sine-cosine values over the patch grid, a buffer, not trained ("sincos")
  None,    // none at all ("none")
};

std::string to_string(GlobalPool value);
std::string to_string(Activation value);
std::string to_string(NormLayer value);
std::string to_string(MlpLayer value);
std::string to_string(BlockFn value);
std::string to_string(PosEmbed value);
std::string to_string(DistToken value);
template <typename Enum>
Enum parse_enum(const std::string& text);  // defined for the enums above
template <typename Enum>
std::vector<std::string> enum_names();  // every name, in declaration order
void to_json(nlohmann::json& j, const GlobalPool& value);
void from_json(const nlohmann::json& j, GlobalPool& value);
void to_json(nlohmann::json& j, const Activation& value);
void from_json(const nlohmann::json& j, Activation& value);
void to_json(nlohmann::json& j, const NormLayer& value);
void from_json(const nlohmann::json& j, NormLayer& value);
void to_json(nlohmann::json& j, const MlpLayer& value);
void from_json(const nlohmann::json& j, MlpLayer& value);
void to_json(nlohmann::json& j, const BlockFn& value);
void from_json(const nlohmann::json& j, BlockFn& value);
void to_json(nlohmann::json& j, const PosEmbed& value);
void from_json(const nlohmann::json& j, PosEmbed& value);
void to_json(nlohmann::json& j, const DistToken& value);
void from_json(const nlohmann::json& j, DistToken& value);

// floor(width) as a layer width, or 0 where that is no width from 1 to 2^31 - 1 (a NaN, negative or huge product of
// a size and a ratio read from a file): the integer conversion itself would be undefined there.
inline int64_t layer_width_or_zero(double width) {
  const double whole = std::floor(width);
  return whole >= 1.0 && whole < 2147483648.0 ? static_cast<int64_t>(whole) : 0;
}

// One struct for the whole architecture; field names follow timm's VisionTransformer arguments.
struct ViTConfig {
  int64_t image_size = 224;    // square input side in pixels; pixels past the last whole patch are unused (timm)
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
  NormLayer norm_layer = NormLayer::LayerNorm;  // every norm of the model, with norm_eps
  bool embed_norm = false;  // a norm `patch_embed.norm` on the patch tokens (timm's embed_norm_layer)
  MlpLayer mlp_layer = MlpLayer::Mlp;
  bool proj_bias = true;             // bias in attn.proj and the MLP's layers
  bool qk_norm = false;              // norms `q_norm`, `k_norm` over each head's queries and keys
  bool scale_attn_norm = false;      // a norm `attn.norm` on the attention output before attn.proj
  bool scale_mlp_norm = false;       // a norm `mlp.norm` on the MLP's hidden activations before fc2
  bool final_norm = true;            // the final norm (`norm`, or `fc_norm` after pooling) exists at all
  bool pool_include_prefix = false;  // avg/max/avgmax/map pools see the prefix tokens too
  BlockFn block_fn = BlockFn::Block;
  DistToken dist_token = DistToken::None;
  bool dynamic_img_size = false;  // timm's flag: the model was built to take other input sizes (informational)
  PosEmbed pos_embed = PosEmbed::Learn;

  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t num_prefix_tokens() const {
    return (class_token ? 1 : 0) + (dist_token != DistToken::None ? 1 : 0) + reg_tokens;
  }
  int64_t sequence_length() const { return num_patches() + num_prefix_tokens(); }
  // Prefix tokens that have a position embedding: none with no_embed_class.
  int64_t pos_embed_prefix_tokens() const { return no_embed_class ? 0 : num_prefix_tokens(); }
  int64_t pos_embed_length() const { return num_patches() + pos_embed_prefix_tokens(); }
  // The final norm sits before pooling (`norm`) or after it (`fc_norm`), if at all.
  bool has_norm() const { return final_norm && !fc_norm; }
  bool has_fc_norm() const { return final_norm && fc_norm; }
  int64_t head_dim() const { return embed_dim / num_heads; }
  // The pooled feature width the head reads.
  int64_t num_features() const { return global_pool == GlobalPool::TokenAvg ? 2 * embed_dim : embed_dim; }
  // Truncated like timm's int(dim * mlp_ratio) (896 * 2.572 = 2304.5 is 2304 wide), with a little slack so that a
  // ratio read back from a checkpoint (3840 / 704) gives the same width again. 0 where that is no width from 1 to
  // 2^31 - 1 (a NaN, negative or huge ratio), which validate() refuses: callers that run before it (checkpoint
  // readers comparing widths) get a width no tensor has, never an undefined conversion.
  int64_t mlp_hidden_dim() const { return layer_width_or_zero(static_cast<double>(embed_dim) * mlp_ratio + 1e-6); }
  // The width fc2 reads: half of fc1's for the packed SwiGLU, whose fc1 holds both halves.
  int64_t mlp_inner_dim() const {
    return mlp_layer == MlpLayer::SwiGluPacked ? mlp_hidden_dim() / 2 : mlp_hidden_dim();
  }

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
  visit(FieldInfo{"norm_layer", "norm_layer", false, true}, &ViTConfig::norm_layer);
  visit(FieldInfo{"embed_norm", nullptr, false, true}, &ViTConfig::embed_norm);  // timm: embed_norm_layer
  visit(FieldInfo{"mlp_layer", "mlp_layer", false, true}, &ViTConfig::mlp_layer);
  visit(FieldInfo{"proj_bias", "proj_bias", false, true}, &ViTConfig::proj_bias);
  visit(FieldInfo{"qk_norm", "qk_norm", false, true}, &ViTConfig::qk_norm);
  visit(FieldInfo{"scale_attn_norm", "scale_attn_norm", false, true}, &ViTConfig::scale_attn_norm);
  visit(FieldInfo{"scale_mlp_norm", "scale_mlp_norm", false, true}, &ViTConfig::scale_mlp_norm);
  visit(FieldInfo{"final_norm", "final_norm", false, true}, &ViTConfig::final_norm);
  visit(FieldInfo{"pool_include_prefix", "pool_include_prefix", true, true}, &ViTConfig::pool_include_prefix);
  visit(FieldInfo{"block_fn", "block_fn", true, true}, &ViTConfig::block_fn);
  visit(FieldInfo{"dist_token", nullptr, false, true}, &ViTConfig::dist_token);  // timm: VisionTransformerDistilled
  visit(FieldInfo{"dynamic_img_size", "dynamic_img_size", true, true}, &ViTConfig::dynamic_img_size);
  visit(FieldInfo{"pos_embed", "pos_embed", true, true}, &ViTConfig::pos_embed);  // timm: learn or none
}

enum class Interpolation { Bilinear, Bicubic };
std::string to_string(Interpolation value);
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
