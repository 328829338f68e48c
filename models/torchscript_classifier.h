#pragma once
// TorchScript files as classifiers: those `vit export` writes (their config travels in an extra file of the
// archive) and those made in Python with torch.jit.trace / torch.jit.script (preprocessing and class names then
// come from the command line, or from timm/torchvision defaults).

#include <filesystem>
#include <memory>

#include "models/image_classifier.h"

namespace vit {

// Name of the archive's extra file holding the model metadata as JSON (vit_weights_file.h, metadata_to_json).
constexpr const char* kTorchScriptMetadataFile = "vit.json";

// True if the file starts as a zip archive does ("PK\3\4"): TorchScript's container.
bool is_zip_archive(const std::filesystem::path& path);

// Loads the archive in eval mode on `device`. Throws std::invalid_argument naming the file when LibTorch cannot
// load it, its embedded metadata is not valid, or it was exported for another input size than overrides.input_size.
std::unique_ptr<ImageClassifier> open_torchscript_classifier(const std::filesystem::path& path,
                                                             const InferenceOverrides& overrides,
                                                             const c10::Device& device);

}  // namespace vit
