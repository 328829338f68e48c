#pragma once
// A fresh folder under the system temp dir, removed with everything in it when the test ends.
//
// Removal and listing use POSIX calls rather than std::filesystem::remove_all / directory_iterator: pip
// PyTorch's libtorch exports std::filesystem symbols from an older libstdc++, which the dynamic linker binds
// in place of the system's, and the directory iteration then crashes (seen with PyTorch 2.11 and g++ 13).

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace vit::test {

class TempDir {
 public:
  TempDir() {
    std::random_device seed;
    path_ = std::filesystem::temp_directory_path() / ("vit-test-" + std::to_string(seed()) + std::to_string(seed()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    auto remove_entry = [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); };
    ::nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Names in a folder, without "." and "..".
inline std::vector<std::string> list_names(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace vit::test
