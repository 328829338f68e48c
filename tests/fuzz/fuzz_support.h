#pragma once
// What every fuzz target shares: the contract a parser keeps for any input, and a scratch folder for the
// parsers that read files.
//
// The contract: a parser either returns a result or throws std::invalid_argument / std::runtime_error (the types
// vit's libraries document) with a message that names the input. Any other exception (a JSON library error that
// escaped unwrapped, std::bad_alloc from a size taken on trust, a LibTorch check) is a finding: the target aborts,
// and libFuzzer saves the input. Crashes, leaks and undefined behaviour are caught by the sanitizers.

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

// Runs `parse`; a documented error must name `source`, anything else is a finding.
template <typename Parse>
void expect_result_or_clear_error(const std::string& source, Parse&& parse) {
  try {
    parse();
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find(source) == std::string::npos)
      finding("std::invalid_argument without the input's name '" + source + "': " + e.what());
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find(source) == std::string::npos)
      finding("std::runtime_error without the input's name '" + source + "': " + e.what());
  } catch (const std::exception& e) {
    finding(std::string("undocumented exception: ") + e.what());
  }
}

// A private folder for this process's scratch files, in memory where /dev/shm exists (files are rewritten on every
// input); removed at exit. libFuzzer ends some runs without running atexit handlers (-max_total_time), so
// scripts/hardening.sh puts these folders under one of its own (VIT_FUZZ_SCRATCH) and removes that.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* chosen = std::getenv("VIT_FUZZ_SCRATCH");
    const std::filesystem::path base = chosen && *chosen                     ? chosen
                                       : std::filesystem::exists("/dev/shm") ? "/dev/shm"
                                                                             : "/tmp";
    auto path = base / ("vit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return path;
  }();
  return dir;
}

// Writes bytes to `name` in the scratch folder and returns its path.
inline std::filesystem::path scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const auto path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) finding("cannot write the scratch file " + path.string());
  return path;
}

// The line between the files of an input that holds several.
inline const std::string kPartSeparator = "\n----8<----\n";

// The parts of an input that holds several files (absent parts are empty).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t count) {
  const std::string& separator = kPartSeparator;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t begin = 0;
  while (parts.size() + 1 < count) {
    const size_t end = text.find(separator, begin);
    if (end == std::string::npos) break;
    parts.push_back(text.substr(begin, end - begin));
    begin = end + separator.size();
  }
  parts.push_back(text.substr(std::min(begin, text.size())));
  parts.resize(count);
  return parts;
}

}  // namespace vit::fuzz
