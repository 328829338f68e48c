// onnx_export.h in a build without ONNX's library (it was not found: Debian package 'libonnx-dev').
#include "models/onnx_export.h"

#include <stdexcept>

namespace vit {
namespace {

[[noreturn]] void unavailable() {
  throw std::invalid_argument(
      "this vit was built without ONNX support: install the Debian package 'libonnx-dev' and build again");
}

}  // namespace

bool onnx_export_available() { return false; }

void validate_onnx_options(const OnnxExportOptions&) { unavailable(); }

bool export_onnx(VisionTransformer&, const ModelMetadata&, const std::filesystem::path&, const OnnxExportOptions&) {
  unavailable();
}

OnnxFileSummary read_onnx_summary(const std::filesystem::path&) { unavailable(); }

}  // namespace vit
