// metrics.csv as `vit plot` and `vit train --resume` read it back (engine/run_state.h).
#include <cmath>

#include "engine/run_state.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = vit::fuzz::scratch_file("metrics.csv", data, size);
  vit::fuzz::expect_result_or_clear_error(path.string(), [&] {
    const auto rows = vit::engine::read_metrics_csv(path);
    // What was accepted writes back to a file that reads back the same.
    const auto again_path = vit::fuzz::scratch_dir() / "again.csv";
    vit::engine::write_metrics_csv(again_path, rows);
    const auto again = vit::engine::read_metrics_csv(again_path);
    if (again.size() != rows.size()) vit::fuzz::finding("rows lost writing back");
    for (size_t i = 0; i < rows.size(); ++i) {
      if (again[i].epoch != rows[i].epoch) vit::fuzz::finding("epoch changed writing back");
    }
  });
  return 0;
}
