#pragma once
// Test-time augmentation: a classifier's answer for an image taken over the image and a mirror image of it.
// Training with random horizontal flips teaches the model both orientations; averaging over them at test time
// removes part of the model's noise for the price of a second forward pass.

#include <cstddef>
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>

namespace vit::engine {

// (B, C, H, W) images on the device -> (B, K) logits.
using ForwardFn = std::function<at::Tensor(const at::Tensor& images)>;

enum class TestTimeAugmentation {
  kNone,
  kHorizontalFlip,  // the images and their left-right mirror images
};

// "none" or "hflip"; std::invalid_argument naming `option` otherwise.
TestTimeAugmentation parse_test_time_augmentation(const std::string& name, const std::string& option);
// Forward passes per image: 1, or 2 with a mirror image.
size_t forward_passes(TestTimeAugmentation tta);

// `forward(images)` under `tta`. With kNone, the model's logits as they are. With kHorizontalFlip, float32
// log-probabilities: the log of the mean of the two passes' softmax probabilities, computed from the two
// log-softmaxes so that a class whose probability underflows to 0 in float32 in both passes keeps a finite
// log-probability (a log taken after averaging would be -inf, and an image of that class an infinite loss). They
// are valid logits: their softmax is that mean, so cross-entropy, top-k and probabilities read them unchanged.
at::Tensor forward_with_tta(const ForwardFn& forward, const at::Tensor& images, TestTimeAugmentation tta);

}  // namespace vit::engine
