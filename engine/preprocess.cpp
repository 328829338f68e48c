#include "engine/preprocess.h"

namespace vit::engine {

data::Interpolation interpolation_of(const PreprocessConfig& p) {
  return p.interpolation == Interpolation::Bicubic ? data::Interpolation::Bicubic : data::Interpolation::Bilinear;
}

data::Normalization normalization_of(const PreprocessConfig& p) {
  return {std::vector<float>(p.mean.begin(), p.mean.end()), std::vector<float>(p.std.begin(), p.std.end())};
}

data::EvalTransformOptions eval_transform_options(const PreprocessConfig& preprocess, int64_t image_size,
                                                  int64_t in_chans) {
  data::EvalTransformOptions eval;
  eval.image_size = image_size;
  eval.crop_pct = preprocess.crop_pct;
  eval.interpolation = interpolation_of(preprocess);
  eval.normalization = normalization_of(preprocess);
  eval.validate(static_cast<int>(in_chans));
  return eval;
}

data::SampleTransform eval_sample_transform(const data::EvalTransformOptions& options) {
  return [options](const cv::Mat& image, data::SampleRng&, float* out) { data::eval_transform(image, options, out); };
}

}  // namespace vit::engine
