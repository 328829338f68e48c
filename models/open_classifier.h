#pragma once
// Opening any model file `vit classify` and `vit eval` accept. This is the one place that tells the kinds apart,
// by content rather than extension, and hands each to its reader:
//   a folder, or a safetensors file   -> weights_classifier.h (vit, timm or Hugging Face layout: checkpoint_layouts.h)
//   a zip archive                     -> torchscript_classifier.h (`vit export`, or traced/scripted in Python)

#include <filesystem>
#include <memory>

#include "models/image_classifier.h"

namespace vit {

// Opens MODEL in eval mode on `device`. Throws std::invalid_argument naming the file and what was expected when
// it is missing, of an unknown kind, or does not fit the overrides.
std::unique_ptr<ImageClassifier> open_classifier(const std::filesystem::path& model,
                                                 const InferenceOverrides& overrides, const c10::Device& device);

}  // namespace vit
