#include "models/imagenet_classes.h"

#include <sstream>

#include "models/vit_weights_file.h"

namespace vit {

extern const char kImagenetClassesText[];  // models/imagenet_classes.txt, compiled in by CMake

const std::vector<std::string>& imagenet_class_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    std::istringstream lines(kImagenetClassesText);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }();
  return names;
}

std::vector<std::string> fallback_class_names(int64_t num_classes) {
  const auto& imagenet = imagenet_class_names();
  if (num_classes == static_cast<int64_t>(imagenet.size())) return imagenet;
  return default_class_names(num_classes);
}

}  // namespace vit
