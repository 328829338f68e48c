#include "plots/charts.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "plots/text.h"

namespace vit::plots {
namespace {

const cv::Scalar kWhite(255, 255, 255), kBlack(0, 0, 0), kGrid(225, 225, 225), kAxis(90, 90, 90);

struct Series {
  std::string name;
  std::vector<double> x, y;
  cv::Scalar colour;
  // Values on some epochs only (validation with --val-every): the line joins them across the epochs between. Any
  // other series breaks at a missing value (a diverged loss), so that the gap shows.
  bool sparse = false;
};

struct Panel {
  std::string title, y_label;
  std::vector<Series> series;
};

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

// Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten, about `count` of them.
std::vector<double> ticks(double low, double high, int count) {
  const double raw = (high - low) / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / power < 2 ? power : raw / power < 5 ? 2 * power : 5 * power;
  std::vector<double> out;
  for (double v = std::ceil(low / step) * step; v <= high + step * 1e-9; v += step)
    out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

// The finite range of some values, padded so that flat or single-point series still get an axis.
std::pair<double, double> range_of(const std::vector<Series>& series, bool x_axis) {
  double low = INFINITY, high = -INFINITY;
  for (const auto& s : series) {
    for (double v : x_axis ? s.x : s.y) {
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
  }
  if (!std::isfinite(low)) return {0.0, 1.0};
  if (high - low < 1e-12)
    return {low - 0.5 * std::max(std::abs(low), 1e-3), high + 0.5 * std::max(std::abs(high), 1e-3)};
  const double pad = x_axis ? 0.0 : 0.05 * (high - low);
  return {low - pad, high + pad};
}

void draw_panel(cv::Mat& canvas, cv::Rect area, const Panel& panel) {
  const cv::Rect plot(area.x + 70, area.y + 34, area.width - 85, area.height - 100);
  const auto [x0, x1] = range_of(panel.series, true);
  const auto [y0, y1] = range_of(panel.series, false);
  auto px = [&, x0 = x0, x1 = x1](double x) {
    return plot.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * plot.width));
  };
  auto py = [&, y0 = y0, y1 = y1](double y) {
    return plot.y + plot.height - static_cast<int>(std::lround((y - y0) / (y1 - y0) * plot.height));
  };

  put_text(canvas, panel.title + " (" + panel.y_label + ")", {area.x + 70, area.y + 20}, 0.55);
  for (double t : ticks(y0, y1, 5)) {
    cv::line(canvas, {plot.x, py(t)}, {plot.x + plot.width, py(t)}, kGrid);
    put_text(canvas, number(t), {plot.x - 8 - text_width(number(t), 0.4), py(t) + 4}, 0.4, kAxis);
  }
  for (double t : ticks(x0, x1, 6)) {
    if (std::abs(t - std::round(t)) > 1e-9) continue;  // epochs are whole numbers
    cv::line(canvas, {px(t), plot.y}, {px(t), plot.y + plot.height}, kGrid);
    put_text(canvas, number(t), {px(t) - text_width(number(t), 0.4) / 2, plot.y + plot.height + 16}, 0.4, kAxis);
  }
  cv::rectangle(canvas, plot, kAxis);
  put_text(canvas, "epoch", {plot.x + plot.width / 2 - 20, plot.y + plot.height + 36}, 0.45);

  int legend_x = plot.x;  // the legend: one row under the x axis, clear of the lines
  for (const auto& s : panel.series) {
    std::vector<cv::Point> run;
    bool any = false;
    auto flush = [&] {
      if (run.size() > 1) cv::polylines(canvas, run, false, s.colour, 2, cv::LINE_AA);
      run.clear();
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        if (!s.sparse) flush();
        continue;
      }
      any = true;
      run.emplace_back(px(s.x[i]), py(s.y[i]));
      cv::circle(canvas, run.back(), 3, s.colour, cv::FILLED, cv::LINE_AA);
    }
    flush();
    if (!any) continue;
    const cv::Point at(legend_x, plot.y + plot.height + 60);
    cv::line(canvas, at + cv::Point(0, -4), at + cv::Point(22, -4), s.colour, 2, cv::LINE_AA);
    put_text(canvas, s.name, at + cv::Point(28, 0), 0.42);
    legend_x += 28 + text_width(s.name, 0.42) + 18;
  }
}

}  // namespace

cv::Mat training_curves(const std::vector<EpochPoint>& points, const std::string& title) {
  if (points.empty()) throw std::invalid_argument("training curves: no epochs to plot");
  auto series = [&](const std::string& name, double EpochPoint::*field, cv::Scalar colour, bool sparse = false) {
    Series s{name, {}, {}, colour, sparse};
    for (const auto& p : points) {
      s.x.push_back(p.epoch);
      s.y.push_back(p.*field);
    }
    return s;
  };
  const cv::Scalar blue(200, 110, 30), orange(30, 130, 240), green(60, 160, 60), grey(120, 120, 120);
  const Panel panels[] = {
      {"loss",
       "cross-entropy",
       {series("train", &EpochPoint::train_loss, blue), series("validation", &EpochPoint::val_loss, orange, true)}},
      {"accuracy",
       "fraction",
       {series("train", &EpochPoint::train_acc, blue), series("val top-1", &EpochPoint::val_top1, orange, true),
        series("val top-5", &EpochPoint::val_top5, green, true)}},
      {"learning rate", "lr", {series("lr (epoch end)", &EpochPoint::lr, grey)}},
  };
  constexpr int kPanelWidth = 420, kPanelHeight = 340, kTitle = 30;
  cv::Mat canvas(kTitle + kPanelHeight, 3 * kPanelWidth, CV_8UC3, kWhite);
  put_text_within(canvas, title, {10, 22}, 0.6, canvas.cols - 20);  // a run name can be any length
  for (int i = 0; i < 3; ++i) draw_panel(canvas, {i * kPanelWidth, kTitle, kPanelWidth, kPanelHeight}, panels[i]);
  return canvas;
}

cv::Mat confusion_picture(const std::vector<int64_t>& counts, const std::vector<std::string>& names,
                          const std::string& title) {
  const int k = static_cast<int>(names.size());
  if (k == 0 || counts.size() != names.size() * names.size())
    throw std::invalid_argument("confusion picture: expected a K x K matrix with K class names");
  const int cell = std::clamp(640 / k, 6, 56);
  const bool show_values = k <= 20;
  int name_width = 0;
  for (int i = 0; i < k; ++i)
    name_width = std::max(name_width, text_width(std::to_string(i) + " " + names[static_cast<size_t>(i)], 0.42));
  const int left = name_width + 16, top = 56, grid = k * cell;
  // A few classes make a narrow matrix: widen the picture for its two lines of text (the title up to a point;
  // beyond it, put_text_within shrinks or shortens it).
  const std::string subtitle = "predicted class (columns), true class (rows), each row normalised to 1";
  const int text_room = std::max(text_width(subtitle, 0.42), std::min(text_width(title, 0.55), 900)) + 20;
  cv::Mat canvas(top + grid + 50, std::max(left + grid + 90, text_room), CV_8UC3, kWhite);
  put_text_within(canvas, title, {10, 22}, 0.55, canvas.cols - 20);
  put_text(canvas, subtitle, {10, 44}, 0.42, kAxis);

  cv::Mat scale(1, 256, CV_8U);
  for (int i = 0; i < 256; ++i) scale.at<uchar>(0, i) = static_cast<uchar>(i);
  cv::Mat colours;
  cv::applyColorMap(scale, colours, cv::COLORMAP_VIRIDIS);
  auto colour_of = [&](double v) {
    const cv::Vec3b c = colours.at<cv::Vec3b>(0, std::clamp(static_cast<int>(std::lround(v * 255)), 0, 255));
    return cv::Scalar(c[0], c[1], c[2]);
  };

  for (int r = 0; r < k; ++r) {
    const int64_t* row = counts.data() + static_cast<size_t>(r) * static_cast<size_t>(k);
    double total = 0;
    for (int c = 0; c < k; ++c) total += static_cast<double>(row[c]);
    put_text(canvas, std::to_string(r) + " " + names[static_cast<size_t>(r)], {8, top + r * cell + cell / 2 + 5}, 0.42);
    for (int c = 0; c < k; ++c) {
      const double v = total > 0 ? static_cast<double>(row[c]) / total : 0.0;
      const cv::Rect box(left + c * cell, top + r * cell, cell, cell);
      cv::rectangle(canvas, box, colour_of(v), cv::FILLED);
      if (show_values && cell >= 28) {
        const std::string text = v > 0 && v < 0.005 ? "<.01" : number(std::round(v * 100) / 100);
        put_text(canvas, text, {box.x + (cell - text_width(text, 0.38)) / 2, box.y + cell / 2 + 4}, 0.38,
                 v < 0.6 ? kWhite : kBlack);
      }
    }
  }
  for (int c = 0; c < k; ++c) {
    if (cell >= 14 || c % 5 == 0)
      put_text(canvas, std::to_string(c), {left + c * cell + cell / 2 - 4, top + grid + 16}, 0.4, kAxis);
  }
  // The colour scale: 0 at the bottom, 1 at the top.
  const int bar_x = left + grid + 20;
  for (int y = 0; y < grid; ++y)
    cv::line(canvas, {bar_x, top + y}, {bar_x + 16, top + y},
             colour_of(1.0 - static_cast<double>(y) / std::max(1, grid - 1)));
  cv::rectangle(canvas, cv::Rect(bar_x, top, 16, grid), kAxis);
  for (double t : {0.0, 0.5, 1.0})
    put_text(canvas, number(t), {bar_x + 22, top + grid - static_cast<int>(t * (grid - 1)) + 4}, 0.4, kAxis);
  return canvas;
}

std::vector<unsigned char> encode_png(const cv::Mat& picture) {
  std::vector<unsigned char> bytes;
  if (!cv::imencode(".png", picture, bytes)) throw std::runtime_error("could not encode a PNG picture");
  return bytes;
}

}  // namespace vit::plots
