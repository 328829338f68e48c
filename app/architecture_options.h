#pragma once
// --model and the architecture overrides (--image-size, --depth, ...), shared by `vit train` and `vit bench` so
// a benchmark describes exactly the model a training run would build.

#include <string>

#include <CLI/CLI.hpp>

#include "engine/train_options.h"

namespace vit::app {

void add_architecture_options(CLI::App* cli, std::string& model, engine::ArchitectureOverrides& overrides,
                              const std::string& group);

}  // namespace vit::app
