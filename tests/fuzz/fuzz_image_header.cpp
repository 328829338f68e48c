// The image header sniffer (data/image_header.h) that rejects decompression bombs before OpenCV allocates: PNG,
// JPEG (segments before the frame header), TIFF (directories anywhere in the file), WebP (VP8, VP8L, VP8X), BMP.
#include "data/image_header.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never throws, never reads outside [data, data + size) (ASan checks), and its answer is consistent.
  const auto header = vit::data::read_image_header(data, size);
  if (header.format == vit::data::ImageFormat::Unknown) {
    if (header.width != 0 || header.height != 0) vit::fuzz::finding("unknown format with a size");
  } else if (header.width <= 0 || header.height <= 0) {
    vit::fuzz::finding(vit::data::to_string(header.format) + " with a size that is not positive");
  }
  return 0;
}
