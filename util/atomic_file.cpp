#include "util/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <streambuf>
#include <string>

#include "util/files.h"
#include "util/text.h"

namespace vit {
namespace {

namespace fs = std::filesystem;

// Temporary files are named .<name>.tmp.<pid>.<n>, so that one left by a process that was killed mid-write can be
// told apart from one another process is writing now.
std::string temporary_prefix(const fs::path& path) { return "." + path.filename().string() + ".tmp."; }

fs::path temporary_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.parent_path() / (temporary_prefix(path) + std::to_string(::getpid()) + "." + std::to_string(counter++));
}

// Removes the temporary files of `path` whose writer no longer runs (kill -9, power loss): they are never under the
// final name, but they should not pile up in a run folder that is written every epoch.
void remove_dead_temporaries(const fs::path& path, const fs::path& parent) {
  const std::string prefix = temporary_prefix(path);
  for (const auto& name : list_names(parent)) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "<pid>.<n>"
    const auto pid = parse_integer(rest.substr(0, rest.find('.')));
    if (!pid || *pid <= 0 || *pid == ::getpid() || rest.find('.') == std::string::npos) continue;
    if (::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH) ::unlink((parent / name).c_str());
  }
}

// A failed system call, with the reason the system gives ("No space left on device", "Read-only file system").
class SystemError : public std::runtime_error {
 public:
  explicit SystemError(int error) : std::runtime_error(std::strerror(error)) {}
};

// An output stream buffer on a file descriptor that keeps the errno of the first failed write: std::ofstream
// reports only that something failed, and a full disk must be named as such. After a failure it accepts and drops
// everything, so the stream never turns bad under the writer: LibTorch's archive writer, finding its stream failed,
// throws from a destructor, which ends the program (found filling a disk under `vit export`). The failure is
// reported once the writer is done.
class FdBuffer : public std::streambuf {
 public:
  explicit FdBuffer(int fd) : fd_(fd) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override {
    sync();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }

  int sync() override {
    write_all(pbase(), static_cast<size_t>(pptr() - pbase()));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return 0;
  }

  std::streamsize xsputn(const char* data, std::streamsize count) override {
    // Large blocks (tensor data) go straight to the file rather than through the buffer.
    if (count < static_cast<std::streamsize>(buffer_.size())) return std::streambuf::xsputn(data, count);
    sync();
    write_all(data, static_cast<size_t>(count));
    return count;
  }

 private:
  void write_all(const char* data, size_t size) {
    while (size > 0 && error_ == 0) {
      const ssize_t written = ::write(fd_, data, size);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {
        error_ = written < 0 ? errno : EIO;
        return;
      }
      data += written;
      size -= static_cast<size_t>(written);
    }
  }

  int fd_;
  int error_ = 0;
  std::array<char, 1 << 16> buffer_{};
};

// Writes the temporary file and makes its content durable; throws SystemError with the reason.
void write_durably(const fs::path& temporary, const std::function<void(std::ostream&)>& write) {
  // Created with 0666 and the umask applied, as std::ofstream would; O_EXCL: never an existing file.
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw SystemError(errno);
  int error = 0;
  FdBuffer buffer(fd);
  try {
    std::ostream out(&buffer);
    write(out);
    out.flush();
    error = buffer.error();
    if (error == 0 && !out) error = EIO;
    // The data must be on disk before the rename makes it the file: fsync reports a late ENOSPC or EIO too.
    if (error == 0 && ::fsync(fd) != 0) error = errno;
  } catch (...) {
    ::close(fd);
    // A writer that gave up after a failed write says less than errno does.
    if (buffer.error() != 0) throw SystemError(buffer.error());
    throw;
  }
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) throw SystemError(error);
}

}  // namespace

void write_file_atomically(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  if (path.filename().empty()) throw std::runtime_error("cannot write '" + path.string() + "': not a file name");
  const fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code error;
  if (!fs::is_directory(parent, error))
    throw std::runtime_error("cannot write '" + path.string() + "': folder '" + parent.string() + "' does not exist");
  if (fs::is_directory(path, error)) throw std::runtime_error("cannot write '" + path.string() + "': it is a folder");
  remove_dead_temporaries(path, parent);
  const fs::path temporary = temporary_path_for(path);
  try {
    write_durably(temporary, write);
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
