#pragma once
// Writing files so that a crash, a full disk or Ctrl-C mid-write never leaves a half-written file in place of a
// good one: the content goes to a temporary file beside the target, is flushed to disk, then renamed over it.

#include <filesystem>
#include <functional>
#include <ostream>
#include <vector>

namespace vit {

// Calls `write` with a stream on a temporary file in the target's folder (.NAME.tmp.PID.N), makes it durable
// (fsync), then atomically replaces `path`. Throws std::runtime_error "cannot write 'PATH': REASON", with the
// system's reason where there is one ("No space left on device", "Read-only file system", "Permission denied"), if
// anything fails; the previous file, if any, is then untouched and the temporary file removed. Temporary files of
// `path` left by processes that were killed mid-write are removed first.
void write_file_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);

// The same for bytes already in memory (an encoded picture, say).
void write_file_atomically(const std::filesystem::path& path, const std::vector<unsigned char>& bytes);

}  // namespace vit
