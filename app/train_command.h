#pragma once

#include "app/command.h"

namespace vit::app {

// `vit train DATA_DIR --out RUN_DIR [options]`: train a Vision Transformer on a folder of images.
Command setup_train(CLI::App& app);

}  // namespace vit::app
