#pragma once
// Image transforms as timm and torchvision define them, on 8-bit OpenCV images, ending in normalised CHW floats.
// No LibTorch here: these run in the loader's worker threads.

#include <cstdint>
#include <random>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "data/auto_augment.h"
#include "data/sample_rng.h"

namespace vit::data {

enum class Interpolation { Bilinear, Bicubic };

struct Normalization {
  std::vector<float> mean{0.5f, 0.5f, 0.5f};  // one value per channel, on the [0, 1] scale
  std::vector<float> std{0.5f, 0.5f, 0.5f};
};

// Evaluation: resize the short side to floor(image_size / crop_pct) (at most kMaxEvalResizeSide,
// util/image_limits.h), center-crop image_size, normalise.
struct EvalTransformOptions {
  int64_t image_size = 224;
  double crop_pct = 0.875;
  Interpolation interpolation = Interpolation::Bilinear;
  Normalization normalization;
  void validate(int channels) const;  // std::invalid_argument naming the field
};

// Training: random resized crop, horizontal flip, optional auto-augment, normalise, optional random erasing.
struct TrainTransformOptions {
  int64_t image_size = 224;
  double scale_min = 0.08;  // crop area as a fraction of the image (torchvision's scale)
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;  // crop aspect ratio range (torchvision's ratio)
  double ratio_max = 4.0 / 3.0;
  double hflip = 0.5;  // probability of a horizontal flip
  AutoAugmentOptions auto_augment;
  double random_erasing = 0.0;  // probability of erasing a random rectangle with noise (timm's reprob)
  Interpolation interpolation = Interpolation::Bilinear;
  Normalization normalization;
  void validate(int channels) const;
};

// Both write channels x image_size x image_size floats to `out`.
void eval_transform(const cv::Mat& image, const EvalTransformOptions& options, float* out);
void train_transform(const cv::Mat& image, const TrainTransformOptions& options, SampleRng& rng, float* out);

// The steps, for tests and for callers that compose their own.
cv::Mat resize_short_side(const cv::Mat& image, int64_t size, Interpolation interpolation);
cv::Mat resize_to(const cv::Mat& image, cv::Size size, Interpolation interpolation);
cv::Mat center_crop(const cv::Mat& image, int64_t size);  // pads with zeros if the image is smaller
cv::Rect random_resized_crop_box(cv::Size image, const TrainTransformOptions& options, SampleRng& rng);
void to_normalized_chw(const cv::Mat& image, const Normalization& normalization, float* out);
void random_erase(float* chw, int channels, int height, int width, SampleRng& rng);

}  // namespace vit::data
