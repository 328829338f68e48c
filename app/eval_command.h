#pragma once

#include "app/command.h"

namespace vit::app {

// `vit eval MODEL DATA_DIR`: accuracy, loss, per-class precision/recall/F1 and the confusion matrix on an
// ImageFolder tree.
Command setup_eval(CLI::App& app);

}  // namespace vit::app
