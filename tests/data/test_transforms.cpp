// Transforms: sizes, positions, values, and reproducibility with a seed.

#include <opencv2/core.hpp>

#include "data/transforms.h"
#include "tests/catch.h"

using vit::test::Contains;

namespace vit::data {
namespace {

// A 3-channel image whose pixel (y, x) is (x, y, 7): positions can be read back from values.
cv::Mat coordinate_image(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x)
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x), static_cast<uint8_t>(y), 7);
  }
  return image;
}

Normalization identity_normalization() { return {{0.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f}}; }

}  // namespace

TEST_CASE("resize_short_side keeps the aspect ratio as torchvision does", "[transforms]") {
  const cv::Mat wide(200, 300, CV_8UC3, cv::Scalar::all(0));
  CHECK(resize_short_side(wide, 100, Interpolation::Bilinear).size() == cv::Size(150, 100));
  const cv::Mat tall(301, 200, CV_8UC1, cv::Scalar::all(0));
  CHECK(resize_short_side(tall, 100, Interpolation::Bicubic).size() == cv::Size(100, 150));  // 150.5 truncated
  CHECK(resize_short_side(tall, 400, Interpolation::Bicubic).size() == cv::Size(400, 602));
}

TEST_CASE("center_crop takes the middle and pads small images with zeros", "[transforms]") {
  const auto crop = center_crop(coordinate_image(10, 8), 4);
  REQUIRE(crop.size() == cv::Size(4, 4));
  CHECK(crop.at<cv::Vec3b>(0, 0) == cv::Vec3b(3, 2, 7));  // left = (10-4)/2, top = (8-4)/2
  const auto padded = center_crop(coordinate_image(2, 2), 4);
  REQUIRE(padded.size() == cv::Size(4, 4));
  CHECK(padded.at<cv::Vec3b>(0, 0) == cv::Vec3b(0, 0, 0));
  CHECK(padded.at<cv::Vec3b>(1, 1) == cv::Vec3b(0, 0, 7));
}

TEST_CASE("eval_transform normalises into CHW planes", "[transforms]") {
  const cv::Mat image(40, 40, CV_8UC3, cv::Scalar(51, 102, 255));  // R, G, B as stored (already RGB)
  EvalTransformOptions o;
  o.image_size = 32;
  o.crop_pct = 0.8;  // resize to 40: no-op
  o.normalization = {{0.5f, 0.5f, 0.5f}, {0.25f, 0.5f, 1.0f}};
  std::vector<float> out(3 * 32 * 32, -99.0f);
  eval_transform(image, o, out.data());
  const size_t plane = 32 * 32;
  CHECK(out[0] == Approx((51 / 255.0 - 0.5) / 0.25));
  CHECK(out[plane + 100] == Approx((102 / 255.0 - 0.5) / 0.5));
  CHECK(out[2 * plane + plane - 1] == Approx((255 / 255.0 - 0.5) / 1.0));
  CHECK(std::count(out.begin(), out.end(), -99.0f) == 0);
}

TEST_CASE("eval_transform crops the center of the resized image", "[transforms]") {
  EvalTransformOptions o;
  o.image_size = 4;
  o.crop_pct = 4.0 / 8.0;  // resize short side to 8: the 8x12 image stays as it is
  o.normalization = identity_normalization();
  std::vector<float> out(3 * 4 * 4);
  eval_transform(coordinate_image(12, 8), o, out.data());
  CHECK(out[0] * 255.0f == Approx(4.0f));   // x of the top-left output pixel: (12 - 4) / 2
  CHECK(out[16] * 255.0f == Approx(2.0f));  // y of it, in the second plane: (8 - 4) / 2
  CHECK(out[2 * 16] * 255.0f == Approx(7.0f));
}

TEST_CASE("random resized crop boxes stay inside the image and within the area range", "[transforms]") {
  TrainTransformOptions o;
  o.scale_min = 0.25;
  o.scale_max = 0.5;
  data::SampleRng rng(1);
  for (int i = 0; i < 500; ++i) {
    const auto box = random_resized_crop_box(cv::Size(200, 100), o, rng);
    REQUIRE(box.x >= 0);
    REQUIRE(box.y >= 0);
    REQUIRE(box.x + box.width <= 200);
    REQUIRE(box.y + box.height <= 100);
    const double area = static_cast<double>(box.area()) / (200.0 * 100.0);
    CHECK(area >= 0.24);
    CHECK(area <= 0.52);  // rounding of width and height
  }
}

TEST_CASE("train_transform is reproducible with a seed and varies without", "[transforms]") {
  TrainTransformOptions o;
  o.image_size = 16;
  o.auto_augment.policy = AutoAugmentPolicy::TrivialAugment;
  o.random_erasing = 0.5;
  const cv::Mat image = coordinate_image(40, 30);
  const cv::Mat before = image.clone();
  auto run = [&](unsigned seed) {
    data::SampleRng rng(seed);
    std::vector<float> out(3 * 16 * 16);
    train_transform(image, o, rng, out.data());
    return out;
  };
  CHECK(run(5) == run(5));
  int different = 0;
  for (unsigned seed = 6; seed < 16; ++seed) different += run(seed) != run(5);
  CHECK(different >= 9);
  CHECK(cv::norm(image, before, cv::NORM_INF) == 0);  // the caller's pixels are untouched
}

TEST_CASE("a certain flip mirrors the crop", "[transforms]") {
  TrainTransformOptions o;
  o.image_size = 8;
  o.scale_min = o.scale_max = 1.0;
  o.ratio_min = o.ratio_max = 1.0;  // the crop is the whole square image
  o.normalization = identity_normalization();
  o.hflip = 1.0;
  data::SampleRng rng(0);
  std::vector<float> out(3 * 8 * 8);
  train_transform(coordinate_image(8, 8), o, rng, out.data());
  CHECK(out[0] * 255.0f == Approx(7.0f));  // x of the top-left pixel is now the rightmost column's
  CHECK(out[7] * 255.0f == Approx(0.0f));
}

TEST_CASE("random_erase fills one rectangle with noise", "[transforms]") {
  std::vector<float> planes(3 * 20 * 20, 0.0f);
  data::SampleRng rng(3);
  random_erase(planes.data(), 3, 20, 20, rng);
  const auto erased = std::count_if(planes.begin(), planes.end(), [](float v) { return v != 0.0f; });
  CHECK(erased >= 3 * 20 * 20 * 2 / 100);  // at least 2% of the area, in every channel
  CHECK(erased <= 3 * 20 * 20 / 3 + 3 * 20);
}

TEST_CASE("transform options are validated with the field named", "[transforms]") {
  TrainTransformOptions o;
  o.scale_min = 0.9;
  o.scale_max = 0.1;
  CHECK_THROWS_WITH(o.validate(3), Contains("scale must satisfy 1e-06 <= min <= max <= 1, got (0.9, 0.1)"));
  TrainTransformOptions p;
  CHECK_THROWS_WITH(p.validate(1), Contains("mean and std need 1 values each"));
  EvalTransformOptions e;
  e.crop_pct = 1.5;
  CHECK_THROWS_WITH(e.validate(3), Contains("crop_pct must be in (0, 1]"));
  // A crop_pct whose resize no int holds (undefined to convert) or no memory holds is refused, naming the sizes.
  e.crop_pct = 1e-300;
  CHECK_THROWS_WITH(e.validate(3), Contains("image size 224 with crop_pct 1e-300 resizes the short side to 2.24e+302 "
                                            "pixels; at most 65536"));
  e.crop_pct = 224.0 / 65537;
  CHECK_THROWS_WITH(e.validate(3), Contains("pixels; at most 65536"));
  e.crop_pct = 224.0 / 65536;  // the largest resize allowed
  CHECK_NOTHROW(e.validate(3));
}

}  // namespace vit::data
