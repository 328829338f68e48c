#pragma once
// Decoding image files into 8-bit pixel arrays with the channel count a model expects.

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace vit::data {

// Decodes an encoded image (JPEG, PNG, BMP, TIFF, WebP, ...) held in memory into an 8-bit cv::Mat with
// `channels` channels (1: grayscale, 3: RGB order). 16-bit images are scaled to 8 bits, alpha is dropped.
// `name` is used in error messages only. Throws std::runtime_error naming `name` and the reason.
cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels);

}  // namespace vit::data
