#pragma once
// Decoded images kept in memory between epochs, when the whole data set fits in a byte budget: a set that fits
// (Fashion-MNIST is 47 MB decoded) is read and decoded once, and every later epoch costs only its augmentation.
// Images are kept as decoded (8-bit, before any random transform), so a cached image gives exactly the batch a
// fresh decode would.
//
// All or nothing: images are kept as they are first decoded, and the first one that would exceed the budget
// shows that the set does not fit; the cache then lets go of everything and keeps nothing more, since a partial
// cache of a large data set holds memory for little gain. The budget counts each image's pixels and the
// bookkeeping per image. Thread-safe: the loader's workers share one cache.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace vit::data {

class ImageCache {
 public:
  // `slots`: how many images the data set has (keys are their indices); `budget_bytes`: 0 keeps nothing.
  ImageCache(size_t slots, int64_t budget_bytes);

  // The image kept for `index`, sharing its pixels (treat them as read-only), or nullopt.
  std::optional<cv::Mat> find(size_t index) const;
  // Keeps a copy of `image`'s header (its pixels shared; a view into a larger image is copied) for `index`; a
  // second insert of an index keeps the first. Gives the cache up when the budget would be exceeded.
  void insert(size_t index, const cv::Mat& image);

  int64_t bytes() const;  // counted against the budget so far
  size_t images() const;  // kept so far
  bool gave_up() const;   // the data set did not fit: nothing is kept
  // In words, for logs: "60000 kept in memory (53 MiB)", "not kept: they need more than 2048 MiB", "not kept".
  std::string summary() const;

 private:
  void give_up();  // with mutex_ held

  const int64_t budget_bytes_;
  mutable std::mutex mutex_;
  std::vector<cv::Mat> images_;  // empty Mat: not kept
  int64_t bytes_ = 0;
  size_t count_ = 0;
  bool gave_up_ = false;
};

}  // namespace vit::data
