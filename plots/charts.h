#pragma once
// Charts drawn with OpenCV (no plotting dependency): the training curves of `vit train` / `vit plot` and the
// confusion matrix of `vit eval --plots`, as 8-bit BGR pictures; and PNG encoding for every picture vit writes.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace vit::plots {

// One epoch's figures; NaN where a run has none (no validation data, say).
struct EpochPoint {
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  double epoch = 0;
  double train_loss = kNone, val_loss = kNone, train_acc = kNone, val_top1 = kNone, val_top5 = kNone, lr = kNone;
};

// Three panels side by side, each with axes, ticks, axis labels and a legend: loss (train, validation), accuracy
// (train, validation top-1 and top-5) and learning rate, against epoch. Throws std::invalid_argument without
// points.
cv::Mat training_curves(const std::vector<EpochPoint>& points, const std::string& title);

// The confusion matrix normalised by row (true class), as a colour grid with class names on both axes, a colour
// scale, and each cell's value when there are at most 20 classes. `counts` is K x K row-major, rows = true
// classes, K = names.size(). Throws std::invalid_argument when the sizes disagree.
cv::Mat confusion_picture(const std::vector<int64_t>& counts, const std::vector<std::string>& names,
                          const std::string& title);

// PNG bytes of a picture.
std::vector<unsigned char> encode_png(const cv::Mat& picture);

}  // namespace vit::plots
