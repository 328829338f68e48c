#include "models/model_cost.h"

#include <iomanip>
#include <sstream>
#include <stdexcept>

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

int64_t norm_parameters(const ViTConfig& c, int64_t dim) {
  return c.norm_layer == NormLayer::LayerNorm ? 2 * dim : dim;
}

int64_t linear_parameters(int64_t in, int64_t out, bool bias) { return in * out + (bias ? out : 0); }

// The block's feed-forward layer (layers.h MlpImpl) at the given widths.
int64_t mlp_parameters(const ViTConfig& c, MlpLayer kind, bool bias, bool norm) {
  const int64_t d = c.embed_dim;
  const int64_t hidden = c.mlp_hidden_dim();
  const int64_t inner = kind == MlpLayer::SwiGluPacked ? hidden / 2 : hidden;
  const int64_t fc1 = linear_parameters(d, hidden, bias) * (kind == MlpLayer::SwiGlu ? 2 : 1);
  return fc1 + (norm ? norm_parameters(c, inner) : 0) + linear_parameters(inner, d, bias);
}

int64_t attention_parameters(const ViTConfig& c) {
  const int64_t d = c.embed_dim;
  return linear_parameters(d, 3 * d, c.qkv_bias) + (c.qk_norm ? 2 * norm_parameters(c, c.head_dim()) : 0) +
         (c.scale_attn_norm ? norm_parameters(c, d) : 0) + linear_parameters(d, d, c.proj_bias);
}

int64_t block_parameters(const ViTConfig& c) {
  const int64_t d = c.embed_dim;
  const int64_t layer_scale = c.init_values > 0.0 ? d : 0;
  const int64_t mlp = mlp_parameters(c, c.mlp_layer, c.proj_bias, c.scale_mlp_norm);
  switch (c.block_fn) {
    case BlockFn::Block:
      return 2 * norm_parameters(c, d) + attention_parameters(c) + mlp + 2 * layer_scale;
    case BlockFn::ResPost:
      return 2 * norm_parameters(c, d) + attention_parameters(c) + mlp;
    case BlockFn::ParallelThings:  // two attention and two MLP branches, each with its norm and layer scale
      return 2 * (norm_parameters(c, d) + attention_parameters(c) + layer_scale) +
             2 * (norm_parameters(c, d) + mlp + layer_scale);
    case BlockFn::ParallelScaling: {
      const int64_t hidden = c.mlp_hidden_dim();
      return norm_parameters(c, d) + linear_parameters(d, hidden + 3 * d, c.qkv_bias) + (c.qkv_bias ? 0 : hidden) +
             (c.qk_norm ? 2 * norm_parameters(c, c.head_dim()) : 0) + linear_parameters(d, d, c.proj_bias) +
             linear_parameters(hidden, d, c.proj_bias) + layer_scale;
    }
  }
  return 0;
}

}  // namespace

int64_t count_parameters(const ViTConfig& c) {
  const int64_t d = c.embed_dim;
  const int64_t patch_embed =
      c.in_chans * c.patch_size * c.patch_size * d + (c.pre_norm ? 0 : d) + (c.embed_norm ? norm_parameters(c, d) : 0);
  const int64_t tokens = c.num_prefix_tokens() * d  // cls_token, dist_token, reg_token
                         + (c.pos_embed == PosEmbed::Learn ? c.pos_embed_length() * d : 0);  // a sincos one is fixed
  const int64_t norms = (c.has_norm() ? norm_parameters(c, d) : 0) +
                        (c.has_fc_norm() ? norm_parameters(c, c.num_features()) : 0) +
                        (c.pre_norm ? norm_parameters(c, d) : 0);  // norm_pre
  const int64_t attn_pool = c.global_pool == GlobalPool::Map
                                ? d                                        // latent
                                      + 4 * linear_parameters(d, d, true)  // q, kv (2 D), proj
                                      + norm_parameters(c, d) + mlp_parameters(c, MlpLayer::Mlp, true, false)
                                : 0;
  const int64_t head = c.num_classes > 0 ? linear_parameters(c.num_features(), c.num_classes, true) *
                                               (c.dist_token == DistToken::Heads ? 2 : 1)
                                         : 0;
  return patch_embed + tokens + c.depth * block_parameters(c) + norms + attn_pool + head;
}

double count_macs(const ViTConfig& c) { return macs_with_patches(c, c.num_patches()); }

double count_training_macs(const ViTConfig& c) {
  if (c.patch_drop_rate <= 0.0) return count_macs(c);
  // Prefix tokens are always kept; in training only the kept patches are embedded (VisionTransformer::embed_tokens).
  return macs_with_patches(c, patch_dropout_kept(c.num_patches(), c.patch_drop_rate));
}

void check_parameters_fit_in_memory(const ViTConfig& config, int bytes_per_parameter, const std::string& purpose) {
  const uint64_t memory = physical_memory_bytes();
  if (memory == 0) return;
  const double parameters = static_cast<double>(count_parameters(config));
  const double needed = parameters * bytes_per_parameter;
  if (needed <= static_cast<double>(memory)) return;
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  std::ostringstream message;
  message << "model options: " << std::setprecision(4) << parameters << " parameters need " << std::fixed
          << std::setprecision(1) << needed / kGiB << " GiB for " << purpose << ", more than this machine's "
          << static_cast<double>(memory) / kGiB << " GiB of memory";
  throw std::invalid_argument(message.str());
}

}  // namespace vit
