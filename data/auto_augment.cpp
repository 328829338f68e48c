#include "data/auto_augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <opencv2/core.hpp>

namespace vit::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

using Lut = std::array<uint8_t, 256>;
using Histogram = std::array<int64_t, 256>;

void require_image(const cv::Mat& image, const char* op) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3))
    throw std::invalid_argument(std::string(op) + ": expected a non-empty 8-bit image with 1 or 3 channels, got " +
                                (image.empty() ? std::string("an empty image") : cv::typeToString(image.type())));
}

void require_factor(double factor, const char* op) {
  if (factor >= 0.0) return;
  std::ostringstream message;  // shortest form: "-0.5" rather than std::to_string's "-0.500000"
  message << op << ": factor must be >= 0, got " << factor;
  throw std::invalid_argument(message.str());
}

// torchvision computes in float32, clamps to [0, 255] and casts to uint8, which truncates (254.9 -> 254); doing
// the same keeps the ops bit-exact with it rather than half a level brighter on average.
uint8_t clamp_truncate(float value) { return static_cast<uint8_t>(std::min(std::max(value, 0.0f), 255.0f)); }

// ---- geometry ----

// Maps an output position to the source position it samples, both in torchvision's centred coordinates:
// (0, 0) is the image centre and pixel (row i, column j) lies at (j + 0.5 - width/2, i + 0.5 - height/2).
struct InverseAffine {
  double xx, xy, x0;
  double yx, yy, y0;
};

// Nearest-neighbour resampling as torch's grid_sample(mode="nearest", padding_mode="zeros"): the source
// position is rounded half to even (nearbyint) and a position outside the image gives 0.
void warp_nearest(cv::Mat& image, const InverseAffine& m) {
  const int rows = image.rows, cols = image.cols, channels = image.channels();
  const double half_w = cols * 0.5, half_h = rows * 0.5;
  cv::Mat out = cv::Mat::zeros(image.size(), image.type());
  for (int i = 0; i < rows; ++i) {
    const double y = i + 0.5 - half_h;
    uint8_t* dst = out.ptr<uint8_t>(i);
    for (int j = 0; j < cols; ++j) {
      const double x = j + 0.5 - half_w;
      const double sx = std::nearbyint(m.xx * x + m.xy * y + m.x0 + half_w - 0.5);
      const double sy = std::nearbyint(m.yx * x + m.yy * y + m.y0 + half_h - 0.5);
      if (sx < 0 || sy < 0 || sx >= cols || sy >= rows) continue;
      const uint8_t* src = image.ptr<uint8_t>(static_cast<int>(sy)) + static_cast<int>(sx) * channels;
      std::copy(src, src + channels, dst + j * channels);
    }
  }
  out.copyTo(image);  // into the caller's pixels, so a view into a larger image is updated too
}

// ---- colour ----

// torchvision's _blend: ratio * image + (1 - ratio) * other in float32, then clamp and truncate.
// `other` is CV_32F with the image's channel count.
void blend(cv::Mat& image, const cv::Mat& other, double ratio) {
  const float keep = static_cast<float>(ratio), take = static_cast<float>(1.0 - ratio);
  const int n = image.cols * image.channels();
  for (int i = 0; i < image.rows; ++i) {
    uint8_t* p = image.ptr<uint8_t>(i);
    const float* q = other.ptr<float>(i);
    for (int k = 0; k < n; ++k) p[k] = clamp_truncate(keep * p[k] + take * q[k]);
  }
}

cv::Mat as_float(const cv::Mat& image) {
  cv::Mat out;
  image.convertTo(out, CV_32F);
  return out;
}

// torchvision's rgb_to_grayscale on uint8: weights 0.2989/0.587/0.114 (summing to 0.9999) in float32, truncated,
// so white becomes 254. OpenCV's RGB2GRAY rounds with 0.299 and would not match.
cv::Mat luma(const cv::Mat& rgb) {
  cv::Mat gray(rgb.size(), CV_8UC1);
  for (int i = 0; i < rgb.rows; ++i) {
    const cv::Vec3b* p = rgb.ptr<cv::Vec3b>(i);
    uint8_t* g = gray.ptr<uint8_t>(i);
    for (int j = 0; j < rgb.cols; ++j)
      g[j] = static_cast<uint8_t>(0.2989f * p[j][0] + 0.587f * p[j][1] + 0.114f * p[j][2]);
  }
  return gray;
}

// torchvision's degenerate image for sharpness: the kernel [[1,1,1],[1,5,1],[1,1,1]] / 13 on the interior,
// rounded; the outermost rows and columns keep their values, so the blend leaves them unchanged.
cv::Mat smoothed(const cv::Mat& image) {
  cv::Mat out = image.clone();
  const int c = image.channels(), end = (image.cols - 1) * c;
  for (int i = 1; i + 1 < image.rows; ++i) {
    const uint8_t* up = image.ptr<uint8_t>(i - 1);
    const uint8_t* mid = image.ptr<uint8_t>(i);
    const uint8_t* down = image.ptr<uint8_t>(i + 1);
    uint8_t* o = out.ptr<uint8_t>(i);
    for (int k = c; k < end; ++k) {
      const int sum =
          up[k - c] + up[k] + up[k + c] + mid[k - c] + 5 * mid[k] + mid[k + c] + down[k - c] + down[k] + down[k + c];
      o[k] = static_cast<uint8_t>((2 * sum + 13) / 26);  // round(sum / 13); never a tie, as 13 is odd
    }
  }
  return out;
}

// ---- levels ----

void apply_lut(cv::Mat& image, const Lut& lut) {
  cv::LUT(image, cv::Mat(1, 256, CV_8UC1, const_cast<uint8_t*>(lut.data())), image);
}

void apply_channel_luts(cv::Mat& image, const std::vector<Lut>& luts) {
  const int c = image.channels();
  cv::Mat table(1, 256, CV_8UC(c));
  for (int v = 0; v < 256; ++v)
    for (int k = 0; k < c; ++k) table.ptr<uint8_t>(0)[v * c + k] = luts[k][v];
  cv::LUT(image, table, image);
}

std::vector<Histogram> channel_histograms(const cv::Mat& image) {
  const int c = image.channels();
  std::vector<Histogram> histograms(c, Histogram{});
  for (int i = 0; i < image.rows; ++i) {
    const uint8_t* p = image.ptr<uint8_t>(i);
    for (int k = 0; k < image.cols * c; ++k) ++histograms[k % c][p[k]];
  }
  return histograms;
}

Lut identity_lut() {
  Lut lut;
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
  return lut;
}

// torchvision's (and PIL's) equalisation: levels are spread in steps of (pixels below the top occupied level)
// / 255, so the top level itself never counts; a channel whose step is 0 (nearly one level) is left alone.
Lut equalize_lut(const Histogram& hist) {
  int top = 255;
  while (top > 0 && hist[top] == 0) --top;
  int64_t below_top = 0;
  for (int v = 0; v < top; ++v) below_top += hist[v];
  const int64_t step = below_top / 255;
  if (step == 0) return identity_lut();
  Lut lut;
  int64_t cumulative = 0;
  lut[0] = 0;
  for (int v = 1; v < 256; ++v) {
    cumulative += hist[v - 1];
    lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, (cumulative + step / 2) / step));
  }
  return lut;
}

// Stretches [lowest, highest] occupied level to [0, 255] in float32 and truncates, as torchvision; a channel of
// one level (infinite scale) is left alone.
Lut autocontrast_lut(const Histogram& hist) {
  int low = 0, high = 255;
  while (low < 255 && hist[low] == 0) ++low;
  while (high > 0 && hist[high] == 0) --high;
  if (high <= low) return identity_lut();
  const float scale = 255.0f / static_cast<float>(high - low);
  Lut lut;
  for (int v = 0; v < 256; ++v) lut[v] = clamp_truncate((static_cast<float>(v) - static_cast<float>(low)) * scale);
  return lut;
}

// ---- policies ----

// Magnitudes are linspace(first, last, num_bins); RandAugment's translate range is a fraction of the image size.
struct Range {
  double first, last;
};
enum class Scale { Fixed, Width, Height };

struct Op {
  const char* name;
  bool has_magnitude;  // draws a magnitude (Identity, AutoContrast and Equalize do not)
  bool is_signed;      // the magnitude gets a random sign
  Range wide;          // TrivialAugmentWide
  Range rand;          // RandAugment
  Scale rand_scale;
  void (*apply)(cv::Mat& image, double magnitude);
};

// torchvision 0.14's op set, in its order, with its magnitude ranges. Translations truncate toward zero as
// Python's int(); Posterize's bits are 8 - round(i / ((bins - 1) / k)), which equals rounding (half to even,
// as torch.round) a linspace from 8 to 8 - k.
const Op kOps[] = {
    {"Identity", false, false, {0, 0}, {0, 0}, Scale::Fixed, [](cv::Mat&, double) {}},
    {"ShearX", true, true, {0, 0.99}, {0, 0.3}, Scale::Fixed, [](cv::Mat& m, double v) { ops::shear_x(m, v); }},
    {"ShearY", true, true, {0, 0.99}, {0, 0.3}, Scale::Fixed, [](cv::Mat& m, double v) { ops::shear_y(m, v); }},
    {"TranslateX",
     true,
     true,
     {0, 32},
     {0, 150.0 / 331.0},
     Scale::Width,
     [](cv::Mat& m, double v) { ops::translate_x(m, static_cast<int>(v)); }},
    {"TranslateY",
     true,
     true,
     {0, 32},
     {0, 150.0 / 331.0},
     Scale::Height,
     [](cv::Mat& m, double v) { ops::translate_y(m, static_cast<int>(v)); }},
    {"Rotate", true, true, {0, 135}, {0, 30}, Scale::Fixed, [](cv::Mat& m, double v) { ops::rotate(m, v); }},
    {"Brightness",
     true,
     true,
     {0, 0.99},
     {0, 0.9},
     Scale::Fixed,
     [](cv::Mat& m, double v) { ops::brightness(m, 1 + v); }},
    {"Color", true, true, {0, 0.99}, {0, 0.9}, Scale::Fixed, [](cv::Mat& m, double v) { ops::color(m, 1 + v); }},
    {"Contrast", true, true, {0, 0.99}, {0, 0.9}, Scale::Fixed, [](cv::Mat& m, double v) { ops::contrast(m, 1 + v); }},
    {"Sharpness",
     true,
     true,
     {0, 0.99},
     {0, 0.9},
     Scale::Fixed,
     [](cv::Mat& m, double v) { ops::sharpness(m, 1 + v); }},
    {"Posterize",
     true,
     false,
     {8, 2},
     {8, 4},
     Scale::Fixed,
     [](cv::Mat& m, double v) { ops::posterize(m, static_cast<int>(std::nearbyint(v))); }},
    {"Solarize", true, false, {255, 0}, {255, 0}, Scale::Fixed, [](cv::Mat& m, double v) { ops::solarize(m, v); }},
    {"AutoContrast", false, false, {0, 0}, {0, 0}, Scale::Fixed, [](cv::Mat& m, double) { ops::autocontrast(m); }},
    {"Equalize", false, false, {0, 0}, {0, 0}, Scale::Fixed, [](cv::Mat& m, double) { ops::equalize(m); }},
};
constexpr int kNumOps = static_cast<int>(sizeof(kOps) / sizeof(kOps[0]));

// Uniform in [0, n) by rejection from the raw 64-bit draws. std::uniform_int_distribution's algorithm differs
// between standard libraries; this keeps a seed's augmentations the same wherever the code is built.
int uniform_below(SampleRng& rng, int n) {
  static_assert(SampleRng::min() == 0 && SampleRng::max() == UINT64_MAX, "draws cover all 64 bits");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % static_cast<uint64_t>(n);  // draws below it are uniform mod n
  uint64_t draw;
  do draw = rng();
  while (draw >= limit);
  return static_cast<int>(draw % static_cast<uint64_t>(n));
}

// The magnitude of bin `bin`, computed as first + (last - first) * bin / (bins - 1) so that values that are whole
// numbers come out exact (32 * 15 / 30 is 16, not 15.999..., which int() would truncate to 15).
double level(Range range, int bin, int bins) { return range.first + (range.last - range.first) * bin / (bins - 1); }

void apply_op(cv::Mat& image, const Op& op, double magnitude, SampleRng& rng) {
  if (op.is_signed && uniform_below(rng, 2) == 1) magnitude = -magnitude;
  op.apply(image, magnitude);
}

void trivial_augment(cv::Mat& image, int bins, SampleRng& rng) {
  const Op& op = kOps[uniform_below(rng, kNumOps)];
  const double magnitude = op.has_magnitude ? level(op.wide, uniform_below(rng, bins), bins) : 0.0;
  apply_op(image, op, magnitude, rng);
}

void rand_augment(cv::Mat& image, const AutoAugmentOptions& options, SampleRng& rng) {
  for (int n = 0; n < options.num_ops; ++n) {
    const Op& op = kOps[uniform_below(rng, kNumOps)];
    Range range = op.rand;  // scaled before dividing into bins, as torchvision: the top bin is exactly the end
    if (op.rand_scale != Scale::Fixed) {
      const double size = op.rand_scale == Scale::Width ? image.cols : image.rows;
      range = {range.first * size, range.last * size};
    }
    const double magnitude = op.has_magnitude ? level(range, options.magnitude, options.num_magnitude_bins) : 0.0;
    apply_op(image, op, magnitude, rng);
  }
}

}  // namespace

AutoAugmentPolicy parse_auto_augment(const std::string& text) {
  if (text == "none") return AutoAugmentPolicy::None;
  if (text == "trivial") return AutoAugmentPolicy::TrivialAugment;
  if (text == "rand") return AutoAugmentPolicy::RandAugment;
  throw std::invalid_argument("unknown auto-augment policy '" + text + "' (expected none, trivial or rand)");
}

std::string to_string(AutoAugmentPolicy policy) {
  switch (policy) {
    case AutoAugmentPolicy::None:
      return "none";
    case AutoAugmentPolicy::TrivialAugment:
      return "trivial";
    case AutoAugmentPolicy::RandAugment:
      return "rand";
  }
  throw std::invalid_argument("unknown auto-augment policy value " + std::to_string(static_cast<int>(policy)));
}

// num_ops and magnitude matter to RandAugment only, so TrivialAugment with fewer bins needs no magnitude change.
void AutoAugmentOptions::validate() const {
  if (num_magnitude_bins < 2)
    throw std::invalid_argument("auto-augment num_magnitude_bins must be >= 2, got " +
                                std::to_string(num_magnitude_bins));
  if (policy != AutoAugmentPolicy::RandAugment) return;
  if (num_ops < 1) throw std::invalid_argument("auto-augment num_ops must be >= 1, got " + std::to_string(num_ops));
  if (magnitude < 0 || magnitude >= num_magnitude_bins)
    throw std::invalid_argument("auto-augment magnitude must be in [0, " + std::to_string(num_magnitude_bins - 1) +
                                "] (num_magnitude_bins - 1), got " + std::to_string(magnitude));
}

void apply_auto_augment(cv::Mat& image, const AutoAugmentOptions& options, SampleRng& rng) {
  options.validate();
  require_image(image, "apply_auto_augment");
  switch (options.policy) {
    case AutoAugmentPolicy::None:
      return;
    case AutoAugmentPolicy::TrivialAugment:
      return trivial_augment(image, options.num_magnitude_bins, rng);
    case AutoAugmentPolicy::RandAugment:
      return rand_augment(image, options, rng);
  }
}

namespace ops {

void rotate(cv::Mat& image, double degrees) {
  require_image(image, "rotate");
  const double radians = degrees * (kPi / 180.0);
  const double c = std::cos(radians), s = std::sin(radians);
  // y points down, so turning the content counter-clockwise samples each output point turned clockwise.
  warp_nearest(image, {c, -s, 0, s, c, 0});
}

// torchvision's ShearX/ShearY pass center=[0, 0], the top-left corner, so the top row (left column) stays put
// and the shift grows towards the bottom (right); the offsets below move that pivot into centred coordinates.
void shear_x(cv::Mat& image, double factor) {
  require_image(image, "shear_x");
  warp_nearest(image, {1, factor, factor * image.rows * 0.5, 0, 1, 0});
}

void shear_y(cv::Mat& image, double factor) {
  require_image(image, "shear_y");
  warp_nearest(image, {1, 0, 0, factor, 1, factor * image.cols * 0.5});
}

void translate_x(cv::Mat& image, int pixels) {
  require_image(image, "translate_x");
  warp_nearest(image, {1, 0, -static_cast<double>(pixels), 0, 1, 0});
}

void translate_y(cv::Mat& image, int pixels) {
  require_image(image, "translate_y");
  warp_nearest(image, {1, 0, 0, 0, 1, -static_cast<double>(pixels)});
}

void brightness(cv::Mat& image, double factor) {
  require_image(image, "brightness");
  require_factor(factor, "brightness");
  blend(image, cv::Mat::zeros(image.size(), CV_32FC(image.channels())), factor);
}

void color(cv::Mat& image, double factor) {
  require_image(image, "color");
  require_factor(factor, "color");
  if (image.channels() == 1) return;  // a gray image has no saturation to change (torchvision and PIL agree)
  const cv::Mat gray = luma(image);
  cv::Mat gray3;
  cv::merge(std::vector<cv::Mat>{gray, gray, gray}, gray3);
  blend(image, as_float(gray3), factor);
}

void contrast(cv::Mat& image, double factor) {
  require_image(image, "contrast");
  require_factor(factor, "contrast");
  const cv::Mat gray = image.channels() == 3 ? luma(image) : image;
  // The mean in float32 as torch.mean: one rounding in the division (the sum is exact below 2^24, 65k white pixels).
  const float mean = static_cast<float>(cv::sum(gray)[0]) / static_cast<float>(gray.total());
  blend(image, cv::Mat(image.size(), CV_32FC(image.channels()), cv::Scalar::all(mean)), factor);
}

void sharpness(cv::Mat& image, double factor) {
  require_image(image, "sharpness");
  require_factor(factor, "sharpness");
  if (image.rows <= 2 || image.cols <= 2) return;  // no interior to smooth
  blend(image, as_float(smoothed(image)), factor);
}

void posterize(cv::Mat& image, int bits) {
  require_image(image, "posterize");
  if (bits < 0 || bits > 8)
    throw std::invalid_argument("posterize: bits must be in [0, 8], got " + std::to_string(bits));
  const int mask = (0xFF << (8 - bits)) & 0xFF;
  Lut lut;
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v & mask);
  apply_lut(image, lut);
}

void solarize(cv::Mat& image, double threshold) {
  require_image(image, "solarize");
  const float t = static_cast<float>(threshold);  // torch compares uint8 with a float threshold in float32
  Lut lut;
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(static_cast<float>(v) >= t ? 255 - v : v);
  apply_lut(image, lut);
}

void autocontrast(cv::Mat& image) {
  require_image(image, "autocontrast");
  std::vector<Lut> luts;
  for (const auto& hist : channel_histograms(image)) luts.push_back(autocontrast_lut(hist));
  apply_channel_luts(image, luts);
}

void equalize(cv::Mat& image) {
  require_image(image, "equalize");
  std::vector<Lut> luts;
  for (const auto& hist : channel_histograms(image)) luts.push_back(equalize_lut(hist));
  apply_channel_luts(image, luts);
}

}  // namespace ops
}  // namespace vit::data
