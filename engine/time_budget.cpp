#include "engine/time_budget.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace vit::engine {

TimeBudget::TimeBudget(double limit_s) : limit_s_(limit_s) {
  if (!(limit_s >= 0.0)) throw std::invalid_argument("time limit must be >= 0 seconds, got " + std::to_string(limit_s));
}

double TimeBudget::training_end_s() const { return kShare * limit_s_ - reserve_s_; }

bool TimeBudget::stop_after_epoch(double elapsed_s, double decay_progress, double last_epoch_train_s) const {
  if (!limited()) return false;
  const bool little_left = decay_progress >= 0.98 && training_end_s() - elapsed_s < 0.25 * last_epoch_train_s;
  return training_done(elapsed_s) || little_left;
}

double TimeBudget::warmup_progress(double elapsed_s) const {
  if (!limited()) return 0.0;
  const double span = kWarmupShare * training_end_s();
  return span > 0.0 ? elapsed_s / span : 1.0;
}

double TimeBudget::decay_progress(double elapsed_s, double start_s, double end_s) const {
  if (!limited() || start_s < 0.0) return 0.0;
  const double span = end_s - start_s;
  if (span <= 0.0) return 1.0;
  return std::clamp((elapsed_s - start_s) / span, 0.0, 1.0);
}

double TimeBudget::epochs_at_end(double epochs_done, double elapsed_s, double epoch_seconds) const {
  if (!limited() || epoch_seconds <= 0.0) return epochs_done;
  return epochs_done + std::max(0.0, training_end_s() - elapsed_s) / epoch_seconds;
}

double TimeBudget::estimate_epoch_end(double val_passes, double train_seconds_per_image, int64_t parameters, bool ema) {
  const double models = ema ? 2.0 : 1.0;
  const double bytes = 4.0 * static_cast<double>(parameters) * (ema ? 7.0 : 5.0);
  return models * val_passes * train_seconds_per_image / 3.0 + bytes / 100e6 + 1.0;
}

}  // namespace vit::engine
