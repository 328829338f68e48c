#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "util/image_limits.h"

namespace vit::data {
namespace {

void check_normalization(const Normalization& n, int channels) {
  if (n.mean.size() != static_cast<size_t>(channels) || n.std.size() != static_cast<size_t>(channels))
    throw std::invalid_argument("mean and std need " + std::to_string(channels) + " values each (one per channel)");
  for (float s : n.std) {
    if (!(s > 0.0f)) throw std::invalid_argument("std values must be positive");
  }
}

void check_range(const char* name, double low, double high, double min_allowed, double max_allowed) {
  if (!(low >= min_allowed && low <= high && high <= max_allowed)) {
    std::ostringstream message;  // shortest form of each number: 0.9, not 0.900000
    message << name << " must satisfy " << min_allowed << " <= min <= max <= " << max_allowed << ", got (" << low
            << ", " << high << ")";
    throw std::invalid_argument(message.str());
  }
}

double uniform(SampleRng& rng, double low, double high) {
  return std::uniform_real_distribution<double>(low, high)(rng);
}

}  // namespace

void EvalTransformOptions::validate(int channels) const {
  if (image_size <= 0) throw std::invalid_argument("image size must be positive, got " + std::to_string(image_size));
  if (!(crop_pct > 0.0 && crop_pct <= 1.0))
    throw std::invalid_argument("crop_pct must be in (0, 1], got " + std::to_string(crop_pct));
  if (!(static_cast<double>(image_size) / crop_pct <= kMaxEvalResizeSide)) {
    std::ostringstream message;  // shortest form of each number: 1e-300, not 0.000000
    message << "image size " << image_size << " with crop_pct " << crop_pct << " resizes the short side to "
            << static_cast<double>(image_size) / crop_pct << " pixels; at most " << kMaxEvalResizeSide;
    throw std::invalid_argument(message.str());
  }
  check_normalization(normalization, channels);
}

void TrainTransformOptions::validate(int channels) const {
  if (image_size <= 0) throw std::invalid_argument("image size must be positive, got " + std::to_string(image_size));
  check_range("scale", scale_min, scale_max, 1e-6, 1.0);
  check_range("ratio", ratio_min, ratio_max, 1e-6, 1e6);
  check_range("hflip", hflip, hflip, 0.0, 1.0);
  check_range("random_erasing", random_erasing, random_erasing, 0.0, 1.0);
  auto_augment.validate();
  check_normalization(normalization, channels);
}

cv::Mat resize_to(const cv::Mat& image, cv::Size size, Interpolation interpolation) {
  if (image.size() == size) return image;
  // Shrinking with INTER_AREA averages over the source pixels, the antialiasing that PIL (timm, torchvision)
  // applies; bilinear or bicubic sampling alone would alias on large reductions.
  const bool shrinking = size.width < image.cols && size.height < image.rows;
  const int flag =
      shrinking ? cv::INTER_AREA : (interpolation == Interpolation::Bicubic ? cv::INTER_CUBIC : cv::INTER_LINEAR);
  cv::Mat out;
  cv::resize(image, out, size, 0, 0, flag);
  return out;
}

cv::Mat resize_short_side(const cv::Mat& image, int64_t size, Interpolation interpolation) {
  const int64_t short_side = std::min(image.cols, image.rows);
  const int64_t long_side = std::max(image.cols, image.rows);
  // torchvision: the long side is truncated, not rounded.
  const auto scaled_long =
      static_cast<int>(static_cast<double>(size) * static_cast<double>(long_side) / static_cast<double>(short_side));
  const cv::Size target = image.cols <= image.rows ? cv::Size(static_cast<int>(size), scaled_long)
                                                   : cv::Size(scaled_long, static_cast<int>(size));
  return resize_to(image, target, interpolation);
}

cv::Mat center_crop(const cv::Mat& image, int64_t size) {
  const int s = static_cast<int>(size);
  cv::Mat source = image;
  if (image.cols < s || image.rows < s) {  // pad symmetrically with zeros, as torchvision's center_crop
    const int pad_x = std::max(0, s - image.cols);
    const int pad_y = std::max(0, s - image.rows);
    cv::copyMakeBorder(image, source, pad_y / 2, pad_y - pad_y / 2, pad_x / 2, pad_x - pad_x / 2, cv::BORDER_CONSTANT,
                       cv::Scalar::all(0));
  }
  const int top = static_cast<int>(std::lround((source.rows - s) / 2.0));
  const int left = static_cast<int>(std::lround((source.cols - s) / 2.0));
  return source(cv::Rect(left, top, s, s));
}

cv::Rect random_resized_crop_box(cv::Size image, const TrainTransformOptions& o, SampleRng& rng) {
  // torchvision's RandomResizedCrop.get_params: ten tries at a random area and log-uniform aspect ratio,
  // then a center crop with the ratio clamped into range.
  const double area = static_cast<double>(image.width) * image.height;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, o.scale_min, o.scale_max);
    const double aspect = std::exp(uniform(rng, std::log(o.ratio_min), std::log(o.ratio_max)));
    const int w = static_cast<int>(std::lround(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::lround(std::sqrt(target_area / aspect)));
    if (w > 0 && h > 0 && w <= image.width && h <= image.height) {
      const int top = std::uniform_int_distribution<int>(0, image.height - h)(rng);
      const int left = std::uniform_int_distribution<int>(0, image.width - w)(rng);
      return {left, top, w, h};
    }
  }
  const double in_ratio = static_cast<double>(image.width) / image.height;
  int w = image.width;
  int h = image.height;
  if (in_ratio < o.ratio_min) {
    h = static_cast<int>(std::lround(w / o.ratio_min));
  } else if (in_ratio > o.ratio_max) {
    w = static_cast<int>(std::lround(h * o.ratio_max));
  }
  return {(image.width - w) / 2, (image.height - h) / 2, w, h};
}

void to_normalized_chw(const cv::Mat& image, const Normalization& n, float* out) {
  const int channels = image.channels();
  const size_t plane = static_cast<size_t>(image.rows) * image.cols;
  std::vector<float> scale(static_cast<size_t>(channels));
  std::vector<float> shift(static_cast<size_t>(channels));
  for (int c = 0; c < channels; ++c) {  // (x / 255 - mean) / std == x * scale + shift
    scale[static_cast<size_t>(c)] = 1.0f / (255.0f * n.std[static_cast<size_t>(c)]);
    shift[static_cast<size_t>(c)] = -n.mean[static_cast<size_t>(c)] / n.std[static_cast<size_t>(c)];
  }
  for (int y = 0; y < image.rows; ++y) {
    const uint8_t* row = image.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols; ++x) {
      const size_t pixel = static_cast<size_t>(y) * image.cols + x;
      for (int c = 0; c < channels; ++c) {
        out[static_cast<size_t>(c) * plane + pixel] =
            static_cast<float>(row[x * channels + c]) * scale[static_cast<size_t>(c)] + shift[static_cast<size_t>(c)];
      }
    }
  }
}

void random_erase(float* chw, int channels, int height, int width, SampleRng& rng) {
  // timm's RandomErasing, 'pixel' mode: a rectangle of 2%-33% of the area, aspect ratio log-uniform in
  // [0.3, 3.3], filled with standard-normal noise (the inputs are normalised, so noise matches their scale).
  const double area = static_cast<double>(height) * width;
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, 0.02, 1.0 / 3.0);
    const double aspect = std::exp(uniform(rng, std::log(0.3), std::log(1.0 / 0.3)));
    const int h = static_cast<int>(std::lround(std::sqrt(target_area * aspect)));
    const int w = static_cast<int>(std::lround(std::sqrt(target_area / aspect)));
    if (w < width && h < height) {
      const int top = std::uniform_int_distribution<int>(0, height - h)(rng);
      const int left = std::uniform_int_distribution<int>(0, width - w)(rng);
      for (int c = 0; c < channels; ++c) {
        for (int y = top; y < top + h; ++y) {
          float* row = chw + (static_cast<size_t>(c) * height + y) * width;
          for (int x = left; x < left + w; ++x) row[x] = noise(rng);
        }
      }
      return;
    }
  }
}

void eval_transform(const cv::Mat& image, const EvalTransformOptions& o, float* out) {
  const auto resize_size = static_cast<int64_t>(std::floor(static_cast<double>(o.image_size) / o.crop_pct));
  const cv::Mat resized = resize_short_side(image, resize_size, o.interpolation);
  to_normalized_chw(center_crop(resized, o.image_size), o.normalization, out);
}

void train_transform(const cv::Mat& image, const TrainTransformOptions& o, SampleRng& rng, float* out) {
  const int size = static_cast<int>(o.image_size);
  const cv::Rect box = random_resized_crop_box(image.size(), o, rng);
  cv::Mat crop = resize_to(image(box), cv::Size(size, size), o.interpolation);
  if (crop.datastart == image.datastart) crop = crop.clone();  // resize was a no-op: keep the caller's pixels intact
  if (uniform(rng, 0.0, 1.0) < o.hflip) cv::flip(crop, crop, 1);
  if (o.auto_augment.policy != AutoAugmentPolicy::None) apply_auto_augment(crop, o.auto_augment, rng);
  to_normalized_chw(crop, o.normalization, out);
  if (o.random_erasing > 0.0 && uniform(rng, 0.0, 1.0) < o.random_erasing) {
    random_erase(out, crop.channels(), size, size, rng);
  }
}

}  // namespace vit::data
