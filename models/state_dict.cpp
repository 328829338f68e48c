#include "models/state_dict.h"

#include <sstream>
#include <stdexcept>
#include <vector>

#include <torch/csrc/autograd/grad_mode.h>

namespace vit {

TensorMap state_dict(const torch::nn::Module& module) {
  TensorMap tensors;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) tensors.emplace(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) tensors.emplace(item.key(), item.value());
  return tensors;
}

void load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const std::string& source) {
  auto fail = [&](const std::string& problem) { throw std::runtime_error("'" + source + "': " + problem); };
  TensorMap targets = state_dict(module);

  // Check everything before copying anything, so that a bad file never leaves a half-loaded model behind.
  std::vector<std::string> missing;
  for (const auto& [name, target] : targets) {
    if (tensors.count(name) == 0) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::ostringstream message;
    message << "missing tensor '" << missing.front() << "'";
    if (missing.size() > 1) message << " and " << missing.size() - 1 << " more";
    message << " that the architecture needs";
    fail(message.str());
  }
  for (const auto& [name, tensor] : tensors) {
    auto it = targets.find(name);
    if (it == targets.end()) fail("unexpected tensor '" + name + "': the architecture has no such parameter");
    if (tensor.sizes() != it->second.sizes()) {
      std::ostringstream message;
      message << "tensor '" << name << "' has shape " << tensor.sizes() << ", the architecture expects "
              << it->second.sizes();
      fail(message.str());
    }
    if (!at::isFloatingType(tensor.scalar_type()))
      fail("tensor '" + name + "' has dtype " + at::toString(tensor.scalar_type()) +
           ", expected a floating-point type");
  }

  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(tensors.at(name));
}

}  // namespace vit
