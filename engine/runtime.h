#pragma once
// Device and thread settings shared by training, evaluation and classification.

#include <string>

#include <c10/core/Device.h>

namespace vit::engine {

// "cpu" or "cuda"; throws std::invalid_argument when CUDA is asked for but this build or machine has none.
c10::Device select_device(const std::string& name);

// LibTorch's intra-op threads: `threads`, or one per core when 0.
void set_threads(int threads);

// Decode threads when the user did not choose: few, because on small machines the cores belong to the model.
int default_workers();

}  // namespace vit::engine
