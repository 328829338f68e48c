// vit's GELU kernel (models/cpu_gelu.h) against LibTorch's gelu and gelu_backward, forward and backward, float32
// and bf16, on one MLP hidden activation. Not a test and not part of the build: the figures behind the README's
// GELU line ("Why vit is faster").
//
// usage: bash bench/gelu.sh [ROWS] [HIDDEN] [THREADS]   (defaults: 1664 512 1, the main job's fc1 output in each of
// its two processes; vit_mini_patch4_32 at batch 256: 16640 512 2)
//
// The two sides alternate, 15 rounds of 20 calls each; medians in milliseconds per call and the median of the
// per-round ratios.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstdio>

#include "bench/alternating_rounds.h"
#include "models/cpu_gelu.h"
#include "models/cpu_vector_width.h"

using vit::bench::compare;

int main(int argc, char** argv) {
  const auto [rows, hidden] = vit::bench::shape_from_args(argc, argv, 1664, 512);
  std::printf("GELU on (%lld, %lld), %d thread(s), vit's kernels at %d float lanes\n", static_cast<long long>(rows),
              static_cast<long long>(hidden), at::get_num_threads(), vit::cpu::vector_lanes());
  torch::manual_seed(0);
  for (const auto type : {torch::kBFloat16, torch::kFloat}) {
    const auto x = (torch::randn({rows, hidden}) * 2).to(type);
    const auto grad = torch::randn({rows, hidden}).to(type);
    const bool bf16 = type == torch::kBFloat16;
    compare(
        bf16 ? "bf16 forward" : "float32 forward", "LibTorch", [&] { (void)torch::gelu(x); }, "vit",
        [&] { (void)vit::cpu::gelu(x); });
    // The backward as autograd runs it: the gradient of a leaf's GELU.
    const auto input = x.detach().requires_grad_(true);
    const auto ours = vit::cpu::gelu(input);
    const auto theirs = torch::gelu(input);
    compare(
        bf16 ? "bf16 backward" : "float32 backward", "LibTorch",
        [&] { (void)torch::autograd::grad({theirs}, {input}, {grad}, /*retain_graph=*/true); }, "vit",
        [&] { (void)torch::autograd::grad({ours}, {input}, {grad}, /*retain_graph=*/true); });
  }
}
