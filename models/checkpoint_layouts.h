#pragma once
// Every weights layout vit reads, from a file or a folder, told apart here and read by its own unit:
//   vit          a weights file written by vit (safetensors with vit's metadata: vit_weights_file.h)
//   timm         model.safetensors with timm's tensor names, config.json in timm's hub format if present
//                (timm_checkpoint.h)
//   huggingface  model.safetensors with Hugging Face ViT names + config.json (+ preprocessor_config.json)
//                (hf_checkpoint.h)
// A folder must hold model.safetensors; config.json (and preprocessor_config.json) are read from the folder,
// or from beside a file named model.safetensors. The layout is told from the tensor names and metadata, not
// from file names.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/vit_weights_file.h"

namespace vit {

enum class WeightsLayout { Vit, Timm, HuggingFace };
std::string to_string(WeightsLayout layout);  // "vit weights file", "timm checkpoint", "Hugging Face checkpoint"

struct CheckpointInfo {
  WeightsLayout layout;
  ModelMetadata metadata;
};

// Reads only headers and JSON: what the model is, without loading its weights.
CheckpointInfo read_checkpoint_info(const std::filesystem::path& path);

// Builds and loads the model (position embeddings resampled when `image_size` differs from the checkpoint's).
// Weights stored as F16 or BF16 are converted to the model's F32. Errors name the file and the tensor or key.
// `layout`, when given, receives the layout found.
LoadedModel load_checkpoint(const std::filesystem::path& path, std::optional<int64_t> image_size = std::nullopt,
                            WeightsLayout* layout = nullptr);

// Writes `model` as a checkpoint folder, creating it if needed (every file atomically):
//   Timm         dir/model.safetensors (vit's weights file: timm's names, vit's metadata) + dir/config.json in
//                timm's hub format, so timm and vit both read it
//   HuggingFace  dir/model.safetensors (transformers' names) + config.json + preprocessor_config.json for
//                ViTForImageClassification; throws std::invalid_argument for what that class cannot express
//                (average pooling, fc_norm, no class token)
// WeightsLayout::Vit is a single file: save_weights.
void save_checkpoint_folder(const std::filesystem::path& dir, WeightsLayout layout, VisionTransformer& model,
                            const ModelMetadata& metadata);

// The files save_checkpoint_folder writes into `dir` for `layout` (Timm or HuggingFace), e.g. to refuse replacing
// them.
std::vector<std::filesystem::path> checkpoint_folder_files(const std::filesystem::path& dir, WeightsLayout layout);

}  // namespace vit
