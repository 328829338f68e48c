// Decoding images the tests encode themselves.

#include <opencv2/imgcodecs.hpp>

#include "data/image_decode.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::data {
namespace {

std::vector<uint8_t> encode(const cv::Mat& image, const std::string& extension) {
  std::vector<uint8_t> bytes;
  REQUIRE(cv::imencode(extension, image, bytes));
  return bytes;
}

}  // namespace

TEST_CASE("colour images come out in RGB order with the requested channel count", "[decode]") {
  // OpenCV stores BGR: a pure-blue image is (255, 0, 0) in BGR and must come out as (0, 0, 255) in RGB.
  const cv::Mat blue(4, 6, CV_8UC3, cv::Scalar(255, 0, 0));
  const auto rgb = decode_image(encode(blue, ".png"), "blue.png", 3);
  REQUIRE(rgb.type() == CV_8UC3);
  CHECK(rgb.size() == cv::Size(6, 4));
  CHECK(rgb.at<cv::Vec3b>(2, 3) == cv::Vec3b(0, 0, 255));

  const auto gray = decode_image(encode(blue, ".png"), "blue.png", 1);
  REQUIRE(gray.type() == CV_8UC1);
  CHECK(gray.at<uint8_t>(0, 0) == 29);  // ITU-R BT.601 luma of pure blue: 0.114 * 255
}

TEST_CASE("16-bit and RGBA images become 8-bit RGB", "[decode]") {
  const cv::Mat deep(2, 2, CV_16UC1, cv::Scalar(65535));
  CHECK(decode_image(encode(deep, ".png"), "deep.png", 3).at<cv::Vec3b>(1, 1) == cv::Vec3b(255, 255, 255));
  const cv::Mat rgba(2, 2, CV_8UC4, cv::Scalar(10, 20, 30, 0));
  CHECK(decode_image(encode(rgba, ".png"), "rgba.png", 3).at<cv::Vec3b>(0, 0) == cv::Vec3b(30, 20, 10));
}

TEST_CASE("bytes that are not an image are an error naming the file", "[decode]") {
  CHECK_THROWS_WITH(decode_image({}, "empty.jpg", 3), Contains("'empty.jpg': empty file"));
  CHECK_THROWS_WITH(decode_image({'h', 'e', 'l', 'l', 'o'}, "notes.txt", 3),
                    Contains("'notes.txt': not a decodable image"));
  CHECK_THROWS_WITH(decode_image({1, 2, 3}, "x.png", 2), Contains("channels must be 1 or 3, got 2"));
}

}  // namespace vit::data
