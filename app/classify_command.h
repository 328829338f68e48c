#pragma once

#include "app/command.h"

namespace vit::app {

// `vit classify MODEL INPUT...`: top-k classes of every image, as text, JSON lines or CSV.
Command setup_classify(CLI::App& app);

}  // namespace vit::app
