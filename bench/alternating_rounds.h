#pragma once
// What the kernel benchmarks (gelu.cpp, residual_layer_norm.cpp) share: two ways of doing one thing timed in
// alternating rounds, so that both meet the same spells of a shared, noisy machine.

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace vit::bench {

// The benchmarks' arguments, ROWS WIDTH THREADS, each optional: the tensor's shape, and LibTorch's thread count
// (set here; default 1).
struct Shape {
  int64_t rows, width;
};
inline Shape shape_from_args(int argc, char** argv, int64_t default_rows, int64_t default_width) {
  at::set_num_threads(argc > 3 ? std::atoi(argv[3]) : 1);
  return {argc > 1 ? std::atoll(argv[1]) : default_rows, argc > 2 ? std::atoll(argv[2]) : default_width};
}

inline double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// Milliseconds per call, over 20 calls.
inline double time_ms(const std::function<void()>& fn) {
  constexpr int kCalls = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / kCalls;
}

// 15 alternating rounds of `a` and `b` (after one warm-up call each: first touch of their outputs); prints each
// side's median and the median of the per-round ratios b / a.
inline void compare(const char* what, const char* name_a, const std::function<void()>& a, const char* name_b,
                    const std::function<void()>& b) {
  constexpr int kRounds = 15;
  a();
  b();
  std::vector<double> times_a, times_b, ratios;
  for (int r = 0; r < kRounds; ++r) {
    times_a.push_back(time_ms(a));
    times_b.push_back(time_ms(b));
    ratios.push_back(times_b.back() / times_a.back());
  }
  std::printf("%-20s %s %7.3f ms   %s %7.3f ms   %s / %s %.2fx\n", what, name_a, median(times_a), name_b,
              median(times_b), name_b, name_a, median(ratios));
}

}  // namespace vit::bench
