#pragma once

#include "app/command.h"

namespace vit::app {

// `vit info MODEL_OR_PRESET`: architecture, parameter count, compute, classes and preprocessing.
Command setup_info(CLI::App& app);

}  // namespace vit::app
