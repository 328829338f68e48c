// The charts: sizes, lines where the data are, colours where the matrix is high, and errors for bad input.

#include <opencv2/core.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "plots/charts.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/plots/ink.h"

using vit::test::Contains;
using vit::test::last_ink_column;

namespace vit::plots {
namespace {

// Pixels of `picture` within `tolerance` of the BGR `colour`.
int pixels_of(const cv::Mat& picture, cv::Scalar colour, int tolerance = 12) {
  cv::Mat mask;
  cv::inRange(picture, colour - cv::Scalar::all(tolerance), colour + cv::Scalar::all(tolerance), mask);
  return cv::countNonZero(mask);
}

}  // namespace

TEST_CASE("training curves draw every series that has values", "[data][plots]") {
  std::vector<EpochPoint> points;
  for (int e = 1; e <= 6; ++e) {
    EpochPoint p;
    p.epoch = e;
    p.train_loss = 2.0 / e;
    p.train_acc = 0.5 + 0.05 * e;
    p.lr = 1e-3 * (7 - e);
    if (e % 2 == 0) p.val_top1 = 0.6 + 0.04 * e;  // validated every other epoch (--val-every 2)
    points.push_back(p);
  }
  const cv::Mat picture = training_curves(points, "run");
  REQUIRE(picture.type() == CV_8UC3);
  CHECK(picture.cols == 3 * 420);
  CHECK(picture.rows == 30 + 340);
  CHECK(pixels_of(picture, {200, 110, 30}) > 500);   // train loss and train accuracy (blue)
  // Validation top-1 (orange): a line through the validated epochs, not three lone points.
  CHECK(pixels_of(picture, {30, 130, 240}) > 300);
  CHECK(pixels_of(picture, {120, 120, 120}) > 200);  // learning rate (grey)
  CHECK(pixels_of(picture, {60, 160, 60}) == 0);     // no top-5 values, no green
  CHECK_THAT(test::error_of([] { training_curves({}, "run"); }), Contains("no epochs to plot"));
}

TEST_CASE("the confusion picture colours each row's share, with a colour scale", "[data][plots]") {
  // Class 0 always right, class 1 right 3 times in 4.
  const std::vector<int64_t> counts{10, 0, 1, 3};
  const cv::Mat picture = confusion_picture(counts, {"cat", "dog"}, "eval");
  REQUIRE(picture.type() == CV_8UC3);
  // Cells are 56 pixels (640 / 2 capped) and start 56 below the top; the grid starts after the class names: the
  // first coloured pixel in a row just below the grid's top edge, above the names' letters.
  const int cell = 56, top = 56;
  int left = 0;
  while (left < picture.cols && picture.at<cv::Vec3b>(top + 2, left) == cv::Vec3b(255, 255, 255)) ++left;
  REQUIRE(left < picture.cols - 2 * cell);
  auto colour = [&](int r, int c) {
    return cv::mean(picture(cv::Rect(left + c * cell + 4, top + r * cell + 4, 8, 8)));
  };
  // VIRIDIS: green rises steadily from 0 (dark purple) to 1 (yellow).
  CHECK(colour(0, 0)[1] > 200);
  CHECK(colour(0, 1)[1] < 20);
  CHECK(colour(1, 1)[1] > colour(1, 0)[1] + 60);  // 0.75 against 0.25
  CHECK_THAT(test::error_of([&] {
               confusion_picture({1, 2, 3}, {"cat", "dog"}, "eval");
             }),
             Contains("expected a K x K matrix with K class names"));
  CHECK(encode_png(picture).size() > 100);
}

TEST_CASE("chart titles stay inside the picture, however long the run or model name", "[data][plots]") {
  const std::string usual = "vit eval: model.pt on test (top-1 0.9095)";
  const std::string very_long = "vit train: " + std::string(300, 'x');
  // A two-class matrix is narrow: the picture widens for its title and the line under it.
  for (const std::string& title : {usual, very_long}) {
    const cv::Mat confusion = confusion_picture({10, 0, 1, 3}, {"cat", "dog"}, title);
    const int title_end = last_ink_column(confusion(cv::Rect(0, 0, confusion.cols, 28)));
    const int subtitle_end = last_ink_column(confusion(cv::Rect(0, 30, confusion.cols, 20)));
    CHECK(title_end > 200);
    CHECK(title_end < confusion.cols - 4);
    CHECK(subtitle_end > 300);
    CHECK(subtitle_end < confusion.cols - 4);
  }
  EpochPoint p;
  p.epoch = 1;
  p.train_loss = 1.0;
  const cv::Mat curves = training_curves({p}, very_long);
  const int title_end = last_ink_column(curves(cv::Rect(0, 0, curves.cols, 28)));
  CHECK(title_end > curves.cols / 2);
  CHECK(title_end < curves.cols - 4);
}

}  // namespace vit::plots
