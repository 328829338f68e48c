#pragma once
// Whole numbers from JSON files that come from anywhere (config.json, vit's metadata). nlohmann's get<int64_t>()
// converts a floating-point value with a cast: undefined behaviour out of range (found by fuzz_hf_config:
// "num_attention_heads": 2.5e126) and a silent truncation in range (2.5 heads -> 2). Integer fields go through
// this instead.

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace vit {

// `value` as an integer: a JSON integer in int64_t's range, or a floating-point number that is whole (24.0) and
// exactly representable. Throws std::invalid_argument "WHAT must be a whole number, got VALUE" otherwise.
inline int64_t whole_number(const nlohmann::json& value, const std::string& what) {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(value.get<uint64_t>());
  } else if (value.is_number_integer()) {
    return value.get<int64_t>();
  } else if (value.is_number_float()) {
    const double d = value.get<double>();
    constexpr double kExact = 9007199254740992.0;  // 2^53: every whole double up to here is exact
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) <= kExact) return static_cast<int64_t>(d);
  }
  throw std::invalid_argument(what + " must be a whole number, got " + value.dump());
}

// The same for a member of an integer type narrower than int64_t: also refused when out of its range.
template <typename Int>
Int whole_number_as(const nlohmann::json& value, const std::string& what) {
  static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>);
  const int64_t n = whole_number(value, what);
  constexpr auto lowest = static_cast<int64_t>(std::numeric_limits<Int>::min());  // 0 for unsigned types
  constexpr auto highest = static_cast<uint64_t>(std::numeric_limits<Int>::max());
  if (n < lowest || (n > 0 && static_cast<uint64_t>(n) > highest))
    throw std::invalid_argument(what + " is out of range, got " + value.dump());
  return static_cast<Int>(n);
}

}  // namespace vit
