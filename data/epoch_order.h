#pragma once
// The order in which one process visits the samples of one epoch, dealt as PyTorch's DistributedSampler deals
// them, so that several training processes (c10d) see every sample once per epoch between them.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vit::data {

struct EpochOrderOptions {
  uint64_t seed = 0;
  bool shuffle = true;     // one permutation per epoch, seeded by (seed, epoch): the same on every process
  int world_size = 1;      // processes sharing the epoch
  int rank = 0;            // this process, in [0, world_size)
  bool drop_last = false;  // truncate to a multiple of world_size instead of padding
  // Equal shares (padded or truncated, for training: every process steps as often); false: shares differ by at
  // most one and no sample is repeated or left out (for evaluation, summed over the processes afterwards).
  bool even = true;
};

// The sample indices (of `n`) this process takes in `epoch`: the epoch's permutation (or 0..n-1 without shuffle)
// made a multiple of world_size when `even` (padded by repeating its first indices, or truncated with drop_last), then every
// world_size-th index from position rank. With one process it is the whole permutation. Throws
// std::invalid_argument for a rank outside [0, world_size).
std::vector<size_t> epoch_order(size_t n, int64_t epoch, const EpochOrderOptions& options);

// How many indices epoch_order returns (the same every epoch).
size_t epoch_order_size(size_t n, const EpochOrderOptions& options);

}  // namespace vit::data
