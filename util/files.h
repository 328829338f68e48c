#pragma once
// Folder listing, removal and syncing for every library and the tests.
//
// These use POSIX calls rather than std::filesystem::remove_all / directory_iterator: pip PyTorch's libtorch
// exports std::filesystem symbols from an older libstdc++, which the dynamic linker binds in place of the
// system's, and directory iteration then crashes (seen with PyTorch 2.11 and g++ 13 on the GPU machine).

#include <filesystem>
#include <string>
#include <vector>

namespace vit {

// Names in a folder, without "." and "..", in the order the file system gives them; empty when it cannot be read.
std::vector<std::string> list_names(const std::filesystem::path& dir);

// Removes a file or a folder with everything in it, not following symbolic links; best effort.
void remove_tree(const std::filesystem::path& path);

// fsync by path, best effort (some file systems refuse to open folders): std::ofstream gives no descriptor.
// `flags` are open(2)'s, e.g. O_RDONLY | O_DIRECTORY for the folder that holds a renamed file.
void sync_path(const std::filesystem::path& path, int flags);

// Creates the folder `dir` (and its parents) that the command-line option `option` names for output, e.g. "--plots".
// Throws std::invalid_argument naming both when a file of that name is in the way or the folder cannot be created
// ("Permission denied"), so that the user hears which option to change rather than a bare filesystem error.
void create_output_folder(const std::filesystem::path& dir, const std::string& option);

// An exclusive advisory lock (flock) on the file `path`, created if missing, tried once (never waits) and held
// until the object is destroyed, which removes the file, or the process ends (also by kill -9: the kernel releases
// the lock and the file stays, unlocked). The holder's process id is written into the file, so that a refused
// process can say whose it is.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Another process holds the lock; `holder()` is what it wrote (its process id, or empty).
  bool busy() const { return busy_; }
  bool held() const { return fd_ >= 0; }
  const std::string& holder() const { return holder_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;  // -1 also where the file cannot be created (a read-only folder): no lock, and no one else's
  bool busy_ = false;
  std::string holder_;
};

// One syncfs for the file system holding `folder`: cheaper than an fsync per file when thousands were written.
void sync_file_system(const std::filesystem::path& folder);

}  // namespace vit
