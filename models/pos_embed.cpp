#include "models/pos_embed.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include <torch/nn/functional/upsampling.h>

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
  if (new_grid <= 0) throw std::invalid_argument("pos_embed: new grid size must be positive");
  if (new_grid == old_grid) return pos_embed;

  const int64_t dim = pos_embed.size(2);
  const auto original_dtype = pos_embed.scalar_type();
  auto prefix = pos_embed.narrow(1, 0, num_prefix_tokens);  // (1, prefix, D)
  auto grid = pos_embed.narrow(1, num_prefix_tokens, patches)
                  .to(at::kFloat)
                  .reshape({1, old_grid, old_grid, dim})  // (1, G, G, D)
                  .permute({0, 3, 1, 2});                 // (1, D, G, G)
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{new_grid, new_grid})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));  // (1, D, G', G')
  grid = grid.permute({0, 2, 3, 1})
             .reshape({1, new_grid * new_grid, dim})  // (1, G'*G', D)
             .to(original_dtype);
  return at::cat({prefix, grid}, 1);
}

}  // namespace vit
