#include "models/model_cost.h"

#include <algorithm>

namespace vit {
namespace {

double macs_with_tokens(const ViTConfig& c, int64_t tokens) {
  const double d = static_cast<double>(c.embed_dim);
  const double t = static_cast<double>(tokens);
  const double hidden = static_cast<double>(c.mlp_hidden_dim());
  const double patch_embed =
      static_cast<double>(c.num_patches()) * d * static_cast<double>(c.in_chans * c.patch_size * c.patch_size);
  const double block = t * d * 3 * d          // qkv
                       + 2 * t * t * d        // q @ k^T and attn @ v, summed over heads
                       + t * d * d            // proj
                       + 2 * t * d * hidden;  // fc1 + fc2
  const double head = d * static_cast<double>(c.num_classes);
  return patch_embed + static_cast<double>(c.depth) * block + head;
}

}  // namespace

int64_t count_parameters(const ViTConfig& c) {
  const int64_t d = c.embed_dim;
  const int64_t hidden = c.mlp_hidden_dim();
  const int64_t patch_embed = c.in_chans * c.patch_size * c.patch_size * d + (c.pre_norm ? 0 : d);
  const int64_t tokens = c.num_prefix_tokens() * d              // cls_token, reg_token
                         + c.pos_embed_length() * d;            // pos_embed
  const int64_t block = 2 * d                                   // norm1
                        + d * 3 * d + (c.qkv_bias ? 3 * d : 0)  // attn.qkv
                        + d * d + d                             // attn.proj
                        + 2 * d                                 // norm2
                        + d * hidden + hidden                   // mlp.fc1
                        + hidden * d + d                        // mlp.fc2
                        + (c.init_values > 0.0 ? 2 * d : 0);    // ls1, ls2
  const int64_t norms = 2 * d + (c.pre_norm ? 2 * d : 0);       // norm or fc_norm; norm_pre
  const int64_t head = c.num_classes > 0 ? d * c.num_classes + c.num_classes : 0;
  return patch_embed + tokens + c.depth * block + norms + head;
}

double count_macs(const ViTConfig& c) { return macs_with_tokens(c, c.sequence_length()); }

double count_training_macs(const ViTConfig& c) {
  if (c.patch_drop_rate <= 0.0) return count_macs(c);
  // PatchDropout keeps max(1, floor(N * (1 - rate))) patch tokens (models/layers.h), prefix tokens always.
  const auto kept =
      std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(c.num_patches()) * (1.0 - c.patch_drop_rate)));
  return macs_with_tokens(c, kept + c.num_prefix_tokens());
}

}  // namespace vit
