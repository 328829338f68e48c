// The oneDNN routes of the float32 CPU model (cpu_linear, cpu_attention) against LibTorch's own operators:
// same outputs and same gradients, for the layouts the model feeds them.

#include <ATen/ops/linear.h>
#include <torch/torch.h>

#include <cmath>

#include "models/cpu_attention.h"
#include "models/cpu_gemm.h"
#include "models/cpu_linear.h"
#include "tests/catch.h"

namespace vit {
namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// A copy that starts its own autograd graph.
torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// The operator-by-operator attention the fused one replaces: (B, N, 3D) -> (B, N, D).
torch::Tensor reference_attention(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), n = qkv.size(1), dim = qkv.size(2) / 3, hd = dim / heads;
  const auto parts = qkv.reshape({b, n, 3, heads, hd}).permute({2, 0, 3, 1, 4}).unbind(0);  // each (B, H, N, Dh)
  const auto scores = torch::matmul(parts[0], parts[1].transpose(2, 3)) / std::sqrt(static_cast<double>(hd));
  return torch::matmul(scores.softmax(-1), parts[2]).transpose(1, 2).reshape({b, n, dim});
}

}  // namespace

TEST_CASE("the oneDNN linear layer gives at::linear's outputs and gradients", "[model][cpu]") {
  torch::manual_seed(0);
  const auto weight = torch::randn({24, 40});
  const auto bias = torch::randn({24});
  // Contiguous tokens, a transposed (non-contiguous) view, and no bias.
  for (const bool transposed : {false, true}) {
    for (const bool with_bias : {true, false}) {
      const auto x = transposed ? torch::randn({3, 40, 17}).transpose(1, 2) : torch::randn({3, 17, 40});
      const auto upstream = torch::randn({3, 17, 24});
      if (cpu::onednn_available()) CHECK(cpu::use_onednn(x));

      auto x1 = leaf(x), w1 = leaf(weight), b1 = with_bias ? leaf(bias) : torch::Tensor();
      auto x2 = leaf(x), w2 = leaf(weight), b2 = with_bias ? leaf(bias) : torch::Tensor();
      const auto ours = linear(x1, w1, b1);
      const auto theirs = at::linear(x2, w2, b2);
      REQUIRE(ours.sizes() == theirs.sizes());
      CHECK(max_diff(ours, theirs) < 1e-5);
      (ours * upstream).sum().backward();
      (theirs * upstream).sum().backward();
      CHECK(max_diff(x1.grad(), x2.grad()) < 1e-5);
      CHECK(max_diff(w1.grad(), w2.grad()) < 1e-4);  // sums over 51 rows
      if (with_bias) CHECK(max_diff(b1.grad(), b2.grad()) < 1e-4);
      CHECK(theirs.abs().max().item<double>() > 1.0);  // the comparison is not between zeros
    }
  }
}

TEST_CASE("CPU attention gives the operator-by-operator attention's outputs and gradients", "[model][cpu]") {
  torch::manual_seed(1);
  for (const int64_t heads : {1, 4}) {
    const auto qkv = torch::randn({3, 9, 3 * 32}) * 2.0;  // large enough scores for a peaked softmax
    const auto upstream = torch::randn({3, 9, 32});
    REQUIRE(cpu_attention_available(qkv) == cpu::onednn_available());
    if (!cpu::onednn_available()) return;

    auto a = leaf(qkv), b = leaf(qkv);
    const auto ours = cpu_attention(a, heads);
    const auto theirs = reference_attention(b, heads);
    REQUIRE(ours.sizes() == theirs.sizes());
    CHECK(max_diff(ours, theirs) < 1e-5);
    (ours * upstream).sum().backward();
    (theirs * upstream).sum().backward();
    CHECK(max_diff(a.grad(), b.grad()) < 1e-5);
    CHECK(b.grad().abs().max().item<double>() > 0.1);
  }
}

TEST_CASE("CPU attention reads a non-contiguous projection and runs without autograd", "[model][cpu]") {
  if (!cpu::onednn_available()) return;
  torch::manual_seed(2);
  const auto wide = torch::randn({2, 5, 3 * 16 + 8});
  const auto qkv = wide.narrow(2, 8, 3 * 16);  // a view with row stride 56
  torch::NoGradGuard no_grad;
  CHECK(max_diff(cpu_attention(qkv, 2), reference_attention(qkv, 2)) < 1e-5);
}

}  // namespace vit
