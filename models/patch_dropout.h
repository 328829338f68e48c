#pragma once
// How many patches timm's PatchDropout keeps, apart from the tensors (layers.h draws them, model_cost.h counts
// their cost), so that the two cannot disagree.

#include <algorithm>
#include <cstdint>

namespace vit {

// max(1, floor(N * (1 - drop_prob))) of an image's N patches: at least one always survives.
inline int64_t patch_dropout_kept(int64_t patches, double drop_prob) {
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(patches) * (1.0 - drop_prob)));
}

}  // namespace vit
