// Process settings: memory freed by one step is reused by the next without the kernel faulting pages in again.

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <string>

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
  // volatile: the writes to a block freed straight after are otherwise removed by the optimiser.
  volatile char* block = static_cast<char*>(std::malloc(bytes));
  REQUIRE(block != nullptr);
  for (size_t i = 0; i < bytes; i += 4096) block[i] = 1;
  std::free(const_cast<char*>(block));
  return minor_faults() - before;
}

bool malloc_set_by_environment() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return std::getenv("VIT_MALLOC") != nullptr ||
         (tunables != nullptr && std::string(tunables).find("glibc.malloc.") != std::string::npos);
}

}  // namespace

TEST_CASE("after configure_memory_reuse a large block freed and allocated again is not faulted in again", "[runtime]") {
  if (malloc_set_by_environment()) {
    WARN("malloc is configured by the environment: not checked");
    return;
  }
  CHECK_THAT(configure_memory_reuse(), Contains("kept for reuse"));
  const size_t bytes = size_t{64} << 20;  // above glibc's largest default mmap threshold (32 MiB)
  // 64 MiB is 16,384 pages of 4 KiB: new the first time (the measurement works), and glibc's defaults would fault
  // every one of them in again the second time.
  CHECK(faults_of_one_block(bytes) > 8000);
  CHECK(faults_of_one_block(bytes) < 200);
}

}  // namespace vit::engine
