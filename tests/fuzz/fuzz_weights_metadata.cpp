// vit's own model description (models/vit_weights_file.h): the JSON that a weights file's "__metadata__" and a
// TorchScript export carry (architecture, preprocessing, class names).
#include "models/vit_weights_file.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  vit::fuzz::expect_result_or_clear_error("fuzz-metadata", [&] {
    const auto metadata = vit::metadata_from_json(text, "fuzz-metadata");
    // What was accepted is valid, and writes back to a description that reads back the same.
    const auto written = vit::metadata_to_json(metadata);
    if (vit::metadata_to_json(vit::metadata_from_json(written, "fuzz-metadata")) != written)
      vit::fuzz::finding("an accepted description does not survive writing and reading back");
  });
  return 0;
}
