#include "data/epoch_order.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace vit::data {

namespace {

void check_rank(const EpochOrderOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw std::invalid_argument("epoch order: rank " + std::to_string(o.rank) + " is outside a world of " +
                                std::to_string(o.world_size) + " processes");
}

// The epoch's length before dealing: n, or a multiple of the world size for even shares.
size_t dealt_total(size_t n, const EpochOrderOptions& o) {
  const auto world = static_cast<size_t>(o.world_size);
  if (!o.even || world == 1) return n;
  return o.drop_last ? n / world * world : (n + world - 1) / world * world;
}

}  // namespace

size_t epoch_order_size(size_t n, const EpochOrderOptions& o) {
  check_rank(o);
  const size_t total = dealt_total(n, o);
  const auto world = static_cast<size_t>(o.world_size);
  const auto rank = static_cast<size_t>(o.rank);
  return total / world + (rank < total % world ? 1 : 0);
}

std::vector<size_t> epoch_order(size_t n, int64_t epoch, const EpochOrderOptions& o) {
  check_rank(o);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (o.shuffle) {
    // Seeded by (seed, epoch) only, never by rank: every process draws the same permutation.
    std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
  }
  if (o.world_size == 1) return order;
  const auto world = static_cast<size_t>(o.world_size);
  const size_t total = dealt_total(n, o);
  if (total > n) {  // padded by repeating the start, as DistributedSampler does (again and again if n < world)
    order.reserve(total);
    for (size_t i = 0; order.size() < total; ++i) order.push_back(order[i % n]);
  }
  order.resize(total);
  std::vector<size_t> mine;
  mine.reserve(epoch_order_size(n, o));
  for (size_t i = static_cast<size_t>(o.rank); i < total; i += world) mine.push_back(order[i]);
  return mine;
}

}  // namespace vit::data
