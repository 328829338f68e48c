#include "data/image_decode.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/image_header.h"

namespace vit::data {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw std::runtime_error("'" + name + "': " + problem);
}

cv::Mat to_eight_bit(const cv::Mat& decoded) {
  if (decoded.depth() == CV_8U) return decoded;
  cv::Mat out;
  if (decoded.depth() == CV_16U) {
    decoded.convertTo(out, CV_8U, 255.0 / 65535.0);
  } else if (decoded.depth() == CV_32F || decoded.depth() == CV_64F) {
    decoded.convertTo(out, CV_8U, 255.0);  // float TIFFs hold values in [0, 1]
  } else {
    decoded.convertTo(out, CV_8U);
  }
  return out;
}

// Transparent pixels become white rather than whatever colour the encoder left under them (often black).
cv::Mat composite_on_white(const cv::Mat& bgra) {
  cv::Mat bgr(bgra.size(), CV_8UC3);
  bgra.forEach<cv::Vec4b>([&](const cv::Vec4b& p, const int* position) {
    const int alpha = p[3];
    cv::Vec3b& out = bgr.at<cv::Vec3b>(position[0], position[1]);
    for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>((p[c] * alpha + 255 * (255 - alpha) + 127) / 255);
  });
  return bgr;
}

// 1-, 3- or 4-channel BGR(A) -> `channels` channels in RGB order.
cv::Mat to_model_channels(const cv::Mat& image, int channels) {
  cv::Mat bgr = image.channels() == 4 ? composite_on_white(image) : image;
  cv::Mat out;
  if (channels == 1) {
    if (bgr.channels() == 1) return bgr;
    cv::cvtColor(bgr, out, cv::COLOR_BGR2GRAY);
  } else {
    cv::cvtColor(bgr, out, bgr.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
  }
  return out;
}

}  // namespace

cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name, const DecodeOptions& options) {
  if (options.channels != 1 && options.channels != 3)
    throw std::invalid_argument("decode_image: channels must be 1 or 3, got " + std::to_string(options.channels));
  if (bytes.empty()) fail(name, "empty file");
  const ImageHeader header = read_image_header(bytes.data(), bytes.size());
  if (header.format == ImageFormat::Unknown)
    fail(name, "not an image in a supported format (JPEG, PNG, BMP, TIFF, WebP), or its header is damaged");
  // Divided, not multiplied: a header may claim sides whose product overflows (found by fuzz_image_decode: a TIFF of
  // 4177526796 x 2374864269 pixels wrapped past the limit).
  if (header.width > options.max_pixels / header.height)
    fail(name, to_string(header.format) + " of " + std::to_string(header.width) + "x" + std::to_string(header.height) +
                   " pixels exceeds the limit of " + std::to_string(options.max_pixels) + " pixels");

  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
  cv::Mat decoded;
  if (header.format == ImageFormat::Jpeg) {
    // JPEG has no alpha and is 8-bit: decode straight to the target colour space, which also applies the
    // EXIF orientation (IMREAD_UNCHANGED would ignore it).
    decoded = cv::imdecode(encoded, options.channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } else {
    decoded = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);  // keeps alpha and 16-bit depth for the steps below
  }
  if (decoded.empty()) fail(name, "corrupt " + to_string(header.format) + " data: OpenCV could not decode it");
  if (decoded.channels() == 2) fail(name, "2-channel images are not supported");
  return to_model_channels(to_eight_bit(decoded), options.channels);
}

cv::Mat read_image(const std::filesystem::path& path, const DecodeOptions& options) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) fail(path.string(), "no such file");
  if (!std::filesystem::is_regular_file(status)) fail(path.string(), "not a regular file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(path.string(), std::string("cannot open: ") + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) fail(path.string(), "cannot read");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  if (!in) fail(path.string(), "read error");
  return decode_image(bytes, path.string(), options);
}

}  // namespace vit::data
