#pragma once
// The building blocks of a Vision Transformer, named as timm names them so that state-dict keys match
// timm's checkpoints one to one (`patch_embed.proj`, `blocks.N.attn.qkv`, `blocks.N.mlp.fc1`, ...).

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <utility>
#include <vector>

#include "models/vit_config.h"

namespace vit {

// Stochastic depth: during training, drops the whole residual branch of each sample with probability
// `drop_prob` and rescales the survivors so the expectation is unchanged. Identity in eval mode.
torch::Tensor drop_path(const torch::Tensor& x, double drop_prob, bool training);

// timm's PatchDropout (training only), as the patch tokens each image keeps: (B, K) indices into its N patches,
// a random K = patch_dropout_kept(N, drop_prob) of them per image (patch_dropout.h), in random order. Fewer tokens make
// the step cheaper and act as augmentation; VisionTransformer embeds only the kept patches
// (PatchEmbed::forward_patches).
torch::Tensor patch_dropout_indices(int64_t batch, int64_t patches, double drop_prob, const torch::Device& device);

// Per image, the rows `indices` (B, K) picks from `tokens`, (B, N, D), or (1, N, D) shared by every image (a
// position embedding): (B, K, D).
torch::Tensor select_tokens(const torch::Tensor& tokens, const torch::Tensor& indices);

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

// timm's norm_layer: LayerNorm (`weight`, `bias`) or RMSNorm (`weight` only) over the last dimension.
class NormImpl : public torch::nn::Module {
 public:
  NormImpl(int64_t dim, NormLayer kind, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  // The norm of x for the linear layer that takes it next: under CPU bf16 autocast a LayerNorm writes bf16 itself
  // (cpu_layer_norm.h), which that layer would cast it to; otherwise forward(x).
  torch::Tensor forward_for_linear(const torch::Tensor& x);
  // {x + branch, forward_for_linear(x + branch)}: a pre-norm block's residual add and its next norm, in one pass
  // under CPU bf16 autocast (cpu_layer_norm.h).
  std::pair<torch::Tensor, torch::Tensor> add_then_forward_for_linear(const torch::Tensor& x,
                                                                      const torch::Tensor& branch);

  torch::Tensor weight;
  torch::Tensor bias;  // LayerNorm only

 private:
  NormLayer kind_;
  double eps_;
};
TORCH_MODULE(Norm);

// The whole patches of side `patch_size` in images (B, C, H, W), row-major; pixels past the last whole patch are
// unused, as in timm's strided convolution.
struct PatchGrid {
  int64_t rows;
  int64_t columns;
  int64_t count() const { return rows * columns; }
};
PatchGrid patch_grid(const torch::Tensor& images, int64_t patch_size);

// Images (B, C, H, W) -> patch tokens (B, N, D) with one strided convolution (kernel = stride = patch), then the
// optional `norm` (timm's embed_norm_layer).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  // Without `bias` the convolution has none (timm with pre_norm, as CLIP).
  PatchEmbedImpl(const ViTConfig& config);
  // (B, C, H, W) -> (B, N, D): every whole patch, in row-major order.
  torch::Tensor forward(const torch::Tensor& images);
  // Only the patches `indices` (B, K) names, each image its own: forward(images) with select_tokens(..., indices)
  // applied, computed as a product of those patches' pixels with the convolution's kernel, so that patches
  // PatchDropout drops are never embedded (nor their gradients zero-filled in the backward pass).
  torch::Tensor forward_patches(const torch::Tensor& images, const torch::Tensor& indices);

 private:
  torch::nn::Conv2d proj_{nullptr};
  Norm norm_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Multi-head self-attention with one fused qkv projection (rows ordered q, k, v, as in timm); optional q/k norms
// (qk_norm) and a norm before the output projection (scale_attn_norm).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ViTConfig& config);
  // (B, N, D) -> (B, N, D). With `probs`, attention is computed explicitly, softmax(q k^T / sqrt(Dh)) v, and its
  // probabilities (B, H, N, N) are stored there (for attention maps); otherwise fused kernels, which never
  // materialise them.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* probs = nullptr);

 private:
  int64_t num_heads_;
  double attn_drop_;
  Linear qkv_{nullptr};
  Norm q_norm_{nullptr};
  Norm k_norm_{nullptr};
  Norm norm_{nullptr};
  Linear proj_{nullptr};
  torch::nn::Dropout proj_drop_{nullptr};
};
TORCH_MODULE(Attention);

// Attention over (B, H, N, Dh) queries, keys and values -> (B, N, H * Dh); explicit with `probs` (stored
// there), fused otherwise. Shared by the attention layers.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout,
                     bool training, torch::Tensor* probs);

// The activation timm's act_layer names.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

// The block's feed-forward layer: timm's Mlp (fc1, act, fc2), SwiGLU (fc1_g, fc1_x, fc2) or SwiGLUPacked (fc1
// holding both halves, fc2), with the optional `norm` before fc2 (scale_mlp_norm).
class MlpImpl : public torch::nn::Module {
 public:
  struct Options {
    int64_t dim;
    int64_t hidden_dim;  // fc1's width (both halves for the packed SwiGLU)
    MlpLayer kind = MlpLayer::Mlp;
    Activation activation = Activation::Gelu;
    bool bias = true;
    double drop = 0.0;
    bool norm = false;  // with the norm kind and eps below
    NormLayer norm_layer = NormLayer::LayerNorm;
    double norm_eps = 1e-6;
  };
  explicit MlpImpl(const Options& options);
  static Options options_for(const ViTConfig& config);  // the encoder blocks' MLP
  torch::Tensor forward(const torch::Tensor& x);

 private:
  MlpLayer kind_;
  Activation activation_;
  Linear fc1_{nullptr};  // fc1, or fc1_x for SwiGLU
  Linear fc1_g_{nullptr};
  Norm norm_{nullptr};
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

// What every encoder block does, whichever way it composes attention and MLP (config.block_fn).
class EncoderBlock : public torch::nn::Module {
 public:
  // (B, N, D) -> (B, N, D). With `attention`, stores the block's attention probabilities there (B, H, N, N).
  virtual torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention) = 0;
};

// The encoder block config.block_fn names, as block `index` of the model (its stochastic-depth rate).
std::shared_ptr<EncoderBlock> make_block(const ViTConfig& config, int64_t index);

// timm's Block (pre-norm: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))); layer scales with init_values) and
// ResPostBlock (x + norm1(attn(x)), then x + norm2(mlp(x)); init_values starts the norms' weights).
class BlockImpl : public EncoderBlock {
 public:
  BlockImpl(const ViTConfig& config, double drop_path);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention) override;

  // A pre-norm block's first norm (norm1), which a block before it may apply for it; null for a res-post block.
  NormImpl* first_norm() { return res_post_ ? nullptr : norm1_.get(); }
  // A pre-norm block chained to its neighbours, so that each residual add is joined to the norm that reads its sum
  // (NormImpl::add_then_forward_for_linear): `normed_x`, when defined, is first_norm()->forward_for_linear(x) as the
  // block before computed it; with `next_norm` (the next block's first_norm()) the block's last add is joined to it.
  // Returns {the block's output, next_norm's of it (undefined without next_norm)}: the values of forward() and of
  // next_norm->forward_for_linear() on it.
  std::pair<torch::Tensor, torch::Tensor> forward_chained(const torch::Tensor& x, const torch::Tensor& normed_x,
                                                          NormImpl* next_norm, torch::Tensor* attention);

 private:
  bool res_post_;
  double drop_path_;
  Norm norm1_{nullptr};
  Attention attn_{nullptr};
  LayerScale ls1_{nullptr};
  Norm norm2_{nullptr};
  Mlp mlp_{nullptr};
  LayerScale ls2_{nullptr};
};

// One branch of timm's ParallelThingsBlock: `norm`, then the attention or the MLP, then the optional `ls`.
class ParallelBranchImpl : public torch::nn::Module {
 public:
  ParallelBranchImpl(const ViTConfig& config, bool attention);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* probs);

 private:
  Norm norm_{nullptr};
  Attention attn_{nullptr};
  Mlp mlp_{nullptr};
  LayerScale ls_{nullptr};
};
TORCH_MODULE(ParallelBranch);

// timm's ParallelThingsBlock with two branches: x + attns.0(x) + attns.1(x), then the same with ffns.
class ParallelThingsBlockImpl : public EncoderBlock {
 public:
  ParallelThingsBlockImpl(const ViTConfig& config, double drop_path);
  // `attention`: the mean of the two attentions' probabilities.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention) override;

 private:
  double drop_path_;
  std::vector<ParallelBranch> attns_;
  std::vector<ParallelBranch> ffns_;
};

// timm's ParallelScalingBlock (ViT-22B): y = in_proj(in_norm(x)) split into the MLP's input and q, k, v; then
// x + ls(attn_out_proj(attention) + mlp_out_proj(act(mlp part))).
class ParallelScalingBlockImpl : public EncoderBlock {
 public:
  ParallelScalingBlockImpl(const ViTConfig& config, double drop_path);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attention) override;

 private:
  int64_t num_heads_;
  int64_t hidden_;
  Activation activation_;
  double attn_drop_;
  double drop_path_;
  Norm in_norm_{nullptr};
  Linear in_proj_{nullptr};
  torch::Tensor mlp_bias_;  // only without qkv bias: in_proj then has none for the MLP part either
  Norm q_norm_{nullptr};
  Norm k_norm_{nullptr};
  torch::nn::Dropout mlp_drop_{nullptr};
  Linear attn_out_proj_{nullptr};
  Linear mlp_out_proj_{nullptr};
  LayerScale ls_{nullptr};
};

// timm's AttentionPoolLatent as VisionTransformer builds it for global_pool 'map': a learned `latent` query
// attends over the tokens (q, kv, proj), then x + mlp(norm(x)); (B, N, D) -> (B, D).
class AttentionPoolImpl : public torch::nn::Module {
 public:
  explicit AttentionPoolImpl(const ViTConfig& config);
  torch::Tensor forward(const torch::Tensor& tokens);

  torch::Tensor latent;

 private:
  int64_t num_heads_;
  Linear q_{nullptr};
  Linear kv_{nullptr};
  Linear proj_{nullptr};
  Norm norm_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(AttentionPool);

}  // namespace vit
