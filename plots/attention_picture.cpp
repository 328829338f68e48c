#include "plots/attention_picture.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "plots/text.h"

namespace vit::plots {
namespace {

constexpr int kMinPanel = 224;    // pixels: small inputs are enlarged to this
constexpr int kGap = 8;           // between panels
constexpr int kCaptionBand = 56;  // above the panels: the answer, then each panel's title
constexpr double kHeatWeight = 0.5;

// The normalised image back to 8-bit BGR, enlarged to `panel` pixels.
cv::Mat image_panel(const AttentionPictureInput& in, int panel) {
  std::vector<cv::Mat> planes;
  for (int c = 0; c < in.channels; ++c) {
    cv::Mat plane(in.size, in.size, CV_32F, const_cast<float*>(in.image + static_cast<size_t>(c) * in.size * in.size));
    cv::Mat pixels;
    plane.convertTo(pixels, CV_8U, 255.0 * in.std[static_cast<size_t>(c)], 255.0 * in.mean[static_cast<size_t>(c)]);
    planes.push_back(pixels);
  }
  cv::Mat bgr;
  if (in.channels == 1) {
    cv::cvtColor(planes[0], bgr, cv::COLOR_GRAY2BGR);
  } else {
    std::reverse(planes.begin(), planes.end());  // RGB -> BGR
    cv::merge(planes, bgr);
  }
  if (panel != in.size)
    cv::resize(bgr, bgr, {panel, panel}, 0, 0, panel > in.size ? cv::INTER_NEAREST : cv::INTER_AREA);
  return bgr;
}

// A grid x grid map scaled to [0, 1], smoothly upsampled, coloured and blended over `image`.
cv::Mat heat_panel(const float* map, int grid, const cv::Mat& image) {
  cv::Mat values(grid, grid, CV_32F, const_cast<float*>(map));
  double low = 0.0, high = 0.0;
  cv::minMaxLoc(values, &low, &high);
  cv::Mat scaled;
  values.convertTo(scaled, CV_8U, high > low ? 255.0 / (high - low) : 0.0,
                   high > low ? -255.0 * low / (high - low) : 0.0);
  cv::resize(scaled, scaled, image.size(), 0, 0, cv::INTER_CUBIC);
  cv::Mat heat;
  cv::applyColorMap(scaled, heat, cv::COLORMAP_JET);
  cv::Mat blended;
  cv::addWeighted(heat, kHeatWeight, image, 1.0 - kHeatWeight, 0.0, blended);
  return blended;
}

}  // namespace

cv::Mat attention_picture(const AttentionPictureInput& in) {
  if (!in.image || !in.last_block || !in.rollout || in.size <= 0 || in.grid <= 0 ||
      (in.channels != 1 && in.channels != 3) || in.mean.size() != static_cast<size_t>(in.channels) ||
      in.std.size() != static_cast<size_t>(in.channels)) {
    throw std::invalid_argument(
        "attention picture: expected an image of 1 or 3 channels with its mean and std, and "
        "two attention maps on a grid");
  }
  const int panel = std::max(kMinPanel, in.size);
  const cv::Mat image = image_panel(in, panel);
  const cv::Mat panels[] = {image, heat_panel(in.last_block, in.grid, image), heat_panel(in.rollout, in.grid, image)};
  const std::string titles[] = {"input", "last block, " + in.heads, "rollout, " + in.heads};

  cv::Mat canvas(kCaptionBand + panel, 3 * panel + 2 * kGap, CV_8UC3, cv::Scalar(255, 255, 255));
  // A long class name or file name must not run off the picture (a caption holds well over 100 characters
  // before it is cut short, more than any ImageNet class name needs).
  put_text_within(canvas, in.caption + "   (attention " + in.map_source + ")", {4, 20}, 0.5, canvas.cols - 8);
  for (int i = 0; i < 3; ++i) {
    const int x = i * (panel + kGap);
    panels[i].copyTo(canvas(cv::Rect(x, kCaptionBand, panel, panel)));
    put_text_within(canvas, titles[i], {x + 4, kCaptionBand - 10}, 0.45, panel - 8);
  }
  return canvas;
}

}  // namespace vit::plots
