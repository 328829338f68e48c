#pragma once
// Reading IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian
// magic number (two zero bytes, a type code, a dimension count), the dimensions as big-endian uint32, then the
// values in row-major order. Only the two unsigned-byte layouts those datasets use are read.
//
// A file may be gzipped (as Debian and the dataset's own site ship it) or plain (as some distributions unpack
// it); the gzip magic bytes decide, not the file name.

#include <cstdint>
#include <filesystem>
#include <vector>

namespace vit::data {

// `count` images of `rows` x `cols` 8-bit pixels, image after image, each row-major.
struct IdxImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols bytes
};

// Reads an image file (magic 0x00000803: unsigned bytes, dimensions count, rows, cols).
// Throws std::runtime_error naming the file and the problem: missing or unreadable, a corrupt gzip stream, the
// wrong magic (expected and found, in hex), implausible dimensions, or a payload that is shorter or longer
// than the header says.
IdxImages read_idx_images(const std::filesystem::path& path);

// Reads a label file (magic 0x00000801: unsigned bytes, one dimension count). Throws as read_idx_images.
std::vector<uint8_t> read_idx_labels(const std::filesystem::path& path);

}  // namespace vit::data
