#include "engine/evaluate.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>

#include "data/batch_tensor.h"
#include "engine/autocast.h"

namespace vit::engine {

int64_t count_top_k(const at::Tensor& logits, const at::Tensor& labels, int64_t k) {
  k = std::min<int64_t>(k, logits.size(1));
  const auto top = std::get<1>(logits.topk(k, 1));  // (B, k) class indices
  return top.eq(labels.unsqueeze(1)).any(1).sum().item<int64_t>();
}

EvalResult evaluate(VisionTransformer& model, data::Loader& loader, const c10::Device& device, bool bf16) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  EvalResult result;
  double loss_sum = 0.0;
  int64_t top1 = 0;
  int64_t top5 = 0;
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
      logits = model->forward(images);
    }
    logits = logits.to(torch::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    top1 += count_top_k(logits, labels, 1);
    top5 += count_top_k(logits, labels, 5);
    result.count += labels.size(0);
  }
  if (result.count > 0) {
    const auto n = static_cast<double>(result.count);
    result.loss = loss_sum / n;
    result.top1 = static_cast<double>(top1) / n;
    result.top5 = static_cast<double>(top5) / n;
  }
  model->train(was_training);
  return result;
}

}  // namespace vit::engine
