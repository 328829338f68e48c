// The safetensors reader (models/safetensors.h): the 8-byte header length, the JSON header, the tensor table
// (dtypes, shapes, offsets, overlaps, gaps) and the data section, on any file.
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = vit::fuzz::scratch_file("fuzz.safetensors", data, size);
  vit::fuzz::expect_result_or_clear_error(path.string(), [&] {
    const auto header = vit::read_safetensors_header(path);
    const auto content = vit::read_safetensors(path);
    // Both readers agree: every tensor the header lists is read with that shape.
    if (content.tensors.size() != header.shapes.size()) vit::fuzz::finding("header and content disagree on count");
    for (const auto& [name, tensor] : content.tensors) {
      const auto& shape = header.shapes.at(name);
      if (tensor.sizes().vec() != shape) vit::fuzz::finding("tensor '" + name + "' read with another shape");
    }
    if (content.metadata != header.metadata) vit::fuzz::finding("header and content disagree on metadata");
  });
  return 0;
}
