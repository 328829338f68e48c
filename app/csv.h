#pragma once
// CSV fields as RFC 4180 writes them: quoted when they hold a comma, a quote or a line break.

#include <string>

namespace vit::app {

inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

}  // namespace vit::app
