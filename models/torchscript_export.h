#pragma once
// TorchScript export of a C++ model, without Python: the module tree is mirrored into a torch::jit::Module that
// holds the very same parameter tensors under timm's names, `forward` is traced in eval mode with that module
// as `self` (so the weights stay parameters rather than becoming constants), and the traced graph becomes the
// module's forward method. Sizes are never read into the graph except the image size, so the batch dimension
// stays free. The model's metadata travels in the archive (torchscript_model.h, kTorchScriptMetadataFile).

#include <filesystem>

#include "models/vision_transformer.h"
#include "models/vit_weights_file.h"

namespace vit {

// Writes the archive atomically. Loads with torch.jit.load in Python (torch 1.13 and 2.x) and with
// open_classifier. The model is left in eval mode. Throws std::runtime_error if the traced module does not
// reproduce the model's logits for another batch size (a size frozen into the graph would show there).
void export_torchscript(VisionTransformer& model, const ModelMetadata& metadata, const std::filesystem::path& out);

}  // namespace vit
