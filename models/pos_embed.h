#pragma once
// Position embeddings for another input size: timm's resample_abs_pos_embed.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

// (1, prefix + G*G, D) -> (1, prefix + new_grid^2, D): the patch part is reshaped to its G x G grid and
// resized with antialiased bicubic interpolation (as timm does), the prefix (class token) rows are kept.
// Throws std::invalid_argument if the patch part is not a square grid.
at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t new_grid, int64_t num_prefix_tokens);

}  // namespace vit
