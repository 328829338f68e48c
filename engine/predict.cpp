#include "engine/predict.h"

#include <torch/nn/functional/activation.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "data/batch_tensor.h"
#include "data/loader.h"
#include "engine/autocast.h"
#include "engine/preprocess.h"

namespace vit::engine {
namespace {

Prediction failed(const std::filesystem::path& path, const std::string& reason) {
  Prediction prediction;
  prediction.path = path;
  prediction.error = reason;
  return prediction;
}

// Inputs taken at a time, in batches: enough to keep the workers ahead of the model within a chunk.
constexpr int64_t kChunkBatches = 16;

class ChunkClassifier {
 public:
  ChunkClassifier(ImageClassifier& model, const PredictOptions& options,
                  const std::function<void(const Prediction&)>& on_result)
      : model_(model), options_(options), on_result_(on_result) {}

  // Classifies `chunk`, reporting each result in order; returns the number of failures.
  int64_t run(std::vector<data::InputPath> chunk) {
    results_.assign(chunk.size(), std::nullopt);
    next_out_ = 0;
    std::vector<data::Sample> samples;
    std::vector<size_t> position_of_sample;
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i].error.empty()) {
        samples.push_back({chunk[i].path, static_cast<int64_t>(i)});
        position_of_sample.push_back(i);
      } else {
        results_[i] = failed(chunk[i].path, chunk[i].error);
      }
    }
    emit_ready();
    if (!samples.empty()) {
      data::Loader loader = make_inference_loader(std::move(samples), model_.info(), options_);
      loader.start_epoch(0);
      while (auto batch = loader.next()) {
        for (const auto& failure : batch->failures)
          results_[position_of_sample[failure.sample]] = failed(failure.path, failure.reason);
        if (batch->size > 0) classify(std::move(*batch), loader, position_of_sample, chunk);
        emit_ready();
      }
    }
    const int64_t failed = failures_;
    failures_ = 0;
    return failed;
  }

 private:
  void classify(data::Batch&& batch, const data::Loader& loader, const std::vector<size_t>& position_of_sample,
                const std::vector<data::InputPath>& chunk) {
    const std::vector<size_t> samples = batch.samples;
    auto tensors = data::to_tensors(std::move(batch), loader.channels(), loader.image_size());
    at::Tensor logits;
    {
      AutocastGuard autocast(model_.device().type(), options_.bf16);
      logits = forward_with_tta([this](const at::Tensor& images) { return model_.forward(images); },
                                tensors.images.to(model_.device()), options_.tta);
    }
    logits = logits.to(at::kFloat).cpu().contiguous();  // (B, K)
    AttentionMaps maps;
    if (options_.attention_maps) {  // float32: the maps are for looking at, and bf16 would blur small weights
      maps = model_.attention_maps(tensors.images.to(model_.device()), options_.attention_head);
      maps.last_block = maps.last_block.cpu();
      maps.rollout = maps.rollout.cpu();
    }
    const int64_t classes = logits.size(1);
    const auto probabilities = torch::nn::functional::softmax(logits, 1);
    const auto [top_p, top_i] = probabilities.topk(std::min(options_.top_k, classes), 1);  // (B, k) each
    const auto top_p_cpu = top_p.contiguous();
    const auto top_i_cpu = top_i.contiguous();
    const int64_t k = top_i_cpu.size(1);
    const auto finite = torch::isfinite(logits).all(1).contiguous();  // (B)
    for (size_t row = 0; row < samples.size(); ++row) {
      const size_t position = position_of_sample[samples[row]];
      const auto r = static_cast<int64_t>(row);
      // NaN or infinite scores are no answer: broken weights or preprocessing values, never a success.
      if (!finite.data_ptr<bool>()[r]) {
        results_[position] = failed(chunk[position].path,
                                    "the model's output is not finite (NaN or infinity): its weights or its "
                                    "preprocessing (mean, std) are broken");
        continue;
      }
      Prediction prediction;
      prediction.path = chunk[position].path;
      const int64_t* indices = top_i_cpu.data_ptr<int64_t>() + r * k;
      const float* probs = top_p_cpu.data_ptr<float>() + r * k;
      prediction.classes.assign(indices, indices + k);
      prediction.probabilities.assign(probs, probs + k);
      if (options_.keep_logits) {
        const float* row_logits = logits.data_ptr<float>() + r * classes;
        prediction.logits.assign(row_logits, row_logits + classes);
      }
      if (options_.attention_maps) {
        prediction.image = tensors.images[r];
        prediction.attention_last_block = maps.last_block[r];
        prediction.attention_rollout = maps.rollout[r];
        prediction.attention_from_class_token = maps.class_token;
      }
      results_[position] = std::move(prediction);
    }
  }

  void emit_ready() {
    while (next_out_ < results_.size() && results_[next_out_]) {
      if (!results_[next_out_]->error.empty()) ++failures_;
      on_result_(*results_[next_out_]);
      results_[next_out_].reset();
      ++next_out_;
    }
  }

  ImageClassifier& model_;
  const PredictOptions& options_;
  const std::function<void(const Prediction&)>& on_result_;
  std::vector<std::optional<Prediction>> results_;  // of the current chunk, until reported
  size_t next_out_ = 0;
  int64_t failures_ = 0;
};

}  // namespace

data::Loader make_inference_loader(std::vector<data::Sample> samples, const ClassifierInfo& info,
                                   const PredictOptions& options) {
  data::LoaderOptions loader;
  loader.batch_size = options.batch_size;
  loader.image_size = info.image_size;
  loader.workers = options.workers;
  loader.shuffle = false;
  loader.decode.channels = static_cast<int>(info.in_chans);
  loader.decode.max_pixels = options.max_pixels;
  return data::Loader(std::move(samples), loader,
                      eval_sample_transform(eval_transform_options(info.preprocess, info.image_size, info.in_chans)));
}

void PredictOptions::validate() const {
  if (batch_size <= 0) throw std::invalid_argument("--batch-size must be positive, got " + std::to_string(batch_size));
  if (workers <= 0) throw std::invalid_argument("--workers must be positive, got " + std::to_string(workers));
  if (top_k <= 0) throw std::invalid_argument("--top-k must be positive, got " + std::to_string(top_k));
  if (max_pixels <= 0) throw std::invalid_argument("--max-pixels must be positive, got " + std::to_string(max_pixels));
}

int64_t predict(ImageClassifier& model, data::InputPaths& inputs, const PredictOptions& options,
                const std::function<void(const Prediction&)>& on_result) {
  options.validate();
  c10::InferenceMode inference;
  ChunkClassifier classifier(model, options, on_result);
  const auto chunk_size = static_cast<size_t>(options.batch_size * kChunkBatches);
  int64_t failed = 0;
  std::vector<data::InputPath> chunk;
  while (true) {
    auto input = inputs.next();
    if (input) chunk.push_back(std::move(*input));
    const bool chunk_ready = chunk.size() == chunk_size || (!chunk.empty() && (!input || inputs.would_block()));
    if (chunk_ready) {
      failed += classifier.run(std::move(chunk));
      chunk.clear();
    }
    if (!input) return failed;
  }
}

}  // namespace vit::engine
