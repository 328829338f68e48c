// A pre-norm block's residual add and the LayerNorm after it under bf16 autocast: vit's two kernels apart
// (models/cpu_residual_add.h, then models/cpu_layer_norm.h's layer_norm_to_bf16, with LibTorch's engine adding the
// sum's two gradients and the add casting the branch's to bf16, as in a model) against the joined kernel
// (residual_add_layer_norm_to_bf16), forward and backward through autograd. Not a test and not part of the
// build: the figures behind the README's line on it ("Why vit is faster").
//
// usage: bash bench/residual_layer_norm.sh [ROWS] [WIDTH] [THREADS]   (defaults: 1664 128 1, the main job's tokens
// per process; vit_mini_patch4_32 at batch 256: 16640 128 2)
//
// The two sides alternate, 15 rounds of 20 calls each; medians in milliseconds per call and the median of the
// per-round ratios.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstdio>

#include "bench/alternating_rounds.h"
#include "models/cpu_layer_norm.h"
#include "models/cpu_residual_add.h"

using vit::bench::compare;

int main(int argc, char** argv) {
  const auto [rows, width] = vit::bench::shape_from_args(argc, argv, 1664, 128);
  std::printf("residual add + LayerNorm on (%lld, %lld), %d thread(s)\n", static_cast<long long>(rows),
              static_cast<long long>(width), at::get_num_threads());
  torch::manual_seed(0);
  const auto x = torch::randn({rows, width}).requires_grad_(true);
  const auto branch = torch::randn({rows, width}).to(torch::kBFloat16).requires_grad_(true);
  const auto weight = torch::randn({width}).requires_grad_(true);
  const auto bias = torch::randn({width}).requires_grad_(true);
  const auto grad_sum = torch::randn({rows, width});
  const auto grad_normed = torch::randn({rows, width}).to(torch::kBFloat16);
  {
    torch::NoGradGuard no_grad;
    compare(
        "forward", "apart",
        [&] { (void)vit::cpu::layer_norm_to_bf16(vit::cpu::residual_add(x, branch), weight, bias, 1e-6); }, "joined",
        [&] { (void)vit::cpu::residual_add_layer_norm_to_bf16(x, branch, weight, bias, 1e-6); });
  }
  compare(
      "forward + backward", "apart",
      [&] {
        const auto sum = vit::cpu::residual_add(x, branch);
        const auto normed = vit::cpu::layer_norm_to_bf16(sum, weight, bias, 1e-6);
        (void)torch::autograd::grad({sum, normed}, {x, branch, weight, bias}, {grad_sum, grad_normed});
      },
      "joined",
      [&] {
        const auto [sum, normed] = vit::cpu::residual_add_layer_norm_to_bf16(x, branch, weight, bias, 1e-6);
        (void)torch::autograd::grad({sum, normed}, {x, branch, weight, bias}, {grad_sum, grad_normed});
      });
}
