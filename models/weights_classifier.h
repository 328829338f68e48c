#pragma once
// Weights as a classifier: a vit weights file or a timm / Hugging Face checkpoint (checkpoint_layouts.h), built
// into a VisionTransformer, which also gives attention maps.

#include <filesystem>
#include <memory>

#include "models/image_classifier.h"

namespace vit {

// Builds the model `path` holds (for overrides.input_size, position embeddings resampled) in eval mode on
// `device`. Throws std::invalid_argument naming the file for a model without a classification head.
std::unique_ptr<ImageClassifier> open_weights_classifier(const std::filesystem::path& path,
                                                         const InferenceOverrides& overrides,
                                                         const c10::Device& device);

}  // namespace vit
