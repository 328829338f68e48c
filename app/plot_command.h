#pragma once

#include "app/command.h"

namespace vit::app {

// `vit plot RUN_DIR`: redraws RUN_DIR/curves.png from RUN_DIR/metrics.csv, also for a run still in progress.
Command setup_plot(CLI::App& app);

}  // namespace vit::app
