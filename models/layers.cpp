#include "models/layers.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/version.h>

#include <cmath>
#include <stdexcept>

#include "models/cpu_attention.h"
#include "models/cpu_linear.h"

#if TORCH_VERSION_MAJOR >= 2
#include <ATen/ops/scaled_dot_product_attention.h>
#else
#include <ATen/ops/_scaled_dot_product_attention.h>
#endif

namespace vit {

torch::Tensor drop_path(const torch::Tensor& x, double drop_prob, bool training) {
  if (!training || drop_prob == 0.0) return x;
  const double keep_prob = 1.0 - drop_prob;
  // One Bernoulli draw per sample, broadcast over the remaining dimensions: (B, 1, 1, ...).
  std::vector<int64_t> mask_shape(static_cast<size_t>(x.dim()), 1);
  mask_shape[0] = x.size(0);
  auto mask = torch::empty(mask_shape, x.options()).bernoulli_(keep_prob);
  return x * mask.div_(keep_prob);
}

torch::Tensor patch_dropout(const torch::Tensor& x, double drop_prob, int64_t prefix_tokens, bool training) {
  if (!training || drop_prob == 0.0) return x;
  const int64_t patches = x.size(1) - prefix_tokens;
  const auto keep = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(patches) * (1.0 - drop_prob)));
  // A random permutation per image, from sorting noise; its first `keep` entries are the kept patches.
  const auto order =
      torch::randn({x.size(0), patches}, x.options().dtype(torch::kFloat)).argsort(/*dim=*/-1, /*descending=*/false);
  const auto kept = order.narrow(1, 0, keep).unsqueeze(-1).expand({-1, -1, x.size(2)});  // (B, keep, D)
  auto tokens = x.narrow(1, prefix_tokens, patches).gather(1, kept);                     // (B, keep, D)
  if (prefix_tokens == 0) return tokens;
  return torch::cat({x.narrow(1, 0, prefix_tokens), tokens}, 1);  // (B, prefix + keep, D)
}

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              double dropout_p) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, dropout_p);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, dropout_p,
                                                       /*need_attn_weights=*/false, /*is_causal=*/false));
#endif
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return linear(x, weight, bias); }

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t patch_size, bool bias) {
  proj_ = register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch_size).stride(patch_size).bias(bias)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  auto x = proj_->forward(images);      // (B, D, H/P, W/P)
  return x.flatten(2).transpose(1, 2);  // (B, N, D)
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, double attn_drop, double proj_drop)
    : num_heads_(num_heads), attn_drop_(attn_drop) {
  qkv_ = register_module("qkv", Linear(dim, 3 * dim, qkv_bias));
  proj_ = register_module("proj", Linear(dim, dim));
  proj_drop_ = register_module("proj_drop", torch::nn::Dropout(proj_drop));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, torch::Tensor* probs) {
  // Sizes other than the batch are architecture constants; the batch stays -1 so that a traced graph keeps
  // a dynamic batch dimension.
  const int64_t tokens = x.size(1);
  const int64_t dim = x.size(2);
  const int64_t head_dim = dim / num_heads_;
  const double dropout = is_training() ? attn_drop_ : 0.0;
  const auto projected = qkv_->forward(x);  // (B, N, 3 * D)
  torch::Tensor out;
  if (!probs && dropout == 0.0 && cpu_attention_available(projected)) {
    out = cpu_attention(projected, num_heads_);  // (B, N, D)
  } else {
    auto qkv = projected
                   .reshape({-1, tokens, 3, num_heads_, head_dim})  // (B, N, 3, H, Dh)
                   .permute({2, 0, 3, 1, 4});                       // (3, B, H, N, Dh)
    // unbind rather than three selects: its backward stacks the three gradients once, where each select's
    // backward would zero-fill and copy a tensor the size of all of qkv (measured: ~10% of a training step).
    const auto parts = qkv.unbind(0);
    if (probs) {
      const auto scores = torch::matmul(parts[0], parts[1].transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim));
      *probs = torch::softmax(scores, -1);  // (B, H, N, N)
      out = torch::matmul(torch::dropout(*probs, dropout, is_training()), parts[2]);
    } else {
      out = fused_attention(parts[0], parts[1], parts[2], dropout);  // (B, H, N, Dh)
    }
    out = out.transpose(1, 2).reshape({-1, tokens, dim});  // (B, N, D)
  }
  return proj_drop_->forward(proj_->forward(out));
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::Gelu:
      return torch::gelu(x);  // exact erf GELU, as timm's nn.GELU()
    case Activation::GeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::QuickGelu:
      return x * torch::sigmoid(1.702 * x);
    case Activation::Silu:
      return torch::silu(x);
  }
  throw std::logic_error("unknown activation");
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden_dim, Activation activation, double drop) : activation_(activation) {
  fc1_ = register_module("fc1", Linear(dim, hidden_dim));
  fc2_ = register_module("fc2", Linear(hidden_dim, dim));
  drop_ = register_module("drop", torch::nn::Dropout(drop));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto hidden = drop_->forward(activate(fc1_->forward(x), activation_));
  return drop_->forward(fc2_->forward(hidden));
}

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_values) {
  gamma = register_parameter("gamma", torch::full({dim}, init_values));
}

BlockImpl::BlockImpl(const BlockOptions& o) : drop_path_(o.drop_path) {
  auto layer_norm = [&](const char* name) {
    return register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.norm_eps)));
  };
  norm1_ = layer_norm("norm1");
  attn_ = register_module("attn", Attention(o.dim, o.num_heads, o.qkv_bias, o.attn_drop, o.proj_drop));
  if (o.init_values > 0.0) ls1_ = register_module("ls1", LayerScale(o.dim, o.init_values));
  norm2_ = layer_norm("norm2");
  mlp_ = register_module("mlp", Mlp(o.dim, o.mlp_hidden_dim, o.activation, o.proj_drop));
  if (o.init_values > 0.0) ls2_ = register_module("ls2", LayerScale(o.dim, o.init_values));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* attention) {
  auto branch = attn_->forward(norm1_->forward(x), attention);
  if (ls1_) branch = ls1_->forward(branch);
  auto y = x + drop_path(branch, drop_path_, is_training());
  branch = mlp_->forward(norm2_->forward(y));
  if (ls2_) branch = ls2_->forward(branch);
  return y + drop_path(branch, drop_path_, is_training());
}

}  // namespace vit
