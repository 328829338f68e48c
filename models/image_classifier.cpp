#include "models/image_classifier.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vit {

namespace fs = std::filesystem;

std::string describe_shape(const at::Tensor& tensor) {
  std::ostringstream text;
  text << tensor.sizes();  // "[2, 3, 224, 224]"
  return text.str();
}

PreprocessConfig imagenet_preprocess() {
  PreprocessConfig p;
  p.interpolation = Interpolation::Bilinear;
  p.crop_pct = 0.875;
  p.mean = {0.485, 0.456, 0.406};
  p.std = {0.229, 0.224, 0.225};
  return p;
}

AttentionMaps ImageClassifier::attention_maps(const at::Tensor& /*images*/, std::optional<int64_t> /*head*/) {
  throw std::invalid_argument(
      "attention maps need a vit weights file or a timm / Hugging Face checkpoint: this "
      "model is " +
      info_.kind + ", whose attention weights are not reachable");
}

void ImageClassifier::check_logits(const at::Tensor& logits, const at::Tensor& images, const std::string& source) {
  if (logits.dim() != 2 || logits.size(0) != images.size(0) || logits.size(1) < 1)
    throw std::runtime_error("model '" + source + "' returned a tensor of shape " + describe_shape(logits) +
                             " for a batch of shape " + describe_shape(images) + "; expected (batch, classes) logits");
  const auto classes = logits.size(1);
  if (info_.class_names.empty()) {
    for (int64_t i = 0; i < classes; ++i) info_.class_names.push_back(std::to_string(i));
  } else if (classes != static_cast<int64_t>(info_.class_names.size())) {
    throw std::runtime_error("model '" + source + "' returns " + std::to_string(classes) +
                             " scores per image, but its labels name " + std::to_string(info_.class_names.size()) +
                             " classes");
  }
}

void apply_overrides(ClassifierInfo& info, const InferenceOverrides& o, const std::string& source) {
  PreprocessConfig& p = info.preprocess;
  if (o.mean) p.mean = *o.mean;
  if (o.std) p.std = *o.std;
  if (o.crop_pct) p.crop_pct = *o.crop_pct;
  if (o.interpolation) p.interpolation = *o.interpolation;
  if (!info.config && o.mean) {
    if (o.mean->size() != 1 && o.mean->size() != 3)
      throw std::invalid_argument("a mean of 1 value (grayscale) or 3 (RGB) was expected, got " +
                                  std::to_string(o.mean->size()));
    info.in_chans = static_cast<int64_t>(o.mean->size());
  }
  // A single std value with a three-channel mean, or the reverse, is a typo worth stopping for.
  try {
    p.validate(info.in_chans);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("preprocessing for '" + source + "': " + e.what());
  }
  if (o.labels) {
    auto names = read_labels_file(*o.labels);
    if (!info.class_names.empty() && names.size() != info.class_names.size())
      throw std::invalid_argument("labels file '" + o.labels->string() + "' has " + std::to_string(names.size()) +
                                  " names, but model '" + source + "' has " + std::to_string(info.class_names.size()) +
                                  " classes");
    info.class_names = std::move(names);
  }
}

std::vector<std::string> read_labels_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read labels file '" + path.string() + "'");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) throw std::invalid_argument("labels file '" + path.string() + "' names no classes");
  return names;
}

}  // namespace vit
