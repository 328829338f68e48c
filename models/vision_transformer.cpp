#include "models/vision_transformer.h"

#include <torch/nn/init.h>

#include <sstream>

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
  const ViTConfig& c = config_;
  // timm leaves the patch embedding's bias out when a norm follows it (pre_norm, as CLIP).
  patch_embed_ = register_module("patch_embed", PatchEmbed(c.in_chans, c.embed_dim, c.patch_size, !c.pre_norm));
  if (c.class_token) cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.embed_dim}));
  if (c.reg_tokens > 0) reg_token_ = register_parameter("reg_token", torch::zeros({1, c.reg_tokens, c.embed_dim}));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, c.pos_embed_length(), c.embed_dim}));
  pos_drop_ = register_module("pos_drop", torch::nn::Dropout(c.pos_drop_rate));
  auto layer_norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim}).eps(c.norm_eps)); };
  if (c.pre_norm) norm_pre_ = register_module("norm_pre", layer_norm());

  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) {
    // Stochastic depth rises linearly from 0 in the first block to drop_path_rate in the last.
    const double drop_path = c.depth > 1 ? c.drop_path_rate * static_cast<double>(i) / (c.depth - 1) : 0.0;
    blocks_->push_back(Block(BlockOptions{c.embed_dim, c.num_heads, c.mlp_hidden_dim(), c.norm_eps, c.proj_drop_rate,
                                          c.attn_drop_rate, drop_path, c.qkv_bias, c.init_values, c.act_layer}));
  }
  if (c.fc_norm) {
    fc_norm_ = register_module("fc_norm", layer_norm());
  } else {
    norm_ = register_module("norm", layer_norm());
  }
  head_drop_ = register_module("head_drop", torch::nn::Dropout(c.drop_rate));
  if (c.num_classes > 0) head_ = register_module("head", Linear(c.embed_dim, c.num_classes));
  if (initialize) init_weights();
}

void VisionTransformerImpl::init_weights() {
  // timm's default scheme: position embedding and every Linear ~ N(0, 0.02) with zero bias, class token
  // ~ N(0, 1e-6), register tokens ~ N(0, 1e-6); the patch-embedding convolution and LayerNorms keep PyTorch's
  // defaults, layer scales their init_values.
  init_normal(pos_embed_, 0.02);
  if (cls_token_.defined()) init_normal(cls_token_, 1e-6);
  if (reg_token_.defined()) init_normal(reg_token_, 1e-6);
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<Linear>()) {
      init_normal(linear->weight, 0.02);
      torch::NoGradGuard no_grad;
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

void VisionTransformerImpl::check_input(const torch::Tensor& images) const {
  const ViTConfig& c = config_;
  const bool ok = images.dim() == 4 && images.size(1) == c.in_chans && images.size(2) == c.image_size &&
                  images.size(3) == c.image_size;
  if (!ok) {
    std::ostringstream message;
    message << "model input: expected images of shape (B, " << c.in_chans << ", " << c.image_size << ", "
            << c.image_size << "), got " << images.sizes();
    throw std::invalid_argument(message.str());
  }
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images,
                                                      std::vector<torch::Tensor>* attention) {
  check_input(images);
  auto x = patch_embed_->forward(images);  // (B, N, D)
  // Prefix tokens in timm's order, class token then registers. Expanded as a slice of x with -1 for the batch,
  // never x.size(0): a traced graph then keeps the batch dimension dynamic.
  std::vector<torch::Tensor> prefix;
  const auto batch_shaped = [&](int64_t count) { return x.narrow(1, 0, 1).expand({-1, count, -1}); };
  if (cls_token_.defined()) prefix.push_back(cls_token_.expand_as(batch_shaped(1)));
  if (reg_token_.defined()) prefix.push_back(reg_token_.expand_as(batch_shaped(config_.reg_tokens)));
  if (config_.no_embed_class) x = x + pos_embed_;  // the patches only; prefix tokens join after
  if (!prefix.empty()) {
    prefix.push_back(x);
    x = torch::cat(prefix, 1);  // (B, T, D)
  }
  if (!config_.no_embed_class) x = x + pos_embed_;
  x = pos_drop_->forward(x);
  x = patch_dropout(x, config_.patch_drop_rate, config_.num_prefix_tokens(), is_training());
  if (norm_pre_) x = norm_pre_->forward(x);
  for (const auto& block : *blocks_) {
    torch::Tensor probs;
    x = block->as<Block>()->forward(x, attention ? &probs : nullptr);
    if (attention) attention->push_back(probs);
  }
  return norm_ ? norm_->forward(x) : x;
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& tokens, bool pre_logits) {
  torch::Tensor pooled;
  const int64_t prefix = config_.num_prefix_tokens();
  const auto patches = [&] { return tokens.narrow(1, prefix, tokens.size(1) - prefix); };  // (B, N, D)
  switch (config_.global_pool) {
    case GlobalPool::Token:
      pooled = tokens.select(1, 0);  // (B, D): the class token
      break;
    case GlobalPool::Avg:
      pooled = patches().mean(1);
      break;
    case GlobalPool::Max:
      pooled = std::get<0>(patches().max(1));
      break;
    case GlobalPool::AvgMax: {
      const auto p = patches();
      pooled = 0.5 * (p.mean(1) + std::get<0>(p.max(1)));
      break;
    }
  }
  if (fc_norm_) pooled = fc_norm_->forward(pooled);
  pooled = head_drop_->forward(pooled);
  if (pre_logits || !head_) return pooled;
  return head_->forward(pooled);  // (B, num_classes)
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  return forward_head(forward_features(images));
}

}  // namespace vit
