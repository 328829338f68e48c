#pragma once
// Where a picture's text ends: for tests that check a line of text stays inside the picture or its panel.

#include <opencv2/core.hpp>

namespace vit::test {

// The rightmost column of `band` (a region of a picture on a light background) with dark pixels, -1 if none.
inline int last_ink_column(const cv::Mat& band) {
  int last = -1;
  for (int x = 0; x < band.cols; ++x)
    if (cv::countNonZero(band.col(x).reshape(1) < 128) > 0) last = x;
  return last;
}

}  // namespace vit::test
