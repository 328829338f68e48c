#pragma once
// `vit classify` output: a readable table per image (text), one JSON object per line (json), or one CSV row per
// image and rank (csv). Each result is written, and flushed, as soon as it is known, so a long run can be
// followed or piped.

#include <memory>
#include <ostream>
#include <string>

#include "engine/predict.h"
#include "models/image_classifier.h"

namespace vit::app {

class PredictionWriter {
 public:
  virtual ~PredictionWriter() = default;
  virtual void write(const engine::Prediction& prediction) = 0;
};

// `format` is text, json or csv. `info` is read at each write: a Python TorchScript learns its class count
// from its first batch.
std::unique_ptr<PredictionWriter> make_prediction_writer(const std::string& format, const ClassifierInfo& info,
                                                         bool with_logits, std::ostream& out);

}  // namespace vit::app
