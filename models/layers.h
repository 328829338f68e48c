#pragma once
// The building blocks of a Vision Transformer, named as timm names them so that state-dict keys match
// timm's checkpoints one to one (`patch_embed.proj`, `blocks.N.attn.qkv`, `blocks.N.mlp.fc1`, ...).

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/vit_config.h"

namespace vit {

// Stochastic depth: during training, drops the whole residual branch of each sample with probability
// `drop_prob` and rescales the survivors so the expectation is unchanged. Identity in eval mode.
torch::Tensor drop_path(const torch::Tensor& x, double drop_prob, bool training);

// timm's PatchDropout (training only): keeps a random subset of max(1, floor(N * (1 - drop_prob))) of the N
// patch tokens of each image, prefix tokens always kept. Fewer tokens make the step cheaper and act as
// augmentation. (B, prefix + N, D) -> (B, prefix + kept, D).
torch::Tensor patch_dropout(const torch::Tensor& x, double drop_prob, int64_t prefix_tokens, bool training);

// Scaled dot-product attention over (B, H, N, D) tensors through LibTorch's fused kernel, whose name and
// signature changed between 1.13 and 2.x; the version is picked at compile time.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout_p);

// A linear layer, y = x W^T + b, with timm's parameter names (`weight` (out, in), `bias` (out)), computed by
// vit::linear (cpu_linear.h: oneDNN on float32 CPU). Its own module rather than torch::nn::Linear, which
// initialises its weights in its constructor: loading a model from a file would throw that work away (0.2 s of
// ViT-B/16's start-up). The parameters start uninitialised; VisionTransformer initialises them (timm's scheme)
// unless weights are about to be loaded over them.
class LinearImpl : public torch::nn::Module {
 public:
  // Without `bias` the layer has no `bias` parameter (timm's qkv_bias=False), and y = x W^T.
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(Linear);

// Images (B, C, H, W) -> patch tokens (B, N, D) with one strided convolution (kernel = stride = patch).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  // Without `bias` the convolution has none (timm with pre_norm, as CLIP).
  PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t patch_size, bool bias = true);
  torch::Tensor forward(const torch::Tensor& images);

 private:
  torch::nn::Conv2d proj_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Multi-head self-attention with one fused qkv projection (rows ordered q, k, v, as in timm).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, double attn_drop, double proj_drop);
  // (B, N, D) -> (B, N, D). With `probs`, attention is computed explicitly, softmax(q k^T / sqrt(Dh)) v, and its
  // probabilities (B, H, N, N) are stored there (for attention maps); otherwise fused kernels, which never
  // materialise them.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* probs = nullptr);

 private:
  int64_t num_heads_;
  double attn_drop_;
  Linear qkv_{nullptr};
  Linear proj_{nullptr};
  torch::nn::Dropout proj_drop_{nullptr};
};
TORCH_MODULE(Attention);

// The activation timm's act_layer names.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

// Two linear layers with the activation between them.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden_dim, Activation activation, double drop);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Activation activation_;
  Linear fc1_{nullptr};
  Linear fc2_{nullptr};
  torch::nn::Dropout drop_{nullptr};
};
TORCH_MODULE(Mlp);

// timm's LayerScale: multiplies each channel by a learned `gamma` (D), which starts at init_values.
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t dim, double init_values);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }

  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

struct BlockOptions {
  int64_t dim;
  int64_t num_heads;
  int64_t mlp_hidden_dim;
  double norm_eps;
  double proj_drop;
  double attn_drop;
  double drop_path;
  bool qkv_bias = true;
  double init_values = 0.0;  // layer scale (ls1, ls2) when > 0
  Activation activation = Activation::Gelu;
};

// Pre-norm transformer encoder block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))); the layer scales
// only with init_values.
class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const BlockOptions& options);
  // With `attention`, stores the block's attention probabilities there (AttentionImpl::forward).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention = nullptr);

 private:
  double drop_path_;
  torch::nn::LayerNorm norm1_{nullptr};
  Attention attn_{nullptr};
  LayerScale ls1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  LayerScale ls2_{nullptr};
};
TORCH_MODULE(Block);

}  // namespace vit
