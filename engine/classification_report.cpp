#include "engine/classification_report.h"

#include <stdexcept>
#include <string>

#include "util/atomic_file.h"
#include "util/text.h"

namespace vit::engine {
namespace {

double ratio(int64_t numerator, int64_t denominator) {
  return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

}  // namespace

ClassificationReport classification_report(const std::vector<int64_t>& confusion, int64_t num_classes) {
  const auto k = static_cast<size_t>(num_classes);
  if (num_classes <= 0 || confusion.size() != k * k)
    throw std::invalid_argument("confusion matrix has " + std::to_string(confusion.size()) + " entries, expected " +
                                std::to_string(num_classes) + " x " + std::to_string(num_classes));
  ClassificationReport report;
  report.classes.resize(k);
  for (size_t truth = 0; truth < k; ++truth) {
    for (size_t predicted = 0; predicted < k; ++predicted) {
      const int64_t count = confusion[truth * k + predicted];
      report.classes[truth].support += count;
      report.classes[predicted].predicted += count;
    }
  }
  int64_t occurring = 0;
  int64_t total = 0;
  for (size_t c = 0; c < k; ++c) {
    ClassMetrics& m = report.classes[c];
    const int64_t correct = confusion[c * k + c];
    m.precision = ratio(correct, m.predicted);
    m.recall = ratio(correct, m.support);
    m.f1 = m.precision + m.recall > 0.0 ? 2.0 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    if (m.support > 0 || m.predicted > 0) {
      ++occurring;
      report.macro_precision += m.precision;
      report.macro_recall += m.recall;
      report.macro_f1 += m.f1;
    }
    const auto weight = static_cast<double>(m.support);
    report.weighted_precision += weight * m.precision;
    report.weighted_recall += weight * m.recall;
    report.weighted_f1 += weight * m.f1;
    total += m.support;
  }
  if (occurring > 0) {
    report.macro_precision /= static_cast<double>(occurring);
    report.macro_recall /= static_cast<double>(occurring);
    report.macro_f1 /= static_cast<double>(occurring);
  }
  if (total > 0) {
    report.weighted_precision /= static_cast<double>(total);
    report.weighted_recall /= static_cast<double>(total);
    report.weighted_f1 /= static_cast<double>(total);
  }
  return report;
}

void write_confusion_csv(const std::filesystem::path& path, const std::vector<std::string>& names,
                         const std::vector<int64_t>& confusion) {
  const size_t k = names.size();
  if (confusion.size() != k * k)
    throw std::invalid_argument("confusion matrix has " + std::to_string(confusion.size()) + " cells for " +
                                std::to_string(k) + " class names");
  write_file_atomically(path, [&](std::ostream& out) {
    out << "true\\predicted";
    for (const auto& name : names) out << ',' << csv_field(name);
    out << '\n';
    for (size_t t = 0; t < k; ++t) {
      out << csv_field(names[t]);
      for (size_t p = 0; p < k; ++p) out << ',' << confusion[t * k + p];
      out << '\n';
    }
  });
}

}  // namespace vit::engine
