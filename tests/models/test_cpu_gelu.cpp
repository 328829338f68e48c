// vit's GELU kernel (cpu_gelu) against the exact erf GELU computed in float64, and against LibTorch's own operator
// where the two must agree exactly (NaN, infinities) or as a graph (create_graph).

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "models/cpu_gelu.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/vector_widths.h"

namespace vit {
namespace {

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// The exact GELU and its derivative in float64, from the same (rounded) inputs the kernel reads.
torch::Tensor reference_gelu(const torch::Tensor& x) {
  const auto d = x.to(torch::kDouble);
  return d * 0.5 * (1 + torch::erf(d / std::sqrt(2.0)));
}

torch::Tensor reference_gelu_grad(const torch::Tensor& grad, const torch::Tensor& x) {
  const auto d = x.to(torch::kDouble);
  const auto phi = 0.5 * (1 + torch::erf(d / std::sqrt(2.0)));
  return grad.to(torch::kDouble) * (phi + d * torch::exp(-0.5 * d * d) / std::sqrt(2 * M_PI));
}

// Whether every element of `ours` is within `relative` of the reference, plus `absolute` times `scale` (the
// approximation's absolute error in Phi, carried by the factor that multiplies it).
bool close_to(const torch::Tensor& ours, const torch::Tensor& reference, double relative, double absolute,
              const torch::Tensor& scale) {
  const auto error = (ours.to(torch::kDouble) - reference).abs();
  return (error <= reference.abs() * relative + scale.to(torch::kDouble).abs() * absolute + 1e-30).all().item<bool>();
}

}  // namespace

TEST_CASE("vit's GELU is the exact erf GELU, forward and backward, in float32 and bf16, at every vector width",
          "[model][cpu][gelu]") {
  torch::manual_seed(31);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  // A partial last vector at every width (777 elements), and a tensor split across both threads; values out to
  // where Phi is 1e-20 (x = -9) and 1 - 1e-20 (x = 9).
  for (const auto& sizes : {std::vector<int64_t>{3, 7, 37}, std::vector<int64_t>{4, 300, 128}}) {
    const auto x = torch::randn(sizes) * 3;
    const auto upstream = torch::randn(sizes);
    for (const auto type : {torch::kFloat, torch::kBFloat16}) {
      // float32: float32 rounding of an approximation whose error in Phi is under 1.5e-7 / 2 (Abramowitz and
      // Stegun's bound); bf16: one rounding of the float32 value.
      const double relative = type == torch::kFloat ? 1e-6 : 1.0 / 256;
      for (const int lanes : test::vector_widths()) {
        INFO("vector lanes " << lanes << ", " << x.numel() << " elements, " << c10::toString(type));
        cpu::set_vector_lanes(lanes);
        auto input = leaf(x.to(type));
        REQUIRE(cpu::gelu_available(input));
        const auto out = cpu::gelu(input);
        REQUIRE(out.scalar_type() == type);
        REQUIRE(out.sizes() == x.sizes());
        CHECK(close_to(out, reference_gelu(input.detach()), relative, 1e-7, input.detach()));
        // Of LibTorch's float32 GELU, too (its own vectorised erf is the same approximation).
        CHECK(close_to(out, torch::gelu(input.detach().to(torch::kFloat)).to(torch::kDouble), relative, 2e-7,
                       input.detach()));

        const auto grad = upstream.to(type);
        out.backward(grad);
        REQUIRE(input.grad().scalar_type() == type);
        // The derivative's error: Phi's, and x times that of e^(-x^2/2) / sqrt(2 pi), times the upstream gradient.
        const auto scale = grad.to(torch::kDouble) * (1 + input.detach().to(torch::kDouble).abs());
        CHECK(close_to(input.grad(), reference_gelu_grad(grad, input.detach()), relative, 2e-7, scale));
        CHECK(input.grad().abs().max().item<double>() > 1.0);  // not a comparison of zeros
      }
    }
  }
  at::set_num_threads(threads);
}

// Far below 0 both are ~0 (LibTorch's 1 + erf cancels; the kernel's tail function is within its absolute error):
// compared to 1e-6 there.
TEST_CASE("vit's GELU gives LibTorch's results for NaN, infinities and far tails", "[model][cpu][gelu]") {
  const float inf = std::numeric_limits<float>::infinity();
  const auto x = torch::tensor({std::numeric_limits<float>::quiet_NaN(), inf, -inf, -100.0f, -13.0f, -9.0f, 0.0f, -0.0f,
                                9.0f, 13.0f, 100.0f, 87.0f, -87.0f, 1e-30f, -1e-30f, 1e30f, -1e30f});
  for (const int lanes : test::vector_widths()) {
    CAPTURE(lanes);
    cpu::set_vector_lanes(lanes);
    auto ours_in = leaf(x), theirs_in = leaf(x);
    const auto ours = cpu::gelu(ours_in);
    const auto theirs = torch::gelu(theirs_in);
    const auto upstream = torch::ones_like(x);
    ours.backward(upstream);
    theirs.backward(upstream);
    for (const auto& [a, b] :
         {std::pair{ours.detach(), theirs.detach()}, std::pair{ours_in.grad(), theirs_in.grad()}}) {
      CHECK(torch::equal(a.isnan(), b.isnan()));
      const auto numbers = b.isnan().logical_not();
      CHECK(torch::allclose(a.masked_select(numbers), b.masked_select(numbers), 1e-6, 1e-6));
    }
    // Each element to itself: nothing from the NaN's lane leaks into its neighbours.
    CHECK(ours.isnan().sum().item<int64_t>() == 2);  // the NaN and -inf (-inf * 0)
  }
}

TEST_CASE("vit's GELU has LibTorch's second derivative (create_graph)", "[model][cpu][gelu]") {
  torch::manual_seed(32);
  const auto x = torch::randn({5, 40}) * 2;
  const auto u = torch::randn({5, 40}), v = torch::randn({5, 40});
  std::vector<torch::Tensor> first, second;
  for (const bool ours : {true, false}) {
    auto input = leaf(x);
    const auto y = ours ? cpu::gelu(input) : torch::gelu(input);
    const auto g = torch::autograd::grad({(y * u).sum()}, {input}, {}, /*retain_graph=*/true, /*create_graph=*/true);
    first.push_back(g[0].detach());
    (g[0] * v).sum().backward();
    second.push_back(input.grad());
  }
  CHECK(torch::allclose(first[0], first[1], 1e-5, 1e-6));
  CHECK(torch::allclose(second[0], second[1], 1e-5, 1e-6));
  CHECK(second[1].abs().max().item<double>() > 0.1);
}

TEST_CASE("vit's GELU refuses what it cannot take", "[model][cpu][gelu]") {
  const auto x = torch::randn({4, 6});
  CHECK(cpu::gelu_available(x));
  CHECK(cpu::gelu_available(x.to(torch::kBFloat16)));
  CHECK_FALSE(cpu::gelu_available(x.to(torch::kDouble)));
  CHECK_FALSE(cpu::gelu_available(x.to(torch::kHalf)));
  CHECK_FALSE(cpu::gelu_available(x.t()));  // not contiguous
  CHECK_FALSE(cpu::gelu_available(torch::Tensor()));
  CHECK_THAT(test::error_of([&] { cpu::gelu(x.t()); }), test::Contains("gelu needs a contiguous float32 or bf16"));
}

}  // namespace vit
