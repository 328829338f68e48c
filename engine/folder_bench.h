#pragma once
// The image-folder phases of `vit bench --data DIR`: the data pipeline alone (decode + training augmentation +
// batching, as `vit train` runs it), then training steps fed by that pipeline, to set against the synthetic-data
// training figure.

#include "engine/benchmark.h"

namespace vit::engine {

// Throws std::invalid_argument naming DIR when it holds no class folders with images.
ExtraPhases folder_phases(const BenchOptions& options);

}  // namespace vit::engine
