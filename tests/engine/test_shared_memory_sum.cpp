// The shared-memory sum between processes of this machine: ranks are forked children of the test, each checking
// its own result and reporting through its exit status.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <vector>

#include "engine/shared_memory_sum.h"
#include "tests/catch.h"
#include "tests/error_of.h"

using vit::test::Contains;
using vit::test::error_of;

namespace vit::engine {
namespace {

using namespace std::chrono_literals;

// Runs `rank_body` in a child process; its return value becomes the exit status. No destructor of the parent's
// objects runs in the child (_exit).
pid_t fork_rank(const std::function<int()>& rank_body) {
  const pid_t pid = fork();
  if (pid == 0) {
    int status = 1;
    try {
      status = rank_body();
    } catch (...) {
      status = 2;
    }
    _exit(status);
  }
  REQUIRE(pid > 0);
  return pid;
}

int exit_status(pid_t pid) {
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Rank r's values for a sum of `count`, call `call`: distinct per rank, element and call, not all exact in binary.
std::vector<float> values(int rank, std::size_t count, int call) {
  std::vector<float> v(count);
  for (std::size_t i = 0; i < count; ++i)
    v[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(rank)) * static_cast<float>(rank + 1) +
           0.1f * static_cast<float>(call);
  return v;
}

// What every rank must get: the ranks' values added in rank order, in float.
std::vector<float> expected_sum(int world_size, std::size_t count, int call) {
  std::vector<float> sum = values(0, count, call);
  for (int r = 1; r < world_size; ++r) {
    const auto v = values(r, count, call);
    for (std::size_t i = 0; i < count; ++i) sum[i] += v[i];
  }
  return sum;
}

// Sums of these lengths in turn: longer than a 64-float chunk, not a multiple of it, empty, a single element.
const std::vector<std::size_t> kCounts{1000, 0, 1, 64, 129};

// Runs the calls of kCounts on `sum`; true when every result is the expected one bit for bit.
bool sums_match(SharedMemorySum& sum, int world_size) {
  bool all_equal = true;
  for (std::size_t call = 0; call < kCounts.size(); ++call) {
    auto data = values(sum.rank(), kCounts[call], static_cast<int>(call));
    sum.sum(data.data(), data.size(), 30s);
    all_equal = all_equal && data == expected_sum(world_size, kCounts[call], static_cast<int>(call));
  }
  return all_equal;
}

}  // namespace

TEST_CASE("three processes sum in chunks: every rank gets the same sum, in rank order, bit for bit",
          "[shared_memory_sum][distributed]") {
  constexpr int kWorld = 3;
  auto sum = SharedMemorySum::create(kWorld, 64);
  const std::filesystem::path file = "/dev/shm" + sum->name();
  CHECK(std::filesystem::exists(file));
  std::vector<pid_t> children;
  for (int rank = 1; rank < kWorld; ++rank)
    children.push_back(fork_rank([&, rank] {
      auto mine = SharedMemorySum::open(sum->name(), rank, kWorld);
      return sums_match(*mine, kWorld) ? 0 : 1;
    }));
  const bool matched = sums_match(*sum, kWorld);
  for (const pid_t child : children) CHECK(exit_status(child) == 0);
  CHECK(matched);
  CHECK_FALSE(sum->peers_visible());  // the children have ended and been reaped: the segment sees them gone
  sum->unlink();
  CHECK_FALSE(std::filesystem::exists(file));
}

TEST_CASE("a rank killed between sums is named within a second, not at the timeout",
          "[shared_memory_sum][distributed]") {
  auto sum = SharedMemorySum::create(2, 64);
  const pid_t child = fork_rank([&] {
    auto mine = SharedMemorySum::open(sum->name(), 1, 2);
    auto data = values(1, 100, 0);
    mine->sum(data.data(), data.size(), 30s);
    raise(SIGKILL);  // as kill -9 would: no destructor marks the rank as gone
    return 0;
  });
  auto data = values(0, 100, 0);
  sum->sum(data.data(), data.size(), 30s);
  CHECK(data == expected_sum(2, 100, 0));
  sum->unlink();  // the child has opened it
  const auto start = std::chrono::steady_clock::now();
  try {
    sum->sum(data.data(), data.size(), 30s);  // the child, a zombie until reaped below, never arrives
    FAIL("the sum returned without its peer");
  } catch (const SharedMemoryPeerLost& e) {
    CHECK(e.ranks() == std::vector<int>{1});
    CHECK_THAT(e.what(), Contains("rank 1"));
  }
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(exit_status(child) == 128 + SIGKILL);
}

TEST_CASE("a rank that is alive but never arrives ends the wait at the timeout", "[shared_memory_sum][distributed]") {
  auto sum = SharedMemorySum::create(2, 64);
  const pid_t child = fork_rank([&] {
    auto mine = SharedMemorySum::open(sum->name(), 1, 2);
    pause();  // stuck, as a stopped or deadlocked rank would be
    return 0;
  });
  std::vector<float> data(10, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  try {
    sum->sum(data.data(), data.size(), 300ms);
    FAIL("the sum returned without its peer");
  } catch (const SharedMemoryPeerLost& e) {
    CHECK(e.ranks() == std::vector<int>{1});
    CHECK_THAT(e.what(), Contains("no answer from rank 1 within 0.3"));
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 300ms);
  CHECK(waited < 3s);
  sum->unlink();
  kill(child, SIGKILL);
  exit_status(child);
}

TEST_CASE("a segment is opened only for the world it was made for", "[shared_memory_sum][distributed]") {
  auto sum = SharedMemorySum::create(2, 64);
  CHECK_THAT(error_of([&] { SharedMemorySum::open(sum->name(), 1, 3); }), Contains("is not a sum segment for 3 ranks"));
  CHECK_THAT(error_of([&] { SharedMemorySum::open(sum->name(), 2, 2); }), Contains("is not a sum segment for 2 ranks"));
  sum->unlink();
  CHECK_THAT(error_of([&] { SharedMemorySum::open(sum->name(), 1, 2); }), Contains("cannot open shared memory"));
  CHECK_THAT(error_of([] { SharedMemorySum::create(2, 10); }), Contains("bad world size or chunk"));
}

TEST_CASE("rank 0's segment leaves no name behind, even when no peer opened it", "[shared_memory_sum][distributed]") {
  std::filesystem::path file;
  {
    auto sum = SharedMemorySum::create(2);
    file = "/dev/shm" + sum->name();
    CHECK(std::filesystem::exists(file));
  }
  CHECK_FALSE(std::filesystem::exists(file));
  // The default slot size: the main job's 0.81 M gradients in one go for two ranks, within 32 MiB for many.
  CHECK(SharedMemorySum::default_chunk_floats(2) == std::size_t{1} << 20);
  CHECK(SharedMemorySum::default_chunk_floats(16) * 2 * 17 * sizeof(float) <= std::size_t{32} << 20);
  CHECK(SharedMemorySum::default_chunk_floats(16) % 16 == 0);
}

}  // namespace vit::engine
