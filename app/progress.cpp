#include "app/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vit::app {
namespace {

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string step_figures(const engine::StepReport& r) {
  return fmt::format("loss {:.4f} acc {:.3f} lr {:.2e} {:.0f} img/s ETA {}", r.loss, r.accuracy, r.lr, r.images_per_s,
                     duration(r.eta_s));
}

}  // namespace

TrainProgress::TrainProgress(bool quiet) : quiet_(quiet), terminal_(::isatty(STDOUT_FILENO) == 1) {}

TrainProgress::~TrainProgress() { clear_bar(); }

void TrainProgress::clear_bar() {
  if (!bar_visible_) return;
  std::fputs("\r\033[K", stdout);  // carriage return, erase the line
  std::fflush(stdout);
  bar_visible_ = false;
}

void TrainProgress::on_epoch_start(int64_t, int64_t, int64_t) { last_logged_tenth_ = 0; }

void TrainProgress::on_step(const engine::StepReport& r) {
  if (quiet_) return;
  if (!terminal_) {
    // A line per tenth of the epoch keeps logs readable and still shows a stall.
    const int64_t tenth = r.batch * 10 / r.batches;
    if (tenth > last_logged_tenth_ && r.batch < r.batches) {
      last_logged_tenth_ = tenth;
      spdlog::info("epoch {}/{} batch {}/{} {}", r.epoch, r.epochs, r.batch, r.batches, step_figures(r));
    }
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (r.batch < r.batches && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  const auto filled = static_cast<int>(kWidth * r.batch / std::max<int64_t>(1, r.batches));
  fmt::print("\r\033[Kepoch {}/{} [{}{}] {}/{} {}", r.epoch, r.epochs, std::string(static_cast<size_t>(filled), '#'),
             std::string(static_cast<size_t>(kWidth - filled), '.'), r.batch, r.batches, step_figures(r));
  std::fflush(stdout);
  bar_visible_ = true;
}

void TrainProgress::on_epoch_end(const engine::MetricsRow& row) {
  clear_bar();
  if (quiet_) return;
  std::string val = std::isnan(row.val_top1) ? std::string("not validated")
                                             : fmt::format("val loss {:.4f} top-1 {:.4f} top-5 {:.4f}", row.val_loss,
                                                           row.val_top1, row.val_top5);
  if (!std::isnan(row.ema_val_top1)) val += fmt::format(" (EMA top-1 {:.4f})", row.ema_val_top1);
  spdlog::info("epoch {}: train loss {:.4f} acc {:.4f}, {}, {:.0f} img/s, {:.1f} s", row.epoch, row.train_loss,
               row.train_acc, val, row.images_per_s, row.seconds);
}

void TrainProgress::on_bad_file(const data::DecodeFailure& failure) {
  clear_bar();
  spdlog::warn("skipping {}", failure.reason);
}

}  // namespace vit::app
