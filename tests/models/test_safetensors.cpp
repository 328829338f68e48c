// The safetensors reader and writer: exact round trips, the on-disk layout, and one test per kind of damage.

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>

#include <cstring>
#include <stdexcept>

#include "models/safetensors.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"
#include "util/atomic_file.h"

using vit::test::Contains;
using vit::test::read_bytes;
using vit::test::TempDir;
using vit::test::write_bytes;

namespace vit {
namespace {

// A safetensors file from a header text and raw data bytes, written by hand so the tests do not depend on
// the writer they check.
std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string float_bytes(std::initializer_list<float> values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

// Writes `bytes` to a file and returns what reading it throws.
std::string read_error(const TempDir& dir, const std::string& bytes) {
  const auto path = dir / "damaged.safetensors";
  write_bytes(path, bytes);
  try {
    read_safetensors(path);
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  FAIL("reading the damaged file did not throw");
  return {};
}

}  // namespace

TEST_CASE("safetensors round trip is bit-exact for every dtype, with metadata", "[safetensors]") {
  TempDir dir;
  TensorMap tensors{
      {"f32", at::randn({3, 4})},
      {"f64", at::randn({2, 2}, at::kDouble)},
      {"f16", at::randn({5}).to(at::kHalf)},
      {"bf16", at::randn({2, 3}).to(at::kBFloat16)},
      {"i64", at::arange(-5, 5, at::kLong)},
      {"i32", at::arange(7, at::kInt)},
      {"i16", at::arange(3, at::kShort)},
      {"i8", at::arange(-3, 3, at::kChar)},
      {"u8", at::arange(250, 256, at::kByte)},
      {"bool", at::arange(4, at::kLong).remainder(2).eq(0)},
      {"scalar", at::tensor(3.5f)},
      {"empty", at::randn({0, 4})},
      {"strided", at::randn({4, 6}).t()},  // not contiguous
  };
  const Metadata metadata{{"format", "test"}, {"note", "ünïcödé \"quoted\""}};
  const auto path = dir / "all.safetensors";
  write_safetensors(path, tensors, metadata);

  const auto content = read_safetensors(path);
  CHECK(content.metadata == metadata);
  REQUIRE(content.tensors.size() == tensors.size());
  for (const auto& [name, original] : tensors) {
    INFO(name);
    const auto& loaded = content.tensors.at(name);
    CHECK(loaded.scalar_type() == original.scalar_type());
    CHECK(loaded.sizes() == original.sizes());
    CHECK(at::equal(loaded, original));
  }
  CHECK(read_safetensors_metadata(path) == metadata);

  // The header length is a multiple of 8 so that tensor data is aligned, as the format recommends.
  const auto bytes = read_bytes(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0);
}

TEST_CASE("a file written by hand to the specification reads back", "[safetensors]") {
  TempDir dir;
  const auto path = dir / "spec.safetensors";
  write_bytes(path, safetensors_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                                      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("__metadata__":{"k":"v"}})",
                                      float_bytes({1.0f, 2.0f, -3.0f})));
  const auto content = read_safetensors(path);
  CHECK(content.metadata.at("k") == "v");
  CHECK(at::equal(content.tensors.at("a"), at::tensor({1.0f, 2.0f})));
  CHECK(at::equal(content.tensors.at("b"), at::tensor({-3.0f})));
}

TEST_CASE("safetensors: a missing file is named", "[safetensors][malformed]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(read_safetensors(dir / "nope.safetensors"), Contains("nope.safetensors': no such file"));
  REQUIRE_THROWS_WITH(read_safetensors(dir.path()), Contains("not a regular file"));
}

TEST_CASE("safetensors: a file shorter than the length field", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, "abc"), Contains("truncated: 3 bytes, too short for the 8-byte header length"));
}

TEST_CASE("safetensors: header length past the end of the file", "[safetensors][malformed]") {
  TempDir dir;
  const auto bytes = safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", float_bytes({1}));
  CHECK_THAT(read_error(dir, bytes.substr(0, 20)),
             Contains("header length 54 runs past the end of the file (20 bytes)"));
}

TEST_CASE("safetensors: absurd header length", "[safetensors][malformed]") {
  TempDir dir;
  std::string bytes(16, '\xff');
  CHECK_THAT(read_error(dir, bytes), Contains("exceeds the limit of 100000000 bytes"));
}

TEST_CASE("safetensors: header that is not JSON", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes("{not json")), Contains("header is not valid JSON"));
  CHECK_THAT(read_error(dir, safetensors_bytes("[1, 2]")), Contains("header must be a JSON object, got array"));
  // Found by fuzz_safetensors: a number too large for a double is the JSON library's out_of_range, not a parse
  // error, and escaped as an unexplained exception.
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[11e3089296],"data_offsets":[0,4]}})")),
             Contains("header is not valid JSON: [json.exception.out_of_range.406] number overflow"));
}

TEST_CASE("safetensors: incomplete tensor entry", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", float_bytes({1}))),
             Contains("tensor 'w': header entry lacks 'data_offsets'"));
}

TEST_CASE("safetensors: unknown dtype", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(
      read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd")),
      Contains("tensor 'w': unknown dtype 'F8_E4M3' (supported: F64, F32, F16, BF16"));
}

TEST_CASE("safetensors: negative dimension", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                               float_bytes({1}))),
             Contains("tensor 'w': shape must hold non-negative integers, got [-1]"));
}

TEST_CASE("safetensors: offsets out of range", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(
      read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", float_bytes({1}))),
      Contains("tensor 'w': data_offsets [0,8] out of range for the data section of 4 bytes"));
  CHECK_THAT(
      read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", float_bytes({1}))),
      Contains("tensor 'w': data_offsets [4,0] out of range"));
}

TEST_CASE("safetensors: a file truncated inside its data", "[safetensors][malformed]") {
  TempDir dir;
  const auto bytes =
      safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", float_bytes({1, 2, 3}));
  CHECK_THAT(read_error(dir, bytes.substr(0, bytes.size() - 5)),
             Contains("tensor 'w': data_offsets [0,12] out of range for the data section of 7 bytes"));
}

TEST_CASE("safetensors: shape and byte count disagree", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                               float_bytes({1, 2}))),
             Contains("tensor 'w': shape [3] of dtype F32 needs 12 bytes but data_offsets [0,8] cover 8"));
}

TEST_CASE("safetensors: overlapping tensors", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                               float_bytes({1, 2, 3}))),
             Contains("tensors 'a' and 'b' overlap in the data section"));
}

TEST_CASE("safetensors: bytes not covered by any tensor", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                               float_bytes({1, 2}))),
             Contains("data section has 4 unused bytes before tensor 'w'"));
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                               float_bytes({1, 2}))),
             Contains("data section has 4 bytes after the last tensor"));
}

TEST_CASE("safetensors: metadata values must be strings", "[safetensors][malformed]") {
  TempDir dir;
  CHECK_THAT(read_error(dir, safetensors_bytes(R"({"__metadata__":{"epoch":3}})")),
             Contains("__metadata__ entry 'epoch' is not a string"));
}

TEST_CASE("a failed write leaves the previous file intact and no temporary behind", "[safetensors]") {
  TempDir dir;
  const auto path = dir / "weights.safetensors";
  write_safetensors(path, {{"w", at::tensor({1.0f, 2.0f})}});
  const auto before = read_bytes(path);

  REQUIRE_THROWS_WITH(write_file_atomically(path,
                                            [](std::ostream& out) {
                                              out << "half-written";
                                              throw std::runtime_error("disk on fire");
                                            }),
                      Contains("cannot write '" + path.string() + "': disk on fire"));
  CHECK(read_bytes(path) == before);
  CHECK(vit::test::list_names(dir.path()) == std::vector<std::string>{"weights.safetensors"});

  REQUIRE_THROWS_WITH(write_safetensors(dir / "no/such/folder/w.safetensors", {}),
                      Contains("folder '" + (dir / "no/such/folder").string() + "' does not exist"));
}

}  // namespace vit
