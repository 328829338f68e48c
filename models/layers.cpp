#include "models/layers.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/version.h>

#include <cmath>
#include <stdexcept>

#include "models/autocast_state.h"
#include "models/cpu_attention.h"
#include "models/cpu_attention_bf16.h"
#include "models/cpu_gelu.h"
#include "models/cpu_layer_norm.h"
#include "models/cpu_linear.h"
#include "models/cpu_residual_add.h"
#include "models/cpu_softmax.h"
#include "models/patch_dropout.h"

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

torch::Tensor patch_dropout_indices(int64_t batch, int64_t patches, double drop_prob, const torch::Device& device) {
  const int64_t keep = patch_dropout_kept(patches, drop_prob);
  // A random permutation per image, from sorting noise; its first `keep` entries are the kept patches.
  const auto noise = torch::randn({batch, patches}, torch::TensorOptions(device).dtype(torch::kFloat));
  const auto order = noise.argsort(/*dim=*/-1, /*descending=*/false);
  return order.narrow(1, 0, keep);
}

PatchGrid patch_grid(const torch::Tensor& images, int64_t patch_size) {
  return {images.size(2) / patch_size, images.size(3) / patch_size};
}

torch::Tensor select_tokens(const torch::Tensor& tokens, const torch::Tensor& indices) {
  if (tokens.size(0) == 1) {  // shared rows: an index_select, whose backward adds into (N, D) rather than (B, N, D)
    return tokens.squeeze(0).index_select(0, indices.flatten()).view({indices.size(0), indices.size(1), -1});
  }
  return tokens.gather(1, indices.unsqueeze(-1).expand({-1, -1, tokens.size(2)}));
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

namespace {

// x + branch. Under CPU bf16 autocast a branch that ends in a linear layer is bf16 while the residual stream stays
// float32; vit's kernel adds the two without LibTorch's float32 copy of the branch (cpu_residual_add.h).
torch::Tensor add_residual(const torch::Tensor& x, const torch::Tensor& branch) {
  return cpu::residual_add_available(x, branch) ? cpu::residual_add(x, branch) : x + branch;
}

}  // namespace

NormImpl::NormImpl(int64_t dim, NormLayer kind, double eps) : kind_(kind), eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
  if (kind == NormLayer::LayerNorm) bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& input) {
  // An input and weights of different types (under autocast, a bf16 branch beside float32 weights: a res-post
  // block's norms, q/k norms, the attention's and MLP's inner norms, attention pooling's norm) are normalised in the
  // wider type, float32, as autocast does on CUDA: LibTorch 1.13's CPU layer_norm cannot take the two types
  // together, and an RMS over bf16 squares would lose precision.
  // (Only then converted: a conversion to the same type would still be recorded in a TorchScript trace.)
  const auto type = at::promote_types(input.scalar_type(), weight.scalar_type());
  auto as_type = [type](const torch::Tensor& t) { return t.defined() && t.scalar_type() != type ? t.to(type) : t; };
  const auto x = as_type(input);
  if (kind_ == NormLayer::LayerNorm) return torch::layer_norm(x, {x.size(-1)}, as_type(weight), as_type(bias), eps_);
  // timm's RmsNorm: x * rsqrt(mean(x^2) + eps) * weight.
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps_) * as_type(weight);
}

torch::Tensor NormImpl::forward_for_linear(const torch::Tensor& x) {
  if (kind_ == NormLayer::LayerNorm && bf16_autocast(at::kCPU) && cpu::layer_norm_to_bf16_available(x, weight, bias))
    return cpu::layer_norm_to_bf16(x, weight, bias, eps_);
  return forward(x);
}

std::pair<torch::Tensor, torch::Tensor> NormImpl::add_then_forward_for_linear(const torch::Tensor& x,
                                                                              const torch::Tensor& branch) {
  if (kind_ == NormLayer::LayerNorm && bf16_autocast(at::kCPU) &&
      cpu::residual_add_layer_norm_to_bf16_available(x, branch, weight, bias))
    return cpu::residual_add_layer_norm_to_bf16(x, branch, weight, bias, eps_);
  auto sum = add_residual(x, branch);
  return {sum, forward_for_linear(sum)};
}

namespace {

Norm make_norm(const ViTConfig& c, int64_t dim) { return Norm(dim, c.norm_layer, c.norm_eps); }

}  // namespace

PatchEmbedImpl::PatchEmbedImpl(const ViTConfig& c) {
  // timm leaves the patch embedding's bias out when a norm follows the embedding (pre_norm, as CLIP).
  proj_ = register_module(
      "proj",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(c.in_chans, c.embed_dim, c.patch_size).stride(c.patch_size).bias(!c.pre_norm)));
  if (c.embed_norm) norm_ = register_module("norm", make_norm(c, c.embed_dim));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  auto x = proj_->forward(images).flatten(2).transpose(1, 2);  // (B, D, H/P, W/P) -> (B, N, D)
  return norm_ ? norm_->forward(x) : x;
}

torch::Tensor PatchEmbedImpl::forward_patches(const torch::Tensor& images, const torch::Tensor& indices) {
  // A convolution whose stride is its kernel size is a linear layer on each patch's pixels, flattened in the
  // kernel's (C, P, P) order.
  const int64_t p = (*proj_->options.kernel_size())[0];
  const int64_t channels = images.size(1);
  const auto grid = patch_grid(images, p);
  const auto patches = images.narrow(2, 0, grid.rows * p)
                           .narrow(3, 0, grid.columns * p)
                           .reshape({-1, channels, grid.rows, p, grid.columns, p})
                           .permute({0, 2, 4, 1, 3, 5})  // (B, rows, columns, C, P, P)
                           .reshape({-1, grid.count(), channels * p * p});
  auto x = linear(select_tokens(patches, indices), proj_->weight.flatten(1), proj_->bias);  // (B, K, D)
  return norm_ ? norm_->forward(x) : x;
}

AttentionImpl::AttentionImpl(const ViTConfig& c) : num_heads_(c.num_heads), attn_drop_(c.attn_drop_rate) {
  qkv_ = register_module("qkv", Linear(c.embed_dim, 3 * c.embed_dim, c.qkv_bias));
  if (c.qk_norm) {
    q_norm_ = register_module("q_norm", make_norm(c, c.head_dim()));
    k_norm_ = register_module("k_norm", make_norm(c, c.head_dim()));
  }
  if (c.scale_attn_norm) norm_ = register_module("norm", make_norm(c, c.embed_dim));
  proj_ = register_module("proj", Linear(c.embed_dim, c.embed_dim, c.proj_bias));
  proj_drop_ = register_module("proj_drop", torch::nn::Dropout(c.proj_drop_rate));
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout,
                     bool training, torch::Tensor* probs) {
  torch::Tensor out;
  if (probs) {
    const auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(q.size(3)));
    *probs = torch::softmax(scores, -1);  // (B, H, N, N)
    out = torch::matmul(torch::dropout(*probs, dropout, training), v);
  } else if (cpu::kSoftmaxInAttention && dropout == 0.0 && cpu::softmax_available(q)) {
    // LibTorch 1.x's fused attention on CPU is this same formulation with its own softmax and a separate q * scale
    // pass; vit's softmax folds the scale in, and its backward is twice as fast (cpu_softmax.h).
    const auto scores = torch::matmul(q, k.transpose(2, 3));  // (B, H, N, N)
    out = torch::matmul(cpu::scaled_softmax(scores, 1.0 / std::sqrt(static_cast<double>(q.size(3)))), v);
  } else {
    out = fused_attention(q, k, v, dropout);  // (B, H, N, Dh)
  }
  // The batch stays -1 so that a traced graph keeps a dynamic batch dimension.
  return out.transpose(1, 2).reshape({-1, q.size(2), q.size(1) * q.size(3)});  // (B, N, D)
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, torch::Tensor* probs) {
  // Sizes other than the batch are architecture constants; the batch stays -1 so that a traced graph keeps
  // a dynamic batch dimension.
  const int64_t tokens = x.size(1);
  const int64_t head_dim = x.size(2) / num_heads_;
  const double dropout = is_training() ? attn_drop_ : 0.0;
  const auto projected = qkv_->forward(x);  // (B, N, 3 * D)
  torch::Tensor out;
  if (!probs && dropout == 0.0 && !q_norm_ && cpu_attention_available(projected)) {
    out = cpu_attention(projected, num_heads_);  // (B, N, D)
  } else if (kBf16AttentionKernel && !probs && dropout == 0.0 && !q_norm_ && bf16_autocast(at::kCPU) &&
             cpu_attention_bf16_available(projected, num_heads_)) {
    out = cpu_attention_bf16(projected, num_heads_);  // (B, N, D) bf16: a short sequence under autocast
  } else {
    auto qkv = projected
                   .reshape({-1, tokens, 3, num_heads_, head_dim})  // (B, N, 3, H, Dh)
                   .permute({2, 0, 3, 1, 4});                       // (3, B, H, N, Dh)
    // unbind rather than three selects: its backward stacks the three gradients once, where each select's
    // backward would zero-fill and copy a tensor the size of all of qkv (measured: ~10% of a training step).
    const auto parts = qkv.unbind(0);
    auto q = parts[0];
    auto k = parts[1];
    if (q_norm_) {
      q = q_norm_->forward(q);
      k = k_norm_->forward(k);
    }
    out = attend(q, k, parts[2], dropout, is_training(), probs);
  }
  if (norm_) out = norm_->forward(out);
  return proj_drop_->forward(proj_->forward(out));
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::Gelu:  // exact erf GELU, as timm's nn.GELU(); on CPU vit's kernel (cpu_gelu.h says why)
      return cpu::gelu_available(x) ? cpu::gelu(x) : torch::gelu(x);
    case Activation::GeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::QuickGelu:
      return x * torch::sigmoid(1.702 * x);
    case Activation::Silu:
      return torch::silu(x);
  }
  throw std::logic_error("unknown activation");
}

MlpImpl::Options MlpImpl::options_for(const ViTConfig& c) {
  return Options{c.embed_dim,      c.mlp_hidden_dim(), c.mlp_layer,  c.act_layer, c.proj_bias,
                 c.proj_drop_rate, c.scale_mlp_norm,   c.norm_layer, c.norm_eps};
}

MlpImpl::MlpImpl(const Options& o) : kind_(o.kind), activation_(o.activation) {
  const int64_t inner = o.kind == MlpLayer::SwiGluPacked ? o.hidden_dim / 2 : o.hidden_dim;  // what fc2 reads
  if (o.kind == MlpLayer::SwiGlu) {
    fc1_g_ = register_module("fc1_g", Linear(o.dim, o.hidden_dim, o.bias));
    fc1_ = register_module("fc1_x", Linear(o.dim, o.hidden_dim, o.bias));
  } else {
    fc1_ = register_module("fc1", Linear(o.dim, o.hidden_dim, o.bias));
  }
  if (o.norm) norm_ = register_module("norm", Norm(inner, o.norm_layer, o.norm_eps));
  fc2_ = register_module("fc2", Linear(inner, o.dim, o.bias));
  drop_ = register_module("drop", torch::nn::Dropout(o.drop));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor hidden;
  switch (kind_) {
    case MlpLayer::Mlp:
      hidden = activate(fc1_->forward(x), activation_);
      break;
    case MlpLayer::SwiGlu:
      hidden = activate(fc1_g_->forward(x), activation_) * fc1_->forward(x);
      break;
    case MlpLayer::SwiGluPacked: {
      const auto halves = fc1_->forward(x).chunk(2, -1);  // the first half is the gate
      hidden = activate(halves[0], activation_) * halves[1];
      break;
    }
  }
  hidden = drop_->forward(hidden);
  if (norm_) hidden = norm_->forward(hidden);
  return drop_->forward(fc2_->forward(hidden));
}

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_values) {
  gamma = register_parameter("gamma", torch::full({dim}, init_values));
}

BlockImpl::BlockImpl(const ViTConfig& c, double drop_path)
    : res_post_(c.block_fn == BlockFn::ResPost), drop_path_(drop_path) {
  norm1_ = register_module("norm1", make_norm(c, c.embed_dim));
  attn_ = register_module("attn", Attention(c));
  if (c.init_values > 0.0 && !res_post_) ls1_ = register_module("ls1", LayerScale(c.embed_dim, c.init_values));
  norm2_ = register_module("norm2", make_norm(c, c.embed_dim));
  mlp_ = register_module("mlp", Mlp(MlpImpl::options_for(c)));
  if (c.init_values > 0.0 && !res_post_) ls2_ = register_module("ls2", LayerScale(c.embed_dim, c.init_values));
  if (c.init_values > 0.0 && res_post_) {  // timm's ResPostBlock starts its norms' weights at init_values
    torch::NoGradGuard no_grad;
    norm1_->weight.fill_(c.init_values);
    norm2_->weight.fill_(c.init_values);
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* attention) {
  if (res_post_) {
    auto y = add_residual(x, drop_path(norm1_->forward(attn_->forward(x, attention)), drop_path_, is_training()));
    return add_residual(y, drop_path(norm2_->forward(mlp_->forward(y)), drop_path_, is_training()));
  }
  return forward_chained(x, torch::Tensor(), nullptr, attention).first;
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forward_chained(const torch::Tensor& x,
                                                                   const torch::Tensor& normed_x, NormImpl* next_norm,
                                                                   torch::Tensor* attention) {
  TORCH_CHECK(!res_post_, "forward_chained is for pre-norm blocks");
  auto branch = attn_->forward(normed_x.defined() ? normed_x : norm1_->forward_for_linear(x), attention);
  if (ls1_) branch = ls1_->forward(branch);
  const auto [y, normed] = norm2_->add_then_forward_for_linear(x, drop_path(branch, drop_path_, is_training()));
  branch = mlp_->forward(normed);
  if (ls2_) branch = ls2_->forward(branch);
  branch = drop_path(branch, drop_path_, is_training());
  if (next_norm) return next_norm->add_then_forward_for_linear(y, branch);
  return {add_residual(y, branch), torch::Tensor()};
}

ParallelBranchImpl::ParallelBranchImpl(const ViTConfig& c, bool attention) {
  norm_ = register_module("norm", make_norm(c, c.embed_dim));
  if (attention) {
    attn_ = register_module("attn", Attention(c));
  } else {
    mlp_ = register_module("mlp", Mlp(MlpImpl::options_for(c)));
  }
  if (c.init_values > 0.0) ls_ = register_module("ls", LayerScale(c.embed_dim, c.init_values));
}

torch::Tensor ParallelBranchImpl::forward(const torch::Tensor& x, torch::Tensor* probs) {
  auto y = norm_->forward(x);
  y = attn_ ? attn_->forward(y, probs) : mlp_->forward(y);
  return ls_ ? ls_->forward(y) : y;
}

ParallelThingsBlockImpl::ParallelThingsBlockImpl(const ViTConfig& c, double drop_path) : drop_path_(drop_path) {
  constexpr int kBranches = 2;  // timm's num_parallel default, which its registered models use
  auto attns = register_module("attns", torch::nn::ModuleList());
  auto ffns = register_module("ffns", torch::nn::ModuleList());
  for (int i = 0; i < kBranches; ++i) {
    attns_.push_back(ParallelBranch(c, true));
    attns->push_back(attns_.back());
    ffns_.push_back(ParallelBranch(c, false));
    ffns->push_back(ffns_.back());
  }
}

torch::Tensor ParallelThingsBlockImpl::forward(const torch::Tensor& x, torch::Tensor* attention) {
  auto sum_branches = [&](std::vector<ParallelBranch>& branches, const torch::Tensor& input, bool attend_maps) {
    torch::Tensor total;
    torch::Tensor probs_sum;
    for (auto& branch : branches) {
      torch::Tensor probs;
      auto y = drop_path(branch->forward(input, attend_maps ? &probs : nullptr), drop_path_, is_training());
      total = total.defined() ? total + y : y;
      if (attend_maps) probs_sum = probs_sum.defined() ? probs_sum + probs : probs;
    }
    if (attend_maps) *attention = probs_sum / static_cast<double>(branches.size());
    return total;
  };
  auto y = add_residual(x, sum_branches(attns_, x, attention != nullptr));
  return add_residual(y, sum_branches(ffns_, y, false));
}

ParallelScalingBlockImpl::ParallelScalingBlockImpl(const ViTConfig& c, double drop_path)
    : num_heads_(c.num_heads),
      hidden_(c.mlp_hidden_dim()),
      activation_(c.act_layer),
      attn_drop_(c.attn_drop_rate),
      drop_path_(drop_path) {
  const int64_t d = c.embed_dim;
  in_norm_ = register_module("in_norm", make_norm(c, d));
  in_proj_ = register_module("in_proj", Linear(d, hidden_ + 3 * d, c.qkv_bias));
  if (!c.qkv_bias) mlp_bias_ = register_parameter("mlp_bias", torch::zeros({hidden_}));
  if (c.qk_norm) {
    q_norm_ = register_module("q_norm", make_norm(c, c.head_dim()));
    k_norm_ = register_module("k_norm", make_norm(c, c.head_dim()));
  }
  mlp_drop_ = register_module("mlp_drop", torch::nn::Dropout(c.proj_drop_rate));
  attn_out_proj_ = register_module("attn_out_proj", Linear(d, d, c.proj_bias));
  mlp_out_proj_ = register_module("mlp_out_proj", Linear(hidden_, d, c.proj_bias));
  if (c.init_values > 0.0) ls_ = register_module("ls", LayerScale(d, c.init_values));
}

torch::Tensor ParallelScalingBlockImpl::forward(const torch::Tensor& x, torch::Tensor* attention) {
  const int64_t tokens = x.size(1);
  const int64_t d = x.size(2);
  const auto parts = in_proj_->forward(in_norm_->forward(x)).split_with_sizes({hidden_, d, d, d}, -1);
  auto heads = [&](const torch::Tensor& t) {  // (B, N, D) -> (B, H, N, Dh)
    return t.reshape({-1, tokens, num_heads_, d / num_heads_}).transpose(1, 2);
  };
  auto q = heads(parts[1]);
  auto k = heads(parts[2]);
  if (q_norm_) {
    q = q_norm_->forward(q);
    k = k_norm_->forward(k);
  }
  const double dropout = is_training() ? attn_drop_ : 0.0;
  const auto attended = attend(q, k, heads(parts[3]), dropout, is_training(), attention);  // (B, N, D)
  auto mlp_in = mlp_bias_.defined() ? parts[0] + mlp_bias_ : parts[0];
  const auto mlp_out = mlp_drop_->forward(activate(mlp_in, activation_));
  auto y = attn_out_proj_->forward(attended) + mlp_out_proj_->forward(mlp_out);
  if (ls_) y = ls_->forward(y);
  return add_residual(x, drop_path(y, drop_path_, is_training()));
}

std::shared_ptr<EncoderBlock> make_block(const ViTConfig& c, int64_t index) {
  // Stochastic depth rises linearly from 0 in the first block to drop_path_rate in the last.
  const double drop_path = c.depth > 1 ? c.drop_path_rate * static_cast<double>(index) / (c.depth - 1) : 0.0;
  switch (c.block_fn) {
    case BlockFn::Block:
    case BlockFn::ResPost:
      return std::make_shared<BlockImpl>(c, drop_path);
    case BlockFn::ParallelThings:
      return std::make_shared<ParallelThingsBlockImpl>(c, drop_path);
    case BlockFn::ParallelScaling:
      return std::make_shared<ParallelScalingBlockImpl>(c, drop_path);
  }
  throw std::logic_error("unknown block_fn");
}

AttentionPoolImpl::AttentionPoolImpl(const ViTConfig& c) : num_heads_(c.num_heads) {
  const int64_t d = c.embed_dim;
  latent = register_parameter("latent", torch::zeros({1, 1, d}));
  q_ = register_module("q", Linear(d, d));
  kv_ = register_module("kv", Linear(d, 2 * d));
  proj_ = register_module("proj", Linear(d, d));
  norm_ = register_module("norm", make_norm(c, d));
  // A plain MLP with biases whatever the blocks use, as timm builds it.
  mlp_ = register_module("mlp", Mlp(MlpImpl::Options{d, c.mlp_hidden_dim(), MlpLayer::Mlp, c.act_layer}));
}

torch::Tensor AttentionPoolImpl::forward(const torch::Tensor& tokens) {
  const int64_t n = tokens.size(1);
  const int64_t d = tokens.size(2);
  const int64_t head_dim = d / num_heads_;
  // Expanded as a slice of the input, never its size(0), so that a traced graph keeps the batch dynamic.
  const auto q = q_->forward(latent.expand_as(tokens.narrow(1, 0, 1)))  // (B, 1, D)
                     .reshape({-1, 1, num_heads_, head_dim})
                     .transpose(1, 2);  // (B, H, 1, Dh)
  const auto kv = kv_->forward(tokens).reshape({-1, n, 2, num_heads_, head_dim}).permute({2, 0, 3, 1, 4}).unbind(0);
  auto x = proj_->forward(attend(q, kv[0], kv[1], 0.0, false, nullptr));  // (B, 1, D)
  x = x + mlp_->forward(norm_->forward(x));
  return x.select(1, 0);  // (B, D)
}

}  // namespace vit
