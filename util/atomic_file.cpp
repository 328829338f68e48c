#include "util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "util/files.h"

namespace vit {
namespace {

namespace fs = std::filesystem;

fs::path temporary_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  const auto name =
      "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return path.parent_path() / name;
}

}  // namespace

void write_file_atomically(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  if (path.filename().empty()) throw std::runtime_error("cannot write '" + path.string() + "': not a file name");
  const fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(parent))
    throw std::runtime_error("cannot write '" + path.string() + "': folder '" + parent.string() + "' does not exist");
  const fs::path temporary = temporary_path_for(path);
  try {
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      if (!out) throw std::runtime_error(std::strerror(errno));
      write(out);
      out.flush();
      if (!out) throw std::runtime_error("write failed (disk full?)");
    }
    sync_path(temporary, O_RDONLY);
    std::error_code error;
    fs::rename(temporary, path, error);
    if (error) throw std::runtime_error(error.message());
    sync_path(parent, O_RDONLY | O_DIRECTORY);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw std::runtime_error("cannot write '" + path.string() + "': " + e.what());
  }
}

void write_file_atomically(const fs::path& path, const std::vector<unsigned char>& bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace vit
