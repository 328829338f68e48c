#pragma once
// Small text helpers several libraries share.

#include <string>
#include <vector>

namespace vit {

// "a, b, c": names joined for messages and help texts.
inline std::string join(const std::vector<std::string>& names, const std::string& separator = ", ") {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : separator) + name;
  return text;
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

}  // namespace vit
