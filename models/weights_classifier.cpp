#include "models/weights_classifier.h"

#include <stdexcept>

#include "models/checkpoint_layouts.h"
#include "models/vision_transformer.h"

namespace vit {
namespace {

class WeightsClassifier : public ImageClassifier {
 public:
  WeightsClassifier(LoadedModel loaded, ClassifierInfo info, const c10::Device& device)
      : ImageClassifier(std::move(info), device), model_(std::move(loaded.model)) {
    model_->eval();
    model_->to(device);
  }

  at::Tensor forward(const at::Tensor& images) override { return model_->forward(images); }

  bool has_attention_maps() const override { return true; }

  AttentionMaps attention_maps(const at::Tensor& images, std::optional<int64_t> head) override {
    std::vector<at::Tensor> attention;
    model_->forward_features(images, &attention);
    const ViTConfig& c = model_->config();
    return vit::attention_maps(attention, c.num_prefix_tokens(), c.global_pool == GlobalPool::Token, head);
  }

 private:
  VisionTransformer model_;
};

}  // namespace

std::unique_ptr<ImageClassifier> open_weights_classifier(const std::filesystem::path& path,
                                                         const InferenceOverrides& overrides,
                                                         const c10::Device& device) {
  WeightsLayout layout;
  LoadedModel loaded = load_checkpoint(path, overrides.input_size, &layout);
  if (loaded.metadata.config.num_classes == 0)
    throw std::invalid_argument("model '" + path.string() +
                                "' has no classification head (num_classes 0): it gives features, not classes");
  if (loaded.metadata.config.global_pool == GlobalPool::None)
    throw std::invalid_argument("model '" + path.string() +
                                "' has no pooling (global_pool ''): it gives one output per token, not per image");
  ClassifierInfo info;
  info.kind = to_string(layout);
  info.config = loaded.metadata.config;
  info.image_size = loaded.metadata.config.image_size;
  info.in_chans = loaded.metadata.config.in_chans;
  info.preprocess = loaded.metadata.preprocess;
  info.class_names = loaded.metadata.class_names;
  apply_overrides(info, overrides, path.string());
  return std::make_unique<WeightsClassifier>(std::move(loaded), std::move(info), device);
}

}  // namespace vit
