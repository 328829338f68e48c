#include "data/image_decode.h"

#include <stdexcept>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace vit::data {
namespace {

// 16-bit and float images are scaled to 8 bits; colour order becomes RGB; channel count becomes `channels`.
cv::Mat to_model_channels(const cv::Mat& decoded, int channels) {
  cv::Mat eight_bit;
  if (decoded.depth() == CV_16U) {
    decoded.convertTo(eight_bit, CV_8U, 1.0 / 257.0);
  } else if (decoded.depth() == CV_8U) {
    eight_bit = decoded;
  } else {
    decoded.convertTo(eight_bit, CV_8U, 255.0);
  }
  cv::Mat out;
  const int source = eight_bit.channels();
  if (channels == 1) {
    if (source == 1) out = eight_bit;
    else cv::cvtColor(eight_bit, out, source == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  } else {
    if (source == 1) cv::cvtColor(eight_bit, out, cv::COLOR_GRAY2RGB);
    else cv::cvtColor(eight_bit, out, source == 4 ? cv::COLOR_BGRA2RGB : cv::COLOR_BGR2RGB);
  }
  return out;
}

}  // namespace

cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("decode_image: channels must be 1 or 3, got " + std::to_string(channels));
  if (bytes.empty()) throw std::runtime_error("'" + name + "': empty file");
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
  const cv::Mat decoded = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
  if (decoded.empty()) throw std::runtime_error("'" + name + "': not a decodable image (corrupt or unsupported format)");
  return to_model_channels(decoded, channels);
}

}  // namespace vit::data
