#pragma once
// Per-class precision, recall and F1 from a confusion matrix, as scikit-learn's classification_report
// computes them, and the confusion matrix as CSV. Plain arithmetic on counts: no LibTorch.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vit::engine {

struct ClassMetrics {
  double precision = 0.0;  // correct / predicted as this class (0 when never predicted)
  double recall = 0.0;     // correct / support (0 without support)
  double f1 = 0.0;         // harmonic mean of the two (0 when both are 0)
  int64_t support = 0;     // images whose true class this is
  int64_t predicted = 0;   // images predicted as this class
};

struct ClassificationReport {
  std::vector<ClassMetrics> classes;  // one per model class, index order
  // Unweighted means over the classes that occur in the data or in the predictions (a model class absent from
  // both would otherwise count as a zero), and support-weighted means over all classes.
  double macro_precision = 0.0, macro_recall = 0.0, macro_f1 = 0.0;
  double weighted_precision = 0.0, weighted_recall = 0.0, weighted_f1 = 0.0;
};

// `confusion` is num_classes x num_classes, row = true class, column = predicted class.
ClassificationReport classification_report(const std::vector<int64_t>& confusion, int64_t num_classes);

// Writes `confusion` (K x K, K = names.size()) as CSV, atomically: a header row "true\predicted,<names>", then
// one row per true class. Names are quoted as RFC 4180 needs.
void write_confusion_csv(const std::filesystem::path& path, const std::vector<std::string>& names,
                         const std::vector<int64_t>& confusion);

}  // namespace vit::engine
