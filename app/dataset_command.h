#pragma once

#include "app/command.h"

namespace vit::app {

// `vit dataset fashion-mnist --out DIR [--source DIR]`: convert a packaged dataset into an ImageFolder tree.
Command setup_dataset(CLI::App& app);

}  // namespace vit::app
