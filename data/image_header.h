#pragma once
// Reading an encoded image's format and pixel size from its header bytes, without decoding it.

#include <cstddef>
#include <cstdint>
#include <string>

namespace vit::data {

enum class ImageFormat { Unknown, Jpeg, Png, Bmp, Tiff, WebP };

// "JPEG", "PNG", "BMP", "TIFF", "WebP", "unknown".
std::string to_string(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::Unknown;
  int64_t width = 0;
  int64_t height = 0;
};

// Format and pixel dimensions from the first bytes of an encoded image, without decoding it: used to reject
// decompression bombs before OpenCV allocates anything. Returns format Unknown with zero sizes when the bytes are
// none of these formats or the header is truncated or damaged (a zero width or height counts as damaged). Never
// reads past data + size. PNG, BMP and WebP need only their first 30 bytes; JPEG needs everything up to its frame
// header, which follows any EXIF, ICC and comment segments (often tens of kilobytes); TIFF needs the whole file,
// as its first directory sits wherever its header points (libtiff writes it after the pixel data).
ImageHeader read_image_header(const uint8_t* data, size_t size);

}  // namespace vit::data
