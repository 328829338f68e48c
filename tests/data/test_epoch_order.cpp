// How the samples of an epoch are dealt to the processes of a distributed run (DistributedSampler's rules).

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "data/epoch_order.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::data {

TEST_CASE("one process: the epoch's permutation, seeded by (seed, epoch), or the identity without shuffle",
          "[epoch_order]") {
  EpochOrderOptions o;
  o.seed = 7;
  const auto first = epoch_order(100, 0, o);
  std::vector<size_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  std::vector<size_t> identity(100);
  std::iota(identity.begin(), identity.end(), size_t{0});
  CHECK(sorted == identity);
  CHECK(first != identity);
  CHECK(epoch_order(100, 0, o) == first);  // reproducible
  CHECK(epoch_order(100, 1, o) != first);  // a new permutation each epoch
  // The loader's order of earlier versions: runs resumed across the change keep their data order.
  std::vector<size_t> before = identity;
  std::mt19937_64 rng(7 * 0x9E3779B97F4A7C15ULL + 0);
  std::shuffle(before.begin(), before.end(), rng);
  CHECK(first == before);
  o.shuffle = false;
  CHECK(epoch_order(100, 3, o) == identity);
}

TEST_CASE("several processes: every sample once per epoch between them, padded or truncated as DistributedSampler",
          "[epoch_order]") {
  EpochOrderOptions o;
  o.seed = 3;
  o.world_size = 4;
  for (size_t n : {size_t{12}, size_t{10}, size_t{3}}) {
    INFO(n);
    const auto whole = epoch_order(n, 5, EpochOrderOptions{3, true, 1, 0, false});
    std::map<size_t, int> seen;
    size_t per_rank = 0;
    for (int rank = 0; rank < 4; ++rank) {
      o.rank = rank;
      const auto mine = epoch_order(n, 5, o);
      per_rank = mine.size();
      CHECK(mine.size() == (n + 3) / 4);  // the same count on every process
      // Rank r takes positions r, r + 4, ... of the epoch's permutation (padded by its start).
      for (size_t i = 0; i < mine.size(); ++i) CHECK(mine[i] == whole[(static_cast<size_t>(rank) + 4 * i) % n]);
      for (size_t index : mine) ++seen[index];
    }
    CHECK(seen.size() == n);      // every sample at least once
    CHECK(per_rank * 4 - n < 4);  // and only the padding twice
    o.drop_last = true;
    std::map<size_t, int> kept;
    for (int rank = 0; rank < 4; ++rank) {
      o.rank = rank;
      for (size_t index : epoch_order(n, 5, o)) ++kept[index];
    }
    CHECK(kept.size() == n / 4 * 4);  // truncated: no sample twice, the last n % 4 of the permutation left out
    for (const auto& entry : kept) CHECK(entry.second == 1);
    o.drop_last = false;
  }
  o.rank = 4;
  CHECK_THROWS_WITH(epoch_order(10, 0, o), Contains("rank 4 is outside a world of 4 processes"));
  CHECK_THROWS_WITH(epoch_order_size(10, o), Contains("rank 4 is outside a world of 4 processes"));
}

TEST_CASE("uneven shares for evaluation: every sample exactly once, shares differ by at most one", "[epoch_order]") {
  EpochOrderOptions o;
  o.shuffle = false;
  o.world_size = 3;
  o.even = false;
  for (size_t n : {size_t{0}, size_t{2}, size_t{10}, size_t{12}}) {
    INFO(n);
    std::vector<size_t> all;
    for (int rank = 0; rank < 3; ++rank) {
      o.rank = rank;
      const auto mine = epoch_order(n, 0, o);
      CHECK(mine.size() == epoch_order_size(n, o));
      CHECK(mine.size() == n / 3 + (static_cast<size_t>(rank) < n % 3 ? 1 : 0));
      all.insert(all.end(), mine.begin(), mine.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<size_t> expected(n);
    std::iota(expected.begin(), expected.end(), size_t{0});
    CHECK(all == expected);
  }
  o.even = true;  // the sizes the padded shares have
  for (int rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    CHECK(epoch_order_size(10, o) == 4);
    CHECK(epoch_order(10, 0, o).size() == 4);
  }
}

}  // namespace vit::data
