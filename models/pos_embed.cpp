#include "models/pos_embed.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace vit {

at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t new_grid, int64_t num_prefix_tokens) {
  const int64_t patches = pos_embed.dim() == 3 ? pos_embed.size(1) - num_prefix_tokens : -1;
  const auto old_grid =
      static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0)))));
  if (pos_embed.dim() != 3 || pos_embed.size(0) != 1 || patches <= 0 || old_grid * old_grid != patches) {
    std::ostringstream message;
    message << "pos_embed: expected shape (1, " << num_prefix_tokens << " + G*G, D), got " << pos_embed.sizes();
    throw std::invalid_argument(message.str());
  }
  return resample_pos_embed(pos_embed, old_grid, old_grid, new_grid, new_grid, num_prefix_tokens);
}

at::Tensor resample_pos_embed(const at::Tensor& pos_embed, int64_t old_height, int64_t old_width, int64_t new_height,
                              int64_t new_width, int64_t num_prefix_tokens) {
  const int64_t patches = old_height * old_width;
  if (pos_embed.dim() != 3 || pos_embed.size(0) != 1 || pos_embed.size(1) != num_prefix_tokens + patches) {
    std::ostringstream message;
    message << "pos_embed: expected shape (1, " << num_prefix_tokens << " + " << old_height << "*" << old_width
            << ", D), got " << pos_embed.sizes();
    throw std::invalid_argument(message.str());
  }
  if (new_height <= 0 || new_width <= 0) throw std::invalid_argument("pos_embed: new grid size must be positive");
  if (new_height == old_height && new_width == old_width) return pos_embed;

  const int64_t dim = pos_embed.size(2);
  const auto original_dtype = pos_embed.scalar_type();
  auto prefix = pos_embed.narrow(1, 0, num_prefix_tokens);  // (1, prefix, D)
  auto grid = pos_embed.narrow(1, num_prefix_tokens, patches)
                  .to(at::kFloat)
                  .reshape({1, old_height, old_width, dim})  // (1, H, W, D)
                  .permute({0, 3, 1, 2});                    // (1, D, H, W)
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{new_height, new_width})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));  // (1, D, H', W')
  grid = grid.permute({0, 2, 3, 1})
             .reshape({1, new_height * new_width, dim})  // (1, H'*W', D)
             .to(original_dtype);
  return at::cat({prefix, grid}, 1);
}

at::Tensor sincos_pos_embed(int64_t height, int64_t width, int64_t dim, int64_t num_prefix_tokens) {
  if (dim % 4 != 0) throw std::invalid_argument("sincos position embedding: dim must be a multiple of 4");
  const int64_t quarter = dim / 4;
  const auto options = at::TensorOptions().dtype(at::kDouble);  // computed in double, stored as float
  const auto omega = at::pow(10000.0, -at::arange(quarter, options) / static_cast<double>(quarter));  // (D/4)
  auto encode = [&](const at::Tensor& positions) {                                                    // (N) -> (N, D/2)
    const auto angles = positions.unsqueeze(1) * omega.unsqueeze(0);
    return at::cat({at::sin(angles), at::cos(angles)}, 1);
  };
  const auto rows = at::arange(height, options).repeat_interleave(width);  // row of each patch, row-major
  const auto columns = at::arange(width, options).repeat({height});
  auto table = at::cat({encode(columns), encode(rows)}, 1);  // (H*W, D)
  table = at::cat({at::zeros({num_prefix_tokens, dim}, options), table}, 0);
  return table.unsqueeze(0).to(at::kFloat);
}

}  // namespace vit
