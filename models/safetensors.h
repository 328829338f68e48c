#pragma once
// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping names to {dtype, shape, data_offsets} plus an optional
// "__metadata__" object of strings, then the raw little-endian tensor bytes. Every structural property the
// format promises is checked on reading, so a damaged file is an error that names the file and the problem.

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace vit {

using TensorMap = std::map<std::string, at::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContent {
  TensorMap tensors;  // CPU tensors in the file's dtypes
  Metadata metadata;  // the "__metadata__" entries, empty if the file has none
};

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The largest header accepted, as in the reference implementation: guards against allocating gigabytes for a
// corrupt length field.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

SafetensorsContent read_safetensors(const std::filesystem::path& path);
// Reads and validates only the header: cheap even for multi-gigabyte files.
Metadata read_safetensors_metadata(const std::filesystem::path& path);

struct SafetensorsHeader {
  Metadata metadata;
  std::map<std::string, std::vector<int64_t>> shapes;  // tensor name -> shape
};
// The header with every tensor's shape, for telling an architecture from a checkpoint without reading it.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Writes atomically (see atomic_file.h). Tensors may live on any device and need not be contiguous.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors, const Metadata& metadata = {});

}  // namespace vit
