#include "engine/folder_bench.h"

#include <chrono>
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
      if (auto batch = loader_.next()) {
        next_batch_ = batch->index + 1;
        return std::move(*batch);
      }
      loader_.start_epoch(++epoch_);
      next_batch_ = 0;
    }
  }

  // Drops the batches prepared ahead and goes on from the next one: a timed window then starts with nothing
  // decoded in advance, as if the pipeline had not been working while something else was timed.
  void drop_prefetched() { loader_.start_epoch(epoch_, next_batch_); }

  int channels() const { return loader_.channels(); }
  int64_t batches_per_epoch() const { return loader_.batches_per_epoch(); }
  const data::ImageCache& cache() const { return loader_.cache(); }
  int64_t image_size() const { return loader_.image_size(); }

 private:
  data::Loader loader_;
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;
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
    loader.cache_bytes = options.cache_images_mib << 20;
    loader.decode.channels = static_cast<int>(c.in_chans);
    // timm's training defaults: random-resized crop (scale 0.08-1, ratio 3/4-4/3), horizontal flip.
    data::TrainTransformOptions transform;
    transform.image_size = c.image_size;
    const auto channels = static_cast<size_t>(c.in_chans);
    transform.normalization = {std::vector<float>(channels, 0.5f), std::vector<float>(channels, 0.5f)};
    transform.validate(static_cast<int>(c.in_chans));
    EndlessLoader batches(folder.samples, loader, [transform](const cv::Mat& image, data::SampleRng& rng, float* out) {
      data::train_transform(image, transform, rng, out);
    });

    if (options.cache_images_mib > 0) {
      // The figures are for the epochs after the first, which read the images from the cache: fill it first
      // (one pass, at most a minute for a folder too large to go through).
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < batches.batches_per_epoch(); ++i) {
        batches.next();
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) break;
      }
    }
    report.pipeline = measure_throughput(options, c10::kCPU, [&] {
      const data::Batch batch = batches.next();
      return batch.size;
    });
    report.workers = loader.workers;
    const data::ImageCache& cache = batches.cache();
    report.image_cache = "decoded images " + cache.summary();
    if (!options.train) return;
    const BenchStep folder_step = [&] {
      auto tensors = data::to_tensors(batches.next(), batches.channels(), batches.image_size());
      const auto images = tensors.images.to(model.device());
      const auto labels = tensors.labels.remainder(c.num_classes).to(model.device());
      model.train_step(images, smooth_one_hot(labels, c.num_classes, 0.1));
      return images.size(0);
    };
    // Before each folder window the batches decoded ahead during the synthetic window are dropped: otherwise the
    // window would start with them for free (a bias of up to the prefetch depth when decoding is the bottleneck).
    auto both =
        measure_alternating(options, model.device(), {folder_step, [&] { return model.synthetic_train_step(); }},
                            {[&] { batches.drop_prefetched(); }});
    report.folder_train = std::move(both[0]);
    report.synthetic_beside_folder = std::move(both[1]);
  };
}

}  // namespace vit::engine
