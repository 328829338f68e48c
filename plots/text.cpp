#include "plots/text.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

namespace vit::plots {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kSmallestScale = 0.3;  // still legible

}  // namespace

int text_width(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline).width;
}

void put_text(cv::Mat& canvas, const std::string& text, cv::Point at, double scale, const cv::Scalar& colour) {
  cv::putText(canvas, text, at, kFont, scale, colour, 1, cv::LINE_AA);
}

void put_text_within(cv::Mat& canvas, std::string text, cv::Point at, double scale, int width) {
  for (int w = text_width(text, scale); w > width && scale > kSmallestScale; w = text_width(text, scale))
    scale = std::max(kSmallestScale, scale * 0.95 * width / w);  // the width grows about linearly with the scale
  while (text_width(text, scale) > width && text.size() > 3) text = text.substr(0, text.size() - 4) + "...";
  put_text(canvas, text, at, scale);
}

}  // namespace vit::plots
