// vit's CPU LayerNorm (models/cpu_layer_norm.h) against LibTorch's, on the residual stream of the README's small
// models: forward alone (inference) and forward + backward (a training step's share). Not a test and not part of
// the build: the figures behind the README's LayerNorm paragraph ("Why vit is faster").
//
// usage: bash bench/layer_norm.sh [TOKENS] [BATCH] [WIDTH]   (builds this file with g++ against Debian's LibTorch;
//        defaults 13 tokens, batch 256, width 128: the main job's model under PatchDropout)
//
// float32 (B, N, D) input, weight and bias, eps 1e-6; the backward takes the input, weight and bias gradients, as
// training does. Medians of 7 rounds of 50 calls, milliseconds per call, each round alternating the two sides.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "models/cpu_lanes.h"
#include "models/cpu_layer_norm.h"

namespace {

double ms_per_call(const std::function<void()>& fn) {
  constexpr int kCalls = 50;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / kCalls;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Medians of alternating rounds of a and b.
std::pair<double, double> side_by_side(const std::function<void()>& a, const std::function<void()>& b) {
  constexpr int kRounds = 7;
  a();  // warm-up: first touch of the buffers
  b();
  std::vector<double> ta, tb;
  for (int r = 0; r < kRounds; ++r) {
    ta.push_back(ms_per_call(a));
    tb.push_back(ms_per_call(b));
  }
  return {median(ta), median(tb)};
}

}  // namespace

int main(int argc, char** argv) {
  // As vit does at start-up: freed memory stays with the process (page faults are expensive on this VM).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
  at::set_num_threads(static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  const int64_t tokens = argc > 1 ? std::atol(argv[1]) : 13;
  const int64_t batch = argc > 2 ? std::atol(argv[2]) : 256;
  const int64_t width = argc > 3 ? std::atol(argv[3]) : 128;
  constexpr double kEps = 1e-6;
  torch::manual_seed(0);
  const auto x = (torch::randn({batch, tokens, width}) * 2.0).requires_grad_(true);
  const auto weight = torch::randn({width}).requires_grad_(true);
  const auto bias = torch::randn({width}).requires_grad_(true);
  const auto upstream = torch::randn({batch, tokens, width});
  if (!vit::cpu::layer_norm_available(x, weight, bias)) {
    std::fprintf(stderr, "width %ld: vit's LayerNorm needs a multiple of 16\n", static_cast<long>(width));
    return 2;
  }
  std::printf("LayerNorm of (%ld, %ld, %ld) float32, %d threads, vit's kernel at %d float lanes; ms per call\n",
              static_cast<long>(batch), static_cast<long>(tokens), static_cast<long>(width), at::get_num_threads(),
              vit::cpu::vector_lanes());

  const auto libtorch = [&] { return torch::layer_norm(x, {width}, weight, bias, kEps); };
  const auto vit = [&] { return vit::cpu::layer_norm(x, weight, bias, kEps); };
  {
    torch::NoGradGuard no_grad;
    const auto [theirs, ours] = side_by_side([&] { (void)libtorch(); }, [&] { (void)vit(); });
    std::printf("forward             LibTorch %.3f  vit %.3f  (%.2fx)\n", theirs, ours, theirs / ours);
  }
  const auto step = [&](const std::function<torch::Tensor()>& norm) {
    return [&, norm] { (void)torch::autograd::grad({norm()}, {x, weight, bias}, {upstream}); };
  };
  const auto [theirs, ours] = side_by_side(step(libtorch), step(vit));
  std::printf("forward + backward  LibTorch %.3f  vit %.3f  (%.2fx)\n", theirs, ours, theirs / ours);
  return 0;
}
