#pragma once
// The one bridge from engine types to the pictures library (plots/): every picture vit writes is drawn from
// here, and written atomically.
//   RUN_DIR/curves.png      by `vit train` after every epoch and by `vit plot` from metrics.csv
//   DIR/confusion.png       by `vit eval --plots`
//   DIR/NNNNN-<name>.png    by `vit classify --attention-maps`, one per image

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/predict.h"
#include "engine/run_state.h"
#include "models/image_classifier.h"

namespace vit::engine {

// Draws `rows` (loss, accuracy, learning rate against epoch) and writes the PNG to `path`.
void write_training_curves(const std::filesystem::path& path, const std::vector<MetricsRow>& rows,
                           const std::string& title);

// The row-normalised confusion matrix (`confusion` is K x K, rows = true classes, K = names.size()).
void write_confusion_picture(const std::filesystem::path& path, const std::vector<int64_t>& confusion,
                             const std::vector<std::string>& names, const std::string& title);

// A picture per classified image: the image as the model saw it beside its attention maps, captioned with the
// top-1 answer, written as DIR/NNNNN-<name>.png in input order (names stay unique when inputs from different
// folders share a file name). A file that already exists is left alone, with a warning.
class AttentionPictureWriter {
 public:
  // Creates `dir`. `head` is the one head the maps show, or none for the mean over heads.
  AttentionPictureWriter(std::filesystem::path dir, const ClassifierInfo& info, std::optional<int64_t> head);
  // Call once per prediction, failed ones included (they keep the numbering); those have no picture.
  void write(const Prediction& prediction);

 private:
  std::filesystem::path dir_;
  const ClassifierInfo& info_;
  std::optional<int64_t> head_;
  int64_t index_ = 0;
};

}  // namespace vit::engine
