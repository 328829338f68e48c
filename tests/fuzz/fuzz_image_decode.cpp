// The full decode path (data/image_decode.h): the header's pixel guard, then OpenCV's decoders (libjpeg, libpng,
// libtiff, libwebp), EXIF orientation, alpha compositing, bit depth and channel conversion. The first byte picks
// grayscale or RGB. OpenCV is not instrumented: a crash inside it still stops the fuzzer, with its stack.
#include <opencv2/core.hpp>

#include "data/image_decode.h"
#include "tests/fuzz/fuzz_support.h"

namespace {
constexpr int64_t kMaxPixels = 1 << 20;  // small, so that no input can make a decoder allocate much
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const bool once = [] {
    cv::setNumThreads(0);
    return true;
  }();
  (void)once;
  vit::data::DecodeOptions options;
  options.channels = data[0] % 2 == 0 ? 3 : 1;
  options.max_pixels = kMaxPixels;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  vit::fuzz::expect_result_or_clear_error("fuzz-image", [&] {
    const cv::Mat image = vit::data::decode_image(bytes, "fuzz-image", options);
    if (image.empty() || image.depth() != CV_8U || image.channels() != options.channels)
      vit::fuzz::finding("decoded image of the wrong kind");
    if (static_cast<int64_t>(image.total()) > kMaxPixels) vit::fuzz::finding("decoded past the pixel limit");
  });
  return 0;
}
