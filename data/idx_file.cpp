#include "data/idx_file.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

namespace vit::data {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

// Far beyond any dataset stored as IDX (Fashion-MNIST's train images are 47 MB), yet small enough that a
// corrupt or hostile gzip stream cannot make the reader allocate without bound.
constexpr uint64_t kMaxDecompressedBytes = uint64_t{4} << 30;
// Image sides beyond this are a corrupt header, not a dataset: it also keeps count * rows * cols in int64.
constexpr int64_t kMaxSide = 1 << 14;

[[noreturn]] void fail(const fs::path& path, const std::string& problem) {
  throw std::runtime_error("'" + path.string() + "': " + problem);
}

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", value);
  return text;
}

uint32_t big_endian_u32(const uint8_t* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::vector<uint8_t> read_whole_file(const fs::path& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) fail(path, fs::exists(path, error) ? "not a regular file" : "no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading");
  std::vector<uint8_t> bytes(fs::file_size(path, error));
  if (error) fail(path, "cannot read its size: " + error.message());
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) fail(path, "read failed");
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

// Inflates a gzip file, including one made of several concatenated members (which `gzip` itself accepts).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, const fs::path& path) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) fail(path, "cannot start gzip decompression");  // 16: gzip header
  struct End {
    z_stream* s;
    ~End() { inflateEnd(s); }
  } end{&stream};

  // The gzip trailer holds the uncompressed size modulo 2^32: a good first guess that avoids regrowing. It is
  // only a claim: deflate cannot expand data more than 1032-fold, so a guess beyond that is not believed (found by
  // fuzz_idx: a 50-byte file made the reader allocate 256 MiB up front).
  const size_t n = compressed.size();
  const uint64_t claimed = n >= 4 ? (uint64_t{compressed[n - 1]} << 24 | uint64_t{compressed[n - 2]} << 16 |
                                     uint64_t{compressed[n - 3]} << 8 | uint64_t{compressed[n - 4]})
                                  : 0;
  constexpr uint64_t kMaxDeflateRatio = 1032;
  const uint64_t guess = std::min<uint64_t>(claimed, uint64_t{n} * kMaxDeflateRatio);
  std::vector<uint8_t> out(std::clamp<uint64_t>(guess, 1 << 16, uint64_t{1} << 28));
  constexpr size_t kMaxChunk = std::numeric_limits<uInt>::max();  // zlib counts in uInt
  size_t in_pos = 0;
  size_t produced = 0;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= kMaxDecompressedBytes)
        fail(path, "gzip stream decompresses to more than 4 GiB; not an IDX file this reader accepts");
      out.resize(std::min<uint64_t>(out.size() * 2, kMaxDecompressedBytes));
    }
    stream.next_in = const_cast<Bytef*>(compressed.data() + in_pos);
    stream.avail_in = static_cast<uInt>(std::min(n - in_pos, kMaxChunk));
    stream.next_out = out.data() + produced;
    stream.avail_out = static_cast<uInt>(std::min(out.size() - produced, kMaxChunk));
    const int result = inflate(&stream, Z_NO_FLUSH);
    in_pos = static_cast<size_t>(stream.next_in - compressed.data());
    produced = static_cast<size_t>(stream.next_out - out.data());
    if (result == Z_STREAM_END) {
      if (in_pos == n) break;
      if (n - in_pos >= 2 && compressed[in_pos] == 0x1f && compressed[in_pos + 1] == 0x8b) {
        inflateReset(&stream);
        continue;
      }
      fail(path, "corrupt gzip stream: " + std::to_string(n - in_pos) + " unexpected bytes after its end");
    }
    if (result == Z_OK) continue;
    if (result == Z_BUF_ERROR && in_pos < n) continue;  // output full: grown above
    if (result == Z_BUF_ERROR) fail(path, "corrupt gzip stream: it ends early (truncated file?)");
    if (result == Z_MEM_ERROR) fail(path, "out of memory while decompressing");
    fail(path, std::string("corrupt gzip stream: ") + (stream.msg ? stream.msg : "invalid data"));
  }
  out.resize(produced);
  return out;
}

// A few words on what a magic number is, so that a swapped file (labels for images) is recognisable.
std::string describe_magic(uint32_t magic) {
  if (magic == kImagesMagic) return " (an IDX image file)";
  if (magic == kLabelsMagic) return " (an IDX label file)";
  if ((magic >> 16) != 0) return " (not an IDX file)";
  return "";
}

// The file's bytes, uncompressed, after checking the magic; `dims` receives the header's dimensions and the
// returned bytes start with the payload.
std::vector<uint8_t> read_idx(const fs::path& path, uint32_t expected_magic, const char* expected_what,
                              std::vector<int64_t>& dims) {
  std::vector<uint8_t> bytes = read_whole_file(path);
  if (is_gzip(bytes)) bytes = gunzip(bytes, path);
  if (bytes.size() < 4)
    fail(path, "too short for an IDX header: " + std::to_string(bytes.size()) + " bytes" +
                   (bytes.empty() ? " (empty file)" : ""));
  const uint32_t magic = big_endian_u32(bytes.data());
  if (magic != expected_magic)
    fail(path, "wrong magic number: expected " + hex32(expected_magic) + " (" + expected_what + "), found " +
                   hex32(magic) + describe_magic(magic));
  const size_t dim_count = magic & 0xff;
  const size_t header_size = 4 + 4 * dim_count;
  if (bytes.size() < header_size)
    fail(path, "header truncated: " + std::to_string(dim_count) + " dimensions need " + std::to_string(header_size) +
                   " bytes, the file has " + std::to_string(bytes.size()));
  dims.clear();
  for (size_t i = 0; i < dim_count; ++i) dims.push_back(big_endian_u32(bytes.data() + 4 + 4 * i));
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header_size));
  return bytes;
}

// The header's size against the bytes that follow it, so that neither a cut-off download nor extra data
// (a concatenation, a wrong file) passes silently.
void check_payload(const fs::path& path, size_t actual, int64_t expected, const std::string& what) {
  const auto expected_size = static_cast<uint64_t>(expected);
  if (actual < expected_size)
    fail(path, "truncated: the header says " + what + " (" + std::to_string(expected) + " bytes) but only " +
                   std::to_string(actual) + " bytes follow it");
  if (actual > expected_size)
    fail(path, std::to_string(actual - expected_size) + " trailing bytes after the " + what +
                   " the header announces (" + std::to_string(expected) + " bytes)");
}

}  // namespace

IdxImages read_idx_images(const fs::path& path) {
  std::vector<int64_t> dims;
  std::vector<uint8_t> payload = read_idx(path, kImagesMagic, "unsigned bytes, 3 dimensions: images", dims);
  IdxImages images;
  images.count = dims[0];
  images.rows = dims[1];
  images.cols = dims[2];
  if (images.rows < 1 || images.rows > kMaxSide || images.cols < 1 || images.cols > kMaxSide)
    fail(path, "implausible image size " + std::to_string(images.rows) + "x" + std::to_string(images.cols) +
                   " in the header (expected 1 to " + std::to_string(kMaxSide) + " pixels a side)");
  const std::string what =
      std::to_string(images.count) + " images of " + std::to_string(images.rows) + "x" + std::to_string(images.cols);
  check_payload(path, payload.size(), images.count * images.rows * images.cols, what);
  images.pixels = std::move(payload);
  return images;
}

std::vector<uint8_t> read_idx_labels(const fs::path& path) {
  std::vector<int64_t> dims;
  std::vector<uint8_t> labels = read_idx(path, kLabelsMagic, "unsigned bytes, 1 dimension: labels", dims);
  check_payload(path, labels.size(), dims[0], std::to_string(dims[0]) + " labels");
  return labels;
}

}  // namespace vit::data
