// Where the time of a bf16 attention forward goes on CPU, what vit's softmax (models/cpu_softmax.h) saves, and
// whether oneDNN's matmul primitive (Debian's libdnnl 2.6 has no bf16 GEMM call, only the primitive) would run
// its two products faster than LibTorch does. Not a test and not part of the build: the figures behind the
// README's bf16 paragraph ("Why vit is faster").
//
// usage: bash bench/attention_bf16.sh [TOKENS] [BATCH] [THREADS]   (builds this file with g++ against Debian's
// LibTorch; THREADS defaults to every core)
//
// One (B, N, 3 * D) bf16 tensor laid out as timm's qkv projection output, softmax(q k^T / sqrt(Dh)) v per
// (image, head), output (B, N, D) bf16, as under autocast:
// - "LibTorch": the unfused formulation vit's bf16 path and torchvision run (permute + unbind copies, batched
//   matmul, softmax, batched matmul), each part timed on its own, and its softmax forward and backward against
//   vit's (the scale folded in);
// - "oneDNN": q, k and v read in place from qkv through strided memory descriptors, the scores in float32 (fp32
//   accumulation, the scale applied by the primitive), LibTorch's softmax, the probabilities back to bf16, the
//   output written in token order; and the same with q and k copied dense first, which oneDNN runs on its
//   brgemm kernels. oneDNN's choice of kernel is printed (impl).
// - vit's bf16 training path on LibTorch 1.13 (the operators around vit's softmax) against vit's kernels
//   (models/cpu_attention_bf16.h: one pass for short sequences, chunks of images, AVX512-BF16 dot products), forward
//   and forward + backward.
// Medians of 7 rounds of 20 calls, milliseconds per call.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <malloc.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "models/cpu_attention_bf16.h"
#include "models/cpu_attention_bf16_chunked.h"
#include "models/cpu_attention_bf16_dot.h"
#include "models/cpu_softmax.h"
#include "models/cpu_vector_width.h"

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

double median_ms(const std::function<void()>& fn) {
  constexpr int kRounds = 7, kCalls = 20;
  fn();  // warm-up: primitive caches, first touch of the buffers
  std::vector<double> rounds;
  for (int r = 0; r < kRounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) fn();
    rounds.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
                     kCalls);
  }
  std::nth_element(rounds.begin(), rounds.begin() + kRounds / 2, rounds.end());
  return rounds[kRounds / 2];
}

}  // namespace

int main(int argc, char** argv) {
  // As vit does at start-up: freed memory stays with the process (page faults are expensive on this VM).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 65;   // vit_mini_patch4_32: 64 patches + the class token
  const int64_t b = argc > 2 ? std::atoll(argv[2]) : 256;  // the batch bench/compare.sh uses
  at::set_num_threads(argc > 3 ? std::atoi(argv[3]) : static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  const int64_t h = 4, dh = 32, d = h * dh;                // vit_mini's 4 heads of 32
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  std::printf("batch %ld, %ld tokens, %ld heads of %ld, %d threads\n", b, n, h, dh, at::get_num_threads());

  torch::manual_seed(0);
  const auto qkv = torch::randn({b, n, 3 * d}).to(torch::kBFloat16);

  // LibTorch's formulation, part by part.
  const auto split = [&] { return qkv.reshape({b, n, 3, h, dh}).permute({2, 0, 3, 1, 4}).unbind(0); };
  const auto parts = split();
  const auto q = parts[0].contiguous(), k = parts[1].contiguous(), v = parts[2].contiguous();
  const auto scores = torch::matmul(q * scale, k.transpose(2, 3));
  const auto probs = torch::softmax(scores, -1);
  const auto libtorch = [&] {
    const auto p = split();
    const auto s = torch::matmul(p[0] * scale, p[1].transpose(2, 3));                      // (B, H, N, N)
    return torch::matmul(torch::softmax(s, -1), p[2]).transpose(1, 2).reshape({b, n, d});  // (B, N, D)
  };
  std::printf("LibTorch, whole       %7.2f ms\n", median_ms([&] { libtorch(); }));
  std::printf("  q, k, v copies      %7.2f ms\n", median_ms([&] {
                const auto p = split();
                (void)(p[0] * scale).contiguous(), (void)p[1].contiguous(), (void)p[2].contiguous();
              }));
  std::printf("  q k^T               %7.2f ms\n", median_ms([&] { torch::matmul(q, k.transpose(2, 3)); }));
  std::printf("  softmax (bf16)      %7.2f ms\n", median_ms([&] { torch::softmax(scores, -1); }));
  std::printf("  p v                 %7.2f ms\n", median_ms([&] { torch::matmul(probs, v); }));
  const auto grad = torch::randn_like(probs);
  std::printf("  softmax, forward + backward %5.2f ms\n", median_ms([&] {
                auto x = scores.detach().requires_grad_(true);
                torch::softmax(x * scale, -1).backward(grad);
              }));
  std::printf("vit's softmax (%d float lanes), forward %5.2f ms, forward + backward %5.2f ms\n",
              vit::cpu::vector_lanes(), median_ms([&] { (void)vit::cpu::scaled_softmax(scores, scale); }),
              median_ms([&] {
                auto x = scores.detach().requires_grad_(true);
                vit::cpu::scaled_softmax(x, scale).backward(grad);
              }));

  // oneDNN's matmul primitive. Strides in elements; k and v are reached by offsetting the data pointer.
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const auto run_onednn = [&](bool dense_qk) {
    const dnnl::memory::desc q_md = dense_qk ? dnnl::memory::desc({b, h, n, dh}, dt::bf16, tag::abcd)
                                             : dnnl::memory::desc({b, h, n, dh}, dt::bf16, {n * 3 * d, dh, 3 * d, 1});
    const dnnl::memory::desc kt_md = dense_qk ? dnnl::memory::desc({b, h, dh, n}, dt::bf16, tag::abcd)
                                              : dnnl::memory::desc({b, h, dh, n}, dt::bf16, {n * 3 * d, dh, 1, 3 * d});
    const dnnl::memory::desc s_md({b, h, n, n}, dt::f32, tag::abcd);
    dnnl::primitive_attr scaled;
    scaled.set_output_scales(0, {static_cast<float>(scale)});
    const dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, kt_md, s_md), scaled, engine);
    const dnnl::memory::desc p_md({b, h, n, n}, dt::bf16, tag::abcd);
    const dnnl::memory::desc v_md({b, h, n, dh}, dt::bf16, {n * 3 * d, dh, 3 * d, 1});
    const dnnl::memory::desc o_md({b, h, n, dh}, dt::bf16, {n * d, dh, d, 1});  // (B, N, H, Dh) = (B, N, D)
    const dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(p_md, v_md, o_md), engine);
    const dnnl::matmul qk(qk_pd), pv(pv_pd);
    auto* base = static_cast<char*>(qkv.data_ptr());
    const auto attend = [&] {
      torch::Tensor qd, ktd;
      if (dense_qk) {
        const auto p = split();
        qd = p[0].contiguous();
        ktd = p[1].transpose(2, 3).contiguous();
      }
      auto s = torch::empty({b, h, n, n});
      dnnl::memory qm(q_md, engine, dense_qk ? qd.data_ptr() : base);
      dnnl::memory km(kt_md, engine, dense_qk ? ktd.data_ptr() : base + d * 2);
      dnnl::memory sm(s_md, engine, s.data_ptr());
      qk.execute(stream, {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}});
      const auto p = at::_softmax(s, -1, false).to(torch::kBFloat16);
      auto out = torch::empty({b, n, d}, torch::kBFloat16);
      dnnl::memory pm(p_md, engine, p.data_ptr()), vm(v_md, engine, base + 2 * d * 2), om(o_md, engine, out.data_ptr());
      pv.execute(stream, {{DNNL_ARG_SRC, pm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, om}});
      return out;
    };
    const float diff = (attend().to(torch::kFloat) - libtorch().to(torch::kFloat)).abs().max().item<float>();
    std::printf("oneDNN, %-13s %7.2f ms  (q k^T on %s, p v on %s; largest difference from LibTorch's %.3g)\n",
                dense_qk ? "q, k dense" : "in place", median_ms([&] { attend(); }), qk_pd.impl_info_str(),
                pv_pd.impl_info_str(), diff);
  };
  run_onednn(false);
  run_onednn(true);
  const auto scores_f32 = scores.to(torch::kFloat);
  std::printf("  its softmax (float32) %5.2f ms\n", median_ms([&] { at::_softmax(scores_f32, -1, false); }));

  // vit's bf16 training path on LibTorch 1.13, as layers.cpp runs it: LibTorch's copies and batched products around
  // vit's softmax, forward and backward; and vit's kernel for short sequences (models/cpu_attention_bf16.h).
  const auto upstream = torch::randn({b, n, d}).to(torch::kBFloat16);
  const auto operators = [&](const torch::Tensor& x) {
    const auto p = x.reshape({b, n, 3, h, dh}).permute({2, 0, 3, 1, 4}).unbind(0);
    const auto s = torch::matmul(p[0], p[1].transpose(2, 3));
    return torch::matmul(vit::cpu::scaled_softmax(s, scale), p[2]).transpose(1, 2).reshape({b, n, d});
  };
  const auto forward_backward = [&](const std::function<torch::Tensor(const torch::Tensor&)>& attention) {
    return median_ms([&] {
      auto x = qkv.detach().requires_grad_(true);
      attention(x).backward(upstream);
    });
  };
  const auto no_grad = [](const std::function<void()>& fn) {
    return median_ms([&] {
      torch::NoGradGuard guard;
      fn();
    });
  };
  std::printf("vit's training path (operators + vit's softmax): forward %5.2f ms, forward + backward %5.2f ms\n",
              no_grad([&] { operators(qkv); }), forward_backward(operators));
  // vit's three bf16 kernels where each takes this shape: the one-pass kernel (short sequences), the chunked one,
  // and the one on AVX512-BF16 dot products (cpu_attention_bf16_dot.h), the dispatcher's choice marked.
  const auto report = [&](const char* name, bool chosen, const std::function<torch::Tensor(const torch::Tensor&)>& k) {
    std::printf("vit's %-26s  forward %5.2f ms, forward + backward %5.2f ms%s\n", name, no_grad([&] { k(qkv); }),
                forward_backward(k), chosen ? "  (the one vit runs)" : "");
  };
  const vit::Bf16AttentionKernel chosen = vit::cpu_attention_bf16_kernel(qkv, h);
  if (vit::cpu_attention_bf16_one_pass(qkv, h)) {
    report("one-pass kernel:", chosen == vit::Bf16AttentionKernel::one_pass,
           [&](const torch::Tensor& x) { return vit::cpu_attention_bf16_one_pass_kernel(x, h); });
  }
  report("chunked kernel:", chosen == vit::Bf16AttentionKernel::chunked,
         [&](const torch::Tensor& x) { return vit::cpu_attention_bf16_chunked(x, h); });
  if (vit::cpu_attention_bf16_dot_available(dh)) {
    report("dot-product kernel:", chosen == vit::Bf16AttentionKernel::dot_product,
           [&](const torch::Tensor& x) { return vit::cpu_attention_bf16_dot(x, h); });
  }
  return 0;
}
