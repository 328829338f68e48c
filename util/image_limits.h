#pragma once
// Bounds on image sizes that every library checks against, from one place.

namespace vit {

// The longest short side evaluation resizes an image to (image_size / crop_pct): OpenCV's sizes are int, and an image
// 65,536 pixels on its short side is already 4 G pixels. Checked where a model's metadata is validated (models) and
// where evaluation options are (data): a hostile crop_pct (1e-300 from a config file) is refused, never converted to
// a size.
constexpr double kMaxEvalResizeSide = 65536.0;

}  // namespace vit
