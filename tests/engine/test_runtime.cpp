// Process settings: memory freed by one step is reused by the next without the kernel faulting pages in again.

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "engine/runtime.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::engine {
namespace {

int64_t minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Faults taken while allocating, touching every page of, and freeing a block of `bytes`.
int64_t faults_of_one_block(size_t bytes) {
  const int64_t before = minor_faults();
  auto* block = static_cast<char*>(std::malloc(bytes));
  REQUIRE(block != nullptr);
  std::memset(block, 1, bytes);
  std::free(block);
  return minor_faults() - before;
}

}  // namespace

TEST_CASE("after configure_memory_reuse a large block freed and allocated again is not faulted in again",
          "[runtime]") {
  if (std::getenv("VIT_MALLOC") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr) {
    WARN("malloc is configured by the environment: not checked");
    return;
  }
  CHECK_THAT(configure_memory_reuse(), Contains("kept for reuse"));
  const size_t bytes = size_t{64} << 20;  // above glibc's largest default mmap threshold (32 MiB)
  faults_of_one_block(bytes);             // the first time, the pages are new
  const int64_t again = faults_of_one_block(bytes);
  // 64 MiB is 16,384 pages of 4 KiB: glibc's defaults fault every one of them in again.
  CHECK(again < 200);
  CHECK(configure_memory_reuse() == configure_memory_reuse());  // once per process
}

}  // namespace vit::engine
