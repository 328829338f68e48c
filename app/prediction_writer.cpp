#include "app/prediction_writer.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "util/text.h"

namespace vit::app {
namespace {

using engine::Prediction;

// The shortest decimal that reads back as the same float ("0.9731", not "0.97310000658"): tidy output that
// still round-trips exactly, which the logits comparisons rely on.
double shortest(float value) { return std::stod(fmt::format("{}", value)); }

class TextWriter : public PredictionWriter {
 public:
  TextWriter(const ClassifierInfo& info, bool with_logits, std::ostream& out)
      : info_(info), with_logits_(with_logits), out_(out) {}

  void write(const Prediction& p) override {
    fmt::print(out_, "{}\n", p.path.string());
    if (!p.error.empty()) {
      fmt::print(out_, "  error: {}\n", p.error);
    } else {
      size_t width = 0;
      for (auto index : p.classes) width = std::max(width, label(index).size());
      for (size_t rank = 0; rank < p.classes.size(); ++rank) {
        fmt::print(out_, "  {:>2}  {:<{}}  {:6.2f}%\n", rank + 1, label(p.classes[rank]), width,
                   100.0 * p.probabilities[rank]);
      }
      if (with_logits_) fmt::print(out_, "  logits: {}\n", fmt::join(p.logits, " "));
    }
    out_.flush();
  }

 private:
  const std::string& label(int64_t index) const { return info_.class_names.at(static_cast<size_t>(index)); }
  const ClassifierInfo& info_;
  bool with_logits_;
  std::ostream& out_;
};

class JsonWriter : public PredictionWriter {
 public:
  JsonWriter(const ClassifierInfo& info, bool with_logits, std::ostream& out)
      : info_(info), with_logits_(with_logits), out_(out) {}

  void write(const Prediction& p) override {
    nlohmann::json predictions = nlohmann::json::array();
    for (size_t rank = 0; rank < p.classes.size(); ++rank) {
      const auto index = p.classes[rank];
      predictions.push_back({{"label", info_.class_names.at(static_cast<size_t>(index))},
                             {"index", index},
                             {"probability", shortest(p.probabilities[rank])}});
    }
    nlohmann::json line{{"path", p.path.string()},
                        {"predictions", predictions},
                        {"error", p.error.empty() ? nlohmann::json() : nlohmann::json(p.error)}};
    if (with_logits_) {
      nlohmann::json logits = nlohmann::json::array();
      for (float value : p.logits) logits.push_back(shortest(value));
      line["logits"] = p.error.empty() ? logits : nlohmann::json();
    }
    // Invalid UTF-8 in a file name must not abort the run: it is replaced, as most JSON tools would.
    out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out_.flush();
  }

 private:
  const ClassifierInfo& info_;
  bool with_logits_;
  std::ostream& out_;
};

class CsvWriter : public PredictionWriter {
 public:
  CsvWriter(const ClassifierInfo& info, bool with_logits, std::ostream& out)
      : info_(info), with_logits_(with_logits), out_(out) {
    out_ << "path,rank,index,label,probability,error" << (with_logits_ ? ",logits" : "") << '\n';
  }

  void write(const Prediction& p) override {
    const std::string path = csv_field(p.path.string());
    if (!p.error.empty()) {
      out_ << path << ",,,,," << csv_field(p.error) << (with_logits_ ? "," : "") << '\n';
    } else {
      // The logits vector, space-separated, in one field: repeated on each rank's row so any row stands alone.
      const std::string logits = with_logits_ ? fmt::format(",{}", fmt::join(p.logits, " ")) : "";
      for (size_t rank = 0; rank < p.classes.size(); ++rank) {
        const auto index = p.classes[rank];
        out_ << fmt::format("{},{},{},{},{},{}\n", path, rank + 1, index,
                            csv_field(info_.class_names.at(static_cast<size_t>(index))), p.probabilities[rank], logits);
      }
    }
    out_.flush();
  }

 private:
  const ClassifierInfo& info_;
  bool with_logits_;
  std::ostream& out_;
};

}  // namespace

std::unique_ptr<PredictionWriter> make_prediction_writer(const std::string& format, const ClassifierInfo& info,
                                                         bool with_logits, std::ostream& out) {
  if (format == "text") return std::make_unique<TextWriter>(info, with_logits, out);
  if (format == "json") return std::make_unique<JsonWriter>(info, with_logits, out);
  if (format == "csv") return std::make_unique<CsvWriter>(info, with_logits, out);
  throw std::invalid_argument("--format: expected text, json or csv, got '" + format + "'");
}

}  // namespace vit::app
