#pragma once
// Any model file `vit classify` and `vit eval` accept, behind one interface: a vit weights file, a timm or
// Hugging Face checkpoint (file or folder, model_file.h), a TorchScript file (exported by `vit export`, or
// traced/scripted in Python).
// The caller gets logits for a batch of preprocessed images plus everything needed to preprocess them and to
// name the classes.

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
// ClassifierOverrides or from timm/torchvision's defaults (see there).
struct ClassifierInfo {
  std::string kind;          // human-readable: "vit weights file", "timm checkpoint", "TorchScript", ...
  int64_t image_size = 224;  // square input side
  int64_t in_chans = 3;
  PreprocessConfig preprocess;
  std::vector<std::string> class_names;  // empty until known (a Python TorchScript without --labels)
  std::optional<ViTConfig> config;       // the architecture, when the file describes it
};

// Settings for files that do not carry them. As in timm's validate.py, a setting given here also replaces the
// one a file carries (the caller logs that); `image_size` on a vit weights file builds the model for that size
// with resampled position embeddings, and is an error for a TorchScript file with a fixed size.
struct ClassifierOverrides {
  std::optional<int64_t> image_size;
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

// Opens MODEL, recognised by its content (not its extension): a folder or safetensors file in one of the
// layouts of model_file.h, or a TorchScript archive. The model is in eval mode on `device`. Throws std::invalid_argument naming the file and
// what was expected when it is missing, of an unknown kind, or does not fit the overrides.
std::unique_ptr<ImageClassifier> open_classifier(const std::filesystem::path& model,
                                                 const ClassifierOverrides& overrides, const c10::Device& device);

// Replaces the preprocessing and class names that `overrides` sets (image_size is each kind's business) and
// validates the result. Without a config, the channel count follows the length of --mean.
void apply_overrides(ClassifierInfo& info, const ClassifierOverrides& overrides, const std::string& source);

// "[2, 3, 224, 224]", for error messages.
std::string describe_shape(const at::Tensor& tensor);

// Class names from a labels file: one per line, blank lines and a trailing "\r" ignored.
std::vector<std::string> read_labels_file(const std::filesystem::path& path);

}  // namespace vit
