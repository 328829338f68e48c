#pragma once
// Decoded images kept in memory between epochs, up to a byte budget: a data set that fits (Fashion-MNIST is
// 47 MB decoded) is read and decoded once, and every later epoch costs only its augmentation. Images are kept
// as decoded (8-bit, before any random transform), so a cached image gives exactly the batch a fresh decode
// would. First come, first kept: once the budget is spent, further images are decoded every time.
// Thread-safe: the loader's workers share one cache.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace vit::data {

class ImageCache {
 public:
  // `slots`: how many images the data set has (keys are their indices); `budget_bytes`: 0 keeps nothing.
  ImageCache(size_t slots, int64_t budget_bytes);

  // The image kept for `index`, sharing its pixels (treat them as read-only), or nullopt.
  std::optional<cv::Mat> find(size_t index) const;
  // Keeps `image` (which must own its pixels) for `index` if the budget allows; a second insert of an index keeps
  // the first.
  void insert(size_t index, const cv::Mat& image);

  int64_t bytes() const;   // kept so far
  size_t images() const;   // kept so far

 private:
  const int64_t budget_bytes_;
  mutable std::mutex mutex_;
  std::vector<cv::Mat> images_;  // empty Mat: not kept
  int64_t bytes_ = 0;
  size_t count_ = 0;
};

}  // namespace vit::data
