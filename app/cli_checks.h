#pragma once
// Command-line checks for whole-number options. CLI11's PositiveNumber / NonNegativeNumber report a range that
// ends at the largest double, printed as a 309-digit number; these say what they expect instead.

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace vit::app {

// A whole number of at least `minimum` ("expected a whole number >= 1, got '0'"), written as CLI11 converts it
// (decimal, 0x hexadecimal, a leading +). A minus sign is refused outright: strtoull would wrap it.
inline CLI::Validator whole_number_from(uint64_t minimum) {
  const std::string expected = "expected a whole number >= " + std::to_string(minimum);
  return CLI::Validator(
      [minimum, expected](std::string& text) -> std::string {
        const size_t first = text.find_first_not_of(" \t");
        if (first == std::string::npos || text[first] == '-') return expected + ", got '" + text + "'";
        errno = 0;
        char* end = nullptr;
        const unsigned long long value = std::strtoull(text.c_str() + first, &end, 0);
        if (*end != '\0' || errno == ERANGE || value < minimum) return expected + ", got '" + text + "'";
        return {};
      },
      minimum == 0   ? "NONNEGATIVE"
      : minimum == 1 ? "POSITIVE"
                     : "INT>=" + std::to_string(minimum));
}

}  // namespace vit::app
