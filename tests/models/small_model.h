#pragma once
// A small model description shared by the model tests: 16x16 RGB, 3 named classes, ImageNet preprocessing.

#include "models/weights_file.h"

namespace vit::test {

inline ModelMetadata small_metadata() {
  ModelMetadata m;
  m.config.image_size = 16;
  m.config.patch_size = 4;
  m.config.num_classes = 3;
  m.config.embed_dim = 24;
  m.config.depth = 2;
  m.config.num_heads = 2;
  m.preprocess.interpolation = Interpolation::Bilinear;
  m.preprocess.crop_pct = 0.875;
  m.preprocess.mean = {0.485, 0.456, 0.406};
  m.preprocess.std = {0.229, 0.224, 0.225};
  m.class_names = {"cat", "dog", "ünïcode bird"};
  return m;
}

}  // namespace vit::test
