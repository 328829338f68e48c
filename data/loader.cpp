#include "data/loader.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include <opencv2/core/utility.hpp>

#include "data/epoch_order.h"
#include "util/system_memory.h"

namespace vit::data {
void LoaderOptions::validate() const {
  if (batch_size <= 0) throw std::invalid_argument("batch size must be positive, got " + std::to_string(batch_size));
  if (image_size <= 0) throw std::invalid_argument("image size must be positive, got " + std::to_string(image_size));
  if (workers <= 0) throw std::invalid_argument("workers must be at least 1, got " + std::to_string(workers));
  if (prefetch_batches <= 0)
    throw std::invalid_argument("prefetch must be at least 1 batch, got " + std::to_string(prefetch_batches));
  if (cache_bytes < 0)
    throw std::invalid_argument("image cache must be >= 0 bytes, got " + std::to_string(cache_bytes));
  if (decode.channels != 1 && decode.channels != 3)
    throw std::invalid_argument("channels must be 1 or 3, got " + std::to_string(decode.channels));
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("loader: rank " + std::to_string(rank) + " is outside a world of " +
                                std::to_string(world_size) + " processes");
}

Loader::Loader(std::vector<Sample> samples, LoaderOptions options, SampleTransform transform)
    : samples_(std::move(samples)),
      options_(std::move(options)),
      transform_(std::move(transform)),
      known_bad_(new std::atomic<bool>[samples_.size()]),
      cache_(samples_.size(), std::max<int64_t>(0, options_.cache_bytes)) {
  options_.validate();
  if (samples_.empty()) throw std::invalid_argument("loader: no samples");
  check_batch_fits_in_memory();
  for (size_t i = 0; i < samples_.size(); ++i) known_bad_[i] = false;
  // OpenCV's own thread pool would compete with these workers and LibTorch's OpenMP threads for the cores.
  cv::setNumThreads(0);
  try {
    for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  } catch (const std::system_error& e) {
    // The destructor does not run for a half-built loader, and a joinable std::thread destroyed unjoined ends the
    // program: stop and join the workers already started (which empties workers_), then report.
    const size_t started = workers_.size();
    stop_workers();
    throw std::runtime_error("cannot start " + std::to_string(options_.workers) + " image decoding threads (" +
                             std::to_string(started) + " started): " + e.what());
  }
}

void Loader::check_batch_fits_in_memory() const {
  // A batch is held twice at least (its decoded floats, then the tensor made of them): refused here, before the
  // first allocation, rather than failing as a bare std::bad_alloc or under the OOM killer.
  const auto images = static_cast<double>(std::min<int64_t>(options_.batch_size, samples_per_epoch()));
  const double batch_bytes = images * options_.decode.channels * static_cast<double>(options_.image_size) *
                             static_cast<double>(options_.image_size) * sizeof(float);
  std::ostringstream what;
  what << "batch size " << options_.batch_size << ": a batch of " << static_cast<int64_t>(images) << " images of "
       << options_.decode.channels << "x" << options_.image_size << "x" << options_.image_size << " pixels takes "
       << std::fixed << std::setprecision(1) << gib(batch_bytes)
       << " GiB as float32, held twice (decoded, then as a tensor)";
  require_fits_in_memory(2.0 * batch_bytes, what.str(), "lower --batch-size");
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

Loader::~Loader() { stop_workers(); }

namespace {

EpochOrderOptions dealing_of(const LoaderOptions& options) {
  EpochOrderOptions dealing;
  dealing.seed = options.seed;
  dealing.shuffle = options.shuffle;
  dealing.world_size = options.world_size;
  dealing.rank = options.rank;
  dealing.even = options.even_shares;
  return dealing;
}

}  // namespace

int64_t Loader::samples_per_epoch() const {
  return static_cast<int64_t>(epoch_order_size(samples_.size(), dealing_of(options_)));
}

int64_t Loader::batches_per_epoch() const {
  const auto n = samples_per_epoch();
  return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

int64_t Loader::failed_files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_count_;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  auto order = std::make_shared<std::vector<size_t>>(epoch_order(samples_.size(), epoch, dealing_of(options_)));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    ready_.clear();
    next_job_ = next_out_ = std::clamp<int64_t>(first_batch, 0, batches_per_epoch());
    active_ = true;
  }
  work_available_.notify_all();
}

std::optional<Batch> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!active_) throw std::logic_error("Loader::next() called before start_epoch()");
  if (next_out_ >= batches_per_epoch()) return std::nullopt;
  const int64_t wanted = next_out_;
  const auto is_ready = [&] { return ready_.count(wanted) > 0; };
  if (!is_ready() && next_job_ > wanted) batch_ready_.wait_for(lock, patience(), is_ready);
  if (!is_ready()) {
    next_job_ = std::max(next_job_, wanted + 1);
    const Job job{wanted, epoch_, generation_, order_};
    lock.unlock();
    build_and_store(job);
    lock.lock();
  }
  Batch batch = std::move(ready_.at(wanted));
  ready_.erase(wanted);
  ++next_out_;
  batch.failures = std::move(new_failures_);
  new_failures_.clear();
  failed_count_ += static_cast<int64_t>(batch.failures.size());
  lock.unlock();
  work_available_.notify_all();  // a prefetch slot is free again
  return batch;
}

void Loader::build_and_store(const Job& job) {
  const auto start = std::chrono::steady_clock::now();
  Batch batch = build_batch(job);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard<std::mutex> lock(mutex_);
  // Per image: a short last batch, or one of files already known bad, would otherwise set too short a wait.
  if (batch.size > 0) {
    const double per_image = seconds / static_cast<double>(batch.size);
    if (fastest_image_s_ < 0.0 || per_image < fastest_image_s_) fastest_image_s_ = per_image;
  }
  if (job.generation != generation_ || job.batch < next_out_ || ready_.count(job.batch) > 0) return;
  ready_.emplace(job.batch, std::move(batch));
}

std::chrono::duration<double> Loader::patience() const {
  // Before any batch was built, a tenth of a second: a needless copy then costs only a core that was idle.
  if (fastest_image_s_ < 0.0) return std::chrono::duration<double>(0.1);
  return std::chrono::duration<double>(
      std::max(0.01, 2.0 * fastest_image_s_ * static_cast<double>(options_.batch_size)));
}

void Loader::worker_loop() {
  if (options_.idle_priority) {
    sched_param param{};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);  // best effort: a refusal only costs speed
  }
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_available_.wait(lock, [&] {
        return stopping_ ||
               (active_ && next_job_ < batches_per_epoch() && next_job_ < next_out_ + options_.prefetch_batches);
      });
      if (stopping_) return;
      job = {next_job_++, epoch_, generation_, order_};
    }
    build_and_store(job);
    batch_ready_.notify_all();
  }
}

cv::Mat Loader::image_of(size_t index) {
  if (auto cached = cache_.find(index)) return *cached;
  cv::Mat image = read_image(samples_[index].path, options_.decode);
  cache_.insert(index, image);
  return image;
}

Batch Loader::build_batch(const Job& job) {
  const auto begin = static_cast<size_t>(job.batch * options_.batch_size);
  const size_t end = std::min(begin + static_cast<size_t>(options_.batch_size), job.order->size());
  const size_t sample_floats =
      static_cast<size_t>(options_.decode.channels) * static_cast<size_t>(options_.image_size * options_.image_size);
  Batch batch;
  batch.index = job.batch;
  batch.pixels.resize((end - begin) * sample_floats);
  for (size_t position = begin; position < end; ++position) {
    const size_t index = (*job.order)[position];
    if (known_bad_[index]) continue;
    const Sample& sample = samples_[index];
    try {
      const cv::Mat image = image_of(index);
      SampleRng rng(options_.seed, static_cast<uint64_t>(job.epoch), index);
      transform_(image, rng, batch.pixels.data() + static_cast<size_t>(batch.size) * sample_floats);
    } catch (const std::exception& e) {
      // Marked and recorded in one step, at once: this copy of the batch may be dropped, and another copy that
      // finds the file marked must also find it recorded, to be returned with this batch at the latest.
      std::lock_guard<std::mutex> lock(mutex_);
      if (!known_bad_[index].exchange(true)) new_failures_.push_back({sample.path, e.what(), index});
      continue;
    }
    batch.labels.push_back(sample.label);
    batch.samples.push_back(index);
    ++batch.size;
  }
  batch.pixels.resize(static_cast<size_t>(batch.size) * sample_floats);
  return batch;
}

}  // namespace vit::data
