// The resume state `vit train --resume` continues from (engine/run_state.h): a safetensors file whose metadata
// holds the options, the model and the progress as JSON. Whatever loads is what the trainer may trust.
#include "engine/run_state.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = vit::fuzz::scratch_file("resume.safetensors", data, size);
  vit::fuzz::expect_result_or_clear_error(path.string(), [&] {
    const auto state = vit::engine::load_run_state(path);
    if (state.progress.world_size < 1 || state.progress.next_batch < 0 ||
        state.progress.epoch > state.progress.epochs_target)
      vit::fuzz::finding("a progress no run saves was accepted");
  });
  return 0;
}
