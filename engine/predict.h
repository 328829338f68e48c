#pragma once
// Classifying a stream of image files: worker threads decode and preprocess while the model runs on batches,
// and every input gets exactly one result, in input order, as soon as its batch is done. Memory stays bounded
// however many inputs there are: they are taken in chunks of a few batches.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/image_decode.h"
#include "data/input_paths.h"
#include "data/loader.h"
#include "engine/test_time_augmentation.h"
#include "models/image_classifier.h"

namespace vit::engine {

struct PredictOptions {
  int64_t batch_size = 32;
  int workers = 1;
  int64_t top_k = 5;                      // capped at the number of classes
  bool keep_logits = false;               // also return every class's raw score (forward_with_tta's, with tta)
  bool bf16 = false;                      // autocast
  TestTimeAugmentation tta = TestTimeAugmentation::kNone;  // probabilities and logits are those it averages
  bool attention_maps = false;            // also compute each image's attention maps (ImageClassifier::attention_maps)
  std::optional<int64_t> attention_head;  // one head instead of the mean over heads
  int64_t max_pixels = data::DecodeOptions().max_pixels;
  void validate() const;  // std::invalid_argument naming the option
};

struct Prediction {
  std::filesystem::path path;
  std::string error;                 // why this input has no prediction; empty on success
  std::vector<int64_t> classes;      // the top-k class indices, most probable first
  std::vector<float> probabilities;  // softmax probability of each of `classes`
  std::vector<float> logits;         // all classes' raw scores, with keep_logits (with tta: log-probabilities)
  // With attention_maps: the preprocessed image (C, H, W, normalised, CPU float) and its maps (grid, grid).
  at::Tensor image;
  at::Tensor attention_last_block;
  at::Tensor attention_rollout;
  bool attention_from_class_token = true;
};

// The loader inference uses, for predict and for evaluation: the model's eval transform, in order, with the
// options' batch size, workers and pixel limit.
data::Loader make_inference_loader(std::vector<data::Sample> samples, const ClassifierInfo& info,
                                   const PredictOptions& options);

// Calls `on_result` once per input, in order. Returns the number of inputs that failed. Model errors (a
// TorchScript file that rejects its input, say) throw.
int64_t predict(ImageClassifier& model, data::InputPaths& inputs, const PredictOptions& options,
                const std::function<void(const Prediction&)>& on_result);

}  // namespace vit::engine
