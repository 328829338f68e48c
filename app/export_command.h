#pragma once

#include "app/command.h"

namespace vit::app {

// `vit export MODEL --out PATH [--format torchscript|onnx|timm|hf]`: TorchScript and ONNX for deployment, timm or
// Hugging Face folders for the Python ecosystem.
Command setup_export(CLI::App& app);

}  // namespace vit::app
