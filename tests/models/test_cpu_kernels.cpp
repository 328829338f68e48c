// The oneDNN routes of the float32 CPU model (cpu_linear, cpu_attention), vit's softmax (cpu_softmax) and its
// bf16-output LayerNorm (cpu_layer_norm) against
// LibTorch's own operators: same outputs and same gradients, for the layouts the model feeds them.

#include <ATen/autocast_mode.h>
#include <ATen/ops/linear.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "models/autocast_state.h"
#include "models/cpu_attention.h"
#include "models/cpu_attention_bf16.h"
#include "models/cpu_attention_bf16_chunked.h"
#include "models/cpu_attention_bf16_dot.h"
#include "models/cpu_bf16_dot_attention_head.h"
#include "models/cpu_gemm.h"
#include "models/cpu_layer_norm.h"
#include "models/cpu_linear.h"
#include "models/cpu_residual_add.h"
#include "models/cpu_softmax.h"
#include "models/layers.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/models/small_model.h"
#include "tests/models/vector_widths.h"

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

// Whether a is within one bf16 rounding step (2^-8 relative) of b, element by element.
bool within_bf16_step(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat) - b).abs() <= b.abs() * (1.0 / 256) + 1e-6).all().item<bool>();
}

// Under create_graph, x's gradient of the squared norm of a linear layer's weight and bias gradients (of
// sum(layer(x) * upstream)): nonzero only if those gradients stay differentiable and connected to x. `layer` is
// vit::linear or at::linear.
template <typename Layer>
torch::Tensor second_order_x_grad(const Layer& layer, const torch::Tensor& x, const torch::Tensor& weight,
                                  const torch::Tensor& bias, const torch::Tensor& upstream) {
  auto xl = leaf(x), wl = leaf(weight), bl = leaf(bias);
  const auto out = layer(xl, wl, bl);
  const auto grads = torch::autograd::grad({(out * upstream).sum()}, {wl, bl}, {}, true, true);
  (grads[0].pow(2).sum() + grads[1].pow(2).sum()).backward();
  return xl.grad();
}

torch::Tensor vit_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return linear(x, w, b);
}
torch::Tensor libtorch_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return at::linear(x, w, b);
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
  SECTION("create_graph: the gradients stay differentiable, with at::linear's second derivative") {
    const auto x = torch::randn({3, 17, 40}), upstream = torch::randn({3, 17, 24});
    const auto ours = second_order_x_grad(vit_linear, x, weight, bias, upstream);
    const auto theirs = second_order_x_grad(libtorch_linear, x, weight, bias, upstream);
    REQUIRE(ours.defined());
    CHECK(max_diff(ours, theirs) < 1e-3);
    CHECK(theirs.abs().max().item<double>() > 1.0);
  }
}

namespace {

// CPU bf16 autocast on for a scope, as engine::AutocastGuard turns it on for a forward pass.
struct CpuBf16Autocast {
  CpuBf16Autocast() { set_bf16_autocast(at::kCPU, true); }
  ~CpuBf16Autocast() {
    set_bf16_autocast(at::kCPU, false);
    at::autocast::clear_cache();
  }
  CpuBf16Autocast(const CpuBf16Autocast&) = delete;
  CpuBf16Autocast& operator=(const CpuBf16Autocast&) = delete;
};

// Whether /proc/cpuinfo lists AVX512-BF16 (the CPU instructions oneDNN's native bf16 route needs).
bool cpu_has_avx512_bf16() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string word;
  while (cpuinfo >> word)
    if (word == "avx512_bf16") return true;
  return false;
}

}  // namespace

TEST_CASE("under bf16 autocast the linear layer gives autocast's at::linear's outputs and gradients",
          "[model][cpu][autocast]") {
  // On a CPU with AVX512-BF16 the oneDNN route must be the one taken (else this test compares LibTorch to itself).
  if (cpu::onednn_available() && cpu_has_avx512_bf16()) REQUIRE(cpu::onednn_bf16_native());
  torch::manual_seed(1);
  struct Case {
    torch::Tensor x;
    int64_t out_features;
  };
  // float32 tokens (the head's input), bf16 ones (a LayerNorm's or GELU's output), a transposed view, a 2-D input,
  // and a ViT-S MLP's fc1 (1,576 x 384 by 1,536: products split across threads and over several K blocks).
  for (const auto& [x, out_features] :
       {Case{torch::randn({3, 17, 40}), 24}, Case{torch::randn({3, 17, 40}).to(torch::kBFloat16), 24},
        Case{torch::randn({3, 40, 17}).transpose(1, 2), 24}, Case{torch::randn({5, 40}), 24},
        Case{torch::randn({8, 197, 384}), 1536}}) {
    const auto weight = torch::randn({out_features, x.size(-1)}) / std::sqrt(static_cast<double>(x.size(-1)));
    const auto bias = torch::randn({out_features});
    auto x1 = leaf(x), w1 = leaf(weight), b1 = leaf(bias);
    auto x2 = leaf(x), w2 = leaf(weight), b2 = leaf(bias);
    torch::Tensor ours, theirs;
    {
      CpuBf16Autocast autocast;
      ours = linear(x1, w1, b1);
      // at::linear's addmm (for a transposed x it multiplies, rounds to bf16, then adds the bias and rounds again).
      theirs = at::linear(x2.contiguous(), w2, b2);
    }
    // The oneDNN route where it applies (this machine's CPU runs bf16 natively); LibTorch's otherwise.
    CHECK((ours.grad_fn()->name().find("OneDnnLinear") != std::string::npos) == cpu::onednn_bf16_native());
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    REQUIRE(ours.sizes() == theirs.sizes());
    INFO("x " << x.sizes() << (x.is_contiguous() ? "" : " transposed") << " " << x.scalar_type());
    CHECK(torch::equal(ours, theirs));
    // The backward outside autocast, as a training step runs it.
    const auto upstream = torch::randn(theirs.sizes());
    (ours * upstream).sum().backward();
    (theirs * upstream).sum().backward();
    CHECK(torch::equal(x1.grad(), x2.grad()));
    REQUIRE(w1.grad().scalar_type() == torch::kFloat);  // the float32 parameters' gradients, through the casts
    CHECK(torch::equal(b1.grad(), b2.grad()));
    // dW sums over every token row. Short sums are LibTorch's exactly; over ViT-S's 1,576 rows oneDNN's pass adds
    // them in another order than LibTorch's product, so both are held to the exact sum of the same bf16 factors
    // (float64): within a bf16 rounding step plus float32's accumulation error, all but a few elements LibTorch's.
    const auto rows = x.reshape({-1, x.size(-1)}).to(torch::kBFloat16).to(torch::kDouble);
    const auto dy = upstream.reshape({-1, out_features}).to(torch::kBFloat16).to(torch::kDouble);
    const auto exact = dy.t().mm(rows), magnitude = dy.abs().t().mm(rows.abs());
    const auto tolerance = exact.abs() / 256 + magnitude * rows.size(0) * std::ldexp(1.0, -24);
    CHECK(((w1.grad().to(torch::kDouble) - exact).abs() <= tolerance).all().item<bool>());
    CHECK(((w2.grad().to(torch::kDouble) - exact).abs() <= tolerance).all().item<bool>());
    const double same = w1.grad().eq(w2.grad()).to(torch::kDouble).mean().item<double>();
    if (rows.size(0) < 100) CHECK(same == 1.0);
    CHECK(same > 0.95);
    CHECK(theirs.abs().max().item<double>() > 1.0);  // the comparison is not between zeros
    CHECK(w2.grad().abs().max().item<double>() > 1.0);
  }
  {  // create_graph: the gradients stay differentiable, with autocast's at::linear's second derivative
    const auto x = torch::randn({4, 6, 16}), weight = torch::randn({8, 16}) / 4, bias = torch::randn({8});
    const auto upstream = torch::randn({4, 6, 8});
    torch::Tensor ours, theirs;
    {
      CpuBf16Autocast autocast;  // forward and both backward passes under autocast, alike for both layers
      ours = second_order_x_grad(vit_linear, x, weight, bias, upstream);
      theirs = second_order_x_grad(libtorch_linear, x, weight, bias, upstream);
    }
    REQUIRE(ours.defined());
    CHECK(torch::equal(ours, theirs));
    CHECK(theirs.abs().max().item<double>() > 0.1);
  }
  {  // inference: no graph, the same values
    const auto weight = torch::randn({24, 40}), bias = torch::randn({24}), x = torch::randn({2, 9, 40});
    torch::NoGradGuard no_grad;
    CpuBf16Autocast autocast;
    CHECK(torch::equal(linear(x, weight, bias), at::linear(x, weight, bias)));
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

TEST_CASE("the CPU attention kernels refuse a differentiable backward (create_graph) rather than cut the graph",
          "[model][cpu]") {
  // Their backward passes write raw buffers: a second derivative through them would silently miss their terms.
  const auto refused = [](const torch::Tensor& qkv, bool bf16) {
    const auto x = leaf(qkv);
    const auto out = bf16 ? cpu_attention_bf16(x.to(torch::kBFloat16), 2) : cpu_attention(x, 2);
    return test::error_of([&] { torch::autograd::grad({out.to(torch::kFloat).sum()}, {x}, {}, true, true); });
  };
  if (cpu::onednn_available()) {
    CHECK_THAT(refused(torch::randn({2, 5, 3 * 8}), false), test::Contains("cpu_attention: a differentiable backward"));
  }
  for (const int64_t tokens : {int64_t{5}, kBf16AttentionMaxTokens + 3}) {  // one pass; chunked
    CHECK_THAT(refused(torch::randn({2, tokens, 3 * 32}), true),
               test::Contains("cpu_attention_bf16: a differentiable backward"));
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

namespace vit {

TEST_CASE("vit's softmax gives LibTorch's in float32 and bf16, forward and backward, at every vector width",
          "[model][cpu][softmax]") {
  torch::manual_seed(3);
  const double scale = 0.37;
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    REQUIRE(cpu::vector_lanes() == lanes);
    // Rows shorter than a vector, whole vectors, a vector and one, and long rows.
    for (const int64_t n : {1, 3, 13, 16, 17, 65, 200, 1030}) {
      CAPTURE(lanes, n);
      const auto x = torch::randn({37, n}) * 4.0;
      const auto upstream = torch::randn({37, n});

      auto a = leaf(x), b = leaf(x);
      const auto ours = cpu::scaled_softmax(a, scale);
      const auto theirs = torch::softmax(b * scale, -1);
      CHECK(max_diff(ours, theirs) < 1e-6);
      (ours * upstream).sum().backward();
      (theirs * upstream).sum().backward();
      CHECK(max_diff(a.grad(), b.grad()) < 1e-6);
      if (n > 1) CHECK(b.grad().abs().max().item<double>() > 0.01);  // not a comparison of zeros

      // bf16 in and out: float32's softmax of the same bf16 scores, rounded once; the gradient likewise, from the
      // bf16 probabilities and the bf16 upstream gradient the autograd engine hands over.
      auto c = leaf(x.to(torch::kBFloat16));
      const auto ours_bf16 = cpu::scaled_softmax(c, scale);
      REQUIRE(ours_bf16.scalar_type() == torch::kBFloat16);
      CHECK(within_bf16_step(ours_bf16, torch::softmax(c.detach().to(torch::kFloat) * scale, -1)));
      (ours_bf16 * upstream).sum().backward();
      REQUIRE(c.grad().scalar_type() == torch::kBFloat16);
      const auto p = ours_bf16.detach().to(torch::kFloat);
      const auto g = upstream.to(torch::kBFloat16).to(torch::kFloat);
      const auto expected = scale * p * (g - (p * g).sum(-1, /*keepdim=*/true));
      CHECK(within_bf16_step(c.grad(), expected));
    }
  }
}

TEST_CASE("vit's softmax keeps every row to itself: a NaN, huge scores, rows split across threads",
          "[model][cpu][softmax]") {
  torch::manual_seed(4);
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      CAPTURE(lanes, dtype);
      // 13 tokens: every row's vector reaches into the next row, which holds a NaN, scores of 10^4, a masked
      // (-inf) score, or only masked ones.
      const double inf = std::numeric_limits<double>::infinity();
      auto x = torch::randn({5, 13});
      x[1][2].fill_(std::nan(""));
      x[2].mul_(1e4);
      x[3][5].fill_(-inf);
      x[4].fill_(-inf);
      x = x.to(dtype);
      const auto ours = cpu::scaled_softmax(x, 1.0).to(torch::kFloat);
      const auto theirs = torch::softmax(x.to(torch::kFloat), -1);
      // As LibTorch's: a NaN score makes its row NaN, and so does a row with every score masked.
      CHECK(ours[1].isnan().all().item<bool>());
      CHECK(ours[4].isnan().all().item<bool>());
      REQUIRE(theirs[4].isnan().all().item<bool>());
      for (const int64_t row : {0, 2, 3}) CHECK(within_bf16_step(ours[row], theirs[row]));
      CHECK(ours[2].max().item<double>() == 1.0);  // the huge row: one-hot
      CHECK(ours[3][5].item<double>() == 0.0);     // a masked score: exactly 0

      // Many rows: each thread's range ends in a row read and written element by element.
      const auto many = torch::randn({5003, 13}).to(dtype);
      CHECK(within_bf16_step(cpu::scaled_softmax(many, 0.5), torch::softmax(many.to(torch::kFloat) * 0.5, -1)));
    }
  }
}

TEST_CASE("vit's softmax has LibTorch's second derivative (create_graph)", "[model][cpu][softmax]") {
  torch::manual_seed(6);
  const auto x = torch::randn({7, 19});
  const auto u = torch::randn({7, 19}), v = torch::randn({7, 19});
  std::vector<torch::Tensor> second;
  for (const bool ours : {true, false}) {
    auto leaf_x = leaf(x);
    const auto y = ours ? cpu::scaled_softmax(leaf_x, 0.7) : torch::softmax(leaf_x * 0.7, -1);
    const auto g = torch::autograd::grad({(y * u).sum()}, {leaf_x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
    (g[0] * v).sum().backward();
    second.push_back(leaf_x.grad());
  }
  CHECK(max_diff(second[0], second[1]) < 1e-6);
  CHECK(second[1].abs().max().item<double>() > 0.01);
}

TEST_CASE("bf16 attention on vit's softmax gives LibTorch's fused attention, in training and inference",
          "[model][cpu][softmax]") {
  torch::manual_seed(5);
  const auto make = [](int64_t tokens) { return torch::randn({2, 3, tokens, 8}).to(torch::kBFloat16); };
  for (const int64_t tokens : {13, 50}) {
    const auto q = make(tokens) * 2, k = make(tokens), v = make(tokens);
    const auto upstream = torch::randn({2, tokens, 24});
    auto q1 = leaf(q), k1 = leaf(k), v1 = leaf(v);
    auto q2 = leaf(q), k2 = leaf(k), v2 = leaf(v);
    const auto ours = attend(q1, k1, v1, 0.0, /*training=*/true, nullptr);  // (B, N, H * Dh)
    const auto theirs = fused_attention(q2, k2, v2, 0.0).transpose(1, 2).reshape({2, tokens, 24});
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    // bf16 products either way; LibTorch rounds q * scale to bf16 before its product, vit scales in float32.
    CHECK(max_diff(ours.to(torch::kFloat), theirs.to(torch::kFloat)) < 0.03);
    (ours * upstream).sum().backward();
    (theirs * upstream).sum().backward();
    for (const auto& [mine, reference] : {std::pair{q1, q2}, std::pair{k1, k2}, std::pair{v1, v2}}) {
      const auto expected = reference.grad().to(torch::kFloat);
      CHECK(max_diff(mine.grad().to(torch::kFloat), expected) < 0.03 * expected.abs().max().item<double>() + 1e-3);
    }
    // Inference takes the same path (its forward is faster than LibTorch's too): the same values, no graph.
    torch::NoGradGuard no_grad;
    const auto inferred = attend(q, k, v, 0.0, /*training=*/false, nullptr);
    const auto scores = torch::matmul(q, k.transpose(2, 3));
    const auto by_hand = torch::matmul(cpu::scaled_softmax(scores, 1.0 / std::sqrt(8.0)), v).transpose(1, 2);
    CHECK(torch::equal(inferred, by_hand.reshape({2, tokens, 24})));
    CHECK(torch::equal(inferred, ours.detach()));
  }
}

}  // namespace vit

namespace vit {
namespace {

// The fraction of a's elements exactly equal to b's.
double equal_share(const torch::Tensor& a, const torch::Tensor& b) {
  return (a == b).to(torch::kDouble).mean().item<double>();
}

// max |a - b| relative to max |b|.
double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return max_diff(a, b) / b.abs().max().item<double>();
}

// A loss's gradient for x, kept in the graph (create_graph), and the gradients of sum(that * v) for x and weight.
struct SecondDerivatives {
  torch::Tensor first, second, second_weight;
};

SecondDerivatives second_derivatives(const torch::Tensor& loss, const torch::Tensor& x, const torch::Tensor& weight,
                                     const torch::Tensor& v) {
  const auto g = torch::autograd::grad({loss}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  (g[0] * v).sum().backward();
  return {g[0].detach(), x.grad(), weight.grad()};
}

// vit's kernel's against LibTorch's operators'.
void check_same_second_derivatives(const SecondDerivatives& ours, const SecondDerivatives& theirs) {
  CHECK(relative_diff(ours.first, theirs.first) < 1e-4);
  CHECK(relative_diff(ours.second, theirs.second) < 1e-4);
  CHECK(theirs.second.abs().max().item<double>() > 0.01);
  REQUIRE(ours.second_weight.defined());  // the weight is in the first gradient's graph
  CHECK(relative_diff(ours.second_weight, theirs.second_weight) < 1e-4);
}

}  // namespace

TEST_CASE("the bf16-output LayerNorm gives LibTorch's layer_norm rounded to bf16, and its gradients, at every width",
          "[model][cpu][layer_norm]") {
  torch::manual_seed(7);
  REQUIRE_FALSE(bf16_autocast(at::kCPU));  // off unless turned on
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    // One element (the output is the bias), shorter than a vector, whole vectors, a vector and one, long rows.
    for (const int64_t n : {1, 3, 16, 17, 40, 128, 200}) {
      CAPTURE(lanes, n);
      const auto x = torch::randn({5, 7, n}) * 3.0 + 1.5;  // rows far from zero mean
      const auto weight = torch::randn({n}), bias = torch::randn({n});
      const auto upstream = torch::randn({5, 7, n});

      auto xa = leaf(x), wa = leaf(weight), ba = leaf(bias);
      auto xb = leaf(x), wb = leaf(weight), bb = leaf(bias);
      REQUIRE(cpu::layer_norm_to_bf16_available(xa, wa, ba));
      const auto ours = cpu::layer_norm_to_bf16(xa, wa, ba, 1e-6);
      const auto theirs = torch::layer_norm(xb, {n}, wb, bb, 1e-6);
      REQUIRE(ours.scalar_type() == torch::kBFloat16);
      REQUIRE(ours.sizes() == x.sizes());
      // float32 up to the order of its sums, rounded once: nearly every element the same bf16 number, every one
      // within a rounding step.
      CHECK(equal_share(ours, theirs.to(torch::kBFloat16)) > 0.98);
      CHECK(within_bf16_step(ours, theirs.detach()));
      if (n == 1)
        CHECK(torch::equal(ours.to(torch::kFloat), bias.to(torch::kBFloat16).to(torch::kFloat).expand({5, 7, 1})));

      // The gradient reaches the norm in bf16, as from the linear layer that follows it under autocast.
      (ours.to(torch::kFloat) * upstream).sum().backward();
      (theirs.to(torch::kBFloat16).to(torch::kFloat) * upstream).sum().backward();
      REQUIRE(xa.grad().scalar_type() == torch::kFloat);
      CHECK(relative_diff(ba.grad(), bb.grad()) < 1e-5);
      if (n > 1) {
        CHECK(relative_diff(wa.grad(), wb.grad()) < 1e-4);
        CHECK(relative_diff(xa.grad(), xb.grad()) < 1e-4);
        CHECK(xb.grad().abs().max().item<double>() > 0.01);  // not a comparison of zeros
      } else {
        // A one-element norm is its bias whatever x is: (x - mean) is 0, and so are the other gradients, up to
        // the rounding of gw - mean(gw) (a fused multiply-add on the wider vectors) times 1 / sqrt(eps).
        CHECK(wa.grad().abs().max().item<double>() == 0.0);
        CHECK(xa.grad().abs().max().item<double>() < 1e-3);
      }
    }
  }
}

TEST_CASE("the bf16-output LayerNorm: a strided input, rows split across threads, a NaN", "[model][cpu][layer_norm]") {
  torch::manual_seed(8);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    CAPTURE(lanes);
    // 5,003 rows of 128 in many threads' ranges, read through a transposed view.
    const auto x = torch::randn({128, 5003}).t();
    const auto weight = torch::randn({128}), bias = torch::randn({128});
    const auto upstream = torch::randn({5003, 128});
    auto xa = leaf(x), wa = leaf(weight), ba = leaf(bias);
    auto xb = leaf(x), wb = leaf(weight), bb = leaf(bias);
    const auto ours = cpu::layer_norm_to_bf16(xa, wa, ba, 1e-5);
    const auto theirs = torch::layer_norm(xb, {128}, wb, bb, 1e-5);
    CHECK(within_bf16_step(ours, theirs.detach()));
    // A float32 gradient for the bf16 output reaches the norm rounded to bf16 (autograd's doing).
    auto grad = torch::autograd::grad({ours}, {xa, wa, ba}, {upstream});
    auto expected = torch::autograd::grad({theirs}, {xb, wb, bb}, {upstream.to(torch::kBFloat16).to(torch::kFloat)});
    CHECK(relative_diff(grad[0], expected[0]) < 1e-4);
    CHECK(relative_diff(grad[1], expected[1]) < 1e-4);
    CHECK(relative_diff(grad[2], expected[2]) < 1e-5);

    // A NaN makes its own row NaN, as LibTorch's, and no other.
    auto with_nan = torch::randn({3, 20});
    with_nan[1][4].fill_(std::nan(""));
    const auto out = cpu::layer_norm_to_bf16(with_nan, torch::ones({20}), torch::zeros({20}), 1e-6).to(torch::kFloat);
    CHECK(out[1].isnan().all().item<bool>());
    CHECK_FALSE(out[0].isnan().any().item<bool>());
    CHECK_FALSE(out[2].isnan().any().item<bool>());
  }
  at::set_num_threads(threads);
}

TEST_CASE("the bf16-output LayerNorm has LibTorch's second derivative (create_graph), strided inputs too",
          "[model][cpu][layer_norm]") {
  torch::manual_seed(9);
  // A transposed input and a strided weight: the graph must run through them, not through contiguous copies.
  const auto x = torch::randn({24, 6}).t() * 2.0;
  const auto weight = torch::randn({48}).slice(0, 0, 48, 2), bias = torch::randn({24});
  REQUIRE_FALSE(x.is_contiguous());
  REQUIRE_FALSE(weight.is_contiguous());
  const auto u = torch::randn({6, 24}), v = torch::randn({6, 24});
  std::vector<SecondDerivatives> results;
  for (const bool ours : {true, false}) {
    // Leaves with x's and weight's strides (leaf() would make contiguous copies).
    auto lx = x.detach().requires_grad_(true), lw = weight.detach().requires_grad_(true), lb = leaf(bias);
    const auto y = ours ? cpu::layer_norm_to_bf16(lx, lw, lb, 1e-6).to(torch::kFloat)
                        : torch::layer_norm(lx, {24}, lw, lb, 1e-6).to(torch::kBFloat16).to(torch::kFloat);
    results.push_back(second_derivatives((y * u).sum(), lx, lw, v));
  }
  check_same_second_derivatives(results[0], results[1]);
}

TEST_CASE("the bf16-output LayerNorm refuses what it cannot take", "[model][cpu][layer_norm]") {
  const auto w = torch::ones({8}), b = torch::zeros({8});
  CHECK(cpu::layer_norm_to_bf16_available(torch::randn({2, 8}), w, b));
  CHECK_FALSE(cpu::layer_norm_to_bf16_available(torch::randn({2, 8}).to(torch::kBFloat16), w, b));
  CHECK_FALSE(cpu::layer_norm_to_bf16_available(torch::randn({2, 9}), w, b));
  CHECK_FALSE(cpu::layer_norm_to_bf16_available(torch::randn({2, 8}), w, torch::Tensor()));
  CHECK_FALSE(cpu::layer_norm_to_bf16_available(torch::randn({2, 8}), w.to(torch::kDouble), b));
  CHECK_THAT(test::error_of([&] {
               cpu::layer_norm_to_bf16(torch::randn({2, 9}), w, b, 1e-6);
             }),
             test::Contains("layer_norm_to_bf16 needs a float32 CPU tensor"));
}

TEST_CASE("the residual add joined to the bf16-output LayerNorm gives the two apart exactly, at every width",
          "[model][cpu][layer_norm]") {
  torch::manual_seed(10);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  // Rows shorter than a vector, with a partial last vector, and 5,003 rows of 128 in both threads' ranges.
  for (const auto& sizes :
       {std::vector<int64_t>{3, 5, 7}, std::vector<int64_t>{2, 9, 40}, std::vector<int64_t>{5003, 128}}) {
    const int64_t n = sizes.back();
    const auto x = torch::randn(sizes) * 3.0 + 1.5;
    const auto branch = torch::randn(sizes).to(torch::kBFloat16);
    const auto weight = torch::randn({n}), bias = torch::randn({n});
    const auto upstream_sum = torch::randn(sizes);
    const auto upstream_normed = torch::randn(sizes).to(torch::kBFloat16);
    for (const int lanes : test::vector_widths()) {
      INFO("vector lanes " << lanes << ", sizes " << at::IntArrayRef(sizes));
      cpu::set_vector_lanes(lanes);
      auto x1 = leaf(x), b1 = leaf(branch), w1 = leaf(weight), c1 = leaf(bias);
      auto x2 = leaf(x), b2 = leaf(branch), w2 = leaf(weight), c2 = leaf(bias);
      REQUIRE(cpu::residual_add_layer_norm_to_bf16_available(x1, b1, w1, c1));
      const auto [sum, normed] = cpu::residual_add_layer_norm_to_bf16(x1, b1, w1, c1, 1e-6);
      const auto apart_sum = cpu::residual_add(x2, b2);
      const auto apart_normed = cpu::layer_norm_to_bf16(apart_sum, w2, c2, 1e-6);
      REQUIRE(sum.scalar_type() == torch::kFloat);
      REQUIRE(normed.scalar_type() == torch::kBFloat16);
      CHECK(torch::equal(sum, x + branch.to(torch::kFloat)));  // the add is exact either way
      CHECK(torch::equal(normed, apart_normed));               // the same row arithmetic on the same sum
      // Apart, the engine adds the norm's gradient of the sum to the one from the sum's other use, then the add
      // casts it to bf16 for the branch: one float32 addition and one rounding, as the joined backward does.
      const auto ours = torch::autograd::grad({sum, normed}, {x1, b1, w1, c1}, {upstream_sum, upstream_normed});
      const auto apart =
          torch::autograd::grad({apart_sum, apart_normed}, {x2, b2, w2, c2}, {upstream_sum, upstream_normed});
      for (size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        REQUIRE(ours[i].scalar_type() == apart[i].scalar_type());
        CHECK(torch::equal(ours[i], apart[i]));
      }
      CHECK(ours[1].scalar_type() == torch::kBFloat16);
      // And near LibTorch's float32 operators on the sum (the gradient rounded to bf16 as the normed output's is).
      auto x3 = leaf(x), w3 = leaf(weight), c3 = leaf(bias);
      const auto reference_sum = x3 + branch.to(torch::kFloat);
      const auto reference = torch::layer_norm(reference_sum, {n}, w3, c3, 1e-6);
      CHECK(within_bf16_step(normed, reference.detach()));
      const auto expected = torch::autograd::grad({reference_sum, reference}, {x3, w3, c3},
                                                  {upstream_sum, upstream_normed.to(torch::kFloat)});
      CHECK(relative_diff(ours[0], expected[0]) < 1e-4);
      CHECK(relative_diff(ours[2], expected[1]) < 1e-4);
      CHECK(relative_diff(ours[3], expected[2]) < 1e-5);
    }
  }
  at::set_num_threads(threads);
  // A NaN in the branch makes its own row NaN, in both outputs and in the gradients, and no other.
  auto branch = torch::randn({3, 20}).to(torch::kBFloat16);
  branch[1][4].fill_(std::nan(""));
  auto x = leaf(torch::randn({3, 20})), b = leaf(branch);
  const auto [sum, normed] = cpu::residual_add_layer_norm_to_bf16(x, b, torch::ones({20}), torch::zeros({20}), 1e-6);
  CHECK(std::isnan(sum[1][4].item<float>()));
  CHECK(sum.isnan().sum().item<int64_t>() == 1);
  CHECK(normed[1].to(torch::kFloat).isnan().all().item<bool>());
  CHECK(normed.to(torch::kFloat).isnan().sum().item<int64_t>() == 20);
  const auto grads = torch::autograd::grad({normed}, {x, b}, {torch::ones({3, 20}).to(torch::kBFloat16)});
  CHECK(grads[0][1].isnan().all().item<bool>());
  CHECK_FALSE(grads[0][0].isnan().any().item<bool>());
  CHECK_FALSE(grads[0][2].isnan().any().item<bool>());
}

TEST_CASE("the residual add joined to the LayerNorm has LibTorch's second derivative (create_graph)",
          "[model][cpu][layer_norm]") {
  torch::manual_seed(11);
  const auto x = torch::randn({6, 24}) * 2.0;
  const auto branch = torch::randn({6, 24}).to(torch::kBFloat16);
  const auto weight = torch::randn({24}), bias = torch::randn({24});
  const auto u = torch::randn({6, 24}), v = torch::randn({6, 24}), s = torch::randn({6, 24});
  std::vector<SecondDerivatives> results;
  for (const bool ours : {true, false}) {
    auto lx = leaf(x), lw = leaf(weight), lb = leaf(bias);
    torch::Tensor sum, normed;
    if (ours) {
      std::tie(sum, normed) = cpu::residual_add_layer_norm_to_bf16(lx, branch, lw, lb, 1e-6);
    } else {
      sum = lx + branch.to(torch::kFloat);
      normed = torch::layer_norm(sum, {24}, lw, lb, 1e-6).to(torch::kBFloat16);
    }
    // A loss through both outputs, the sum's non-linear, so that the second derivative has a term from each.
    results.push_back(second_derivatives((normed.to(torch::kFloat) * u).sum() + (sum.pow(2) * s).sum(), lx, lw, v));
  }
  check_same_second_derivatives(results[0], results[1]);
}

TEST_CASE("the residual add joined to the LayerNorm refuses what it cannot take", "[model][cpu][layer_norm]") {
  const auto x = torch::randn({2, 5, 8});
  const auto branch = torch::randn({2, 5, 8}).to(torch::kBFloat16);
  const auto w = torch::ones({8}), b = torch::zeros({8});
  CHECK(cpu::residual_add_layer_norm_to_bf16_available(x, branch, w, b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x, branch.to(torch::kFloat), w, b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x.to(torch::kBFloat16), branch, w, b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x, branch.narrow(2, 0, 4), w, b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x.transpose(0, 1), branch.transpose(0, 1), w, b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x, branch, torch::ones({9}), b));
  CHECK_FALSE(cpu::residual_add_layer_norm_to_bf16_available(x, torch::Tensor(), w, b));
  CHECK_THAT(test::error_of([&] { cpu::residual_add_layer_norm_to_bf16(x, branch.to(torch::kFloat), w, b, 1e-6); }),
             test::Contains("residual_add_layer_norm_to_bf16 needs a contiguous float32 CPU tensor"));
}

}  // namespace vit

namespace vit {

TEST_CASE("bf16 attention of short sequences gives float32 attention's outputs and gradients, at every width",
          "[model][cpu][attention_bf16]") {
  torch::manual_seed(9);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // (image, head) pairs split across threads
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    // One token, fewer than a vector, the main job's 13, a whole vector, one more, the longest taken.
    for (const int64_t tokens :
         {int64_t{1}, int64_t{5}, int64_t{13}, int64_t{16}, int64_t{17}, kBf16AttentionMaxTokens}) {
      for (const auto& [heads, head_dim] : {std::pair<int64_t, int64_t>{1, 16}, {4, 32}, {3, 64}}) {
        CAPTURE(lanes, tokens, heads, head_dim);
        const int64_t dim = heads * head_dim;
        // Scores of a few units: a peaked softmax, not a uniform one.
        const auto qkv = (torch::randn({5, tokens, 3 * dim}) * 1.5).to(torch::kBFloat16);
        const auto upstream = torch::randn({5, tokens, dim}).to(torch::kBFloat16);
        REQUIRE(cpu_attention_bf16_available(qkv, heads));
        REQUIRE(cpu_attention_bf16_one_pass(qkv, heads));

        auto ours_in = leaf(qkv);
        const auto ours = cpu_attention_bf16_one_pass_kernel(ours_in, heads);
        REQUIRE(ours.scalar_type() == torch::kBFloat16);
        REQUIRE(ours.sizes() == torch::IntArrayRef{5, tokens, dim});
        // The reference in float32 from the same bf16 values: vit's differs by its own rounding to bf16 only.
        auto theirs_in = leaf(qkv.to(torch::kFloat));
        const auto theirs = reference_attention(theirs_in, heads);
        CHECK(within_bf16_step(ours, theirs.detach()));

        ours.backward(upstream);
        theirs.backward(upstream.to(torch::kFloat));
        REQUIRE(ours_in.grad().scalar_type() == torch::kBFloat16);
        const auto expected = theirs_in.grad();
        // float32 sums rounded once to bf16: within a rounding step of the largest gradient.
        CHECK(max_diff(ours_in.grad().to(torch::kFloat), expected) <= expected.abs().max().item<double>() / 128);
        if (tokens > 1) CHECK(expected.abs().max().item<double>() > 0.1);  // not a comparison of zeros
      }
    }
  }
  at::set_num_threads(threads);
}

namespace {

// The operator path layers.cpp runs attention on under bf16 autocast where vit's kernels do not take it: the
// permute / unbind copies, LibTorch's batched products, vit's softmax.
torch::Tensor operator_attention_bf16(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), n = qkv.size(1), dim = qkv.size(2) / 3, hd = dim / heads;
  const auto parts = qkv.reshape({b, n, 3, heads, hd}).permute({2, 0, 3, 1, 4}).unbind(0);
  const auto scores = torch::matmul(parts[0], parts[1].transpose(2, 3));
  const auto probs = cpu::scaled_softmax(scores, 1.0 / std::sqrt(static_cast<double>(hd)));
  return torch::matmul(probs, parts[2]).transpose(1, 2).reshape({b, n, dim});
}

}  // namespace

TEST_CASE("bf16 attention of longer sequences, in chunks of images, gives the operator path's outputs and gradients",
          "[model][cpu][attention_bf16]") {
  torch::manual_seed(11);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // chunks split across threads
  // One token past the one-pass kernel; vit_mini_patch4_32's 65 (several images a chunk, the batch of 7 split
  // unevenly); heads of 24 (not a multiple of 16) at 13 tokens; 400 tokens (one image a chunk).
  for (const auto& [batch, tokens, heads, head_dim] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, kBf16AttentionMaxTokens + 1, 4, 32},
        {7, 65, 4, 32},
        {3, 65, 3, 64},
        {4, 13, 2, 24},
        {3, 400, 2, 32}}) {
    CAPTURE(batch, tokens, heads, head_dim);
    const int64_t dim = heads * head_dim;
    const auto qkv = (torch::randn({batch, tokens, 3 * dim}) * 1.5).to(torch::kBFloat16);
    const auto upstream = torch::randn({batch, tokens, dim}).to(torch::kBFloat16);
    REQUIRE(cpu_attention_bf16_available(qkv, heads));
    REQUIRE_FALSE(cpu_attention_bf16_one_pass(qkv, heads));

    auto ours_in = leaf(qkv);
    const auto ours =
        cpu_attention_bf16_chunked(ours_in, heads);  // on this machine the dispatcher may pick the dot kernel
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    REQUIRE(ours.sizes() == torch::IntArrayRef{batch, tokens, dim});
    auto operators_in = leaf(qkv);
    torch::Tensor operators;
    {
      CpuBf16Autocast autocast;
      operators = operator_attention_bf16(operators_in, heads);
    }
    auto exact_in = leaf(qkv.to(torch::kFloat));
    const auto exact = reference_attention(exact_in, heads);
    // The operator path's products, softmax and roundings (bit for bit on this machine's oneDNN, which multiplies
    // each head alike whatever the batch): within a bf16 step of it, and near float32's.
    CHECK(within_bf16_step(ours, operators.to(torch::kFloat)));
    CHECK(max_diff(ours.to(torch::kFloat), exact.detach()) <= exact.abs().max().item<double>() / 64);
    {
      torch::NoGradGuard no_grad;  // inference keeps no probabilities for a backward pass: the same output
      CHECK(torch::equal(cpu_attention_bf16_chunked(qkv, heads), ours));
    }

    ours.backward(upstream);
    operators.backward(upstream);
    exact.backward(upstream.to(torch::kFloat));
    REQUIRE(ours_in.grad().scalar_type() == torch::kBFloat16);
    const auto expected = exact_in.grad();
    CHECK(expected.abs().max().item<double>() > 0.1);  // not a comparison of zeros
    // q, k and v's gradients, each where the projection holds it.
    CHECK(max_diff(ours_in.grad().to(torch::kFloat), operators_in.grad().to(torch::kFloat)) <=
          expected.abs().max().item<double>() / 128);
    CHECK(max_diff(ours_in.grad().to(torch::kFloat), expected) <= expected.abs().max().item<double>() / 32);
  }
  at::set_num_threads(threads);
}

TEST_CASE("under bf16 autocast, pre-norm blocks chained to each other give their own forward exactly",
          "[model][cpu][layer_norm]") {
  torch::manual_seed(12);
  ViTConfig c = test::small_config();
  c.embed_dim = 32;
  c.num_heads = 2;  // no layer scale: its float32 gamma would make the branch float32, which the joined kernel leaves
  const auto first = make_block(c, 0), second = make_block(c, 1);
  {
    torch::NoGradGuard no_grad;  // a block's linear layers start uninitialised (the model initialises them)
    for (const auto& p : first->parameters()) p.normal_(0.0, 0.2);
    for (const auto& p : second->parameters()) p.normal_(0.0, 0.2);
  }
  auto* a = first->as<BlockImpl>();
  auto* b = second->as<BlockImpl>();
  REQUIRE(a->first_norm() != nullptr);
  const auto x = torch::randn({3, 17, 32});
  const auto upstream = torch::randn({3, 17, 32});
  std::vector<torch::Tensor> outputs;
  std::vector<std::vector<torch::Tensor>> gradients;
  for (const bool chained : {true, false}) {
    auto input = leaf(x);
    torch::Tensor out;
    {
      CpuBf16Autocast autocast;
      if (chained) {
        const auto [y, normed] = a->forward_chained(input, torch::Tensor(), b->first_norm(), nullptr);
        REQUIRE(normed.scalar_type() == torch::kBFloat16);  // the second block's norm1, joined to the first's add
        CHECK_THAT(y.grad_fn()->name(), test::Contains("ResidualAddLayerNormToBf16"));
        out = b->forward_chained(y, normed, nullptr, nullptr).first;
      } else {
        out = b->forward(a->forward(input, nullptr), nullptr);
      }
    }
    outputs.push_back(out);
    std::vector<torch::Tensor> wrt{input};
    for (const auto& p : first->parameters()) wrt.push_back(p);
    for (const auto& p : second->parameters()) wrt.push_back(p);
    gradients.push_back(torch::autograd::grad({out}, wrt, {upstream}));
  }
  CHECK(torch::equal(outputs[0], outputs[1]));
  REQUIRE(gradients[0].size() == gradients[1].size());
  for (size_t i = 0; i < gradients[0].size(); ++i) {
    CAPTURE(i);
    CHECK(torch::equal(gradients[0][i], gradients[1][i]));
  }
  CHECK(outputs[1].isfinite().all().item<bool>());
  CHECK(gradients[1][0].abs().max().item<double>() > 0.01);  // not a comparison of zeros
  // A res-post block has no first norm to share.
  c.block_fn = BlockFn::ResPost;
  CHECK(make_block(c, 0)->as<BlockImpl>()->first_norm() == nullptr);
}

namespace {

// The attention the dot-product kernel computes, in float32 from the same bf16 values: float32 scores and softmax,
// the probabilities rounded to bf16 before they multiply v (their gradient passing the rounding unchanged, as the
// kernel's backward takes the rounded probabilities for the softmax's).
torch::Tensor rounded_probabilities_attention(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), n = qkv.size(1), dim = qkv.size(2) / 3, hd = dim / heads;
  const auto parts = qkv.reshape({b, n, 3, heads, hd}).permute({2, 0, 3, 1, 4}).unbind(0);
  const auto probs =
      (torch::matmul(parts[0], parts[1].transpose(2, 3)) / std::sqrt(static_cast<double>(hd))).softmax(-1);
  const auto rounded = probs + (probs.to(torch::kBFloat16).to(torch::kFloat) - probs).detach();
  return torch::matmul(rounded, parts[2]).transpose(1, 2).reshape({b, n, dim});
}

}  // namespace

TEST_CASE("bf16 attention on AVX512-BF16 dot products gives float32 attention's outputs and gradients",
          "[model][cpu][attention_bf16]") {
  if (!cpu_attention_bf16_dot_available(32)) {
    WARN("not run: this CPU has no AVX512-BF16");
    return;
  }
  torch::manual_seed(12);
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // (image, head) pairs split across threads
  // One token; a pair; the main job's 13 and 25 (a padded pair, a partial vector of keys); vit_mini_patch4_32's 65;
  // whole vectors;
  // 197 (ViT-B/16's) in heads of 64; heads of 16 channels (one vector, whole and odd sequences) and of 48 (three).
  for (const auto& [batch, tokens, heads, head_dim] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 1, 2, 32},
                                                       {2, 2, 2, 32},
                                                       {5, 13, 4, 32},
                                                       {3, 25, 4, 32},
                                                       {7, 65, 4, 32},
                                                       {2, 64, 2, 16},
                                                       {2, 33, 2, 16},
                                                       {2, 197, 2, 64},
                                                       {3, 33, 3, 48}}) {
    CAPTURE(batch, tokens, heads, head_dim);
    const int64_t dim = heads * head_dim;
    const auto qkv = (torch::randn({batch, tokens, 3 * dim}) * 1.5).to(torch::kBFloat16);
    const auto upstream = torch::randn({batch, tokens, dim}).to(torch::kBFloat16);
    REQUIRE(cpu_attention_bf16_dot_available(head_dim));

    auto ours_in = leaf(qkv);
    const auto ours = cpu_attention_bf16_dot(ours_in, heads);
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    REQUIRE(ours.sizes() == torch::IntArrayRef{batch, tokens, dim});
    auto same_in = leaf(qkv.to(torch::kFloat));
    const auto same = rounded_probabilities_attention(same_in, heads);
    auto exact_in = leaf(qkv.to(torch::kFloat));
    const auto exact = reference_attention(exact_in, heads);
    // Against its own arithmetic in float32: the output's rounding to bf16 and the order of float32 sums apart, within
    // a rounding step of the largest output; against float32 attention, within the probabilities' rounding too.
    const double largest = exact.abs().max().item<double>();
    CHECK(max_diff(ours.to(torch::kFloat), same.detach()) <= largest / 256);
    CHECK(max_diff(ours.to(torch::kFloat), exact.detach()) <= largest / 64);
    {
      torch::NoGradGuard no_grad;  // inference keeps no probabilities for a backward pass: the same output
      CHECK(torch::equal(cpu_attention_bf16_dot(qkv, heads), ours));
    }

    ours.backward(upstream);
    same.backward(upstream.to(torch::kFloat));
    exact.backward(upstream.to(torch::kFloat));
    REQUIRE(ours_in.grad().scalar_type() == torch::kBFloat16);
    const auto expected = exact_in.grad();
    if (tokens > 1) CHECK(expected.abs().max().item<double>() > 0.1);  // not a comparison of zeros
    // q, k and v's gradients, each where the projection holds it: the bf16 gradient of the scores in between.
    CHECK(max_diff(ours_in.grad().to(torch::kFloat), same_in.grad()) <= expected.abs().max().item<double>() / 128);
    CHECK(max_diff(ours_in.grad().to(torch::kFloat), expected) <= expected.abs().max().item<double>() / 32);
  }
  at::set_num_threads(threads);
}

TEST_CASE("bf16 attention keeps each image and head to itself, and reads a strided projection",
          "[model][cpu][attention_bf16]") {
  torch::manual_seed(10);
  // What each kernel is compared with: the float32 attention for the one-pass kernel, the same with the
  // probabilities rounded to bf16 for the dot-product one, the operator path (scores rounded to bf16 as there) for
  // the chunked one.
  const auto expected_of = [](const torch::Tensor& qkv, int64_t heads) {
    const Bf16AttentionKernel kernel = cpu_attention_bf16_kernel(qkv, heads);
    if (kernel == Bf16AttentionKernel::one_pass) return reference_attention(qkv.to(torch::kFloat), heads);
    if (kernel == Bf16AttentionKernel::dot_product) {
      return rounded_probabilities_attention(qkv.to(torch::kFloat), heads);
    }
    CpuBf16Autocast autocast;
    return operator_attention_bf16(qkv, heads).to(torch::kFloat);
  };
  for (const int lanes : test::vector_widths()) {
    cpu::set_vector_lanes(lanes);
    for (const int64_t tokens : {int64_t{13}, kBf16AttentionMaxTokens + 6}) {  // one pass; chunked
      CAPTURE(lanes, tokens);
      auto qkv = torch::randn({4, tokens, 3 * 64}).to(torch::kBFloat16);
      qkv[2][5][16] = std::numeric_limits<float>::quiet_NaN();  // image 2, token 5: the query of head 1 of 4 (of 16)
      torch::NoGradGuard no_grad;
      const auto out = cpu_attention_bf16(qkv, 4).to(torch::kFloat);
      const auto nan = torch::isnan(out);
      // Only that query's output in that head is NaN; every other image, token and head is untouched.
      CHECK(nan.sum().item<int64_t>() == 16);
      CHECK(nan[2][5].narrow(0, 16, 16).all().item<bool>());
      const auto clean = qkv.clone();
      clean[2][5][16] = 0.0;
      const auto expected = expected_of(clean, 4);
      auto others = torch::ones({4, tokens, 64}, torch::kBool);
      others[2][5] = false;
      CHECK(within_bf16_step(out.masked_select(others), expected.masked_select(others)));

      const auto wide = torch::randn({2, tokens, 3 * 32 + 16}).to(torch::kBFloat16);
      const auto view = wide.narrow(2, 16, 3 * 32);  // rows of 112 elements, 96 of them the projection
      CHECK(within_bf16_step(cpu_attention_bf16(view, 2), expected_of(view, 2)));
    }
  }
}

TEST_CASE("bf16 attention refuses what it cannot take", "[model][cpu][attention_bf16]") {
  const auto ok = torch::zeros({2, 13, 3 * 64}, torch::kBFloat16);
  CHECK(cpu_attention_bf16_available(ok, 4));
  CHECK_FALSE(cpu_attention_bf16_available(ok.to(torch::kFloat), 4));                             // float32
  CHECK(cpu_attention_bf16_available(ok, 8));  // heads of 8: to the chunked kernel (not whole vectors)
  CHECK_FALSE(cpu_attention_bf16_one_pass(ok, 8));
  CHECK_FALSE(cpu_attention_bf16_available(ok, 5));                                               // 64 / 5
  CHECK(cpu_attention_bf16_one_pass(ok, 4));
  // The dispatcher's choice: the dot-product kernel wherever the CPU has it and the heads are whole vectors.
  const bool dot = cpu_attention_bf16_dot_available(64);
  CHECK(dot == cpu::has_bf16_dot());
  CHECK(cpu_attention_bf16_kernel(ok, 4) == (dot ? Bf16AttentionKernel::dot_product : Bf16AttentionKernel::one_pass));
  CHECK(cpu_attention_bf16_kernel(ok, 8) == Bf16AttentionKernel::chunked);
  const auto longer = torch::zeros({2, kBf16AttentionMaxTokens + 1, 3 * 64}, torch::kBFloat16);
  CHECK(cpu_attention_bf16_available(longer, 4));
  CHECK(cpu_attention_bf16_kernel(longer, 4) ==
        (dot ? Bf16AttentionKernel::dot_product : Bf16AttentionKernel::chunked));
  CHECK_FALSE(cpu_attention_bf16_dot_available(8));
  CHECK_FALSE(cpu_attention_bf16_dot_available(24));
  CHECK_FALSE(cpu_attention_bf16_one_pass(longer, 4));
  CHECK_FALSE(cpu_attention_bf16_available(ok.reshape({26, 3 * 64}), 4));                         // not (B, N, 3D)
  CHECK_THAT(test::error_of([&] { cpu_attention_bf16(ok, 5); }),
             test::Contains("cpu_attention_bf16: qkv [2, 13, 192]"));
  CHECK_THAT(test::error_of([&] { cpu_attention_bf16_one_pass_kernel(longer, 4); }),
             test::Contains("not a sequence the one-pass kernel takes"));

  // A second derivative would silently miss this function's part: each kernel refuses it by name (the one-pass, the
  // chunked, and, where the CPU has it, the dot-product kernel).
  const auto refuses_create_graph = [](const torch::Tensor& out, const torch::Tensor& qkv) {
    CHECK_THAT(test::error_of([&] { torch::autograd::grad({out.sum()}, {qkv}, {}, true, /*create_graph=*/true); }),
               test::Contains("cpu_attention_bf16: a differentiable backward (create_graph"));
  };
  auto short_qkv = torch::randn({1, 3, 3 * 16}).to(torch::kBFloat16).requires_grad_(true);
  refuses_create_graph(cpu_attention_bf16_one_pass_kernel(short_qkv, 1), short_qkv);
  auto qkv = torch::randn({1, kBf16AttentionMaxTokens + 1, 3 * 16}).to(torch::kBFloat16).requires_grad_(true);
  refuses_create_graph(cpu_attention_bf16_chunked(qkv, 1), qkv);
  if (cpu_attention_bf16_dot_available(16)) refuses_create_graph(cpu_attention_bf16_dot(qkv, 1), qkv);
}

}  // namespace vit

namespace vit {

TEST_CASE("the residual add gives LibTorch's float32 + bf16 sum and gradients exactly, at every vector width",
          "[model][cpu][residual_add]") {
  torch::manual_seed(21);
  at::set_num_threads(2);
  // A partial last vector at every width (777 elements), and a tensor split across both threads.
  for (const auto& sizes : {std::vector<int64_t>{3, 7, 37}, std::vector<int64_t>{4, 300, 128}}) {
    const auto x = torch::randn(sizes) * 3;
    const auto branch = torch::randn(sizes).to(torch::kBFloat16);
    const auto upstream = torch::randn(sizes);
    for (const int lanes : test::vector_widths()) {
      INFO("vector lanes " << lanes << ", " << x.numel() << " elements");
      cpu::set_vector_lanes(lanes);
      auto x1 = leaf(x), b1 = leaf(branch), x2 = leaf(x), b2 = leaf(branch);
      REQUIRE(cpu::residual_add_available(x1, b1));
      const auto ours = cpu::residual_add(x1, b1);
      const auto theirs = x2 + b2;
      REQUIRE(ours.scalar_type() == torch::kFloat);
      CHECK(torch::equal(ours, theirs));  // bf16 widens exactly: one float32 addition either way
      (ours * upstream).sum().backward();
      (theirs * upstream).sum().backward();
      CHECK(torch::equal(x1.grad(), x2.grad()));
      REQUIRE(b1.grad().scalar_type() == torch::kBFloat16);
      CHECK(torch::equal(b1.grad(), b2.grad()));
    }
  }
  cpu::set_vector_lanes(0);
  // A NaN or an infinity stays where it was.
  auto x = torch::zeros({40});
  auto branch = torch::ones({40}).to(torch::kBFloat16);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  branch[38] = -std::numeric_limits<float>::infinity();
  const auto sum = cpu::residual_add(x, branch);
  CHECK(std::isnan(sum[3].item<float>()));
  CHECK(sum[38].item<float>() == -std::numeric_limits<float>::infinity());
  CHECK(sum.isfinite().sum().item<int64_t>() == 38);
}

TEST_CASE("the residual add has LibTorch's second derivative (create_graph)", "[model][cpu][residual_add]") {
  torch::manual_seed(22);
  const auto x = torch::randn({3, 5, 16});
  const auto branch = torch::randn({3, 5, 16}).to(torch::kBFloat16);
  std::vector<torch::Tensor> second;
  for (const bool ours : {true, false}) {
    auto xl = leaf(x), bl = leaf(branch);
    const auto y = ours ? cpu::residual_add(xl, bl) : xl + bl;
    // d/dx of sum(y^3) is 3 y^2; the sum of that, differentiated again, 6 y.
    const auto first = torch::autograd::grad({y.pow(3).sum()}, {xl}, {}, true, /*create_graph=*/true);
    second.push_back(torch::autograd::grad({first[0].sum()}, {xl})[0]);
  }
  CHECK(torch::allclose(second[0], second[1]));
  CHECK(second[1].abs().max().item<double>() > 0.1);
}

TEST_CASE("the residual add refuses what it cannot take", "[model][cpu][residual_add]") {
  const auto x = torch::randn({2, 5, 8});
  const auto branch = torch::randn({2, 5, 8}).to(torch::kBFloat16);
  CHECK(cpu::residual_add_available(x, branch));
  CHECK_FALSE(cpu::residual_add_available(x, branch.to(torch::kFloat)));                // not the autocast mix
  CHECK_FALSE(cpu::residual_add_available(x.to(torch::kBFloat16), branch));             // a bf16 residual stream
  CHECK_FALSE(cpu::residual_add_available(x, branch.narrow(2, 0, 4)));                  // other sizes
  CHECK_FALSE(cpu::residual_add_available(x, branch.select(0, 0)));                     // a broadcast
  CHECK_FALSE(cpu::residual_add_available(x.transpose(1, 2), branch.transpose(1, 2)));  // not contiguous
  CHECK_FALSE(cpu::residual_add_available(torch::Tensor(), branch));
  CHECK_THAT(test::error_of([&] { cpu::residual_add(x, branch.to(torch::kFloat)); }),
             test::Contains("residual_add needs a contiguous float32 CPU tensor"));
}

}  // namespace vit
