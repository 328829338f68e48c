#include "engine/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace vit::engine {
namespace {

int cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

c10::Device select_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name != "cuda") throw std::invalid_argument("--device: expected cpu or cuda, got '" + name + "'");
  if (!torch::cuda::is_available())
    throw std::invalid_argument("--device cuda: this LibTorch build has no CUDA support or no GPU is visible");
  return c10::Device(c10::kCUDA);
}

void set_threads(int threads) {
  if (threads < 0)
    throw std::invalid_argument("--threads must be 0 (one per core) or more, got " + std::to_string(threads));
  at::set_num_threads(threads > 0 ? threads : cores());
}

int threads_per_process(int local_processes) {
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp != nullptr && std::atoi(omp) > 0) return std::atoi(omp);
  return std::max(1, cores() / std::max(1, local_processes));
}

int default_workers() { return cores() <= 2 ? 1 : std::min(4, cores() / 2); }

std::string configure_memory_reuse() {
  static const std::string outcome = []() -> std::string {
    const char* choice = std::getenv("VIT_MALLOC");
    if (choice != nullptr && std::strcmp(choice, "system") == 0) return "malloc's defaults (VIT_MALLOC=system)";
    const std::string ignored = choice != nullptr && *choice != '\0' && std::strcmp(choice, "reuse") != 0
                                    ? std::string(" (VIT_MALLOC='") + choice + "' ignored: expected system or reuse)"
                                    : std::string();
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
        std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
      return "malloc as configured in the environment" + ignored;
    }
#ifdef __GLIBC__
    // A fixed mmap threshold also turns off glibc's sliding one. 1 GiB keeps every tensor but a giant one on the
    // heap; glibc releases before 2.35 refuse more than 32 MiB (HEAP_MAX_SIZE / 2), which still covers most.
    // The main thread's heap grows without bound; other threads' arenas (the loader's) are 64 MiB heaps, and
    // blocks larger than that are mmapped there whatever the threshold.
    const bool threshold = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 || mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
    const bool trim = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
    if (threshold && trim) return "freed memory kept for reuse (glibc mallopt)" + ignored;
    return "malloc's defaults (glibc's mallopt refused the settings)" + ignored;
#else
    return "malloc's defaults (not glibc)" + ignored;
#endif
  }();
  return outcome;
}

}  // namespace vit::engine
