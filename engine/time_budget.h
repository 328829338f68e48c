#pragma once
// Training against `--time-limit`. The learning rate does not follow a plan of whole epochs made from an early
// estimate of the pace: after its warm-up (counted in steps), the cosine decay advances with whichever runs out
// first, the steps of --epochs or the time left before the limit. A slow spell (a busy neighbour on a shared
// machine) then neither cuts the anneal short nor leaves budget unused: training stops when the time is spent,
// with the learning rate at its minimum, and the last (possibly partial) epoch is validated and saved in the
// time kept back for that. With --patch-drop-tail the time is split in two cycles (trainer.cpp), each decaying by
// whichever of its steps and its time is further along.

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

  // Keeps back the time an epoch's end takes (validation, saving): reserve_after_timing once an epoch's end has
  // been timed, estimate_epoch_end before.
  void reserve(double seconds) { reserve_s_ = seconds; }
  double reserved_s() const { return reserve_s_; }
  // The longest epoch end timed so far, half again: the last may take longer (a bigger best.safetensors to write,
  // a busy disk).
  static double reserve_after_timing(double longest_epoch_end_s) { return 1.5 * longest_epoch_end_s; }
  // Before any validated epoch end has been timed: `val_passes` forward passes of an image (the validation images,
  // twice each with test-time augmentation; all that again with EMA) at a third of a training step's time per image
  // on every token (forward only; the trainer scales up a PatchDropout step's), writing the
  // weights files and the resume state (weights, EMA and two AdamW moments: 5 or 7 copies of `parameters` floats) at a
  // cautious 100 MB/s, and a second.
  static double estimate_epoch_end(double val_passes, double train_seconds_per_image, int64_t parameters, bool ema);
  // When training must stop, in seconds since the run began: what is left is kept for the last epoch's end.
  double training_end_s() const;
  bool training_done(double elapsed_s) const { return limited() && elapsed_s >= training_end_s(); }
  // After an epoch's end at `elapsed_s`: whether the run ends here, its time spent, or so little of it left that
  // another epoch would be a few steps costing a whole validation and save (less than a quarter of the last
  // epoch's training time, with the decay all but done: `decay_progress` >= 0.98, the learning rate within 0.1%
  // of its range above the minimum).
  bool stop_after_epoch(double elapsed_s, double decay_progress, double last_epoch_train_s) const;

  // The warm-up's progress by time at `elapsed_s` (>= 1: over); 0 without a limit.
  double warmup_progress(double elapsed_s) const;

  // The decay's progress in [0, 1] by time at `elapsed_s`, the decay having begun at `start_s` (the warm-up's end)
  // and ending at `end_s` (the training's end, or the --patch-drop-tail cycle's start); 0 without a limit or
  // before it begins (start_s < 0).
  double decay_progress(double elapsed_s, double start_s) const {
    return decay_progress(elapsed_s, start_s, training_end_s());
  }
  double decay_progress(double elapsed_s, double start_s, double end_s) const;
  // With --patch-drop-tail `share`: when the all-token cycle begins, the last `share` of the training time left
  // (the training's end for share 0).
  double tail_start_s(double share) const { return (1.0 - share) * training_end_s(); }

  // For progress display: the epochs that will have been trained when the time is spent, at `epoch_seconds` per
  // epoch, `epochs_done` (fractional) being done at `elapsed_s`.
  double epochs_at_end(double epochs_done, double elapsed_s, double epoch_seconds) const;

 private:
  double limit_s_ = 0.0;
  double reserve_s_ = 0.0;
};

}  // namespace vit::engine
