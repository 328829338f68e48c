#pragma once
// Decoding image files into 8-bit pixel arrays with the channel count a model expects.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace vit::data {

struct DecodeOptions {
  int channels = 3;                  // 1 (grayscale) or 3 (RGB)
  int64_t max_pixels = 100'000'000;  // larger images are rejected from their header, before decoding
};

// Decodes a JPEG, PNG, BMP, TIFF or WebP image held in memory into an 8-bit cv::Mat with `options.channels`
// channels, RGB order for colour. Grayscale, RGB, RGBA (composited on white), palette and 16-bit images are
// all accepted; JPEG EXIF orientation is applied. `name` is used in error messages only.
// Throws std::runtime_error naming `name` and the reason (empty, unknown format, too many pixels, corrupt).
cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name, const DecodeOptions& options);

// Reads and decodes a file; also fails (std::runtime_error naming the file) when it is missing or unreadable.
cv::Mat read_image(const std::filesystem::path& path, const DecodeOptions& options);

}  // namespace vit::data
