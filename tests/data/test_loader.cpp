// The threaded loader: order, reproducibility across worker counts, resuming mid-epoch, bad files, and
// bounded memory.

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <opencv2/imgcodecs.hpp>

#include "data/loader.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::data {
namespace {

// N tiny grayscale PNGs whose pixel value is their index, labelled index % 3.
std::vector<Sample> numbered_images(const TempDir& dir, int count) {
  std::vector<Sample> samples;
  for (int i = 0; i < count; ++i) {
    const auto path = dir / ("img" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(path.string(), cv::Mat(4, 4, CV_8UC1, cv::Scalar(i))));
    samples.push_back({path, i % 3});
  }
  return samples;
}

LoaderOptions options(int workers, bool shuffle) {
  LoaderOptions o;
  o.batch_size = 8;
  o.image_size = 1;  // the transform below writes one value per sample
  o.workers = workers;
  o.shuffle = shuffle;
  o.seed = 11;
  o.decode.channels = 1;
  return o;
}

// Writes the image's index (its pixel value) plus 1000 times a draw from the sample's random stream, so that
// both which image and which augmentation it got can be checked.
void index_and_draw(const cv::Mat& image, data::SampleRng& rng, float* out) {
  out[0] = static_cast<float>(image.at<uint8_t>(0, 0)) + 1000.0f * static_cast<float>(rng() % 1000);
}

std::vector<std::vector<float>> epoch_values(Loader& loader, int64_t epoch, int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<std::vector<float>> batches;
  while (auto batch = loader.next()) batches.push_back(batch->pixels);
  return batches;
}

}  // namespace

TEST_CASE("without shuffling, batches come in dataset order with their labels", "[loader]") {
  TempDir dir;
  Loader loader(numbered_images(dir, 20), options(2, false),
                [](const cv::Mat& image, data::SampleRng&, float* out) { out[0] = image.at<uint8_t>(0, 0); });
  REQUIRE(loader.batches_per_epoch() == 3);
  loader.start_epoch(0);
  float expected = 0.0f;
  int64_t batches = 0;
  while (auto batch = loader.next()) {
    CHECK(batch->index == batches++);
    for (size_t i = 0; i < batch->pixels.size(); ++i, ++expected) {
      CHECK(batch->pixels[i] == expected);
      CHECK(batch->labels[i] == static_cast<int64_t>(expected) % 3);
    }
  }
  CHECK(expected == 20.0f);  // the last batch holds the remaining 4
}

TEST_CASE("shuffled epochs are permutations, identical for any number of workers", "[loader]") {
  TempDir dir;
  const auto samples = numbered_images(dir, 37);
  Loader one(samples, options(1, true), index_and_draw);
  Loader three(samples, options(3, true), index_and_draw);
  const auto epoch0 = epoch_values(one, 0);
  CHECK(epoch_values(three, 0) == epoch0);
  CHECK(epoch_values(one, 1) != epoch0);
  std::multiset<int> indices;
  for (const auto& batch : epoch0) {
    for (float v : batch) indices.insert(static_cast<int>(v) % 1000);
  }
  std::multiset<int> all;
  for (int i = 0; i < 37; ++i) all.insert(i);
  CHECK(indices == all);
}

TEST_CASE("an epoch started at batch k gives the same batches as the tail of the full epoch", "[loader]") {
  TempDir dir;
  Loader loader(numbered_images(dir, 30), options(2, true), index_and_draw);
  const auto full = epoch_values(loader, 4);
  const auto tail = epoch_values(loader, 4, 2);
  REQUIRE(tail.size() == full.size() - 2);
  CHECK(std::equal(tail.begin(), tail.end(), full.begin() + 2));
}

TEST_CASE("a file that fails is reported once, with its reason, and skipped", "[loader]") {
  TempDir dir;
  auto samples = numbered_images(dir, 10);
  vit::test::write_bytes(samples[3].path, "not a png");
  Loader loader(samples, options(2, false),
                [](const cv::Mat& image, data::SampleRng&, float* out) { out[0] = image.at<uint8_t>(0, 0); });
  for (int epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    auto first = loader.next();
    REQUIRE(first);
    CHECK(first->size == 7);
    CHECK(first->pixels == std::vector<float>{0, 1, 2, 4, 5, 6, 7});
    CHECK(first->labels == std::vector<int64_t>{0, 1, 2, 1, 2, 0, 1});
    if (epoch == 0) {
      REQUIRE(first->failures.size() == 1);
      CHECK(first->failures[0].path == samples[3].path);
      CHECK_THAT(first->failures[0].reason, Contains("img3.png': not an image in a supported format"));
    } else {
      CHECK(first->failures.empty());
    }
    while (loader.next()) {
    }
  }
  CHECK(loader.failed_files() == 1);
}

TEST_CASE("workers stay at most prefetch_batches ahead of the consumer", "[loader]") {
  TempDir dir;
  std::atomic<int> transformed{0};
  LoaderOptions o = options(2, false);
  o.batch_size = 2;
  o.prefetch_batches = 3;
  Loader loader(numbered_images(dir, 40), o, [&](const cv::Mat&, data::SampleRng&, float* out) {
    ++transformed;
    out[0] = 0.0f;
  });
  loader.start_epoch(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // ample time to run ahead, if it could
  CHECK(transformed.load() == 3 * 2);
  REQUIRE(loader.next());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(transformed.load() == 4 * 2);
}

namespace {

// Holds every thread but the one that made it inside `pass()` until it is opened (at the latest when it goes out
// of scope): workers that never finish a batch, as idle-priority workers on cores another program keeps busy.
class WorkerGate {
 public:
  ~WorkerGate() { open(); }
  void pass() {
    if (std::this_thread::get_id() == owner_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    ++held_;
    opened_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  int held() {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_;
  }

 private:
  const std::thread::id owner_ = std::this_thread::get_id();
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
  int held_ = 0;
};

}  // namespace

TEST_CASE("with its workers starved of CPU the loader still delivers, the caller building the same batches",
          "[loader]") {
  TempDir dir;
  auto samples = numbered_images(dir, 30);
  vit::test::write_bytes(samples[7].path, "not a png");
  Loader free_workers(samples, options(2, true), index_and_draw);
  const auto expected = epoch_values(free_workers, 0);
  REQUIRE(expected.size() == 4);

  std::optional<Loader> starved;  // destroyed after the gate opens: its workers must be let go to be joined
  WorkerGate gate;
  starved.emplace(samples, options(2, true), [&](const cv::Mat& image, data::SampleRng& rng, float* out) {
    gate.pass();
    index_and_draw(image, rng, out);
  });
  std::vector<std::vector<float>> got;
  std::vector<DecodeFailure> failures;
  starved->start_epoch(0);
  for (int i = 0; i < 1000 && gate.held() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(gate.held() == 2);  // both workers took a batch, and will not finish it
  while (auto batch = starved->next()) {
    got.push_back(batch->pixels);
    for (auto& failure : batch->failures) failures.push_back(failure);
  }
  CHECK(got == expected);
  // The bad file is reported once, whichever copy of its batch found it first.
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].path == samples[7].path);
  gate.open();
  CHECK(epoch_values(*starved, 1) == epoch_values(free_workers, 1));  // released, the workers deliver again
  CHECK(starved->failed_files() == 1);
  starved.reset();
}

TEST_CASE("restarting an epoch drops the batches of the old one", "[loader]") {
  TempDir dir;
  Loader loader(numbered_images(dir, 24), options(2, false),
                [](const cv::Mat& image, data::SampleRng&, float* out) { out[0] = image.at<uint8_t>(0, 0); });
  loader.start_epoch(0);
  REQUIRE(loader.next()->pixels.front() == 0.0f);
  loader.start_epoch(1);
  auto batch = loader.next();
  REQUIRE(batch);
  CHECK(batch->index == 0);
  CHECK(batch->pixels.front() == 0.0f);
  CHECK_THROWS_WITH(LoaderOptions{0}.validate(), Contains("batch size must be positive, got 0"));
}

TEST_CASE("processes of a distributed run: equal padded shares for training, every image once for evaluation",
          "[loader]") {
  TempDir dir;
  const auto samples = numbered_images(dir, 21);
  for (const bool even : {true, false}) {
    INFO((even ? "training shares" : "evaluation shares"));
    std::multiset<float> seen;
    for (int rank = 0; rank < 2; ++rank) {
      LoaderOptions o = options(1, true);
      o.world_size = 2;
      o.rank = rank;
      o.even_shares = even;
      Loader loader(samples, o, index_and_draw);
      // 21 images: 11 each when padded (one image twice), 11 and 10 when not.
      CHECK(loader.samples_per_epoch() == (even || rank == 0 ? 11 : 10));
      CHECK(loader.batches_per_epoch() == 2);
      for (const auto& batch : epoch_values(loader, 3))
        for (const float value : batch) seen.insert(std::fmod(value, 1000.0f));  // the image's index
    }
    std::set<float> distinct(seen.begin(), seen.end());
    CHECK(distinct.size() == 21);
    CHECK(seen.size() == (even ? 22u : 21u));
  }
  LoaderOptions outside = options(1, true);
  outside.world_size = 2;
  outside.rank = 2;
  CHECK_THROWS_WITH(Loader(samples, outside, index_and_draw), Contains("loader: rank 2 is outside a world of 2"));
}

}  // namespace vit::data
