#include "models/cpu_softmax.h"

#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

// The kernels use GCC's vector extensions: one source, compiled for W float lanes (16: AVX-512, 8: AVX2, 4: the
// SSE baseline every x86-64 has) in functions whose target attribute enables that instruction set, picked at run
// time. Vectors travel between always-inlined helpers only, so no call's ABI depends on them, and GCC's warning
// that vector return values change ABI with the instruction set does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)  // GCC 12 and later, clang
#define VIT_HAVE_SHUFFLEVECTOR 1
#endif
#endif

namespace vit::cpu {
namespace {

// The vector types of W lanes. (An alias template cannot carry vector_size for a dependent W; a specialisation
// can.)
template <int W>
struct Lanes;
#define VIT_LANES(W)                                        \
  template <>                                               \
  struct Lanes<W> {                                         \
    typedef float f __attribute__((vector_size(W * 4)));    \
    typedef uint32_t u __attribute__((vector_size(W * 4))); \
    typedef uint16_t h __attribute__((vector_size(W * 2))); \
  };
VIT_LANES(4)
VIT_LANES(8)
VIT_LANES(16)
#undef VIT_LANES
template <int W>
using Vec = typename Lanes<W>::f;
template <int W>
using BitsVec = typename Lanes<W>::u;  // float32 bit patterns
template <int W>
using HalfVec = typename Lanes<W>::h;
static_assert(sizeof(Vec<16>) == 64, "the vector extension is in use");

constexpr float kLowest = -std::numeric_limits<float>::infinity();  // a partial vector's padding

// e^x for x <= 0 (softmax subtracts the row's maximum first): 2^k * e^f with k = round(x / ln 2) and
// |f| <= ln(2) / 2 (x - k ln 2 in two steps, Cody and Waite's, so that f keeps its precision), e^f by its Taylor
// series to degree 7 (truncation below 6e-9 relative, under float32's rounding). Below -87, where 2^k would leave
// float32's normal range, the result is 0, as -inf's is (e^-87 ~ 1.6e-38: nothing beside the maximum's 1); a NaN
// stays NaN.
template <int W>
[[gnu::always_inline]] inline Vec<W> exp_nonpositive(const Vec<W>& x) {
  // Adding 1.5 * 2^23 rounds x / ln 2 to an integer, held in the sum's low mantissa bits; with the 127 of
  // float32's exponent bias added too, those bits shifted into the exponent field are 2^k (k in [-126, 0]; bit
  // operations only, defined whatever x is).
  constexpr float kShifter = 12582912.0f + 127.0f;
  const Vec<W> shifted = x * 1.44269504088896341f + kShifter;
  const Vec<W> k = shifted - kShifter;
  Vec<W> f = x - k * 0.693359375f;  // ln 2's leading bits: k times them is exact
  f = f - k * -2.12194440e-4f;      // and the rest of ln 2
  Vec<W> p = 1.0f / 720 + f * (1.0f / 5040);
  p = 1.0f / 120 + f * p;
  p = 1.0f / 24 + f * p;
  p = 1.0f / 6 + f * p;
  p = 0.5f + f * p;
  p = 1.0f + f * p;
  p = 1.0f + f * p;
  BitsVec<W> bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits <<= 23;
  Vec<W> two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return x < -87.0f ? Vec<W>{} : p * two_k;
}

template <int W>
[[gnu::always_inline]] inline Vec<W> load(const float* p) {
  Vec<W> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int W>
[[gnu::always_inline]] inline Vec<W> load(const c10::BFloat16* p) {  // bf16 is float32's upper half
  HalfVec<W> half;
  std::memcpy(&half, p, sizeof half);
  const BitsVec<W> bits = __builtin_convertvector(half, BitsVec<W>) << 16;
  Vec<W> v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

template <int W>
[[gnu::always_inline]] inline void store(float* p, const Vec<W>& v) {
  std::memcpy(p, &v, sizeof v);
}

template <int W>
[[gnu::always_inline]] inline void store(c10::BFloat16* p, const Vec<W>& v) {  // rounded to nearest even, as c10 does
  BitsVec<W> bits;
  std::memcpy(&bits, &v, sizeof bits);
  BitsVec<W> rounded = (bits + (0x7FFFu + ((bits >> 16) & 1u))) >> 16;
  rounded = v != v ? BitsVec<W>{} + 0x7FC0u : rounded;  // NaN stays a (quiet) NaN
  const HalfVec<W> half = __builtin_convertvector(rounded, HalfVec<W>);
  std::memcpy(p, &half, sizeof half);
}

// A row's partial last vector is read and written as a whole vector (the lanes past the row masked off) when that
// vector stays inside the rows of this call: what spills into the next rows is overwritten when their turn comes,
// in order, on the same thread. Near the end of the call it goes element by element: past it the memory may not
// be the caller's, or may be another thread's.
template <int W, typename T>
[[gnu::always_inline]] inline Vec<W> load_partial(const T* p, int64_t count, float pad) {
  alignas(64) float lanes[W];
  for (int l = 0; l < W; ++l) lanes[l] = l < count ? static_cast<float>(p[l]) : pad;
  return load<W>(lanes);
}

template <int W, typename T>
[[gnu::always_inline]] inline void store_partial(T* p, const Vec<W>& v, int64_t count) {
  for (int64_t l = 0; l < count; ++l) p[l] = static_cast<T>(v[l]);
}

#ifdef VIT_HAVE_SHUFFLEVECTOR
// v with its lanes rotated by `Shift`: lane l holds v[(l + Shift) % W].
template <int W, int Shift, size_t... Lane>
[[gnu::always_inline]] inline Vec<W> rotated(const Vec<W>& v, std::index_sequence<Lane...>) {
  return __builtin_shufflevector(v, v, ((Lane + Shift) % W)...);
}
#endif

// The two reductions' operations, inlined wherever they are used: a call would pass vectors by an ABI that
// depends on the caller's instruction set.
struct Maximum {
  template <int W>
  [[gnu::always_inline]] static Vec<W> apply(const Vec<W>& a, const Vec<W>& b) {
    return a > b ? a : b;
  }
};
struct Sum {
  template <int W>
  [[gnu::always_inline]] static Vec<W> apply(const Vec<W>& a, const Vec<W>& b) {
    return a + b;
  }
};

// Horizontal maximum and sum as a tree of log2(W) vector steps (element-wise loops compile to stores and scalar
// loads that stall).
template <int W, typename Op>
[[gnu::always_inline]] inline float reduce(const Vec<W>& in) {
  Vec<W> v = in;
#ifdef VIT_HAVE_SHUFFLEVECTOR
  constexpr auto lanes = std::make_index_sequence<W>{};
  if constexpr (W >= 16) v = Op::template apply<W>(v, rotated<W, 8>(v, lanes));
  if constexpr (W >= 8) v = Op::template apply<W>(v, rotated<W, 4>(v, lanes));
  v = Op::template apply<W>(v, rotated<W, 2>(v, lanes));
  v = Op::template apply<W>(v, rotated<W, 1>(v, lanes));
#else  // GCC before 12: lane by lane
  for (int l = 1; l < W; ++l) v = Op::template apply<W>(v, Vec<W>{} + in[l]);
#endif
  return v[0];
}

template <int W>
[[gnu::always_inline]] inline float max_of(const Vec<W>& v) {
  return reduce<W, Maximum>(v);
}

template <int W>
[[gnu::always_inline]] inline float sum_of(const Vec<W>& v) {
  return reduce<W, Sum>(v);
}

// 1 in a partial vector's lanes that belong to the row, 0 in the others.
template <int W>
[[gnu::always_inline]] inline Vec<W> row_lanes(int64_t count) {
  Vec<W> lane;
  for (int l = 0; l < W; ++l) lane[l] = static_cast<float>(l);
  return lane < static_cast<float>(count) ? Vec<W>{} + 1.0f : Vec<W>{};
}

template <int W, typename T>
[[gnu::always_inline]] inline void forward_rows(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  const int64_t full = n / W, rest = n % W, vectors = full + (rest ? 1 : 0);
  const Vec<W> in_row = row_lanes<W>(rest);
  // One row's scaled scores, then its exponentials. Plain floats: a vector of Vec<W> would need an allocator
  // that honours 64-byte alignment.
  std::vector<float> row(static_cast<size_t>(vectors * W));
  float* buffer = row.data();
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = in + r * n;
    T* y = out + r * n;
    const bool last = (r + 1) * n + (W - rest) > rows * n;  // a whole tail vector would leave the range
    Vec<W> largest = Vec<W>{} + kLowest;
    for (int64_t c = 0; c < full; ++c) {
      const Vec<W> v = load<W>(x + c * W) * scale;
      store<W>(buffer + c * W, v);
      largest = v > largest ? v : largest;
    }
    if (rest) {
      const Vec<W> tail = last ? load_partial<W>(x + full * W, rest, 0.0f) : load<W>(x + full * W);
      const Vec<W> v = in_row > 0.0f ? tail * scale : Vec<W>{} + kLowest;
      store<W>(buffer + full * W, v);
      largest = v > largest ? v : largest;
    }
    const float row_max = max_of<W>(largest);
    Vec<W> total{};
    for (int64_t c = 0; c < vectors; ++c) {
      Vec<W> e = exp_nonpositive<W>(load<W>(buffer + c * W) - row_max);
      if (c == full) e = in_row > 0.0f ? e : Vec<W>{};  // the padding's exponentials: zero
      store<W>(buffer + c * W, e);
      total += e;
    }
    const float inverse = 1.0f / sum_of<W>(total);
    for (int64_t c = 0; c < full; ++c) store<W>(y + c * W, load<W>(buffer + c * W) * inverse);
    if (rest) {
      const Vec<W> v = load<W>(buffer + full * W) * inverse;
      if (last) {
        store_partial<W>(y + full * W, v, rest);
      } else {
        store<W>(y + full * W, v);
      }
    }
  }
}

template <int W, typename T>
[[gnu::always_inline]] inline void backward_rows(const T* p, const T* grad_out, T* grad_in, int64_t rows, int64_t n,
                                                 float scale) {
  const int64_t full = n / W, rest = n % W;
  const Vec<W> in_row = row_lanes<W>(rest);
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = p + r * n;
    const T* gr = grad_out + r * n;
    T* out = grad_in + r * n;
    const bool last = (r + 1) * n + (W - rest) > rows * n;  // a whole tail vector would leave the range
    Vec<W> dot{};
    for (int64_t c = 0; c < full; ++c) dot += load<W>(pr + c * W) * load<W>(gr + c * W);
    Vec<W> p_tail{}, g_tail{};
    if (rest) {  // selected, not multiplied by the mask: the next row may hold an infinity
      p_tail = last ? load_partial<W>(pr + full * W, rest, 0.0f) : load<W>(pr + full * W);
      g_tail = last ? load_partial<W>(gr + full * W, rest, 0.0f) : load<W>(gr + full * W);
      p_tail = in_row > 0.0f ? p_tail : Vec<W>{};
      g_tail = in_row > 0.0f ? g_tail : Vec<W>{};
      dot += p_tail * g_tail;
    }
    const float row_dot = sum_of<W>(dot);
    for (int64_t c = 0; c < full; ++c)
      store<W>(out + c * W, load<W>(pr + c * W) * (load<W>(gr + c * W) - row_dot) * scale);
    if (rest) {
      const Vec<W> tail = p_tail * (g_tail - row_dot) * scale;
      if (last) {
        store_partial<W>(out + full * W, tail, rest);
      } else {
        store<W>(out + full * W, tail);
      }
    }
  }
}

template <typename T>
using ForwardKernel = void (*)(const T*, T*, int64_t, int64_t, float);
template <typename T>
using BackwardKernel = void (*)(const T*, const T*, T*, int64_t, int64_t, float);

template <typename T>
void forward_baseline(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  forward_rows<4>(in, out, rows, n, scale);
}
template <typename T>
void backward_baseline(const T* p, const T* g, T* out, int64_t rows, int64_t n, float scale) {
  backward_rows<4>(p, g, out, rows, n, scale);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define VIT_HAVE_WIDE_KERNELS 1
template <typename T>
[[gnu::target("avx512f,avx512bw,avx512vl")]] void forward_avx512(const T* in, T* out, int64_t rows, int64_t n,
                                                                 float scale) {
  forward_rows<16>(in, out, rows, n, scale);
}
template <typename T>
[[gnu::target("avx512f,avx512bw,avx512vl")]] void backward_avx512(const T* p, const T* g, T* out, int64_t rows,
                                                                  int64_t n, float scale) {
  backward_rows<16>(p, g, out, rows, n, scale);
}
template <typename T>
[[gnu::target("avx2,fma")]] void forward_avx2(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  forward_rows<8>(in, out, rows, n, scale);
}
template <typename T>
[[gnu::target("avx2,fma")]] void backward_avx2(const T* p, const T* g, T* out, int64_t rows, int64_t n, float scale) {
  backward_rows<8>(p, g, out, rows, n, scale);
}
#endif

// The widest vector this CPU runs, found once; set_softmax_lanes may narrow it.
int widest_lanes() {
  static const int lanes = [] {
#ifdef VIT_HAVE_WIDE_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
      return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
#endif
    return 4;
  }();
  return lanes;
}

int chosen_lanes = 0;  // 0: the widest

template <typename T>
ForwardKernel<T> forward_kernel() {
#ifdef VIT_HAVE_WIDE_KERNELS
  if (softmax_lanes() == 16) return forward_avx512<T>;
  if (softmax_lanes() == 8) return forward_avx2<T>;
#endif
  return forward_baseline<T>;
}

template <typename T>
BackwardKernel<T> backward_kernel() {
#ifdef VIT_HAVE_WIDE_KERNELS
  if (softmax_lanes() == 16) return backward_avx512<T>;
  if (softmax_lanes() == 8) return backward_avx2<T>;
#endif
  return backward_baseline<T>;
}

// Rows split across LibTorch's threads, a few thousand elements at least to each.
template <typename Fn>
void for_row_ranges(int64_t rows, int64_t n, const Fn& fn) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), fn);
}

template <typename T>
void forward_split(const T* in, T* out, int64_t rows, int64_t n, float scale) {
  const auto kernel = forward_kernel<T>();
  for_row_ranges(rows, n,
                 [&](int64_t begin, int64_t end) { kernel(in + begin * n, out + begin * n, end - begin, n, scale); });
}

template <typename T>
void backward_split(const T* p, const T* g, T* out, int64_t rows, int64_t n, float scale) {
  const auto kernel = backward_kernel<T>();
  for_row_ranges(rows, n, [&](int64_t begin, int64_t end) {
    kernel(p + begin * n, g + begin * n, out + begin * n, end - begin, n, scale);
  });
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class ScaledSoftmax : public torch::autograd::Function<ScaledSoftmax> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& scores, double scale) {
    const at::Tensor x = scores.contiguous();
    at::Tensor p = at::empty_like(x, at::MemoryFormat::Contiguous);
    const int64_t n = x.size(-1), rows = n > 0 ? x.numel() / n : 0;
    const auto s = static_cast<float>(scale);
    if (x.scalar_type() == at::kBFloat16) {
      forward_split(x.data_ptr<c10::BFloat16>(), p.data_ptr<c10::BFloat16>(), rows, n, s);
    } else {
      forward_split(x.data_ptr<float>(), p.data_ptr<float>(), rows, n, s);
    }
    ctx->save_for_backward({p});
    ctx->saved_data["scale"] = scale;
    return p;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor p = ctx->get_saved_variables()[0];
    const at::Tensor g = grads[0].to(p.scalar_type()).contiguous();
    if (at::GradMode::is_enabled()) {  // create_graph: the gradient must be differentiable itself
      const auto scale = ctx->saved_data["scale"].toDouble();
      return {p * (g - (p * g).sum(-1, /*keepdim=*/true)) * scale, at::Tensor()};
    }
    at::Tensor dx = at::empty_like(p, at::MemoryFormat::Contiguous);
    const int64_t n = p.size(-1), rows = n > 0 ? p.numel() / n : 0;
    const auto s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    if (p.scalar_type() == at::kBFloat16) {
      backward_split(p.data_ptr<c10::BFloat16>(), g.data_ptr<c10::BFloat16>(), dx.data_ptr<c10::BFloat16>(), rows, n,
                     s);
    } else {
      backward_split(p.data_ptr<float>(), g.data_ptr<float>(), dx.data_ptr<float>(), rows, n, s);
    }
    return {dx, at::Tensor()};
  }
};

}  // namespace

int softmax_lanes() { return chosen_lanes > 0 ? chosen_lanes : widest_lanes(); }

void set_softmax_lanes(int lanes) {
  chosen_lanes = (lanes == 4 || lanes == 8 || lanes == 16) && lanes <= widest_lanes() ? lanes : 0;
}

bool softmax_available(const at::Tensor& scores) {
  return scores.defined() && scores.device().is_cpu() && scores.dim() >= 1 &&
         (scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kBFloat16) &&
         !torch::jit::tracer::isTracing();
}

at::Tensor scaled_softmax(const at::Tensor& scores, double scale) {
  TORCH_CHECK(softmax_available(scores), "scaled_softmax needs a float32 or bf16 CPU tensor, got ", scores.toString());
  return ScaledSoftmax::apply(scores, scale);
}

void softmax_rows(const float* in, float* out, int64_t rows, int64_t n, float scale) {
  forward_split(in, out, rows, n, scale);
}

void softmax_backward_rows(const float* p, const float* grad_out, float* grad_in, int64_t rows, int64_t n,
                           float scale) {
  backward_split(p, grad_out, grad_in, rows, n, scale);
}

}  // namespace vit::cpu
