#pragma once
// The Vision Transformer (Dosovitskiy et al. 2020) as timm builds it, with the options of timm's whole family
// (vit_config.h): patch embedding, class / distillation / register tokens, position embedding, optional norm_pre,
// encoder blocks, final norm, pooling (or attention pooling), linear head(s).

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
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
  // H and W are the config's image_size, or any other multiples of the patch size: the position embedding is
  // then resampled to that grid on the fly (bicubic, prefix tokens kept), as timm's dynamic_img_size does.
  torch::Tensor forward(const torch::Tensor& images);
  // (B, C, H, W) -> (B, T, D) token features after the final norm; T = prefix tokens + patches. With
  // `attention`, each block's attention probabilities (B, H, T, T) are appended to it, computed explicitly
  // (slower than the fused kernels of the plain forward pass).
  torch::Tensor forward_features(const torch::Tensor& images, std::vector<torch::Tensor>* attention = nullptr);
  // (B, C, H, W) -> (B, T, D): the tokens the first block sees, prefix tokens then patches, position embedding,
  // pos_drop and norm_pre applied. In training with PatchDropout, T = prefix tokens + the patches kept.
  torch::Tensor embed_tokens(const torch::Tensor& images);
  // (B, T, D) -> logits; with pre_logits the pooled (and fc_norm-ed) features before the head.
  torch::Tensor forward_head(const torch::Tensor& tokens, bool pre_logits = false);

  const ViTConfig& config() const { return config_; }
  // PatchDropout's rate from now on (training only): `vit train --patch-drop-tail` ends a run with every token.
  void set_patch_drop_rate(double rate);

 private:
  void init_weights();
  // Checks the input and returns the position embedding for its (H / P) x (W / P) grid.
  torch::Tensor pos_embed_for(const torch::Tensor& images) const;

  ViTConfig config_;
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor cls_token_;   // (1, 1, D); undefined without a class token
  torch::Tensor dist_token_;  // (1, 1, D); DeiT's distillation token, after the class token
  torch::Tensor reg_token_;   // (1, R, D); undefined without register tokens
  torch::Tensor pos_embed_;   // (1, T, D), or (1, N, D) with no_embed_class; a buffer for sincos, none for none
  torch::nn::Dropout pos_drop_{nullptr};
  Norm norm_pre_{nullptr};  // with pre_norm
  torch::nn::ModuleList blocks_{nullptr};
  Norm norm_{nullptr};                // before pooling (config.has_norm())
  AttentionPool attn_pool_{nullptr};  // global_pool 'map'
  Norm fc_norm_{nullptr};             // after pooling (config.has_fc_norm())
  torch::nn::Dropout head_drop_{nullptr};
  Linear head_{nullptr};       // absent when num_classes == 0
  Linear head_dist_{nullptr};  // dist_token 'heads': the distillation token's head, averaged with head
};
TORCH_MODULE(VisionTransformer);

}  // namespace vit
