#pragma once
// The INPUT arguments of `vit classify`, expanded lazily and in the order given: a file stands for itself, a
// folder for the images under it (recursively, sorted, hidden entries skipped), and "-" for the lines of
// standard input, each of them a file or folder in turn. Lazily, so a list piped from `find` is classified
// while it is still being written, and a long list is never held in memory.

#include <deque>
#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

struct InputPath {
  std::filesystem::path path;
  std::string error;  // set when the argument itself is unusable (e.g. a folder without images); names it
};

class InputPaths {
 public:
  // `standard_input` is read for "-" (std::cin in the program, a string stream in tests).
  InputPaths(std::vector<std::string> arguments, std::istream& standard_input);

  // The next input, or nullopt when all are done.
  std::optional<InputPath> next();

 private:
  std::optional<std::string> next_argument();
  void expand(const std::string& argument);

  std::vector<std::string> arguments_;
  size_t next_argument_ = 0;
  std::istream& standard_input_;
  bool reading_standard_input_ = false;
  std::deque<InputPath> pending_;  // the expansion of the current argument
};

}  // namespace vit::data
