#pragma once
// Showing training progress: a redrawn progress bar when stdout is a terminal, a log line every so often
// when it is not (a file or a pipe), nothing with --quiet.

#include <chrono>
#include <cstdint>

#include "engine/trainer.h"

namespace vit::app {

class TrainProgress : public engine::TrainObserver {
 public:
  explicit TrainProgress(bool quiet);
  ~TrainProgress() override;

  void on_epoch_start(int64_t epoch, int64_t epochs, int64_t batches) override;
  void on_step(const engine::StepReport& report) override;
  void on_epoch_end(const engine::MetricsRow& row) override;
  void on_bad_file(const data::DecodeFailure& failure) override;

 private:
  void clear_bar();

  bool quiet_;
  bool terminal_;
  bool bar_visible_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  int64_t last_logged_tenth_ = -1;
};

}  // namespace vit::app
