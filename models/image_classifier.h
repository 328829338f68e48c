#pragma once
// The interface every model `vit classify` and `vit eval` run sits behind (open_classifier.h opens one from a
// file): logits for a batch of preprocessed images, plus everything needed to preprocess them and to name the
// classes. Implementations: weights_classifier.h (vit, timm and Hugging Face weights), torchscript_classifier.h.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "models/attention_maps.h"
#include "models/vit_config.h"

namespace vit {

// What a model needs as input and gives as output. Files that do not carry a field get it from
// InferenceOverrides or from timm/torchvision's defaults (see there).
struct ClassifierInfo {
  std::string kind;          // human-readable: "vit weights file", "timm checkpoint", "TorchScript", ...
  int64_t image_size = 224;  // square input side
  int64_t in_chans = 3;
  PreprocessConfig preprocess;
  std::vector<std::string> class_names;  // empty until known (a Python TorchScript without --labels)
  std::optional<ViTConfig> config;       // the architecture, when the file describes it
};

// What to run a model with, for files that do not say, or in place of what they say. As in timm's validate.py, a
// setting given here also replaces the one a file carries (the caller logs that). `input_size` is the side of the
// square images the model is run on: weights are built for that size with resampled position embeddings; a
// TorchScript file exported for a fixed size refuses another.
struct InferenceOverrides {
  std::optional<int64_t> input_size;
  std::optional<std::vector<double>> mean;
  std::optional<std::vector<double>> std;
  std::optional<double> crop_pct;
  std::optional<Interpolation> interpolation;
  std::optional<std::filesystem::path> labels;  // a text file, one class name per line
};

// Defaults for a TorchScript file without embedded config: torchvision's and timm's ImageNet defaults.
PreprocessConfig imagenet_preprocess();

class ImageClassifier {
 public:
  virtual ~ImageClassifier() = default;
  // (B, C, H, W) normalised float images on the model's device -> (B, num_classes) float logits.
  // No autocast or grad mode is set here: the caller decides.
  virtual at::Tensor forward(const at::Tensor& images) = 0;

  // The same images' attention maps (attention_maps.h) with `head` or the mean over heads. Only models whose
  // blocks are reachable have them: the default throws std::invalid_argument saying a weights file is needed.
  virtual AttentionMaps attention_maps(const at::Tensor& images, std::optional<int64_t> head);
  virtual bool has_attention_maps() const { return false; }
  const ClassifierInfo& info() const { return info_; }
  const c10::Device& device() const { return device_; }

 protected:
  ImageClassifier(ClassifierInfo info, c10::Device device) : info_(std::move(info)), device_(device) {}
  // Checks a forward result against the class names (setting default names "0".."K-1" on first use when the
  // file gave none); throws std::runtime_error naming the model file otherwise.
  void check_logits(const at::Tensor& logits, const at::Tensor& images, const std::string& source);
  ClassifierInfo info_;
  c10::Device device_;
};

// Replaces the preprocessing and class names that `overrides` sets (image_size is each kind's business) and
// validates the result. Without a config, the channel count follows the length of --mean.
void apply_overrides(ClassifierInfo& info, const InferenceOverrides& overrides, const std::string& source);

// "[2, 3, 224, 224]", for error messages.
std::string describe_shape(const at::Tensor& tensor);

// Class names from a labels file: one per line, blank lines and a trailing "\r" ignored.
std::vector<std::string> read_labels_file(const std::filesystem::path& path);

}  // namespace vit
