#pragma once
// A multi-threaded image loader: worker threads read, decode and transform whole batches into plain float
// buffers, at most `prefetch_batches` ahead of the consumer, and hand them over in a fixed order. Workers do
// no LibTorch work; the consumer wraps the buffers as tensors (batch_tensor.h).
//
// Everything random is derived from (seed, epoch, sample index), so the batches of an epoch are the same
// whatever the number of workers or their timing, and an epoch can be resumed from any batch.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "data/image_cache.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/sample_rng.h"

namespace vit::data {

// Writes one transformed sample (channels x image_size x image_size floats) to `out`.
using SampleTransform = std::function<void(const cv::Mat& image, SampleRng& rng, float* out)>;

struct LoaderOptions {
  int64_t batch_size = 64;
  int64_t image_size = 224;  // output height = width, as the transform produces it
  int workers = 2;           // decode threads
  int prefetch_batches = 4;  // ready batches held at most: bounds memory
  bool shuffle = true;       // a new permutation every epoch
  bool drop_last = false;    // drop a final partial batch
  // Run the workers at idle priority, so they use only CPU time the model leaves free. On a machine with few
  // cores a busy decode thread otherwise preempts one of LibTorch's OpenMP threads and stalls the whole team at
  // its next barrier: measured on 2 cores, a training step fell from 2,300 to 530 images/s. Idle workers get no
  // CPU at all while another program keeps the cores busy: next() then builds the batch it waits for itself, at
  // the caller's priority (see next()).
  bool idle_priority = true;
  int64_t cache_bytes = 0;  // decoded images kept between epochs, up to this many bytes (image_cache.h); 0 = none
  uint64_t seed = 0;
  // This process's share of every epoch when several train together (epoch_order.h): equal shares for training
  // (padded as DistributedSampler pads), uneven ones for evaluation (`even_shares` false: every image once).
  int world_size = 1;
  int rank = 0;
  bool even_shares = true;
  DecodeOptions decode;
  void validate() const;  // std::invalid_argument naming the field
};

struct DecodeFailure {
  std::filesystem::path path;
  std::string reason;
  size_t sample = 0;  // index into the loader's samples
};

struct Batch {
  int64_t index = 0;                    // position within the epoch
  int64_t size = 0;                     // samples that decoded; files that failed are left out
  std::vector<float> pixels;            // size x channels x image_size x image_size
  std::vector<int64_t> labels;          // size
  std::vector<size_t> samples;          // size: index into the loader's samples of each image
  // Files that failed for the first time since the previous batch was returned: this batch's, or those of a
  // batch being built ahead of it. Each failure is reported once, whichever batch carries it.
  std::vector<DecodeFailure> failures;
};

class Loader {
 public:
  Loader(std::vector<Sample> samples, LoaderOptions options, SampleTransform transform);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins an epoch at batch `first_batch` (non-zero when resuming); batches of a previous epoch not yet
  // taken are discarded.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch in order; nullopt when the epoch is done. A batch no worker has started is built
  // here, on the calling thread; one a worker is building is waited for as long as building a batch has taken at
  // best (twice that, from the fastest time per image), then built here too: a worker starved of CPU (idle
  // priority on busy cores) delays the caller, never stalls it. The two copies are identical (each image's
  // randomness is its own); the later one is dropped. One consumer thread: start_epoch() and next() are called
  // from the same thread.
  std::optional<Batch> next();

  int64_t batches_per_epoch() const;
  int64_t num_samples() const { return static_cast<int64_t>(samples_.size()); }
  int64_t samples_per_epoch() const;  // this process's share of the samples
  int64_t failed_files() const;  // distinct files that failed so far
  const ImageCache& cache() const { return cache_; }
  int channels() const { return options_.decode.channels; }
  int64_t image_size() const { return options_.image_size; }

 private:
  struct Job {
    int64_t batch;
    int64_t epoch;
    uint64_t generation;
    std::shared_ptr<const std::vector<size_t>> order;
  };

  void worker_loop();
  void check_batch_fits_in_memory() const;  // throws std::invalid_argument naming the batch size
  void stop_workers();  // tells the workers to stop and joins them
  Batch build_batch(const Job& job);
  // Builds `job`'s batch (without the lock) and keeps it for next() unless it is stale (an older epoch) or
  // already kept.
  void build_and_store(const Job& job);
  std::chrono::duration<double> patience() const;  // with mutex_ held
  cv::Mat image_of(size_t index);  // from the cache, else read and decoded (and kept if the budget allows)

  const std::vector<Sample> samples_;
  const LoaderOptions options_;
  const SampleTransform transform_;
  std::unique_ptr<std::atomic<bool>[]> known_bad_;  // per sample: failed before, skip without retrying
  ImageCache cache_;

  mutable std::mutex mutex_;
  std::condition_variable work_available_;
  std::condition_variable batch_ready_;
  bool stopping_ = false;
  bool active_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch: results of older jobs are dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<size_t>> order_;
  int64_t next_job_ = 0;  // next batch a worker will build
  int64_t next_out_ = 0;  // next batch next() returns
  std::map<int64_t, Batch> ready_;
  std::vector<DecodeFailure> new_failures_;  // as they happen, until returned with the next batch
  double fastest_image_s_ = -1.0;            // per image, in the fastest batch build so far; < 0: none yet
  int64_t failed_count_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace vit::data
