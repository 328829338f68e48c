#pragma once
// A small model description shared by the model tests: 16x16 RGB, 3 named classes, ImageNet preprocessing.
// Tests that need other values start from these and change only the fields that matter to them.

#include "models/vit_weights_file.h"

namespace vit::test {

// 16x16 pixels in 4x4 patches (a 4x4 grid), 3 classes, width 24, 2 blocks of 2 heads.
inline ViTConfig small_config() {
  ViTConfig c;
  c.image_size = 16;
  c.patch_size = 4;
  c.num_classes = 3;
  c.embed_dim = 24;
  c.depth = 2;
  c.num_heads = 2;
  return c;
}

inline ModelMetadata small_metadata() {
  ModelMetadata m;
  m.config = small_config();
  m.preprocess.interpolation = Interpolation::Bilinear;
  m.preprocess.crop_pct = 0.875;
  m.preprocess.mean = {0.485, 0.456, 0.406};
  m.preprocess.std = {0.229, 0.224, 0.225};
  m.class_names = {"cat", "dog", "ünïcode bird"};
  return m;
}

}  // namespace vit::test
