#include "engine/pictures.h"

#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "plots/attention_picture.h"
#include "plots/charts.h"
#include "util/atomic_file.h"

namespace vit::engine {

namespace fs = std::filesystem;

void write_training_curves(const fs::path& path, const std::vector<MetricsRow>& rows, const std::string& title) {
  std::vector<plots::EpochPoint> points;
  for (const auto& r : rows) {
    // With EMA, validation shows the better of the two models' figures, as the best checkpoint is chosen.
    const bool ema = !std::isnan(r.ema_val_top1) && (std::isnan(r.val_top1) || r.ema_val_top1 > r.val_top1);
    points.push_back({static_cast<double>(r.epoch), r.train_loss, r.val_loss, r.train_acc,
                      ema ? r.ema_val_top1 : r.val_top1, ema ? r.ema_val_top5 : r.val_top5, r.lr});
  }
  write_file_atomically(path, plots::encode_png(plots::training_curves(points, title)));
}

void write_confusion_picture(const fs::path& path, const std::vector<int64_t>& confusion,
                             const std::vector<std::string>& names, const std::string& title) {
  write_file_atomically(path, plots::encode_png(plots::confusion_picture(confusion, names, title)));
}

AttentionPictureWriter::AttentionPictureWriter(fs::path dir, const ClassifierInfo& info, std::optional<int64_t> head)
    : dir_(std::move(dir)), info_(info), head_(head) {
  fs::create_directories(dir_);
}

void AttentionPictureWriter::write(const Prediction& p) {
  ++index_;
  if (!p.error.empty() || !p.image.defined()) return;
  const auto path = dir_ / fmt::format("{:05d}-{}.png", index_, p.path.stem().string());
  std::error_code error;
  if (fs::exists(path, error)) {
    spdlog::warn("'{}' exists; not replaced", path.string());
    return;
  }
  const at::Tensor image = p.image.contiguous();
  const at::Tensor last = p.attention_last_block.contiguous();
  const at::Tensor rollout = p.attention_rollout.contiguous();
  plots::AttentionPictureInput in;
  in.image = image.data_ptr<float>();
  in.channels = static_cast<int>(image.size(0));
  in.size = static_cast<int>(image.size(1));
  in.mean.assign(info_.preprocess.mean.begin(), info_.preprocess.mean.end());
  in.std.assign(info_.preprocess.std.begin(), info_.preprocess.std.end());
  in.last_block = last.data_ptr<float>();
  in.rollout = rollout.data_ptr<float>();
  in.grid = static_cast<int>(last.size(0));
  const auto top = static_cast<size_t>(p.classes.at(0));
  const std::string label = top < info_.class_names.size() ? info_.class_names[top] : std::to_string(top);
  in.caption = fmt::format("top-1: {}  p = {:.3f}", label, p.probabilities.at(0));
  in.map_source =
      p.attention_from_class_token ? "of the class token" : "averaged over patch tokens (the head pools them)";
  const int64_t heads = info_.config ? info_.config->num_heads : 0;
  in.heads = head_ ? fmt::format("head {}", *head_) : fmt::format("mean of {} heads", heads);
  write_file_atomically(path, plots::encode_png(plots::attention_picture(in)));
}

}  // namespace vit::engine
