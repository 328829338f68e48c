#include "util/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace vit {

namespace fs = std::filesystem;

std::vector<std::string> list_names(const fs::path& dir) {
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

void remove_tree(const fs::path& path) {
  auto remove_entry = [](const char* entry, const struct stat*, int, struct FTW*) { return ::remove(entry); };
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void sync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void create_output_folder(const fs::path& dir, const std::string& option) {
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_directory(dir, error))
    throw std::invalid_argument(option + " '" + dir.string() + "': expected a folder, and a file of that name exists");
  fs::create_directories(dir, error);
  if (error)
    throw std::invalid_argument(option + " '" + dir.string() + "': cannot create the folder: " + error.message());
}

FileLock::FileLock(const fs::path& path) : path_(path) {
  // The holder removes the file when it lets go, so a process that opened the file just before may lock a file no
  // longer there while a third creates and locks a new one: a lock counts only on the file the path still names.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;  // a read-only folder, say: no lock, and no other process can hold one there either
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      busy_ = errno == EWOULDBLOCK;
      if (busy_) {
        std::array<char, 32> text{};
        const ssize_t n = ::pread(fd_, text.data(), text.size() - 1, 0);
        if (n > 0) holder_.assign(text.data(), static_cast<size_t>(n));
      }
      ::close(fd_);
      fd_ = -1;
      return;
    }
    struct stat locked {};
    struct stat named {};
    if (::fstat(fd_, &locked) == 0 && ::stat(path.c_str(), &named) == 0 && locked.st_dev == named.st_dev &&
        locked.st_ino == named.st_ino)
      break;
    ::close(fd_);  // removed under us: try again on the file now there
    fd_ = -1;
  }
  if (fd_ < 0) return;
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // best effort: the lock holds without its note
  }
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // removed while still locked (see the constructor), then released
  ::close(fd_);
}

void sync_file_system(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

}  // namespace vit
