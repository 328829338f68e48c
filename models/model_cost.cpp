#include "models/model_cost.h"

#include <iomanip>
#include <sstream>

#include "models/patch_dropout.h"
#include "util/system_memory.h"

namespace vit {
namespace {

// MACs of a forward pass that embeds `patches` patch tokens; the blocks see them and the prefix tokens.
double macs_with_patches(const ViTConfig& c, int64_t patches) {
  const double d = static_cast<double>(c.embed_dim);
  const double t = static_cast<double>(patches + c.num_prefix_tokens());
  const double hidden = static_cast<double>(c.mlp_hidden_dim());
  const double inner = static_cast<double>(c.mlp_inner_dim());
  const double patch_embed =
      static_cast<double>(patches) * d * static_cast<double>(c.in_chans * c.patch_size * c.patch_size);
  const double attention = t * d * 3 * d    // qkv
                           + 2 * t * t * d  // q @ k^T and attn @ v, summed over heads
                           + t * d * d;     // proj
  const double mlp = t * d * hidden * (c.mlp_layer == MlpLayer::SwiGlu ? 2 : 1)  // fc1 (fc1_g and fc1_x)
                     + t * inner * d;                                            // fc2
  const double branches = c.block_fn == BlockFn::ParallelThings ? 2 : 1;
  const double head =
      static_cast<double>(c.num_features() * c.num_classes) * (c.dist_token == DistToken::Heads ? 2 : 1);
  return patch_embed + static_cast<double>(c.depth) * branches * (attention + mlp) + head;
}

// Parameter counts, in a number type T: int64_t for the exact count of a model that can be built; double for
// the memory check before building, whose widths and depths may be any the options accept (their products past
// 2^63 would wrap as integers and could pass the check).
template <typename T>
T norm_parameters(const ViTConfig& c, T dim) {
  return c.norm_layer == NormLayer::LayerNorm ? 2 * dim : dim;
}

template <typename T>
T linear_parameters(T in, T out, bool bias) {
  return in * out + (bias ? out : 0);
}

// The block's feed-forward layer (layers.h MlpImpl) at the given widths.
template <typename T>
T mlp_parameters(const ViTConfig& c, MlpLayer kind, bool bias, bool norm) {
  const auto d = static_cast<T>(c.embed_dim);
  const auto hidden = static_cast<T>(c.mlp_hidden_dim());
  const T inner = kind == MlpLayer::SwiGluPacked ? static_cast<T>(c.mlp_hidden_dim() / 2) : hidden;
  const T fc1 = linear_parameters(d, hidden, bias) * (kind == MlpLayer::SwiGlu ? 2 : 1);
  return fc1 + (norm ? norm_parameters(c, inner) : 0) + linear_parameters(inner, d, bias);
}

template <typename T>
T attention_parameters(const ViTConfig& c) {
  const auto d = static_cast<T>(c.embed_dim);
  return linear_parameters<T>(d, 3 * d, c.qkv_bias) +
         (c.qk_norm ? 2 * norm_parameters(c, static_cast<T>(c.head_dim())) : 0) +
         (c.scale_attn_norm ? norm_parameters(c, d) : 0) + linear_parameters(d, d, c.proj_bias);
}

template <typename T>
T block_parameters(const ViTConfig& c) {
  const auto d = static_cast<T>(c.embed_dim);
  const T layer_scale = c.init_values > 0.0 ? d : 0;
  const T mlp = mlp_parameters<T>(c, c.mlp_layer, c.proj_bias, c.scale_mlp_norm);
  switch (c.block_fn) {
    case BlockFn::Block:
      return 2 * norm_parameters(c, d) + attention_parameters<T>(c) + mlp + 2 * layer_scale;
    case BlockFn::ResPost:
      return 2 * norm_parameters(c, d) + attention_parameters<T>(c) + mlp;
    case BlockFn::ParallelThings:  // two attention and two MLP branches, each with its norm and layer scale
      return 2 * (norm_parameters(c, d) + attention_parameters<T>(c) + layer_scale) +
             2 * (norm_parameters(c, d) + mlp + layer_scale);
    case BlockFn::ParallelScaling: {
      const auto hidden = static_cast<T>(c.mlp_hidden_dim());
      return norm_parameters(c, d) + linear_parameters<T>(d, hidden + 3 * d, c.qkv_bias) + (c.qkv_bias ? 0 : hidden) +
             (c.qk_norm ? 2 * norm_parameters(c, static_cast<T>(c.head_dim())) : 0) +
             linear_parameters(d, d, c.proj_bias) + linear_parameters(hidden, d, c.proj_bias) + layer_scale;
    }
  }
  return 0;
}

template <typename T>
T parameters(const ViTConfig& c) {
  const auto d = static_cast<T>(c.embed_dim);
  const T patch_embed = static_cast<T>(c.in_chans * c.patch_size * c.patch_size) * d + (c.pre_norm ? 0 : d) +
                        (c.embed_norm ? norm_parameters(c, d) : 0);
  const T tokens =
      static_cast<T>(c.num_prefix_tokens()) * d  // cls_token, dist_token, reg_token
      + (c.pos_embed == PosEmbed::Learn ? static_cast<T>(c.pos_embed_length()) * d : 0);  // a sincos one is fixed
  const auto features = static_cast<T>(c.num_features());
  const T norms = (c.has_norm() ? norm_parameters(c, d) : 0) + (c.has_fc_norm() ? norm_parameters(c, features) : 0) +
                  (c.pre_norm ? norm_parameters(c, d) : 0);  // norm_pre
  const T attn_pool = c.global_pool == GlobalPool::Map
                          ? d                                        // latent
                                + 4 * linear_parameters(d, d, true)  // q, kv (2 D), proj
                                + norm_parameters(c, d) + mlp_parameters<T>(c, MlpLayer::Mlp, true, false)
                          : 0;
  const T head = c.num_classes > 0 ? linear_parameters(features, static_cast<T>(c.num_classes), true) *
                                         (c.dist_token == DistToken::Heads ? 2 : 1)
                                   : 0;
  return patch_embed + tokens + static_cast<T>(c.depth) * block_parameters<T>(c) + norms + attn_pool + head;
}

}  // namespace

int64_t count_parameters(const ViTConfig& c) { return parameters<int64_t>(c); }

double count_macs(const ViTConfig& c) { return macs_with_patches(c, c.num_patches()); }

double count_training_macs(const ViTConfig& c) {
  if (c.patch_drop_rate <= 0.0) return count_macs(c);
  // Prefix tokens are always kept; in training only the kept patches are embedded (VisionTransformer::embed_tokens).
  return macs_with_patches(c, patch_dropout_kept(c.num_patches(), c.patch_drop_rate));
}

void check_parameters_fit_in_memory(const ViTConfig& config, int bytes_per_parameter, const std::string& purpose) {
  const double count = parameters<double>(config);
  const double needed = count * bytes_per_parameter;
  std::ostringstream what;
  what << "model options: " << std::setprecision(4) << count << " parameters need " << std::fixed
       << std::setprecision(1) << gib(needed) << " GiB for " << purpose;
  require_fits_in_memory(needed, what.str());
}

}  // namespace vit
