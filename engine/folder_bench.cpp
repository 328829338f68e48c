#include "engine/folder_bench.h"

#include <memory>

#include "data/batch_tensor.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "engine/mixup.h"
#include "engine/runtime.h"

namespace vit::engine {
namespace {

// Batches for as long as asked: a new epoch starts whenever one ends.
class EndlessLoader {
 public:
  EndlessLoader(std::vector<data::Sample> samples, const data::LoaderOptions& options, data::SampleTransform transform)
      : loader_(std::move(samples), options, std::move(transform)) {
    loader_.start_epoch(epoch_);
  }

  data::Batch next() {
    for (;;) {
      if (auto batch = loader_.next()) return std::move(*batch);
      loader_.start_epoch(++epoch_);
    }
  }

  int channels() const { return loader_.channels(); }
  int64_t image_size() const { return loader_.image_size(); }

 private:
  data::Loader loader_;
  int64_t epoch_ = 0;
};

}  // namespace

ExtraPhases folder_phases(const BenchOptions& options) {
  const data::ImageFolder folder = data::scan_image_folder(options.data_dir);
  return [options, folder](BenchModel& model, BenchReport& report) {
    const ViTConfig& c = model.config();
    data::LoaderOptions loader;
    loader.batch_size = options.batch_size;
    loader.image_size = c.image_size;
    loader.workers = options.workers > 0 ? options.workers : default_workers();
    loader.seed = options.seed;
    loader.decode.channels = static_cast<int>(c.in_chans);
    // timm's training defaults: random-resized crop (scale 0.08-1, ratio 3/4-4/3), horizontal flip.
    data::TrainTransformOptions transform;
    transform.image_size = c.image_size;
    const auto channels = static_cast<size_t>(c.in_chans);
    transform.normalization = {std::vector<float>(channels, 0.5f), std::vector<float>(channels, 0.5f)};
    transform.validate(static_cast<int>(c.in_chans));
    EndlessLoader batches(folder.samples, loader, [transform](const cv::Mat& image, std::mt19937& rng, float* out) {
      data::train_transform(image, transform, rng, out);
    });

    report.pipeline = measure_throughput(options, c10::kCPU, [&] {
      const data::Batch batch = batches.next();
      return batch.size;
    });
    if (!options.train) return;
    report.folder_train = measure_throughput(options, model.device(), [&] {
      auto tensors = data::to_tensors(batches.next(), batches.channels(), batches.image_size());
      const auto images = tensors.images.to(model.device());
      const auto labels = tensors.labels.remainder(c.num_classes).to(model.device());
      model.train_step(images, smooth_one_hot(labels, c.num_classes, 0.1));
      return images.size(0);
    });
  };
}

}  // namespace vit::engine
