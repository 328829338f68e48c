#include "data/input_paths.h"

#include <stdexcept>

#include "data/image_folder.h"

namespace vit::data {

namespace fs = std::filesystem;

InputPaths::InputPaths(std::vector<std::string> arguments, std::istream& standard_input,
                       std::function<bool()> input_ready)
    : arguments_(std::move(arguments)), standard_input_(standard_input), input_ready_(std::move(input_ready)) {}

bool InputPaths::would_block() const { return pending_.empty() && reading_standard_input_ && !input_ready_(); }

std::optional<std::string> InputPaths::next_argument() {
  while (true) {
    if (reading_standard_input_) {
      std::string line;
      while (std::getline(standard_input_, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();  // lists written on Windows
        if (!line.empty()) return line;
      }
      reading_standard_input_ = false;
    }
    if (next_argument_ == arguments_.size()) return std::nullopt;
    std::string argument = arguments_[next_argument_++];
    if (argument != "-") return argument;
    reading_standard_input_ = true;
  }
}

void InputPaths::expand(const std::string& argument) {
  const fs::path path(argument);
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    pending_.push_back({path, ""});  // a missing or unreadable file is reported by the decoder, with the reason
    return;
  }
  try {
    const auto images = images_under(path);
    if (images.empty())
      pending_.push_back({path, "'" + path.string() + "': folder has no images (" + image_extension_list() + ")"});
    for (const auto& image : images) pending_.push_back({image, ""});
  } catch (const std::invalid_argument& e) {
    pending_.push_back({path, e.what()});
  }
}

std::optional<InputPath> InputPaths::next() {
  while (pending_.empty()) {
    auto argument = next_argument();
    if (!argument) return std::nullopt;
    expand(*argument);
  }
  InputPath input = std::move(pending_.front());
  pending_.pop_front();
  return input;
}

}  // namespace vit::data
