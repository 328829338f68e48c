#include "data/image_cache.h"

#include <stdexcept>
#include <string>

namespace vit::data {
namespace {

// What keeping one image costs besides its pixels: its header in the slot table, OpenCV's buffer record and
// malloc's own overhead (an estimate; it matters for small images: a Fashion-MNIST image has 784 pixels).
constexpr int64_t kBytesPerImage = 192;

}  // namespace

ImageCache::ImageCache(size_t slots, int64_t budget_bytes) : budget_bytes_(budget_bytes) {
  if (budget_bytes < 0)
    throw std::invalid_argument("image cache budget must be >= 0 bytes, got " + std::to_string(budget_bytes));
  if (budget_bytes == 0) return;
  bytes_ = static_cast<int64_t>(slots * sizeof(cv::Mat));  // the slot table itself
  if (bytes_ > budget_bytes_) {
    gave_up_ = true;
    return;
  }
  images_.resize(slots);
}

std::optional<cv::Mat> ImageCache::find(size_t index) const {
  if (budget_bytes_ == 0) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  if (gave_up_) return std::nullopt;
  const cv::Mat& image = images_.at(index);
  if (image.empty()) return std::nullopt;
  return image;  // a header sharing the pixels
}

void ImageCache::insert(size_t index, const cv::Mat& image) {
  if (budget_bytes_ == 0 || image.empty()) return;
  const auto pixels = static_cast<int64_t>(image.total() * image.elemSize());
  std::lock_guard<std::mutex> lock(mutex_);
  if (gave_up_ || !images_.at(index).empty()) return;
  if (bytes_ + pixels + kBytesPerImage > budget_bytes_) {
    give_up();
    return;
  }
  // A copy when `image` is a view into a larger buffer, so the budget counts what is really held.
  const bool whole = image.isContinuous() && image.data == image.datastart && image.dataend - image.datastart == pixels;
  images_[index] = whole ? image : image.clone();
  bytes_ += pixels + kBytesPerImage;
  ++count_;
}

void ImageCache::give_up() {
  gave_up_ = true;
  std::vector<cv::Mat>().swap(images_);  // images still in use elsewhere keep their pixels until released there
  bytes_ = 0;
  count_ = 0;
}

int64_t ImageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t ImageCache::images() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

std::string ImageCache::summary() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto mib = [](int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; };
  if (budget_bytes_ == 0) return "not kept";
  if (gave_up_) return "not kept: they need more than " + mib(budget_bytes_);
  return std::to_string(count_) + " kept in memory (" + mib(bytes_) + ")";
}

bool ImageCache::gave_up() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return gave_up_;
}

}  // namespace vit::data
