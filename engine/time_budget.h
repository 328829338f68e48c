#pragma once
// Training against `--time-limit`. The learning rate does not follow a plan of whole epochs made from an early
// estimate of the pace: after its warm-up (counted in steps), the cosine decay advances with whichever runs out
// first, the steps of --epochs or the time left before the limit. A slow spell (a busy neighbour on a shared
// machine) then neither cuts the anneal short nor leaves budget unused: training stops when the time is spent,
// with the learning rate at its minimum, and the last (possibly partial) epoch is validated and saved in the
// time kept back for that.

#include <cstdint>

namespace vit::engine {

class TimeBudget {
 public:
  // Share of the limit planned for; the rest absorbs the noise of timing the final evaluation and save.
  static constexpr double kShare = 0.99;
  // The warm-up takes at most this share of the training time, whatever its length in steps: a limit shorter than
  // the warm-up would otherwise end the run before the learning rate ever decays.
  static constexpr double kWarmupShare = 0.1;

  TimeBudget() = default;  // no limit
  explicit TimeBudget(double limit_s);

  bool limited() const { return limit_s_ > 0.0; }
  double limit_s() const { return limit_s_; }

  // Keeps back the time an epoch's end takes (validation, saving): the longest seen so far, or an estimate
  // before the first epoch ends.
  void reserve(double seconds) { reserve_s_ = seconds; }
  // When training must stop, in seconds since the run began: what is left is kept for the last epoch's end.
  double training_end_s() const;
  bool training_done(double elapsed_s) const { return limited() && elapsed_s >= training_end_s(); }

  // The warm-up's progress by time at `elapsed_s` (>= 1: over); 0 without a limit.
  double warmup_progress(double elapsed_s) const;

  // The decay's progress in [0, 1] by time at `elapsed_s`, the warm-up having ended at `warmup_end_s`; 0 without
  // a limit or before the warm-up ends (warmup_end_s < 0).
  double decay_progress(double elapsed_s, double warmup_end_s) const;

  // For progress display: the epochs that will have been trained when the time is spent, at `epoch_seconds` per
  // epoch, `epochs_done` (fractional) being done at `elapsed_s`.
  double epochs_at_end(double epochs_done, double elapsed_s, double epoch_seconds) const;

 private:
  double limit_s_ = 0.0;
  double reserve_s_ = 0.0;
};

}  // namespace vit::engine
