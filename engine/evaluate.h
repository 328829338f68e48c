#pragma once
// Loss, top-k accuracy and the confusion matrix of a model over a loader's epoch, or over an image folder with
// the per-class report `vit eval` prints.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include <c10/core/Device.h>

#include "data/image_folder.h"
#include "data/loader.h"
#include "engine/classification_report.h"
#include "engine/collectives.h"
#include "engine/predict.h"
#include "engine/test_time_augmentation.h"
#include "models/image_classifier.h"
#include "models/vision_transformer.h"

namespace vit::engine {

struct EvalResult {
  double loss = 0.0;  // mean cross-entropy (no label smoothing)
  double top1 = 0.0;
  double top5 = 0.0;  // top-min(5, classes)
  int64_t count = 0;  // images evaluated (files that failed to decode are not counted)
  int64_t num_classes = 0;
  std::vector<int64_t> confusion;             // num_classes x num_classes, row = true class, column = predicted class
  std::vector<data::DecodeFailure> failures;  // files that failed for the first time
};

// Runs `forward` over the loader's epoch without gradients, optionally under bf16 autocast, with test-time
// augmentation `tta` (forward_with_tta: the loss and top-k are then those of the averaged answer). Labels must be
// class indices of the model's output. With `group`, each rank evaluates its share (the loader's) and the sums
// (in double) and the confusion matrix are added up over the ranks: every rank returns the whole set's figures,
// the failures excepted (each rank's own).
EvalResult evaluate(const ForwardFn& forward, data::Loader& loader, const c10::Device& device, bool bf16,
                    TestTimeAugmentation tta, Collectives* group = nullptr);

// The same for a model being trained: in eval mode, restoring its previous mode after.
EvalResult evaluate(VisionTransformer& model, data::Loader& loader, const c10::Device& device, bool bf16,
                    TestTimeAugmentation tta, Collectives* group = nullptr);

struct FolderEvaluation {
  data::ImageFolder folder;  // the images evaluated; classes in the model's order
  EvalResult result;
  ClassificationReport report;  // from result.confusion
};

// Evaluates `model` on ROOT/<class>/**/<image>, whose class folders must be named as the model's classes (a
// Python TorchScript without names gets 0, 1, ... from one forward pass). Pointed at a data set root by mistake
// (ROOT/val exists), the error says where the images probably are. Uses options.batch_size, workers, max_pixels
// bf16 and tta. Throws std::invalid_argument for a folder that does not fit the model.
FolderEvaluation evaluate_folder(ImageClassifier& model, const std::filesystem::path& root,
                                 const PredictOptions& options);

// Number of rows of `logits` (B, K) whose label is among the k highest scores.
int64_t count_top_k(const at::Tensor& logits, const at::Tensor& labels, int64_t k);

}  // namespace vit::engine
