#include "models/torchscript_export.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <sstream>
#include <stdexcept>

#include "models/torchscript_classifier.h"
#include "util/atomic_file.h"

namespace vit {
namespace {

// "vit::BlockImpl" -> "Block", "torch::nn::LayerNormImpl" -> "LayerNorm": TorchScript class names.
std::string class_name(const torch::nn::Module& module) {
  std::string name = module.name();
  name = name.substr(name.rfind(':') == std::string::npos ? 0 : name.rfind(':') + 1);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

// The same tree as a TorchScript module, sharing the parameter tensors (so tracing can tell them apart from
// constants, and `named_parameters()` in Python lists timm's names).
torch::jit::Module mirror(const torch::nn::Module& module, const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module out(c10::QualifiedName("__torch__.vit." + class_name(module)), cu, /*shouldMangle=*/true);
  for (const auto& parameter : module.named_parameters(/*recurse=*/false))
    out.register_parameter(parameter.key(), parameter.value(), /*is_buffer=*/false);
  for (const auto& buffer : module.named_buffers(/*recurse=*/false)) out.register_buffer(buffer.key(), buffer.value());
  for (const auto& child : module.named_children()) out.register_module(child.key(), mirror(*child.value(), cu));
  return out;
}

}  // namespace

void export_torchscript(VisionTransformer& model, const ModelMetadata& metadata, const std::filesystem::path& out) {
  metadata.validate();
  model->eval();  // dropout and stochastic depth must not be traced
  model->to(torch::kCPU);
  const ViTConfig& c = metadata.config;
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module module = mirror(*model, cu);

  const auto example = torch::randn({2, c.in_chans, c.image_size, c.image_size});
  auto traced = torch::jit::tracer::trace(
      {example}, [&](torch::jit::Stack inputs) { return torch::jit::Stack{model->forward(inputs.at(0).toTensor())}; },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/true, /*force_outplace=*/false, &module,
      /*argument_names=*/{"images"});
  auto* forward = cu->create_function(c10::QualifiedName(*module.type()->name(), "forward"), traced.first->graph);
  module.type()->addMethod(forward);

  // The graph must not have frozen the batch size: check it on another one.
  {
    torch::NoGradGuard no_grad;
    const auto check = torch::randn({3, c.in_chans, c.image_size, c.image_size});
    const auto expected = model->forward(check);
    const auto got = module.forward({check}).toTensor();
    if (got.sizes() != expected.sizes() || !torch::allclose(got, expected, 1e-5, 1e-5))
      throw std::runtime_error("TorchScript export: the traced module does not reproduce the model's logits");
  }

  const torch::jit::ExtraFilesMap extra{{kTorchScriptMetadataFile, metadata_to_json(metadata)}};
  write_file_atomically(out, [&](std::ostream& stream) { module.save(stream, extra); });
}

}  // namespace vit
