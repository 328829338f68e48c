#pragma once
// The model a training run starts from: a preset with overrides, or a weights file (--init).

#include <string>
#include <vector>

#include "engine/train_options.h"
#include "models/vision_transformer.h"
#include "models/vit_weights_file.h"

namespace vit::engine {

// The architecture of preset `model` (--model) with the overrides applied; not yet validated. Throws
// std::invalid_argument for an unknown preset, listing the known ones.
ViTConfig preset_config(const std::string& model, const ArchitectureOverrides& overrides);

// The architecture, preprocessing and class names the run will train: from --init's file or --model's preset,
// with the overrides applied and the class count taken from the data. Throws std::invalid_argument naming the
// option when the result is not a valid model.
ModelMetadata training_metadata(const TrainOptions& options, const std::vector<std::string>& class_names);

// A freshly initialised model for `metadata`, or, with --init, one holding the file's weights: position
// embeddings resampled to the image size, and the head left freshly initialised when the class count differs.
VisionTransformer build_training_model(const ModelMetadata& metadata, const TrainOptions& options);

}  // namespace vit::engine
