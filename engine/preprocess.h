#pragma once
// A model's preprocessing (models/vit_config.h, travels with the weights) as the image pipeline's transform
// options (data/transforms.h). The two libraries never include each other; the engine translates.

#include <cstdint>

#include "data/loader.h"
#include "data/transforms.h"
#include "models/vit_config.h"

namespace vit::engine {

data::Interpolation interpolation_of(const PreprocessConfig& preprocess);
data::Normalization normalization_of(const PreprocessConfig& preprocess);

// timm's eval transform for this model; validated for `in_chans` channels.
data::EvalTransformOptions eval_transform_options(const PreprocessConfig& preprocess, int64_t image_size,
                                                  int64_t in_chans);

// The loader's per-sample function for that transform.
data::SampleTransform eval_sample_transform(const data::EvalTransformOptions& options);

}  // namespace vit::engine
