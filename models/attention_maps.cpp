#include "models/attention_maps.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/eye.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace vit {
namespace {

// (B, H, T, T) -> (B, T, T): the mean over heads, or one head.
at::Tensor combine_heads(const at::Tensor& attention, std::optional<int64_t> head) {
  return head ? attention.select(1, *head) : attention.mean(1);
}

// (B, T, T) -> (B, grid, grid): the row the head reads (class token, or mean of the patch rows), patch columns.
at::Tensor patch_map(const at::Tensor& matrix, int64_t prefix_tokens, bool class_token, int64_t grid) {
  const int64_t patches = grid * grid;
  const at::Tensor row =
      class_token ? matrix.select(1, 0) : matrix.narrow(1, prefix_tokens, patches).mean(1);  // (B, T)
  return row.narrow(1, prefix_tokens, patches).reshape({-1, grid, grid});
}

// Returns the side of the square patch grid.
int64_t check(const std::vector<at::Tensor>& attention, int64_t prefix_tokens, std::optional<int64_t> head) {
  if (attention.empty()) throw std::invalid_argument("attention maps: no attention matrices (a model without blocks?)");
  const auto& first = attention.front();
  std::ostringstream problem;
  int64_t grid = 0;
  if (first.dim() != 4 || first.size(2) != first.size(3)) {
    problem << "attention maps: expected (B, H, T, T) attention probabilities, got " << first.sizes();
  } else {
    const int64_t patches = first.size(2) - prefix_tokens;
    grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0)))));
    if (patches <= 0 || grid * grid != patches) {
      problem << "attention maps: " << first.size(2) << " tokens minus " << prefix_tokens
              << " prefix tokens is not a square grid of patches";
    } else if (head && (*head < 0 || *head >= first.size(1))) {
      problem << "attention head " << *head << " does not exist: the model has " << first.size(1) << " heads (0 to "
              << first.size(1) - 1 << ")";
    }
    for (const auto& block : attention) {
      if (problem.tellp() == 0 && block.sizes() != first.sizes())
        problem << "attention maps: blocks disagree in shape, " << first.sizes() << " and " << block.sizes();
    }
  }
  if (problem.tellp() != 0) throw std::invalid_argument(problem.str());
  return grid;
}

}  // namespace

AttentionMaps attention_maps(const std::vector<at::Tensor>& attention, int64_t prefix_tokens, bool class_token,
                             std::optional<int64_t> head) {
  const int64_t grid = check(attention, prefix_tokens, head);
  const int64_t tokens = attention.front().size(2);
  const at::Tensor identity = at::eye(tokens, attention.front().options().dtype(at::kFloat));
  at::Tensor rollout = identity.expand({attention.front().size(0), tokens, tokens});
  for (const auto& block : attention) {
    at::Tensor a = combine_heads(block.to(at::kFloat), head) + identity;  // the residual path
    a = a / a.sum(-1, /*keepdim=*/true);
    rollout = a.bmm(rollout);  // later blocks act on what earlier blocks mixed
  }
  AttentionMaps maps;
  maps.class_token = class_token;
  maps.last_block = patch_map(combine_heads(attention.back().to(at::kFloat), head), prefix_tokens, class_token, grid);
  maps.rollout = patch_map(rollout, prefix_tokens, class_token, grid);
  return maps;
}

}  // namespace vit
