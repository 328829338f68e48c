#pragma once
// The INPUT arguments of `vit classify`, expanded lazily and in the order given: a file stands for itself, a
// folder for the images under it (recursively, sorted, hidden entries skipped), and "-" for the lines of
// standard input, each of them a file or folder in turn. Lazily, so a list piped from `find` is classified
// while it is still being written, and a long list is never held in memory.

#include <deque>
#include <filesystem>
#include <functional>
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
  // `standard_input` is read for "-" (std::cin in the program, a string stream in tests). `input_ready` says
  // whether reading it now would not block (the program polls the file descriptor).
  InputPaths(
      std::vector<std::string> arguments, std::istream& standard_input,
      std::function<bool()> input_ready = [] { return true; });

  // The next input, or nullopt when all are done.
  std::optional<InputPath> next();

  // True when the next call would wait for standard input: a caller holding inputs should process them first,
  // so that a slow producer (a watcher, a person typing) gets answers as it goes.
  bool would_block() const;

 private:
  std::optional<std::string> next_argument();
  void expand(const std::string& argument);

  std::vector<std::string> arguments_;
  size_t next_argument_ = 0;
  std::istream& standard_input_;
  std::function<bool()> input_ready_;
  bool reading_standard_input_ = false;
  std::deque<InputPath> pending_;  // the expansion of the current argument
};

}  // namespace vit::data
