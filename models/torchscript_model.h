#pragma once
// TorchScript files as classifiers: those `vit export` writes (their config travels in an extra file of the
// archive) and those made in Python with torch.jit.trace / torch.jit.script (preprocessing and class names then
// come from the command line, or from timm/torchvision defaults).

#include <filesystem>
#include <memory>

#include "models/classifier.h"

namespace vit {

// Name of the archive's extra file holding the model metadata as JSON (weights_file.h, metadata_to_json).
constexpr const char* kTorchScriptMetadataFile = "vit.json";

std::unique_ptr<ImageClassifier> open_torchscript(const std::filesystem::path& path,
                                                  const ClassifierOverrides& overrides, const c10::Device& device);

}  // namespace vit
