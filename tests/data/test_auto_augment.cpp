// The automatic augmentation policies and their ops: values known by hand, what the policies may produce, and
// torchvision 0.14's own ops run on the same pixels (the [reference] case needs Python with torch and
// torchvision: VIT_REFERENCE_PYTHON, default /usr/bin/python3 as Debian's python3-torch).

#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <set>
#include <sstream>

#include <opencv2/core.hpp>

#include "data/auto_augment.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;

namespace vit::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

cv::Mat random_image(int rows, int cols, int channels, uint64_t seed) {
  cv::Mat image(rows, cols, CV_8UC(channels));
  cv::RNG(seed).fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// A 16x16 gray image holding every level once: value = 16 * row + column.
cv::Mat all_levels() {
  cv::Mat image(16, 16, CV_8UC1);
  for (int v = 0; v < 256; ++v) image.at<uint8_t>(v / 16, v % 16) = static_cast<uint8_t>(v);
  return image;
}

// torchvision's _apply_op(img, name, magnitude): how each policy turns a signed magnitude into an op call.
void apply_named(cv::Mat& image, const std::string& name, double magnitude) {
  if (name == "Identity") return;
  if (name == "ShearX") return ops::shear_x(image, magnitude);
  if (name == "ShearY") return ops::shear_y(image, magnitude);
  if (name == "TranslateX") return ops::translate_x(image, static_cast<int>(magnitude));
  if (name == "TranslateY") return ops::translate_y(image, static_cast<int>(magnitude));
  if (name == "Rotate") return ops::rotate(image, magnitude);
  if (name == "Brightness") return ops::brightness(image, 1.0 + magnitude);
  if (name == "Color") return ops::color(image, 1.0 + magnitude);
  if (name == "Contrast") return ops::contrast(image, 1.0 + magnitude);
  if (name == "Sharpness") return ops::sharpness(image, 1.0 + magnitude);
  if (name == "Posterize") return ops::posterize(image, static_cast<int>(magnitude));
  if (name == "Solarize") return ops::solarize(image, magnitude);
  if (name == "AutoContrast") return ops::autocontrast(image);
  if (name == "Equalize") return ops::equalize(image);
  FAIL("unknown op " << name);
}

}  // namespace

TEST_CASE("policy names parse and print", "[auto_augment]") {
  for (const auto policy : {AutoAugmentPolicy::None, AutoAugmentPolicy::TrivialAugment, AutoAugmentPolicy::RandAugment})
    CHECK(parse_auto_augment(to_string(policy)) == policy);
  CHECK(to_string(AutoAugmentPolicy::TrivialAugment) == "trivial");
  CHECK_THROWS_WITH(parse_auto_augment("autoaugment"),
                    Contains("unknown auto-augment policy 'autoaugment' (expected none, trivial or rand)"));
}

TEST_CASE("options are validated with messages naming the field and value", "[auto_augment]") {
  AutoAugmentOptions options;
  options.policy = AutoAugmentPolicy::RandAugment;
  CHECK_NOTHROW(options.validate());
  options.num_ops = 0;
  CHECK_THROWS_WITH(options.validate(), Contains("num_ops must be >= 1, got 0"));
  options.num_ops = 2;
  options.num_magnitude_bins = 1;
  CHECK_THROWS_WITH(options.validate(), Contains("num_magnitude_bins must be >= 2, got 1"));
  options.num_magnitude_bins = 31;
  options.magnitude = 31;
  CHECK_THROWS_WITH(options.validate(), Contains("magnitude must be in [0, 30] (num_magnitude_bins - 1), got 31"));
  options.magnitude = -1;
  CHECK_THROWS_WITH(options.validate(), Contains("got -1"));
  options.policy = AutoAugmentPolicy::TrivialAugment;  // which has no use for num_ops and magnitude
  CHECK_NOTHROW(options.validate());
  options.num_magnitude_bins = 0;
  CHECK_THROWS_WITH(options.validate(), Contains("num_magnitude_bins must be >= 2, got 0"));
  options.num_magnitude_bins = 31;
  options.policy = AutoAugmentPolicy::RandAugment;

  // apply_auto_augment checks the options and the image before anything else.
  data::SampleRng rng(1);
  cv::Mat image = random_image(4, 4, 3, 1);
  CHECK_THROWS_WITH(apply_auto_augment(image, options, rng), Contains("magnitude must be in [0, 30]"));
  cv::Mat floats(4, 4, CV_32FC3, cv::Scalar::all(0.5));
  CHECK_THROWS_WITH(apply_auto_augment(floats, {}, rng),
                    Contains("expected a non-empty 8-bit image with 1 or 3 channels, got CV_32FC3"));
  cv::Mat rgba(4, 4, CV_8UC4), empty;
  CHECK_THROWS_WITH(apply_auto_augment(rgba, {}, rng), Contains("got CV_8UC4"));
  CHECK_THROWS_WITH(apply_auto_augment(empty, {}, rng), Contains("got an empty image"));
  CHECK_THROWS_WITH(ops::posterize(image, 9), Contains("posterize: bits must be in [0, 8], got 9"));
  CHECK_THROWS_WITH(ops::contrast(image, -0.5), "contrast: factor must be >= 0, got -0.5");
}

TEST_CASE("policy none leaves the image untouched and draws nothing", "[auto_augment]") {
  const cv::Mat original = random_image(9, 7, 3, 2);
  cv::Mat image = original.clone();
  data::SampleRng rng(3), untouched(3);
  apply_auto_augment(image, {}, rng);
  CHECK(same(image, original));
  CHECK(rng == untouched);
}

TEST_CASE("a seeded rng gives the same augmentation, other seeds other ones", "[auto_augment]") {
  for (const auto policy : {AutoAugmentPolicy::TrivialAugment, AutoAugmentPolicy::RandAugment}) {
    for (const int channels : {1, 3}) {
      AutoAugmentOptions options;
      options.policy = policy;
      int differing = 0;
      for (int n = 0; n < 8; ++n) {
        const cv::Mat original = random_image(20, 24, channels, 100 + n);
        cv::Mat first = original.clone(), again = original.clone(), other = original.clone();
        data::SampleRng rng_first(n), rng_again(n), rng_other(1000 + n);
        apply_auto_augment(first, options, rng_first);
        apply_auto_augment(again, options, rng_again);
        apply_auto_augment(other, options, rng_other);
        CHECK(same(first, again));
        if (!same(first, other)) ++differing;
      }
      INFO("policy " << to_string(policy) << ", " << channels << " channels");
      CHECK(differing >= 4);
    }
  }
}

TEST_CASE("type, size and channels are kept over many draws, odd and tiny sizes included", "[auto_augment]") {
  const cv::Size sizes[] = {{1, 1}, {2, 3}, {3, 2}, {13, 17}, {32, 24}};
  data::SampleRng rng(7);
  for (const auto policy : {AutoAugmentPolicy::TrivialAugment, AutoAugmentPolicy::RandAugment}) {
    AutoAugmentOptions options;
    options.policy = policy;
    options.magnitude = 30;  // RandAugment's strongest bin
    for (const int channels : {1, 3}) {
      for (const auto size : sizes) {
        for (int n = 0; n < 60; ++n) {
          cv::Mat image = random_image(size.height, size.width, channels, n);
          apply_auto_augment(image, options, rng);
          REQUIRE(image.type() == CV_8UC(channels));
          REQUIRE(image.size() == size);
        }
      }
    }
  }
}

TEST_CASE("augmenting a view changes only the pixels inside it", "[auto_augment]") {
  cv::Mat whole = random_image(20, 20, 3, 5);
  const cv::Mat original = whole.clone();
  const cv::Rect inside(4, 5, 10, 8);
  AutoAugmentOptions options;
  options.policy = AutoAugmentPolicy::RandAugment;
  options.num_ops = 3;
  data::SampleRng rng(11);
  for (int n = 0; n < 10; ++n) {
    cv::Mat view = whole(inside);
    apply_auto_augment(view, options, rng);
  }
  cv::Mat outside_mask(whole.size(), CV_8UC1, cv::Scalar(255));
  outside_mask(inside).setTo(0);
  CHECK(cv::norm(whole, original, cv::NORM_INF, outside_mask) == 0);
}

TEST_CASE("solarize inverts exactly the levels at or above the threshold", "[auto_augment][ops]") {
  cv::Mat image = all_levels();
  ops::solarize(image, 128);
  for (int v = 0; v < 256; ++v) CHECK(image.at<uint8_t>(v / 16, v % 16) == (v >= 128 ? 255 - v : v));
  cv::Mat half = all_levels();
  ops::solarize(half, 127.5);  // torchvision's bins give thresholds like 246.5
  CHECK(half.at<uint8_t>(7, 15) == 127);
  CHECK(half.at<uint8_t>(8, 0) == 127);  // 128 inverted
  cv::Mat rgb(1, 1, CV_8UC3, cv::Scalar(10, 200, 255));
  ops::solarize(rgb, 255);
  CHECK(rgb.at<cv::Vec3b>(0, 0) == cv::Vec3b(10, 200, 0));
}

TEST_CASE("posterize keeps the top bits", "[auto_augment][ops]") {
  cv::Mat image = all_levels();
  ops::posterize(image, 4);
  for (int v = 0; v < 256; ++v) CHECK(image.at<uint8_t>(v / 16, v % 16) == (v & 0xF0));
  cv::Mat eight = all_levels(), zero = all_levels();
  ops::posterize(eight, 8);
  ops::posterize(zero, 0);
  CHECK(same(eight, all_levels()));
  CHECK(cv::countNonZero(zero) == 0);
}

TEST_CASE("brightness blends with black, truncating as torchvision", "[auto_augment][ops]") {
  const cv::Mat original = random_image(6, 5, 3, 8);
  cv::Mat black = original.clone(), same_image = original.clone(), half = original.clone(), doubled = original.clone();
  ops::brightness(black, 0.0);
  ops::brightness(same_image, 1.0);
  ops::brightness(half, 0.5);
  ops::brightness(doubled, 2.0);
  CHECK(cv::norm(black, cv::NORM_INF) == 0);
  CHECK(same(same_image, original));
  for (int i = 0; i < original.rows; ++i) {
    for (int j = 0; j < original.cols; ++j) {
      for (int c = 0; c < 3; ++c) {
        const int v = original.at<cv::Vec3b>(i, j)[c];
        CHECK(half.at<cv::Vec3b>(i, j)[c] == v / 2);  // 127.5 becomes 127
        CHECK(doubled.at<cv::Vec3b>(i, j)[c] == std::min(255, 2 * v));
      }
    }
  }
}

TEST_CASE("color blends with torchvision's grayscale, a gray image is left alone", "[auto_augment][ops]") {
  cv::Mat image(2, 1, CV_8UC3);
  image.at<cv::Vec3b>(0, 0) = {10, 200, 30};    // 0.2989*10 + 0.587*200 + 0.114*30 = 123.8
  image.at<cv::Vec3b>(1, 0) = {255, 255, 255};  // the weights sum to 0.9999: white's gray is 254
  cv::Mat gray = image.clone(), identity = image.clone();
  ops::color(gray, 0.0);
  ops::color(identity, 1.0);
  CHECK(gray.at<cv::Vec3b>(0, 0) == cv::Vec3b(123, 123, 123));
  CHECK(gray.at<cv::Vec3b>(1, 0) == cv::Vec3b(254, 254, 254));
  CHECK(same(identity, image));
  const cv::Mat levels = all_levels();
  cv::Mat one_channel = levels.clone();
  ops::color(one_channel, 0.0);
  CHECK(same(one_channel, levels));
}

TEST_CASE("contrast blends with the mean gray level", "[auto_augment][ops]") {
  cv::Mat image(2, 2, CV_8UC1);
  image.setTo(0);
  image.row(1).setTo(100);  // mean 50
  cv::Mat flat = image.clone(), strong = image.clone(), identity = image.clone();
  ops::contrast(flat, 0.0);
  ops::contrast(strong, 2.0);
  ops::contrast(identity, 1.0);
  CHECK(cv::norm(flat, cv::Mat(2, 2, CV_8UC1, cv::Scalar(50)), cv::NORM_INF) == 0);
  CHECK(strong.at<uint8_t>(0, 0) == 0);  // 2 * 0 - 50, clamped
  CHECK(strong.at<uint8_t>(1, 1) == 150);
  CHECK(same(identity, image));
}

TEST_CASE("sharpness blends with the 3x3-smoothed interior, borders kept", "[auto_augment][ops]") {
  cv::Mat spot(5, 5, CV_8UC1, cv::Scalar(0));
  spot.at<uint8_t>(2, 2) = 130;
  cv::Mat smooth = spot.clone(), identity = spot.clone();
  ops::sharpness(smooth, 0.0);
  ops::sharpness(identity, 1.0);
  CHECK(smooth.at<uint8_t>(2, 2) == 50);  // 5 * 130 / 13
  CHECK(smooth.at<uint8_t>(1, 1) == 10);  // 130 / 13
  CHECK(smooth.at<uint8_t>(3, 2) == 10);
  CHECK(cv::countNonZero(smooth) == 9);  // the border rows and columns stay 0
  CHECK(same(identity, spot));
  cv::Mat thin = random_image(2, 9, 3, 4);
  const cv::Mat thin_original = thin.clone();
  ops::sharpness(thin, 0.0);  // no interior: unchanged
  CHECK(same(thin, thin_original));
}

TEST_CASE("autocontrast stretches each channel's range to [0, 255]", "[auto_augment][ops]") {
  cv::Mat image(1, 51, CV_8UC3);
  for (int j = 0; j < 51; ++j)
    image.at<cv::Vec3b>(0, j) = {static_cast<uint8_t>(50 + j), static_cast<uint8_t>(5 * j), 7};
  const cv::Mat original = image.clone();
  ops::autocontrast(image);
  CHECK(image.at<cv::Vec3b>(0, 0)[0] == 0);
  CHECK(image.at<cv::Vec3b>(0, 50)[0] == 255);
  CHECK(image.at<cv::Vec3b>(0, 25)[0] == 127);  // 25 * 255/50 = 127.5, truncated
  for (int j = 1; j < 51; ++j) CHECK(image.at<cv::Vec3b>(0, j)[0] > image.at<cv::Vec3b>(0, j - 1)[0]);
  for (int j = 0; j < 51; ++j) {
    CHECK(image.at<cv::Vec3b>(0, j)[1] == 5 * j * 255 / 250);  // [0, 250] stretched
    CHECK(image.at<cv::Vec3b>(0, j)[2] == 7);                  // one level: left alone
  }
}

TEST_CASE("equalize spreads a narrow histogram flat over [0, 255]", "[auto_augment][ops]") {
  cv::Mat image(64, 64, CV_8UC1);
  for (int k = 0; k < 64 * 64; ++k) image.at<uint8_t>(k / 64, k % 64) = static_cast<uint8_t>(100 + k % 32);
  ops::equalize(image);
  double low, high;
  cv::minMaxLoc(image, &low, &high);
  CHECK(low == 0);
  CHECK(high == 255);
  CHECK(image.at<uint8_t>(0, 1) == 9);  // level 101: (128 pixels below + step/2) / step, step = 31 * 128 / 255 = 15
  for (int quarter = 0; quarter < 4; ++quarter) {
    cv::Mat in_quarter;
    cv::inRange(image, quarter * 64, quarter * 64 + 63, in_quarter);
    const double fraction = cv::countNonZero(in_quarter) / 4096.0;
    INFO("quarter " << quarter);
    CHECK(fraction >= 0.2);
    CHECK(fraction <= 0.3);
  }
  cv::Mat flat(4, 4, CV_8UC3, cv::Scalar(9, 99, 199));
  ops::equalize(flat);
  CHECK(flat.at<cv::Vec3b>(3, 3) == cv::Vec3b(9, 99, 199));
}

TEST_CASE("rotate turns about the centre, counter-clockwise", "[auto_augment][ops]") {
  for (const int n : {4, 5}) {
    cv::Mat marked(n, n, CV_8UC1, cv::Scalar(0));
    marked.at<uint8_t>(0, n - 1) = 200;  // top right
    marked.at<uint8_t>(1, n - 2) = 100;
    cv::Mat quarter = marked.clone(), none = marked.clone(), half = marked.clone(), flipped;
    ops::rotate(quarter, 90);
    ops::rotate(none, 0);
    ops::rotate(half, 180);
    CHECK(same(none, marked));
    CHECK(quarter.at<uint8_t>(0, 0) == 200);  // top right goes to top left
    CHECK(quarter.at<uint8_t>(1, 1) == 100);  // (row r, column c) goes to (n - 1 - c, r)
    CHECK(cv::countNonZero(quarter) == 2);
    cv::flip(marked, flipped, -1);
    CHECK(same(half, flipped));
  }
  // Corners leave the frame: a 45 degree turn of a full white image leaves black corners, a white centre.
  cv::Mat white(21, 21, CV_8UC3, cv::Scalar::all(255));
  ops::rotate(white, 45);
  CHECK(white.at<cv::Vec3b>(0, 0) == cv::Vec3b(0, 0, 0));
  CHECK(white.at<cv::Vec3b>(10, 10) == cv::Vec3b(255, 255, 255));
}

TEST_CASE("translate shifts by whole pixels and fills 0", "[auto_augment][ops]") {
  const cv::Mat original = random_image(5, 6, 3, 9);
  cv::Mat right = original.clone(), up = original.clone(), away = original.clone();
  ops::translate_x(right, 2);
  ops::translate_y(up, -1);
  ops::translate_x(away, 6);
  CHECK(same(right.colRange(2, 6), original.colRange(0, 4)));
  CHECK(cv::norm(right.colRange(0, 2), cv::NORM_INF) == 0);
  CHECK(same(up.rowRange(0, 4), original.rowRange(1, 5)));
  CHECK(cv::norm(up.row(4), cv::NORM_INF) == 0);
  CHECK(cv::norm(away, cv::NORM_INF) == 0);
}

TEST_CASE("shear keeps the top row (left column) and slides the rest", "[auto_augment][ops]") {
  // torchvision shears about the top-left corner: row i samples column j + factor * (i + 0.5), rounded.
  const cv::Mat original = random_image(4, 8, 1, 10);
  cv::Mat sheared = original.clone();
  ops::shear_x(sheared, 0.5);
  const int shift[] = {0, 1, 1, 2};  // round(0.5 * (i + 0.5))
  for (int i = 0; i < 4; ++i) {
    CHECK(same(sheared.row(i).colRange(0, 8 - shift[i]), original.row(i).colRange(shift[i], 8)));
    if (shift[i] > 0) CHECK(cv::norm(sheared.row(i).colRange(8 - shift[i], 8), cv::NORM_INF) == 0);
  }
  const cv::Mat tall = original.t();
  cv::Mat sheared_y = tall.clone();
  ops::shear_y(sheared_y, 0.5);
  CHECK(same(sheared_y, cv::Mat(sheared.t())));
}

namespace {

struct Candidate {
  std::string op;
  cv::Mat image;
};

// Every image one op of a policy may produce, with the magnitude ranges typed in from torchvision 0.14's
// _augmentation_space: TrivialAugmentWide draws any bin (`bin` < 0), RandAugment uses one.
std::vector<Candidate> possible_outputs(const cv::Mat& input, bool wide, int bins, int bin) {
  const double translate_x = wide ? 32.0 : 150.0 / 331.0 * input.cols;
  const double translate_y = wide ? 32.0 : 150.0 / 331.0 * input.rows;
  const double color = wide ? 0.99 : 0.9;
  const std::vector<std::pair<std::string, double>> signed_ops = {{"ShearX", wide ? 0.99 : 0.3},
                                                                  {"ShearY", wide ? 0.99 : 0.3},
                                                                  {"TranslateX", translate_x},
                                                                  {"TranslateY", translate_y},
                                                                  {"Rotate", wide ? 135.0 : 30.0},
                                                                  {"Brightness", color},
                                                                  {"Color", color},
                                                                  {"Contrast", color},
                                                                  {"Sharpness", color}};
  std::vector<Candidate> out;
  auto add = [&](const std::string& op, double magnitude) {
    cv::Mat image = input.clone();
    apply_named(image, op, magnitude);
    out.push_back({op, image});
  };
  for (const std::string op : {"Identity", "AutoContrast", "Equalize"}) add(op, 0.0);
  for (int i = 0; i < bins; ++i) {
    if (bin >= 0 && i != bin) continue;
    for (const auto& [op, top] : signed_ops) {
      add(op, top * i / (bins - 1));
      add(op, -top * i / (bins - 1));
    }
    add("Posterize", 8 - std::nearbyint(i / ((bins - 1) / (wide ? 6.0 : 4.0))));
    add("Solarize", 255.0 - 255.0 * i / (bins - 1));
  }
  return out;
}

// Applies the policy with many seeds; each result must be one of the possible outputs, and every op must show up.
void check_outputs_are_possible(const cv::Mat& input, const AutoAugmentOptions& options) {
  const bool wide = options.policy == AutoAugmentPolicy::TrivialAugment;
  const auto candidates = possible_outputs(input, wide, options.num_magnitude_bins, wide ? -1 : options.magnitude);
  std::set<std::string> seen;
  for (int seed = 0; seed < 500; ++seed) {
    cv::Mat image = input.clone();
    data::SampleRng rng(seed);
    apply_auto_augment(image, options, rng);
    bool found = false;
    for (const auto& candidate : candidates) {
      if (same(image, candidate.image)) {
        found = true;
        seen.insert(candidate.op);
      }
    }
    INFO("seed " << seed);
    REQUIRE(found);
  }
  CHECK(seen.size() == 14);
}

}  // namespace

TEST_CASE("TrivialAugmentWide produces one op at one of torchvision's wide magnitudes", "[auto_augment]") {
  AutoAugmentOptions options;
  options.policy = AutoAugmentPolicy::TrivialAugment;
  check_outputs_are_possible(random_image(10, 12, 3, 21), options);
  options.num_magnitude_bins = 7;
  check_outputs_are_possible(random_image(11, 9, 1, 22), options);
}

TEST_CASE("RandAugment with one op uses torchvision's ranges at the chosen magnitude", "[auto_augment]") {
  AutoAugmentOptions options;
  options.policy = AutoAugmentPolicy::RandAugment;
  options.num_ops = 1;
  for (const int magnitude : {9, 30}) {
    options.magnitude = magnitude;
    check_outputs_are_possible(random_image(44, 40, 3, 23), options);  // translations of up to 18 and 19 pixels
  }
}

namespace {

bool is_geometric(const std::string& op) {
  return op == "Rotate" || op == "ShearX" || op == "ShearY" || op == "TranslateX" || op == "TranslateY";
}

// The position, in source pixel coordinates, that torchvision's geometric ops sample for output pixel (i, j):
// _get_inverse_affine_matrix's maps in centred coordinates, moved to pixel ones as _gen_affine_grid does.
cv::Point2d source_of(const std::string& op, double magnitude, cv::Size size, int i, int j) {
  const double half_w = size.width * 0.5, half_h = size.height * 0.5;
  const double x = j + 0.5 - half_w, y = i + 0.5 - half_h;
  if (op == "Rotate") {
    const double c = std::cos(magnitude * kPi / 180), s = std::sin(magnitude * kPi / 180);
    return {c * x - s * y + half_w - 0.5, s * x + c * y + half_h - 0.5};
  }
  if (op == "ShearX") return {j + magnitude * (i + 0.5), static_cast<double>(i)};  // about the top-left corner
  if (op == "ShearY") return {static_cast<double>(j), i + magnitude * (j + 0.5)};
  if (op == "TranslateX") return {static_cast<double>(j - static_cast<int>(magnitude)), static_cast<double>(i)};
  return {static_cast<double>(j), static_cast<double>(i - static_cast<int>(magnitude))};
}

// The whole-pixel positions nearest to `at`: one, or both neighbours along an axis where `at` is a tie (x.5).
std::vector<int> nearest(double at) {
  const int below = static_cast<int>(std::floor(at));
  if (std::abs(at - below - 0.5) < 1e-6) return {below, below + 1};
  return {static_cast<int>(std::lround(at))};
}

// Counts the values of a geometric op's output that differ from `theirs` at a position that is not a tie, where
// either neighbour is a right answer (torchvision breaks ties by float32 rounding noise, this code half to even).
int differences_off_ties(const cv::Mat& source, const cv::Mat& ours, const cv::Mat& theirs, const std::string& op,
                         double magnitude) {
  int off_ties = 0;
  const int channels = source.channels();
  for (int i = 0; i < source.rows; ++i) {
    for (int j = 0; j < source.cols; ++j) {
      for (int c = 0; c < channels; ++c) {
        const int mine = ours.ptr<uint8_t>(i)[j * channels + c], reference = theirs.ptr<uint8_t>(i)[j * channels + c];
        if (mine == reference) continue;
        const cv::Point2d at = source_of(op, magnitude, source.size(), i, j);
        bool tie = false;
        for (const int sy : nearest(at.y)) {
          for (const int sx : nearest(at.x)) {
            const bool inside = sx >= 0 && sy >= 0 && sx < source.cols && sy < source.rows;
            tie = tie || reference == (inside ? source.ptr<uint8_t>(sy)[sx * channels + c] : 0);
          }
        }
        if (!tie) ++off_ties;
      }
    }
  }
  return off_ties;
}

}  // namespace

TEST_CASE("the ops match torchvision's on the same pixels", "[auto_augment][reference]") {
  const char* env = std::getenv("VIT_REFERENCE_PYTHON");
  const std::string python = env != nullptr ? env : "/usr/bin/python3";
  test::TempDir dir;

  // An RGB image with a different range per channel (so autocontrast and equalize have work to do) and an
  // odd-sized gray one.
  cv::Mat rgb(24, 32, CV_8UC3);
  cv::RNG(31).fill(rgb, cv::RNG::UNIFORM, cv::Scalar(30, 0, 60), cv::Scalar(181, 256, 91));
  cv::Mat gray(27, 19, CV_8UC1);
  cv::RNG(32).fill(gray, cv::RNG::UNIFORM, 10, 251);
  const std::vector<std::pair<std::string, cv::Mat>> images = {{"rgb", rgb}, {"gray", gray}};
  const std::vector<std::pair<std::string, double>> cases = {
      {"Solarize", 128},  {"Solarize", 246.5},  {"Posterize", 3},      {"Posterize", 6},     {"AutoContrast", 0},
      {"Equalize", 0},    {"Brightness", 0.37}, {"Brightness", -0.59}, {"Color", 0.81},      {"Color", -0.3},
      {"Contrast", 0.55}, {"Contrast", -0.72},  {"Sharpness", 0.9},    {"Sharpness", -0.99}, {"Rotate", 30},
      {"Rotate", -135},   {"Rotate", 90},       {"Rotate", 7.5},       {"ShearX", 0.3},      {"ShearX", -0.99},
      {"ShearY", 0.45},   {"ShearY", -0.2},     {"TranslateX", 5},     {"TranslateY", -3}};

  std::ostringstream list;
  list << std::setprecision(17);
  for (const auto& [image_name, image] : images) {
    test::write_bytes(dir / image_name, std::string(image.datastart, image.dataend));
    for (size_t k = 0; k < cases.size(); ++k)
      list << image_name << k << ' ' << image_name << ' ' << image.rows << ' ' << image.cols << ' ' << image.channels()
           << ' ' << cases[k].first << ' ' << cases[k].second << '\n';
  }
  test::write_bytes(dir / "cases.txt", list.str());
  test::write_bytes(dir / "reference.py", R"(
import sys
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import _apply_op

folder = sys.argv[1]
for line in open(f"{folder}/cases.txt"):
    name, image, rows, cols, channels, op, magnitude = line.split()
    data = bytearray(open(f"{folder}/{image}", "rb").read())
    pixels = torch.frombuffer(data, dtype=torch.uint8).reshape(int(rows), int(cols), int(channels))
    out = _apply_op(pixels.permute(2, 0, 1), op, float(magnitude), InterpolationMode.NEAREST, None)
    open(f"{folder}/{name}.out", "wb").write(out.permute(1, 2, 0).contiguous().numpy().tobytes())
)");
  const std::string command = "'" + python + "' '" + (dir / "reference.py").string() + "' '" + dir.path().string() +
                              "' 2>'" + (dir / "stderr").string() + "'";
  const int status = std::system(command.c_str());
  INFO("reference interpreter " << python << " (set VIT_REFERENCE_PYTHON to one with torch and torchvision):\n"
                                << test::read_bytes(dir / "stderr"));
  REQUIRE(status == 0);

  for (const auto& [image_name, image] : images) {
    for (size_t k = 0; k < cases.size(); ++k) {
      const auto& [op, magnitude] = cases[k];
      cv::Mat ours = image.clone();
      apply_named(ours, op, magnitude);
      const std::string bytes = test::read_bytes(dir / (image_name + std::to_string(k) + ".out"));
      REQUIRE(bytes.size() == ours.total() * ours.elemSize());
      const cv::Mat theirs(ours.rows, ours.cols, ours.type(), const_cast<char*>(bytes.data()));
      cv::Mat difference;
      cv::absdiff(ours, theirs, difference);
      const int differing = cv::countNonZero(difference.reshape(1));
      INFO(image_name << ' ' << op << ' ' << magnitude << ": " << differing << " values differ");
      if (is_geometric(op)) {
        CHECK(differences_off_ties(image, ours, theirs, op, magnitude) == 0);
        CHECK(differing <= static_cast<int>(ours.total()) / 10);
      } else {
        CHECK(differing == 0);
      }
      if (op != "Color" || image.channels() == 3) CHECK_FALSE(same(ours, image));  // each case does something
    }
  }
}

}  // namespace vit::data
