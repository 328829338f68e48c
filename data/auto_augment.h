#pragma once
// Automatic augmentation policies for training (TrivialAugmentWide, RandAugment) on 8-bit images.
//
// They follow torchvision 0.14's transforms of the same names, op for op and range for range, but work on
// cv::Mat with no LibTorch: they run in the decode worker threads, which must do no tensor math.

#include <random>
#include <string>

#include <opencv2/core/mat.hpp>

#include "data/sample_rng.h"

namespace vit::data {

enum class AutoAugmentPolicy { None, TrivialAugment, RandAugment };

// "none" | "trivial" | "rand"; anything else is std::invalid_argument naming the value.
AutoAugmentPolicy parse_auto_augment(const std::string& text);
std::string to_string(AutoAugmentPolicy policy);

struct AutoAugmentOptions {
  AutoAugmentPolicy policy = AutoAugmentPolicy::None;
  int num_ops = 2;              // RandAugment: ops applied per image
  int magnitude = 9;            // RandAugment: magnitude bin, 0..num_magnitude_bins-1
  int num_magnitude_bins = 31;  // both policies: how finely each op's magnitude range is divided
  void validate() const;        // std::invalid_argument naming the field and value (num_ops, magnitude: RandAugment)
};

// Applies the policy in place to an 8-bit image with 1 or 3 channels (RGB order). All randomness comes from
// `rng`, so a seeded rng gives the same result every time. Type, size and channel count never change.
void apply_auto_augment(cv::Mat& image, const AutoAugmentOptions& options, SampleRng& rng);

// The single ops, in place on CV_8UC1 / CV_8UC3 images, exposed for the tests. Each matches the torchvision
// 0.14 tensor op it is named after (torchvision.transforms.functional on a uint8 tensor).
namespace ops {

// Geometry: nearest-neighbour sampling, 0 where the source falls outside the image.
void rotate(cv::Mat& image, double degrees);   // counter-clockwise about the image centre
void shear_x(cv::Mat& image, double factor);   // x' = x + factor * y, about the top-left corner as torchvision
void shear_y(cv::Mat& image, double factor);   // y' = y + factor * x, about the top-left corner as torchvision
void translate_x(cv::Mat& image, int pixels);  // positive moves the content right
void translate_y(cv::Mat& image, int pixels);  // positive moves the content down

// Colour: blends with a degenerate image, factor 1 is the identity; factor must be >= 0.
void brightness(cv::Mat& image, double factor);  // with black
void color(cv::Mat& image, double factor);       // with the grayscale image (a no-op on 1 channel)
void contrast(cv::Mat& image, double factor);    // with the mean gray level
void sharpness(cv::Mat& image, double factor);   // with the 3x3-smoothed image (borders kept)

// Levels.
void posterize(cv::Mat& image, int bits);         // keeps the top `bits` bits, 0..8
void solarize(cv::Mat& image, double threshold);  // inverts the values >= threshold
void autocontrast(cv::Mat& image);                // stretches each channel's [min, max] to [0, 255]
void equalize(cv::Mat& image);                    // flattens each channel's histogram

}  // namespace ops
}  // namespace vit::data
