#include "engine/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
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
  if (threads < 0) throw std::invalid_argument("--threads must be 0 (one per core) or more, got " + std::to_string(threads));
  at::set_num_threads(threads > 0 ? threads : cores());
}

int default_workers() { return cores() <= 2 ? 1 : std::min(4, cores() / 2); }

}  // namespace vit::engine
