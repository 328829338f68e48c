#pragma once
// The picture `vit classify --attention-maps` writes per image: the image as the model saw it (after resize and
// crop), beside heat maps of the last block's attention and of attention rollout, upsampled from the patch grid
// and blended over the image, with the top-1 answer written above. Plain buffers in, so the pipeline stays free
// of LibTorch here.

#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace vit::plots {

struct AttentionPictureInput {
  const float* image = nullptr;  // channels x size x size, normalised as the model saw it
  int channels = 3;
  int size = 0;
  std::vector<float> mean;  // the normalisation to undo, one value per channel
  std::vector<float> std;
  const float* last_block = nullptr;  // grid x grid, row-major
  const float* rollout = nullptr;     // grid x grid
  int grid = 0;
  std::string caption;     // e.g. "top-1: Coat  p = 0.93"
  std::string map_source;  // e.g. "of the class token", "averaged over patch tokens (the head pools them)"
  std::string heads;       // e.g. "mean of 4 heads", "head 2"
};

// An 8-bit BGR picture: three square panels of at least 224 pixels (small images are enlarged with nearest-
// neighbour so their pixels stay visible) under a caption band. Each heat map is scaled to its own minimum and
// maximum (blue low, red high, OpenCV's JET colour map). Throws std::invalid_argument for missing buffers or
// sizes.
cv::Mat attention_picture(const AttentionPictureInput& input);

}  // namespace vit::plots
