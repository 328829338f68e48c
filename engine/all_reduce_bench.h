#pragma once
// `vit bench --phases all-reduce`: what averaging one step's gradients costs (data_parallel.h) for a model's
// parameters, between the processes a launcher started; the communication a data-parallel step adds.

#include <cstdint>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "engine/collectives.h"
#include "models/vit_config.h"

namespace vit::engine {

struct AllReduceTiming {
  std::string backend;
  bool shared_memory = false;  // the float32 sums went through shared memory (every rank on this machine)
  int world_size = 1;
  int64_t floats = 0;            // gradient elements averaged per step
  std::vector<double> seconds;   // one per timed repetition
  double median() const;
};

// Times GradientAverager::average on gradients shaped as `config`'s parameters on `device`: 3 untimed
// repetitions, then `repeats` timed ones. Every rank must call it.
AllReduceTiming time_gradient_all_reduce(Collectives& group, const ViTConfig& config, int64_t repeats,
                                         const c10::Device& device);

}  // namespace vit::engine
