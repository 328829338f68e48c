#pragma once
// What a Vision Transformer attends to, per image, on its patch grid: the last block's attention from the token
// the head reads, and attention rollout over all blocks (Abnar & Zuidema 2020, "Quantifying Attention Flow in
// Transformers").

#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace vit {

struct AttentionMaps {
  at::Tensor last_block;    // (B, grid, grid): the last block's attention to each patch
  at::Tensor rollout;       // (B, grid, grid): attention rollout through every block, to each patch
  bool class_token = true;  // maps are read from the class token's row; false: the mean over the patch rows
};

// `attention`: per block, (B, H, T, T) probabilities (VisionTransformerImpl::forward_features), T = prefix +
// grid * grid. Heads are averaged, or only `head` is used. Rollout: each block's matrix plus the identity (the
// residual path), rows renormalised to sum to 1, multiplied through the blocks from first to last. The maps are
// read from the class token's row when the model has one (`class_token`), else from the mean over the patch
// tokens' rows (average-pooled models), keeping the patch columns. Throws std::invalid_argument for an empty
// list, shapes that disagree, or a head out of range.
AttentionMaps attention_maps(const std::vector<at::Tensor>& attention, int64_t prefix_tokens, bool class_token,
                             std::optional<int64_t> head = std::nullopt);

}  // namespace vit
