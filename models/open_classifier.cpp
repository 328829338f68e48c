#include "models/open_classifier.h"

#include <fstream>
#include <stdexcept>

#include "models/torchscript_classifier.h"
#include "models/weights_classifier.h"

namespace vit {
namespace {

namespace fs = std::filesystem;

enum class FileKind { Safetensors, TorchScript, Unknown };

// A TorchScript archive is a zip file; a safetensors file has an 8-byte header length followed by the JSON
// header's "{".
FileKind sniff(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read model '" + path.string() + "'");
  if (is_zip_archive(path)) return FileKind::TorchScript;
  char head[9] = {};
  in.read(head, sizeof head);
  return in.gcount() == 9 && head[8] == '{' ? FileKind::Safetensors : FileKind::Unknown;
}

}  // namespace

std::unique_ptr<ImageClassifier> open_classifier(const fs::path& model, const InferenceOverrides& overrides,
                                                 const c10::Device& device) {
  std::error_code error;
  const auto status = fs::status(model, error);
  if (!fs::exists(status)) throw std::invalid_argument("model '" + model.string() + "' does not exist");
  if (fs::is_directory(status)) return open_weights_classifier(model, overrides, device);  // a timm or HF folder
  switch (sniff(model)) {
    case FileKind::TorchScript:
      return open_torchscript_classifier(model, overrides, device);
    case FileKind::Safetensors:
      return open_weights_classifier(model, overrides, device);
    case FileKind::Unknown:
      break;
  }
  if (model.extension() == ".onnx")
    throw std::invalid_argument("model '" + model.string() +
                                "' is an ONNX file: vit runs weights files, checkpoints and TorchScript; run it with "
                                "ONNX Runtime, or give vit the weights it was exported from");
  throw std::invalid_argument("model '" + model.string() +
                              "' is neither a safetensors file (vit, timm or Hugging Face layout) nor a TorchScript "
                              "file (zip archive)");
}

}  // namespace vit
