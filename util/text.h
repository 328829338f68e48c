#pragma once
// Small text helpers several libraries share.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vit {

// "a, b, c": names joined for messages and help texts.
inline std::string join(const std::vector<std::string>& names, const std::string& separator = ", ") {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : separator) + name;
  return text;
}

// `text` without leading and trailing white space (spaces, tabs, line breaks).
inline std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// `text` with ASCII letters in lower case (HTTP header names, URL schemes and hosts, yes/no words).
inline std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Whether `text` is exactly `digits` lowercase hexadecimal digits (a git commit: 40, a SHA-256: 64).
inline bool is_lowercase_hex(const std::string& text, size_t digits) {
  return text.size() == digits && std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

// A CSV field as RFC 4180 writes it: quoted when it holds a comma, a quote or a line break.
inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

// The whole of `text` as a base-10 integer: nothing when it is empty, holds anything else (a sign "+", spaces, a
// fraction, trailing characters) or is out of int64_t's range. std::stoll would accept "12abc" as 12.
inline std::optional<int64_t> parse_integer(const std::string& text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The whole of `text` as a finite decimal number ("0.25", "1e-3"): nothing otherwise, "nan" and "inf" included.
inline std::optional<double> parse_finite_number(const std::string& text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

}  // namespace vit
