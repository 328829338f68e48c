#include "engine/training_plots.h"

#include <cmath>

#include "data/plots.h"
#include "models/atomic_file.h"

namespace vit::engine {

void write_training_curves(const std::filesystem::path& path, const std::vector<MetricsRow>& rows,
                           const std::string& title) {
  std::vector<data::EpochPoint> points;
  for (const auto& r : rows) {
    // With EMA, validation shows the better of the two models' figures, as the best checkpoint is chosen.
    const bool ema = !std::isnan(r.ema_val_top1) && (std::isnan(r.val_top1) || r.ema_val_top1 > r.val_top1);
    points.push_back({static_cast<double>(r.epoch), r.train_loss, r.val_loss, r.train_acc,
                      ema ? r.ema_val_top1 : r.val_top1, ema ? r.ema_val_top5 : r.val_top5, r.lr});
  }
  write_file_atomically(path, data::encode_png(data::training_curves(points, title)));
}

}  // namespace vit::engine
