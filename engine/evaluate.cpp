#include "engine/evaluate.h"

#include <ATen/ops/tensor.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "data/batch_tensor.h"
#include "engine/autocast.h"

namespace vit::engine {

int64_t count_top_k(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  k = std::min<int64_t>(k, logits.size(1));
  const auto top = std::get<1>(logits.topk(k, 1));  // (B, k) class indices
  return top.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>();
}

namespace {

// Adds the sums of every rank's share: [loss, top-1, top-5, count] in double, and the confusion matrix, which a
// rank without images creates from the class count the others report.
void sum_over_ranks(Collectives& group, double& loss_sum, int64_t& top1, int64_t& top5, EvalResult& result,
                    at::Tensor& confusion) {
  at::Tensor classes = at::tensor({static_cast<double>(result.num_classes)}, at::kDouble);
  group.all_reduce_max(classes);
  result.num_classes = static_cast<int64_t>(classes.item<double>());
  if (!confusion.defined()) confusion = torch::zeros({result.num_classes * result.num_classes}, torch::kLong);
  std::vector<at::Tensor> sums{at::tensor({loss_sum, static_cast<double>(top1), static_cast<double>(top5),
                                           static_cast<double>(result.count)},
                                          at::kDouble),
                               confusion};
  group.all_reduce_sum(sums);
  loss_sum = sums[0][0].item<double>();
  top1 = static_cast<int64_t>(sums[0][1].item<double>());
  top5 = static_cast<int64_t>(sums[0][2].item<double>());
  result.count = static_cast<int64_t>(sums[0][3].item<double>());
  confusion = sums[1];
}

}  // namespace

EvalResult evaluate(const ForwardFn& forward, data::Loader& loader, const c10::Device& device, bool bf16,
                    TestTimeAugmentation tta, Collectives* group) {
  torch::NoGradGuard no_grad;
  EvalResult result;
  double loss_sum = 0.0;
  int64_t top1 = 0;
  int64_t top5 = 0;
  at::Tensor confusion;  // (K * K) counts, accumulated on the device
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    for (auto& failure : batch->failures) result.failures.push_back(std::move(failure));
    if (batch->size == 0) continue;
    auto tensors = data::to_tensors(std::move(*batch), loader.channels(), loader.image_size());
    const auto images = tensors.images.to(device);
    const auto labels = tensors.labels.to(device);
    torch::Tensor logits;
    {
      AutocastGuard autocast(device.type(), bf16);
      logits = forward_with_tta(forward, images, tta);
    }
    logits = logits.to(torch::kFloat);
    const int64_t classes = logits.size(1);
    if (!confusion.defined()) {
      result.num_classes = classes;
      confusion = torch::zeros({classes * classes}, labels.options());
    }
    if (labels.max().item<int64_t>() >= classes)
      throw std::invalid_argument("the data has labels up to " + std::to_string(labels.max().item<int64_t>()) +
                                  " but the model scores only " + std::to_string(classes) + " classes");
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    top1 += count_top_k(logits, labels, 1);
    top5 += count_top_k(logits, labels, 5);
    confusion += (labels * classes + logits.argmax(1)).bincount({}, classes * classes);
    result.count += labels.size(0);
  }
  if (group != nullptr) sum_over_ranks(*group, loss_sum, top1, top5, result, confusion);
  if (result.count > 0) {
    const auto n = static_cast<double>(result.count);
    result.loss = loss_sum / n;
    result.top1 = static_cast<double>(top1) / n;
    result.top5 = static_cast<double>(top5) / n;
    const auto counts = confusion.cpu();
    result.confusion.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  }
  return result;
}

EvalResult evaluate(VisionTransformer& model, data::Loader& loader, const c10::Device& device, bool bf16,
                    TestTimeAugmentation tta, Collectives* group) {
  const bool was_training = model->is_training();
  model->eval();
  EvalResult result =
      evaluate([&](const at::Tensor& images) { return model->forward(images); }, loader, device, bf16, tta, group);
  model->train(was_training);
  return result;
}

namespace {

namespace fs = std::filesystem;

data::ImageFolder scan_model_classes(const fs::path& root, const std::vector<std::string>& classes) {
  try {
    return data::scan_image_folder(root, classes);
  } catch (const std::invalid_argument& e) {
    std::error_code error;
    if (fs::is_directory(root / "val", error) && std::find(classes.begin(), classes.end(), "val") == classes.end())
      throw std::invalid_argument(std::string(e.what()) + " (did you mean '" + (root / "val").string() + "'?)");
    throw;
  }
}

}  // namespace

FolderEvaluation evaluate_folder(ImageClassifier& model, const fs::path& root, const PredictOptions& options) {
  const ClassifierInfo& info = model.info();
  if (info.class_names.empty()) {
    c10::InferenceMode inference;  // the forward pass sets the default names (ImageClassifier::check_logits)
    model.forward(at::zeros({1, info.in_chans, info.image_size, info.image_size}, at::device(model.device())));
  }
  FolderEvaluation evaluation;
  evaluation.folder = scan_model_classes(root, info.class_names);
  data::Loader loader = make_inference_loader(evaluation.folder.samples, info, options);
  spdlog::info("evaluating on {} images in {} classes from '{}'{}", evaluation.folder.samples.size(),
               evaluation.folder.classes.size(), root.string(),
               options.tta == TestTimeAugmentation::kNone ? "" : ", each with its mirror image (--tta hflip)");
  evaluation.result = evaluate([&](const at::Tensor& images) { return model.forward(images); }, loader, model.device(),
                               options.bf16, options.tta);
  evaluation.report = classification_report(evaluation.result.confusion, evaluation.result.num_classes);
  return evaluation;
}

}  // namespace vit::engine
