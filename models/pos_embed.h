#pragma once
// Position embeddings: resampling to another input size (timm's resample_abs_pos_embed) and the fixed 2-D
// sine-cosine encoding.

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace vit {

// (1, prefix + G*G, D) -> (1, prefix + new_grid^2, D): the patch part is reshaped to its G x G grid and
// resized with antialiased bicubic interpolation (as timm does), the prefix (class token) rows are kept.
// Throws std::invalid_argument if the patch part is not a square grid.
at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t new_grid, int64_t num_prefix_tokens);

// The same from a (old_height x old_width) grid to a (new_height x new_width) one; rows are the outer index.
at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t old_height, int64_t old_width, int64_t new_height,
                              int64_t new_width, int64_t num_prefix_tokens);

// The fixed 2-D sine-cosine position embedding (as MAE lays the Transformer's sinusoids over a patch grid):
// (1, prefix + height * width, dim), zeros for the prefix rows. For the patch at (row, column), channels
// [0, dim/2) encode the column and [dim/2, dim) the row, each half as sin(p * w_i) then cos(p * w_i) with
// w_i = 10000^(-i / (dim/4)), i < dim/4. dim must be a multiple of 4.
at::Tensor sincos_pos_embed(int64_t height, int64_t width, int64_t dim, int64_t num_prefix_tokens);

}  // namespace vit
