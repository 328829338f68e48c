#pragma once
// The Vision Transformer (Dosovitskiy et al. 2020) as timm builds it: patch embedding, class and register tokens,
// learned position embedding, optional norm_pre, pre-norm encoder blocks (optionally layer-scaled), final norm,
// pooling, linear head.

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "models/layers.h"
#include "models/vit_config.h"

namespace vit {

class VisionTransformerImpl : public torch::nn::Module {
 public:
  // Validates the config (std::invalid_argument naming the field) and initialises weights as timm does.
  // `initialize` false leaves timm's initialisation out, for a model whose weights are about to be loaded: it
  // is most of the time to build a large model (0.4 s of 0.65 s for ViT-B/16 here).
  explicit VisionTransformerImpl(const ViTConfig& config, bool initialize = true);

  // (B, C, H, W) images, normalised -> (B, num_classes) logits (or (B, D) features when num_classes == 0).
  torch::Tensor forward(const torch::Tensor& images);
  // (B, C, H, W) -> (B, T, D) token features after the final norm; T = prefix tokens + patches. With
  // `attention`, each block's attention probabilities (B, H, T, T) are appended to it, computed explicitly
  // (slower than the fused kernels of the plain forward pass).
  torch::Tensor forward_features(const torch::Tensor& images, std::vector<torch::Tensor>* attention = nullptr);
  // (B, T, D) -> logits; with pre_logits the pooled (and fc_norm-ed) features before the head.
  torch::Tensor forward_head(const torch::Tensor& tokens, bool pre_logits = false);

  const ViTConfig& config() const { return config_; }

 private:
  void init_weights();
  void check_input(const torch::Tensor& images) const;

  ViTConfig config_;
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor cls_token_;  // (1, 1, D); undefined without a class token
  torch::Tensor reg_token_;  // (1, R, D); undefined without register tokens
  torch::Tensor pos_embed_;  // (1, T, D), or (1, N, D) with no_embed_class
  torch::nn::Dropout pos_drop_{nullptr};
  torch::nn::LayerNorm norm_pre_{nullptr};  // with pre_norm
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};     // before pooling, unless config.fc_norm
  torch::nn::LayerNorm fc_norm_{nullptr};  // after pooling, when config.fc_norm
  torch::nn::Dropout head_drop_{nullptr};
  Linear head_{nullptr};  // absent when num_classes == 0
};
TORCH_MODULE(VisionTransformer);

}  // namespace vit
