#pragma once

#include "app/command.h"

namespace vit::app {

// `vit bench`: training-step and inference throughput on synthetic data (and, with --data, the image pipeline
// and training fed by it), as medians of timed windows, with peak memory.
Command setup_bench(CLI::App& app);

}  // namespace vit::app
