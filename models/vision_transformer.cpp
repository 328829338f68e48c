#include "models/vision_transformer.h"

#include <torch/nn/init.h>

#include <cmath>
#include <sstream>
#include <tuple>

#include "models/model_cost.h"
#include "models/pos_embed.h"

namespace vit {
namespace {

// timm's trunc_normal_(std=.02) truncates at +-2 absolute, i.e. 100 standard deviations out: the same
// distribution as a plain normal for every practical purpose, which is what LibTorch 1.13 offers.
void init_normal(torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std);
}

}  // namespace

VisionTransformerImpl::VisionTransformerImpl(const ViTConfig& config, bool initialize) : config_(config) {
  config_.validate();
  check_parameters_fit_in_memory(config_, sizeof(float), "their float32 weights");
  const ViTConfig& c = config_;
  const int64_t d = c.embed_dim;
  patch_embed_ = register_module("patch_embed", PatchEmbed(c));
  if (c.class_token) cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, d}));
  if (c.reg_tokens > 0) reg_token_ = register_parameter("reg_token", torch::zeros({1, c.reg_tokens, d}));
  if (c.dist_token != DistToken::None) dist_token_ = register_parameter("dist_token", torch::zeros({1, 1, d}));
  switch (c.pos_embed) {
    case PosEmbed::Learn:
      pos_embed_ = register_parameter("pos_embed", torch::zeros({1, c.pos_embed_length(), d}));
      break;
    case PosEmbed::Sincos:  // fixed values: a buffer, saved with the model but never trained
      pos_embed_ =
          register_buffer("pos_embed", sincos_pos_embed(c.grid_size(), c.grid_size(), d, c.pos_embed_prefix_tokens()));
      break;
    case PosEmbed::None:
      break;
  }
  pos_drop_ = register_module("pos_drop", torch::nn::Dropout(c.pos_drop_rate));
  auto norm = [&] { return Norm(d, c.norm_layer, c.norm_eps); };
  if (c.pre_norm) norm_pre_ = register_module("norm_pre", norm());

  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(make_block(c, i));
  if (c.has_norm()) norm_ = register_module("norm", norm());
  if (c.global_pool == GlobalPool::Map) attn_pool_ = register_module("attn_pool", AttentionPool(c));
  if (c.has_fc_norm()) fc_norm_ = register_module("fc_norm", Norm(c.num_features(), c.norm_layer, c.norm_eps));
  head_drop_ = register_module("head_drop", torch::nn::Dropout(c.drop_rate));
  if (c.num_classes > 0) head_ = register_module("head", Linear(c.num_features(), c.num_classes));
  if (c.num_classes > 0 && c.dist_token == DistToken::Heads)
    head_dist_ = register_module("head_dist", Linear(d, c.num_classes));
  if (initialize) init_weights();
}

void VisionTransformerImpl::init_weights() {
  // timm's default scheme: position embedding and every Linear ~ N(0, 0.02) with zero bias, class and register
  // tokens ~ N(0, 1e-6), DeiT's distillation token ~ N(0, 0.02), the attention pool's latent ~ N(0, D^-0.5);
  // the patch-embedding convolution keeps PyTorch's default, norms start at 1 (0 bias), layer scales at
  // init_values.
  if (config_.pos_embed == PosEmbed::Learn) init_normal(pos_embed_, 0.02);
  if (cls_token_.defined()) init_normal(cls_token_, 1e-6);
  if (reg_token_.defined()) init_normal(reg_token_, 1e-6);
  if (dist_token_.defined()) init_normal(dist_token_, 0.02);
  if (attn_pool_) init_normal(attn_pool_->latent, 1.0 / std::sqrt(static_cast<double>(config_.embed_dim)));
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<Linear>()) {
      init_normal(linear->weight, 0.02);
      torch::NoGradGuard no_grad;
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

torch::Tensor VisionTransformerImpl::pos_embed_for(const torch::Tensor& images) const {
  const ViTConfig& c = config_;
  const int64_t p = c.patch_size;
  if (images.dim() != 4 || images.size(1) != c.in_chans || images.size(2) < p || images.size(3) < p) {
    std::ostringstream message;
    message << "model input: expected images of shape (B, " << c.in_chans << ", H, W) with H and W at least the "
            << "patch size " << p << " (the model's own size is " << c.image_size << "), got " << images.sizes();
    throw std::invalid_argument(message.str());
  }
  const auto grid = patch_grid(images, p);
  if (!pos_embed_.defined() || (grid.rows == c.grid_size() && grid.columns == c.grid_size())) return pos_embed_;
  if (c.pos_embed == PosEmbed::Sincos)  // a formula: evaluated on the new grid rather than resampled
    return sincos_pos_embed(grid.rows, grid.columns, c.embed_dim, c.pos_embed_prefix_tokens()).to(pos_embed_.options());
  return resample_pos_embed(pos_embed_, c.grid_size(), c.grid_size(), grid.rows, grid.columns,
                            c.pos_embed_prefix_tokens());
}

torch::Tensor VisionTransformerImpl::embed_tokens(const torch::Tensor& images) {
  const ViTConfig& c = config_;
  const auto pos_embed = pos_embed_for(images);  // checks the images' shape first
  // PatchDropout: only the patches each image keeps are embedded at all.
  torch::Tensor kept;  // (B, K)
  if (is_training() && c.patch_drop_rate > 0.0) {
    const int64_t patches = patch_grid(images, c.patch_size).count();
    kept = patch_dropout_indices(images.size(0), patches, c.patch_drop_rate, images.device());
  }
  auto x = kept.defined() ? patch_embed_->forward_patches(images, kept) : patch_embed_->forward(images);
  const int64_t positioned_prefix = pos_embed.defined() ? c.pos_embed_prefix_tokens() : 0;
  if (pos_embed.defined()) {
    const auto patch_positions = pos_embed.narrow(1, positioned_prefix, pos_embed.size(1) - positioned_prefix);
    x = x + (kept.defined() ? select_tokens(patch_positions, kept) : patch_positions);
  }
  // Prefix tokens in timm's order: class, distillation, registers; their positions (unless no_embed_class)
  // added once, before they are expanded to the batch.
  std::vector<torch::Tensor> prefix_parts;
  if (cls_token_.defined()) prefix_parts.push_back(cls_token_);
  if (dist_token_.defined()) prefix_parts.push_back(dist_token_);
  if (reg_token_.defined()) prefix_parts.push_back(reg_token_);
  if (!prefix_parts.empty()) {
    auto prefix = prefix_parts.size() == 1 ? prefix_parts.front() : torch::cat(prefix_parts, 1);  // (1, P, D)
    if (positioned_prefix > 0) prefix = prefix + pos_embed.narrow(1, 0, positioned_prefix);
    // Expanded as a slice of x with -1 for the batch, never x.size(0): a traced graph then keeps the batch
    // dimension dynamic.
    const auto batch_shaped = x.narrow(1, 0, 1).expand({-1, prefix.size(1), -1});
    x = torch::cat({prefix.expand_as(batch_shaped), x}, 1);  // (B, T, D)
  }
  x = pos_drop_->forward(x);
  return norm_pre_ ? norm_pre_->forward(x) : x;
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images,
                                                      std::vector<torch::Tensor>* attention) {
  auto x = embed_tokens(images);
  // Consecutive pre-norm blocks are chained (BlockImpl::forward_chained): each block's last residual add is joined
  // to the next block's first norm, which then starts from that norm's output, `normed`.
  torch::Tensor normed;
  const auto& blocks = *blocks_;
  for (size_t i = 0; i < blocks.size(); ++i) {
    torch::Tensor probs;
    torch::Tensor* probs_out = attention ? &probs : nullptr;
    auto* chained = blocks[i]->as<BlockImpl>();
    if (chained && chained->first_norm()) {
      auto* next = i + 1 < blocks.size() ? blocks[i + 1]->as<BlockImpl>() : nullptr;
      std::tie(x, normed) = chained->forward_chained(x, normed, next ? next->first_norm() : nullptr, probs_out);
    } else {
      x = blocks[i]->as<EncoderBlock>()->forward(x, probs_out);
      normed = torch::Tensor();
    }
    if (attention) attention->push_back(probs);
  }
  return norm_ ? norm_->forward(x) : x;
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& tokens, bool pre_logits) {
  const ViTConfig& c = config_;
  if (c.dist_token == DistToken::Heads) {  // timm's VisionTransformerDistilled: the two tokens' heads, averaged
    const auto cls = head_drop_->forward(tokens.select(1, 0));
    const auto dist = head_drop_->forward(tokens.select(1, 1));
    if (pre_logits || !head_) return (cls + dist) / 2;
    return (head_->forward(cls) + head_dist_->forward(dist)) / 2;
  }
  // The tokens the pools reduce: the patches, or every token with pool_include_prefix.
  const int64_t skip = c.pool_include_prefix ? 0 : c.num_prefix_tokens();
  const auto pooled_tokens = [&] { return tokens.narrow(1, skip, tokens.size(1) - skip); };  // (B, N, D)
  torch::Tensor pooled;
  switch (c.global_pool) {
    case GlobalPool::Token:
      pooled = tokens.select(1, 0);  // (B, D): the class token
      break;
    case GlobalPool::Avg:
      pooled = pooled_tokens().mean(1);
      break;
    case GlobalPool::Max:
      pooled = std::get<0>(pooled_tokens().max(1));
      break;
    case GlobalPool::AvgMax: {
      const auto p = pooled_tokens();
      pooled = 0.5 * (p.mean(1) + std::get<0>(p.max(1)));
      break;
    }
    case GlobalPool::Map:
      pooled = attn_pool_->forward(pooled_tokens());
      break;
    case GlobalPool::TokenAvg:
      pooled = torch::cat({tokens.select(1, 0), pooled_tokens().mean(1)}, -1);  // (B, 2 D)
      break;
    case GlobalPool::None:  // every token, as timm's global_pool '': (B, T, D), and (B, T, classes) after the head
      pooled = tokens;
      break;
  }
  if (fc_norm_) pooled = fc_norm_->forward(pooled);
  pooled = head_drop_->forward(pooled);
  if (pre_logits || !head_) return pooled;
  return head_->forward(pooled);  // (B, num_classes)
}

void VisionTransformerImpl::set_patch_drop_rate(double rate) {
  ViTConfig changed = config_;
  changed.patch_drop_rate = rate;
  changed.validate();  // a rate outside [0, 1) is refused as the config's own would be
  config_ = changed;
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  return forward_head(forward_features(images));
}

}  // namespace vit
