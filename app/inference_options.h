#pragma once
// The options `vit classify` and `vit eval` share: the model, what to assume for files that do not describe
// their preprocessing, and where and how the model runs.

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/predict.h"
#include "models/image_classifier.h"

namespace vit::app {

struct InferenceOptions {
  std::string model;
  InferenceOverrides overrides;
  int64_t batch_size = 32;
  std::string device = "cpu";
  std::string amp = "none";
  int threads = 0;  // 0: one per core
  int workers = 0;  // 0: automatic
  int64_t max_pixels = 100'000'000;
  std::string tta = "none";  // test-time augmentation: none | hflip
};

// Adds MODEL (positional) and the options.
void add_inference_options(CLI::App* cli, InferenceOptions& options);

// --device, --amp, --threads and --workers, in `group`: for every command that runs a model (train too).
void add_runtime_options(CLI::App* cli, std::string& device, std::string& amp, int& threads, int& workers,
                         const std::string& group);

// --cache-images MIB, in `group`: for the commands that read an image folder more than once (train, bench --data).
void add_cache_option(CLI::App* cli, int64_t& cache_images_mib, const std::string& group);

// Sets the threads, opens the model on its device and logs what it is. Throws std::invalid_argument for an
// unusable model or option.
std::unique_ptr<ImageClassifier> open_inference_model(const InferenceOptions& options);

// The prediction settings these options give (batch size, workers, pixel limit, bf16, test-time augmentation);
// the caller adds its own (top-k, logits, attention maps).
engine::PredictOptions predict_options(const InferenceOptions& options);

}  // namespace vit::app
