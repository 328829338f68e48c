// The decoded-image cache: what it keeps within its budget, and that a loader reading from it gives the batches
// a fresh decode gives without touching the files again.

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "data/image_cache.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::TempDir;

namespace vit::data {
namespace {

cv::Mat grey(int size, int value) { return cv::Mat(size, size, CV_8UC1, cv::Scalar(value)); }

}  // namespace

// What the budget counts: the slot table, and per image its pixels and a fixed 192 bytes of bookkeeping.
constexpr int64_t kSlot = sizeof(cv::Mat);
constexpr int64_t kPerImage = 192;

TEST_CASE("the cache keeps every image of a set that fits its budget", "[image_cache]") {
  ImageCache cache(3, 3 * kSlot + 3 * (100 + kPerImage));
  for (int i = 0; i < 3; ++i) cache.insert(static_cast<size_t>(i), grey(10, i + 1));
  cache.insert(0, grey(10, 9));  // already kept: the first stays
  CHECK_FALSE(cache.gave_up());
  CHECK(cache.images() == 3);
  CHECK(cache.bytes() == 3 * kSlot + 3 * (100 + kPerImage));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(cache.find(static_cast<size_t>(i)));
    CHECK(cache.find(static_cast<size_t>(i))->at<uint8_t>(5, 5) == i + 1);
  }
}

TEST_CASE("a set that turns out not to fit is given up: nothing is kept", "[image_cache]") {
  ImageCache cache(3, 3 * kSlot + 2 * (100 + kPerImage));  // room for two of the three images
  cache.insert(0, grey(10, 1));
  cache.insert(1, grey(10, 2));
  REQUIRE(cache.find(1));
  cache.insert(2, grey(10, 3));
  CHECK(cache.gave_up());
  CHECK(cache.images() == 0);
  CHECK(cache.bytes() == 0);
  CHECK_FALSE(cache.find(0));
  CHECK_FALSE(cache.find(1));
  cache.insert(1, grey(10, 2));  // and nothing more is taken
  CHECK_FALSE(cache.find(1));

  ImageCache tiny(1000, 10 * kSlot);  // not even the slot table fits
  CHECK(tiny.gave_up());
  tiny.insert(0, grey(1, 1));
  CHECK_FALSE(tiny.find(0));
}

TEST_CASE("a view into a larger image is kept as a copy of its own pixels", "[image_cache]") {
  const cv::Mat big = grey(100, 7);
  ImageCache cache(1, 10000);
  cache.insert(0, big(cv::Rect(10, 10, 20, 20)));
  CHECK(cache.bytes() == kSlot + 400 + kPerImage);
  REQUIRE(cache.find(0));
  CHECK(cache.find(0)->datastart != big.datastart);
  CHECK(cache.find(0)->isContinuous());
}

TEST_CASE("a zero budget keeps nothing, a negative one is an error", "[image_cache]") {
  ImageCache cache(3, 0);
  cache.insert(1, grey(4, 1));
  CHECK_FALSE(cache.find(1));
  CHECK(cache.images() == 0);
  CHECK_THROWS_AS(ImageCache(3, -1), std::invalid_argument);
}

TEST_CASE("with the cache, later epochs give the same batches without reading the files", "[image_cache][loader]") {
  TempDir dir;
  std::vector<Sample> samples;
  for (int i = 0; i < 30; ++i) {
    const auto path = dir / ("img" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(path.string(), grey(6, 3 * i)));
    samples.push_back({path, i % 2});
  }
  LoaderOptions o;
  o.batch_size = 7;
  o.image_size = 2;
  o.workers = 2;
  o.seed = 3;
  o.decode.channels = 1;
  // A random 2x2 crop of the 6x6 image plus a random draw: each image's augmentation depends on the epoch.
  const SampleTransform transform = [](const cv::Mat& image, SampleRng& rng, float* out) {
    const int x = static_cast<int>(rng() % 5), y = static_cast<int>(rng() % 5);
    for (int i = 0; i < 4; ++i)
      out[i] = image.at<uint8_t>(y + i / 2, x + i % 2) + 0.001f * static_cast<float>(rng() % 100);
  };
  auto epoch = [](Loader& loader, int64_t e) {
    std::vector<std::vector<float>> batches;
    loader.start_epoch(e);
    while (auto batch = loader.next()) {
      CHECK(batch->failures.empty());
      batches.push_back(batch->pixels);
    }
    return batches;
  };

  Loader uncached(samples, o, transform);
  o.cache_bytes = 1 << 20;
  Loader cached(samples, o, transform);
  CHECK(epoch(cached, 0) == epoch(uncached, 0));
  CHECK(cached.cache().images() == 30);
  CHECK(cached.cache().bytes() == 30 * kSlot + 30 * (36 + kPerImage));
  const auto expected = epoch(uncached, 1);

  for (const auto& sample : samples) std::filesystem::remove(sample.path);
  CHECK(epoch(cached, 1) == expected);  // every image came from memory, augmented as epoch 1 wants
  CHECK(cached.failed_files() == 0);
}

}  // namespace vit::data

namespace vit::data {

TEST_CASE("cached images are never changed by the training transform (flip, auto-augment, no-op resize)",
          "[image_cache][loader]") {
  TempDir dir;
  std::vector<Sample> samples;
  cv::Mat pattern(8, 8, CV_8UC3);
  for (int i = 0; i < 12; ++i) {
    cv::randu(pattern, cv::Scalar::all(0), cv::Scalar::all(255));
    const auto path = dir / ("img" + std::to_string(i) + ".png");
    REQUIRE(cv::imwrite(path.string(), pattern));
    samples.push_back({path, i % 2});
  }
  // The whole image at its own size (the resize is a no-op), always flipped, then RandAugment: every step that
  // could write into the source image if it were not copied first.
  TrainTransformOptions t;
  t.image_size = 8;
  t.scale_min = t.scale_max = 1.0;
  t.ratio_min = t.ratio_max = 1.0;
  t.hflip = 1.0;
  t.auto_augment = {AutoAugmentPolicy::RandAugment, 2, 9};
  const SampleTransform transform = [t](const cv::Mat& image, SampleRng& rng, float* out) {
    train_transform(image, t, rng, out);
  };
  LoaderOptions o;
  o.batch_size = 5;
  o.image_size = 8;
  o.workers = 2;
  o.seed = 9;
  auto epochs = [&](Loader& loader) {
    std::vector<std::vector<float>> batches;
    for (int64_t e = 0; e < 3; ++e) {
      loader.start_epoch(e);
      while (auto batch = loader.next()) batches.push_back(batch->pixels);
    }
    return batches;
  };
  Loader uncached(samples, o, transform);
  o.cache_bytes = 1 << 20;
  Loader cached(samples, o, transform);
  CHECK(epochs(cached) == epochs(uncached));
  CHECK(cached.cache().images() == 12);
}

}  // namespace vit::data
