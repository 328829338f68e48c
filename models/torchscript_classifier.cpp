#include "models/torchscript_classifier.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "models/vit_weights_file.h"

namespace vit {
namespace {

namespace fs = std::filesystem;

// LibTorch's messages carry a backtrace that users do not need. Errors raised inside a TorchScript graph start
// with "The following operation failed in the TorchScript interpreter", then two tracebacks, and end with the
// actual error; others give it on the first line.
std::string essential_message(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  std::string text = c10_error ? c10_error->what_without_backtrace() : error.what();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.find("TorchScript interpreter") != std::string::npos) return text.substr(text.rfind('\n') + 1);
  return text.substr(0, text.find('\n'));
}

class TorchScriptClassifier : public ImageClassifier {
 public:
  TorchScriptClassifier(torch::jit::Module module, ClassifierInfo info, const c10::Device& device, std::string source)
      : ImageClassifier(std::move(info), device), module_(std::move(module)), source_(std::move(source)) {}

  at::Tensor forward(const at::Tensor& images) override {
    c10::IValue output;
    try {
      output = module_.forward({images});
    } catch (const std::exception& e) {  // c10::Error, or the interpreter's own std::runtime_error
      throw std::runtime_error("TorchScript model '" + source_ + "' failed on a batch of shape " +
                               describe_shape(images) + ": " + essential_message(e));
    }
    if (!output.isTensor())
      throw std::runtime_error("TorchScript model '" + source_ + "' returned a " + output.tagKind() +
                               "; expected a tensor of logits");
    at::Tensor logits = output.toTensor().to(at::kFloat);
    check_logits(logits, images, source_);
    return logits;
  }

 private:
  torch::jit::Module module_;
  std::string source_;
};

}  // namespace

bool is_zip_archive(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

std::unique_ptr<ImageClassifier> open_torchscript_classifier(const fs::path& path, const InferenceOverrides& overrides,
                                                             const c10::Device& device) {
  const std::string source = path.string();
  torch::jit::ExtraFilesMap extra_files{{kTorchScriptMetadataFile, ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(source, device, extra_files);
  } catch (const c10::Error& e) {
    throw std::invalid_argument("cannot load TorchScript model '" + source + "': " + essential_message(e));
  }
  module.eval();

  ClassifierInfo info;
  const std::string& embedded = extra_files[kTorchScriptMetadataFile];
  if (!embedded.empty()) {
    const ModelMetadata metadata = metadata_from_json(embedded, source);
    if (overrides.input_size && *overrides.input_size != metadata.config.image_size)
      throw std::invalid_argument(
          "TorchScript model '" + source + "' was exported for " + std::to_string(metadata.config.image_size) + "x" +
          std::to_string(metadata.config.image_size) + " images; a traced graph cannot run at " +
          std::to_string(*overrides.input_size) + " (export it again at that size instead)");
    if (metadata.config.num_classes == 0)
      throw std::invalid_argument("TorchScript model '" + source +
                                  "' has no classification head (num_classes 0): it gives features, not classes");
    info.kind = "TorchScript (vit export)";
    info.config = metadata.config;
    info.image_size = metadata.config.image_size;
    info.in_chans = metadata.config.in_chans;
    info.preprocess = metadata.preprocess;
    info.class_names = metadata.class_names;
  } else {
    // A file made in Python carries no preprocessing: timm's and torchvision's ImageNet defaults apply.
    info.kind = "TorchScript";
    info.image_size = overrides.input_size.value_or(224);
    info.preprocess = imagenet_preprocess();
  }
  apply_overrides(info, overrides, source);
  return std::make_unique<TorchScriptClassifier>(std::move(module), std::move(info), device, source);
}

}  // namespace vit
