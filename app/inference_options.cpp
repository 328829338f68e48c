#include "app/inference_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/cli_checks.h"
#include "engine/runtime.h"
#include "hub/model_argument.h"
#include "models/open_classifier.h"

namespace vit::app {
namespace {

// One value per channel: 1 (grayscale) or 3 (RGB); CLI11's expected(1, 3) lets 2 through.
std::vector<double> channel_values(const std::string& option, const std::vector<double>& values) {
  if (values.size() == 2)
    throw CLI::ValidationError(option, "give 1 value (grayscale) or 3 (RGB), got " + std::to_string(values.size()));
  return values;
}

}  // namespace

void add_inference_options(CLI::App* cli, InferenceOptions& o) {
  cli->add_option("MODEL", o.model,
                  "Weights file from `vit train` (.safetensors), timm / Hugging Face checkpoint (file or folder), "
                  "TorchScript file (`vit export`, or torch.jit.trace/script in Python), or Hugging Face Hub id "
                  "(org/name[@revision]) in the local Hugging Face cache")
      ->required();

  const std::string files =
      "Preprocessing (for files that do not carry it, e.g. Python TorchScript; replaces the file's otherwise)";
  auto& v = o.overrides;
  cli->add_option_function<int64_t>(
         "--image-size", [&v](const int64_t& size) { v.input_size = size; },
         "Input size (default 224; a vit weights file is resized, its position embeddings resampled)")
      ->check(whole_number_from(1))
      ->group(files);
  cli->add_option_function<std::vector<double>>(
         "--mean", [&v](const std::vector<double>& mean) { v.mean = channel_values("--mean", mean); },
         "Per-channel mean, 1 or 3 values, spaces or commas (default ImageNet: 0.485 0.456 0.406); put it after the "
         "inputs or end it with --, or it takes them as values")
      ->expected(1, 3)
      ->delimiter(',')
      ->group(files);
  cli->add_option_function<std::vector<double>>(
         "--std", [&v](const std::vector<double>& std) { v.std = channel_values("--std", std); },
         "Per-channel std, 1 or 3 values, spaces or commas (default ImageNet: 0.229 0.224 0.225)")
      ->expected(1, 3)
      ->delimiter(',')
      ->group(files);
  cli->add_option_function<double>(
         "--crop-pct", [&v](const double& crop) { v.crop_pct = crop; },
         "Center-crop fraction of the resized short side (default 0.875)")
      ->group(files);
  cli->add_option_function<std::string>(
         "--interpolation", [&v](const std::string& name) { v.interpolation = parse_interpolation(name); },
         "Resize interpolation (default bilinear)")
      ->check(CLI::IsMember({"bilinear", "bicubic"}))
      ->group(files);
  cli->add_option_function<std::string>(
         "--labels", [&v](const std::string& path) { v.labels = path; },
         "Text file of class names, one per line in output order (default: 0, 1, ...)")
      ->check(CLI::ExistingFile)
      ->group(files);

  const std::string run = "Running";
  cli->add_option("-b,--batch-size", o.batch_size, "Images per batch")
      ->check(whole_number_from(1))
      ->capture_default_str()
      ->group(run);
  add_runtime_options(cli, o.device, o.amp, o.threads, o.workers, run);
  cli->add_option("--tta", o.tta,
                  "Test-time augmentation: hflip averages each image's class probabilities with its mirror image's "
                  "(two forward passes; for models trained with horizontal flips)")
      ->check(CLI::IsMember({"none", "hflip"}))
      ->capture_default_str()
      ->group(run);
  cli->add_option("--max-pixels", o.max_pixels, "Reject images with more pixels than this (checked before decoding)")
      ->check(whole_number_from(1))
      ->capture_default_str()
      ->group(run);
}

void add_runtime_options(CLI::App* cli, std::string& device, std::string& amp, int& threads, int& workers,
                         const std::string& group) {
  cli->add_option("--device", device, "Where the model runs")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--amp", amp, "Mixed precision: bf16 autocast")
      ->check(CLI::IsMember({"none", "bf16"}))
      ->capture_default_str()
      ->group(group);
  // Upper bounds far above any machine's cores, against typos: thousands of threads only slow a run to a crawl.
  cli->add_option("--threads", threads, "LibTorch threads (0 = one per core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str()
      ->group(group);
  cli->add_option("--workers", workers, "Image decoding threads (0 = automatic)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str()
      ->group(group);
}

void add_cache_option(CLI::App* cli, int64_t& cache_images_mib, const std::string& group) {
  cli->add_option("--cache-images", cache_images_mib,
                  "Keep the decoded images in memory if they fit in this many MiB, so later epochs skip reading and "
                  "decoding them (0 = never)")
      ->capture_default_str()
      ->group(group);
}

std::unique_ptr<ImageClassifier> open_inference_model(const InferenceOptions& options) {
  engine::set_threads(options.threads);
  auto model = open_classifier(hub::resolve_model_argument(options.model), options.overrides,
                               engine::select_device(options.device));
  const ClassifierInfo& info = model->info();
  const PreprocessConfig& p = info.preprocess;
  spdlog::debug(
      "model '{}' ({}): {}x{} input, {} channel{}, {} classes; preprocess: crop_pct {}, {}, mean [{}], "
      "std [{}]",
      options.model, info.kind, info.image_size, info.image_size, info.in_chans, info.in_chans == 1 ? "" : "s",
      info.class_names.empty() ? std::string("?") : std::to_string(info.class_names.size()), p.crop_pct,
      to_string(p.interpolation), fmt::join(p.mean, " "), fmt::join(p.std, " "));
  return model;
}

engine::PredictOptions predict_options(const InferenceOptions& options) {
  engine::PredictOptions predict;
  predict.batch_size = options.batch_size;
  predict.workers = options.workers > 0 ? options.workers : engine::default_workers();
  predict.max_pixels = options.max_pixels;
  predict.bf16 = options.amp == "bf16";
  predict.tta = engine::parse_test_time_augmentation(options.tta, "--tta");
  return predict;
}

}  // namespace vit::app
