#include "data/image_cache.h"

#include <stdexcept>
#include <string>

namespace vit::data {

ImageCache::ImageCache(size_t slots, int64_t budget_bytes) : budget_bytes_(budget_bytes) {
  if (budget_bytes < 0) throw std::invalid_argument("image cache budget must be >= 0 bytes, got " + std::to_string(budget_bytes));
  if (budget_bytes > 0) images_.resize(slots);
}

std::optional<cv::Mat> ImageCache::find(size_t index) const {
  if (budget_bytes_ == 0) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  const cv::Mat& image = images_.at(index);
  if (image.empty()) return std::nullopt;
  return image;  // a header sharing the pixels
}

void ImageCache::insert(size_t index, const cv::Mat& image) {
  if (budget_bytes_ == 0 || image.empty()) return;
  const auto size = static_cast<int64_t>(image.total() * image.elemSize());
  std::lock_guard<std::mutex> lock(mutex_);
  cv::Mat& slot = images_.at(index);
  if (!slot.empty() || bytes_ + size > budget_bytes_) return;
  // A copy when `image` is a view into a larger buffer, so the budget counts what is really held.
  const bool whole = image.isContinuous() && image.data == image.datastart && image.dataend - image.datastart == size;
  slot = whole ? image : image.clone();
  bytes_ += size;
  ++count_;
}

int64_t ImageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t ImageCache::images() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

}  // namespace vit::data
