#pragma once
// RUN_DIR/curves.png: the training curves drawn from a run's metrics, by `vit train` after every epoch and by
// `vit plot` from metrics.csv (also while the run is still going: metrics.csv is replaced atomically).

#include <filesystem>
#include <vector>

#include "engine/run_state.h"

namespace vit::engine {

// Draws `rows` (loss, accuracy, learning rate against epoch) and writes the PNG to `path` atomically.
void write_training_curves(const std::filesystem::path& path, const std::vector<MetricsRow>& rows,
                           const std::string& title);

}  // namespace vit::engine
