#include "engine/training_plots.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "data/plots.h"
#include "models/atomic_file.h"

namespace vit::engine {
namespace {

constexpr const char* kHeader =
    "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,ema_val_top1,ema_val_top5,lr,images_per_s,seconds";

double cell(const std::string& text) { return text.empty() ? kNoValue : std::stod(text); }

}  // namespace

std::vector<MetricsRow> read_metrics_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("'" + path.string() + "' cannot be read: is it a run folder of vit train?");
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    throw std::invalid_argument("'" + path.string() + "' does not start with vit train's metrics header");
  std::vector<MetricsRow> rows;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) cells.push_back(field);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    try {
      if (cells.size() != 11) throw std::invalid_argument("11 columns expected");
      MetricsRow r;
      r.epoch = std::stoll(cells[0]);
      double* fields_in_order[] = {&r.train_loss, &r.train_acc,    &r.val_loss, &r.val_top1,       &r.val_top5,
                                   &r.ema_val_top1, &r.ema_val_top5, &r.lr,       &r.images_per_s, &r.seconds};
      for (size_t i = 0; i < 10; ++i) *fields_in_order[i] = cell(cells[i + 1]);
      rows.push_back(r);
    } catch (const std::exception& e) {
      throw std::invalid_argument("'" + path.string() + "' line " + std::to_string(number) + ": not a metrics row (" +
                                  e.what() + "): " + line);
    }
  }
  return rows;
}

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
