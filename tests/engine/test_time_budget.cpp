// The time-limit planner: when training stops, how far warm-up and decay have gone, what is kept back for the
// last epoch's end.

#include <stdexcept>

#include "engine/test_time_augmentation.h"
#include "engine/time_budget.h"
#include "tests/catch.h"

namespace vit::engine {

TEST_CASE("a time budget keeps back the end of the last epoch and measures the decay from the warm-up's end",
          "[time_limit]") {
  TimeBudget none;
  CHECK_FALSE(none.limited());
  CHECK_FALSE(none.training_done(1e9));
  CHECK(none.decay_progress(50.0, 0.0) == 0.0);

  TimeBudget budget(100.0);
  budget.reserve(7.0);
  CHECK(budget.training_end_s() == Approx(0.99 * 100.0 - 7.0));  // 92 s
  CHECK_FALSE(budget.training_done(91.9));
  CHECK(budget.training_done(92.0));
  CHECK(budget.decay_progress(5.0, -1.0) == 0.0);  // still warming up
  CHECK(budget.decay_progress(10.0, 10.0) == 0.0);
  CHECK(budget.decay_progress(51.0, 10.0) == Approx(0.5));  // 41 of the 82 s after the warm-up
  CHECK(budget.decay_progress(95.0, 10.0) == 1.0);
  budget.reserve(17.0);  // a slower epoch end: training stops earlier, the decay with it
  CHECK(budget.decay_progress(51.0, 10.0) == Approx(41.0 / 72.0));
  CHECK(budget.epochs_at_end(3.5, 45.0, 10.0) == Approx(3.5 + 3.7));  // 37 s left at 10 s per epoch
  CHECK_THROWS_AS(TimeBudget(-1.0), std::invalid_argument);
}

TEST_CASE("the time kept back for an epoch's end: estimated from the pace before one is timed, then measured",
          "[time_limit]") {
  // 10,000 validation images at 3 ms per training image: 10 s forward only; 1 M parameters, 5 copies of 4 bytes
  // at 100 MB/s: 0.2 s; and a second.
  CHECK(TimeBudget::estimate_epoch_end(10000.0, 0.003, 1'000'000, false) == Approx(10.0 + 0.2 + 1.0));
  // With EMA: both models validated, EMA weights in the files and the state (7 copies).
  CHECK(TimeBudget::estimate_epoch_end(10000.0, 0.003, 1'000'000, true) == Approx(20.0 + 0.28 + 1.0));
  CHECK(TimeBudget::estimate_epoch_end(0.0, 0.003, 0, false) == Approx(1.0));  // no validation data
  // With test-time augmentation (--val-tta hflip) the trainer counts two passes per validation image.
  const auto hflip_passes = static_cast<double>(10000 * forward_passes(TestTimeAugmentation::kHorizontalFlip));
  CHECK(TimeBudget::estimate_epoch_end(hflip_passes, 0.003, 1'000'000, false) == Approx(20.0 + 0.2 + 1.0));
  CHECK(TimeBudget::reserve_after_timing(8.0) == Approx(12.0));
}

TEST_CASE("after an epoch the run stops when its time is spent, or when only a few steps of a finished decay are left",
          "[time_limit]") {
  CHECK_FALSE(TimeBudget().stop_after_epoch(1e9, 1.0, 10.0));  // no limit: the epochs decide

  TimeBudget budget(100.0);
  budget.reserve(9.0);                                     // training ends at 90 s
  CHECK(budget.stop_after_epoch(90.0, 0.5, 10.0));         // time spent
  CHECK_FALSE(budget.stop_after_epoch(80.0, 0.97, 10.0));  // 10 s left: a whole epoch
  CHECK_FALSE(budget.stop_after_epoch(88.0, 0.97, 10.0));  // 2 s left, but the decay still has a way to go
  CHECK(budget.stop_after_epoch(88.0, 0.99, 10.0));        // 2 s left of a finished decay: not worth an epoch end
  CHECK_FALSE(budget.stop_after_epoch(87.0, 0.99, 10.0));  // 3 s left: over a quarter of an epoch
}

}  // namespace vit::engine
