#pragma once
// Command-line checks for whole-number options. CLI11's PositiveNumber / NonNegativeNumber report a range that
// ends at the largest double, printed as a 309-digit number; these say what they expect instead.

#include <cerrno>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace vit::app {

// A whole number of at least `minimum` ("expected a whole number >= 1, got '0'").
inline CLI::Validator whole_number_from(long long minimum) {
  const std::string expected = "expected a whole number >= " + std::to_string(minimum);
  return CLI::Validator(
      [minimum, expected](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long value = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE || value < minimum)
          return expected + ", got '" + text + "'";
        return {};
      },
      minimum == 0   ? "NONNEGATIVE"
      : minimum == 1 ? "POSITIVE"
                     : "INT>=" + std::to_string(minimum));
}

}  // namespace vit::app
