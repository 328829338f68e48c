// The attention picture: its layout, the image undone from its normalisation, and heat where the map is high.

#include <opencv2/core.hpp>

#include <string>
#include <utility>
#include <vector>

#include "plots/attention_picture.h"
#include "plots/charts.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/plots/ink.h"

using vit::test::Contains;
using vit::test::last_ink_column;

namespace vit::plots {
namespace {

// Mean BGR colour of a square of a panel's grid cell (row, col) on a 4x4 grid of 224-pixel panels.
cv::Scalar cell_colour(const cv::Mat& picture, int panel, int row, int col) {
  const int cell = 224 / 4;
  return cv::mean(picture(cv::Rect(panel * (224 + 8) + col * cell + 8, 56 + row * cell + 8, cell - 16, cell - 16)));
}

// A 28x28 grayscale image (normalised with mean = std = 0.5) with the same 4x4 map for both panels.
AttentionPictureInput grayscale_input(const std::vector<float>& image, const std::vector<float>& map) {
  AttentionPictureInput in;
  in.image = image.data();
  in.channels = 1;
  in.size = 28;
  in.mean = {0.5f};
  in.std = {0.5f};
  in.last_block = map.data();
  in.rollout = map.data();
  in.grid = 4;
  return in;
}

}  // namespace

TEST_CASE("the attention picture shows the image and puts heat where the maps are high", "[data][attention]") {
  const std::vector<float> image(3 * 32 * 32, 0.0f);  // normalised 0 = mid grey with mean = std = 0.5
  std::vector<float> last(16, 0.0f), rollout(16, 0.0f);
  last[0] = 1.0f;      // top-left patch
  rollout[15] = 2.0f;  // bottom-right patch (maps are scaled to their own range)
  AttentionPictureInput in;
  in.image = image.data();
  in.channels = 3;
  in.size = 32;
  in.mean = {0.5f, 0.5f, 0.5f};
  in.std = {0.5f, 0.5f, 0.5f};
  in.last_block = last.data();
  in.rollout = rollout.data();
  in.grid = 4;
  in.caption = "top-1: coat  p = 0.900";
  in.map_source = "of the class token";
  in.heads = "mean of 4 heads";

  const cv::Mat picture = attention_picture(in);
  REQUIRE(picture.type() == CV_8UC3);
  REQUIRE(picture.rows == 56 + 224);
  REQUIRE(picture.cols == 3 * 224 + 2 * 8);
  const cv::Scalar grey = cell_colour(picture, 0, 1, 1);
  CHECK(grey[0] == Approx(127.5).margin(1.0));  // 0 * 0.5 + 0.5 = 0.5 of 255
  CHECK(grey[2] == Approx(127.5).margin(1.0));
  // BGR: red (index 2) over blue where the map peaks, blue over red at its minimum.
  const cv::Scalar last_hot = cell_colour(picture, 1, 0, 0), last_cold = cell_colour(picture, 1, 3, 3);
  CHECK(last_hot[2] > last_hot[0] + 30);
  CHECK(last_cold[0] > last_cold[2] + 30);
  const cv::Scalar roll_hot = cell_colour(picture, 2, 3, 3), roll_cold = cell_colour(picture, 2, 0, 0);
  CHECK(roll_hot[2] > roll_hot[0] + 30);
  CHECK(roll_cold[0] > roll_cold[2] + 30);
  CHECK(cv::countNonZero(picture(cv::Rect(0, 0, picture.cols, 56)).reshape(1) < 100) > 50);  // caption text

  const auto png = encode_png(picture);
  REQUIRE(png.size() > 8);
  CHECK(png[1] == 'P');
  CHECK(png[2] == 'N');
  CHECK(png[3] == 'G');
}

TEST_CASE("a grayscale image is shown in grey, and missing maps are an error", "[data][attention]") {
  const std::vector<float> image(28 * 28, 1.0f);  // normalised 1 = white with mean = std = 0.5
  const std::vector<float> flat(16, 0.25f);
  AttentionPictureInput in = grayscale_input(image, flat);
  const cv::Mat picture = attention_picture(in);
  CHECK(cell_colour(picture, 0, 2, 2)[1] == Approx(255).margin(1.0));
  in.rollout = nullptr;
  CHECK_THAT(test::error_of([&] { attention_picture(in); }), Contains("two attention maps"));
}

TEST_CASE("long captions and titles are shrunk or cut short to fit, not cut off at the edge", "[data][attention]") {
  const std::vector<float> image(28 * 28, 1.0f);
  const std::vector<float> flat(16, 0.25f);
  AttentionPictureInput in = grayscale_input(image, flat);
  in.map_source = "averaged over patch tokens (the head pools them)";
  // A usual caption (too wide for one line at the normal size: shrunk), then a caption and titles too long to
  // stay legible (cut short).
  const std::pair<std::string, std::string> cases[] = {
      {"Shirt", "mean of 16 heads"},
      {"American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, and more words than any "
       "picture can hold in one line",
       "mean of 16 heads, described at a length that no panel title has room for"}};
  for (const auto& [label, heads] : cases) {
    in.caption = "top-1: " + label + "  p = 0.412";
    in.heads = heads;
    const cv::Mat picture = attention_picture(in);
    const int caption_end = last_ink_column(picture(cv::Rect(0, 0, picture.cols, 30)));
    CHECK(caption_end > picture.cols / 2);  // the line is there, and long
    CHECK(caption_end < picture.cols - 4);  // and it ends inside the picture's margin
    // Panel titles ("last block, mean of 16 heads", "rollout, ...") end before their panel does.
    for (int i = 0; i < 3; ++i) {
      const int title_end = last_ink_column(picture(cv::Rect(i * (224 + 8), 30, 224 + (i < 2 ? 8 : 0), 24)));
      CHECK(title_end > 20);
      CHECK(title_end < 224 - 2);
    }
  }
}

}  // namespace vit::plots
