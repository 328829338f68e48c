#include "models/safetensors.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include <ATen/ops/empty.h>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian data; this reader copies bytes as they are and needs a little-endian host"
#endif

namespace vit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr std::array<DtypeName, 10> kDtypes{{{"F64", at::kDouble},
                                             {"F32", at::kFloat},
                                             {"F16", at::kHalf},
                                             {"BF16", at::kBFloat16},
                                             {"I64", at::kLong},
                                             {"I32", at::kInt},
                                             {"I16", at::kShort},
                                             {"I8", at::kChar},
                                             {"U8", at::kByte},
                                             {"BOOL", at::kBool}}};

std::string supported_dtypes() {
  std::string names;
  for (const auto& d : kDtypes) names += (names.empty() ? "" : ", ") + std::string(d.name);
  return names;
}

// One tensor's entry in the header, validated against the data section.
struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

struct Header {
  uint64_t data_start;  // file offset of the data section
  std::vector<Entry> entries;
  Metadata metadata;
};

class Reader {
 public:
  explicit Reader(fs::path path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw SafetensorsError("'" + path_.string() + "': " + problem);
  }

  std::ifstream open() const {
    std::error_code error;
    if (!fs::is_regular_file(path_, error)) {
      fail(fs::exists(path_, error) ? "not a regular file" : "no such file");
    }
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail("cannot open for reading");
    return in;
  }

  Header read_header(std::ifstream& in) const {
    const uint64_t file_size = fs::file_size(path_);
    if (file_size < 8)
      fail("truncated: " + std::to_string(file_size) +
           " bytes, too short for the 8-byte header length (not a safetensors file)");
    uint64_t header_size = 0;
    std::array<unsigned char, 8> length_bytes{};
    in.read(reinterpret_cast<char*>(length_bytes.data()), 8);
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[static_cast<size_t>(i)];
    if (header_size > kMaxSafetensorsHeaderBytes)
      fail("header length " + std::to_string(header_size) + " exceeds the limit of " +
           std::to_string(kMaxSafetensorsHeaderBytes) + " bytes: not a safetensors file, or a damaged one");
    if (header_size > file_size - 8)
      fail("header length " + std::to_string(header_size) + " runs past the end of the file (" +
           std::to_string(file_size) + " bytes): truncated or not a safetensors file");
    std::string text(header_size, '\0');
    in.read(text.data(), static_cast<std::streamsize>(header_size));
    if (!in) fail("could not read the " + std::to_string(header_size) + "-byte header");

    json header;
    try {
      header = json::parse(text);
    } catch (const json::exception& e) {  // a syntax error, or a number out of range
      fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail(std::string("header must be a JSON object, got ") + header.type_name());

    Header result;
    result.data_start = 8 + header_size;
    const uint64_t data_size = file_size - result.data_start;
    for (const auto& item : header.items()) {
      if (item.key() == "__metadata__") {
        result.metadata = parse_metadata(item.value());
      } else {
        result.entries.push_back(parse_entry(item.key(), item.value(), data_size));
      }
    }
    check_layout(result.entries, data_size);
    return result;
  }

  void read_data(std::ifstream& in, const Header& header, TensorMap& tensors) const {
    for (const auto& e : header.entries) {
      auto tensor = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
      const uint64_t bytes = e.end - e.begin;
      if (bytes > 0) {
        in.seekg(static_cast<std::streamoff>(header.data_start + e.begin));
        in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
        if (!in) fail("tensor '" + e.name + "': could not read its " + std::to_string(bytes) + " bytes");
      }
      tensors.emplace(e.name, std::move(tensor));
    }
  }

 private:
  Metadata parse_metadata(const json& value) const {
    if (!value.is_object()) fail("__metadata__ must be an object of strings");
    Metadata metadata;
    for (const auto& item : value.items()) {
      if (!item.value().is_string()) fail("__metadata__ entry '" + item.key() + "' is not a string");
      metadata.emplace(item.key(), item.value().get<std::string>());
    }
    return metadata;
  }

  Entry parse_entry(const std::string& name, const json& value, uint64_t data_size) const {
    const std::string what = "tensor '" + name + "'";
    if (!value.is_object()) fail(what + ": header entry must be an object");
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(key)) fail(what + ": header entry lacks '" + key + "'");
    }
    Entry entry;
    entry.name = name;

    const json& dtype = value["dtype"];
    if (!dtype.is_string()) fail(what + ": dtype must be a string");
    const auto* known = std::find_if(kDtypes.begin(), kDtypes.end(),
                                     [&](const DtypeName& d) { return dtype.get<std::string>() == d.name; });
    if (known == kDtypes.end())
      fail(what + ": unknown dtype '" + dtype.get<std::string>() + "' (supported: " + supported_dtypes() + ")");
    entry.dtype = known->type;

    const json& shape = value["shape"];
    if (!shape.is_array()) fail(what + ": shape must be an array");
    uint64_t numel = 1;
    for (const auto& dim : shape) {
      if (!dim.is_number_unsigned()) fail(what + ": shape must hold non-negative integers, got " + shape.dump());
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d))
        fail(what + ": shape " + shape.dump() + " is too large");
      numel *= d;
      entry.shape.push_back(static_cast<int64_t>(d));
    }

    const json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail(what + ": data_offsets must be two non-negative integers [begin, end], got " + offsets.dump());
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size)
      fail(what + ": data_offsets " + offsets.dump() + " out of range for the data section of " +
           std::to_string(data_size) + " bytes");

    const uint64_t item_size = at::elementSize(entry.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / item_size || numel * item_size != entry.end - entry.begin)
      fail(what + ": shape " + shape.dump() + " of dtype " + dtype.get<std::string>() + " needs " +
           std::to_string(numel * item_size) + " bytes but data_offsets " + offsets.dump() + " cover " +
           std::to_string(entry.end - entry.begin));
    return entry;
  }

  // Tensors must tile the data section exactly: no two overlap (a crafted file could otherwise alias weights)
  // and no bytes are left over (the format forbids holes; they mean a damaged or mis-written file).
  void check_layout(std::vector<Entry> entries, uint64_t data_size) const {
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    uint64_t covered_to = 0;
    const Entry* previous = nullptr;
    for (const auto& e : entries) {
      if (e.begin < covered_to)
        fail("tensors '" + previous->name + "' and '" + e.name + "' overlap in the data section");
      if (e.begin > covered_to)
        fail("data section has " + std::to_string(e.begin - covered_to) + " unused bytes before tensor '" + e.name +
             "'");
      covered_to = e.end;
      previous = &e;
    }
    if (covered_to != data_size)
      fail("data section has " + std::to_string(data_size - covered_to) +
           " bytes after the last tensor (trailing garbage or a damaged header)");
  }

  fs::path path_;
};

const char* dtype_name(at::ScalarType type, const std::string& tensor_name) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw SafetensorsError("tensor '" + tensor_name + "': dtype " + std::string(at::toString(type)) +
                         " cannot be stored in safetensors");
}

}  // namespace

SafetensorsContent read_safetensors(const fs::path& path) {
  Reader reader(path);
  auto in = reader.open();
  const Header header = reader.read_header(in);
  SafetensorsContent content;
  content.metadata = header.metadata;
  reader.read_data(in, header, content.tensors);
  return content;
}

Metadata read_safetensors_metadata(const fs::path& path) {
  Reader reader(path);
  auto in = reader.open();
  return reader.read_header(in).metadata;
}

SafetensorsHeader read_safetensors_header(const fs::path& path) {
  Reader reader(path);
  auto in = reader.open();
  Header header = reader.read_header(in);
  SafetensorsHeader result;
  result.metadata = std::move(header.metadata);
  for (auto& entry : header.entries) result.shapes.emplace(entry.name, std::move(entry.shape));
  return result;
}

void write_safetensors(const fs::path& path, const TensorMap& tensors, const Metadata& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;  // CPU, contiguous, in the order of their offsets
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw SafetensorsError("tensor '" + name + "' is undefined");
    auto cpu = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = cpu.numel() * cpu.element_size();
    header[name] = {{"dtype", dtype_name(cpu.scalar_type(), name)},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad with spaces so tensor data starts 8-byte aligned

  write_file_atomically(path, [&](std::ostream& out) {
    std::array<char, 8> length{};
    uint64_t n = text.size();
    for (auto& byte : length) {
      byte = static_cast<char>(n & 0xff);
      n >>= 8;
    }
    out.write(length.data(), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& tensor : data) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    }
  });
}

}  // namespace vit
