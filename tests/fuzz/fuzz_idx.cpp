// The IDX reader of MNIST / Fashion-MNIST files (data/idx_file.h), plain or gzipped: magic, dimensions, payload
// length, and the gzip stream itself.
#include "data/idx_file.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = vit::fuzz::scratch_file("fuzz.idx", data, size);
  vit::fuzz::expect_result_or_clear_error(path.string(), [&] {
    const auto images = vit::data::read_idx_images(path);
    if (images.pixels.size() != static_cast<size_t>(images.count * images.rows * images.cols))
      vit::fuzz::finding("pixel count differs from the dimensions");
  });
  vit::fuzz::expect_result_or_clear_error(path.string(), [&] { vit::data::read_idx_labels(path); });
  return 0;
}
