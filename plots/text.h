#pragma once
// Text on vit's pictures: one font (OpenCV's Hershey simplex, which draws ASCII; other bytes come out as '?'),
// one pixel thick, anti-aliased.

#include <opencv2/core.hpp>

#include <string>

namespace vit::plots {

// Width in pixels of `text` at font `scale`.
int text_width(const std::string& text, double scale);

// `text` with its baseline starting at `at`.
void put_text(cv::Mat& canvas, const std::string& text, cv::Point at, double scale,
              const cv::Scalar& colour = cv::Scalar(0, 0, 0));

// put_text, ending within `width` pixels: the font shrunk from `scale` as far as stays legible, then, if it
// still does not fit, the text cut short with "...". For text of any length (class names, file names).
void put_text_within(cv::Mat& canvas, std::string text, cv::Point at, double scale, int width);

}  // namespace vit::plots
