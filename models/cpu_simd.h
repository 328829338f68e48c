#pragma once
// What vit's vectorised CPU kernels (cpu_softmax.cpp, cpu_layer_norm.cpp) share: float vectors of W lanes, their
// loads and stores of float32 and bf16 memory, e^x, and running a kernel at the width cpu_vector_width.h chooses.
// Include it in those kernels' .cpp files only: it turns off a GCC warning for the whole file (below).
//
// The kernels use GCC's vector extensions: one source, compiled for W float lanes (16: AVX-512, 8: AVX2, 4: the
// SSE baseline every x86-64 has) in functions whose target attribute enables that instruction set, picked at run
// time (run_vectorised). Vectors travel between always-inlined helpers only, so no call's ABI depends on them, and
// GCC's warning that vector return values change ABI with the instruction set does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "models/cpu_vector_width.h"

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)  // GCC 12 and later, clang
#define VIT_HAVE_SHUFFLEVECTOR 1
#endif
#endif

namespace vit::cpu::simd {

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

// The first `count` (< W) elements, element by element, the other lanes `pad`: for the end of a range, past which
// the memory may not be the caller's, or may be another thread's.
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

// out[i] = x[i] + branch[i] over `count` elements: the float32 residual stream plus a bf16 branch, widened exactly,
// one float32 addition each (LibTorch's sum).
template <int W>
[[gnu::always_inline]] inline void add_widened(const float* x, const c10::BFloat16* branch, float* out, int64_t count) {
  int64_t i = 0;
  for (; i + W <= count; i += W) store<W>(out + i, load<W>(x + i) + load<W>(branch + i));
  if (i < count) {
    store_partial<W>(out + i, load_partial<W>(x + i, count - i, 0.0f) + load_partial<W>(branch + i, count - i, 0.0f),
                     count - i);
  }
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

// Kernel::run<W>(args...), with W = vector_lanes(), inside a function compiled for that width's instruction set.
// Kernel::run must be always-inlined, so that it is compiled for the instruction set of the function it is inlined
// into.
template <typename Kernel, typename... Args>
void run_baseline(Args... args) {
  Kernel::template run<4>(args...);
}
#if defined(__x86_64__) && defined(__GNUC__)
template <typename Kernel, typename... Args>
[[gnu::target("avx512f,avx512bw,avx512vl")]] void run_avx512(Args... args) {
  Kernel::template run<16>(args...);
}
template <typename Kernel, typename... Args>
[[gnu::target("avx2,fma")]] void run_avx2(Args... args) {
  Kernel::template run<8>(args...);
}
#endif

template <typename Kernel, typename... Args>
void run_vectorised(Args... args) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (vector_lanes() == 16) return run_avx512<Kernel>(args...);
  if (vector_lanes() == 8) return run_avx2<Kernel>(args...);
#endif
  run_baseline<Kernel>(args...);
}

}  // namespace vit::cpu::simd
