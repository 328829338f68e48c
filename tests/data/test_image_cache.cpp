// The decoded-image cache: what it keeps within its budget, and that a loader reading from it gives the batches
// a fresh decode gives without touching the files again.

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "data/image_cache.h"
#include "data/loader.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using vit::test::TempDir;

namespace vit::data {
namespace {

cv::Mat grey(int size, int value) { return cv::Mat(size, size, CV_8UC1, cv::Scalar(value)); }

}  // namespace

TEST_CASE("the cache keeps images within its budget, first come first kept", "[image_cache]") {
  ImageCache cache(4, 250);  // room for two 10x10 images, not three
  cache.insert(0, grey(10, 1));
  cache.insert(2, grey(10, 2));
  cache.insert(3, grey(10, 3));  // over the budget: not kept
  cache.insert(0, grey(10, 9));  // already kept: the first stays
  CHECK(cache.images() == 2);
  CHECK(cache.bytes() == 200);
  REQUIRE(cache.find(0));
  CHECK(cache.find(0)->at<uint8_t>(5, 5) == 1);
  CHECK(cache.find(2)->at<uint8_t>(5, 5) == 2);
  CHECK_FALSE(cache.find(1));
  CHECK_FALSE(cache.find(3));
}

TEST_CASE("a view into a larger image is kept as a copy of its own pixels", "[image_cache]") {
  const cv::Mat big = grey(100, 7);
  ImageCache cache(1, 1000);
  cache.insert(0, big(cv::Rect(10, 10, 20, 20)));
  CHECK(cache.bytes() == 400);
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
    for (int i = 0; i < 4; ++i) out[i] = image.at<uint8_t>(y + i / 2, x + i % 2) + 0.001f * static_cast<float>(rng() % 100);
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
  CHECK(cached.cache().bytes() == 30 * 36);
  const auto expected = epoch(uncached, 1);

  for (const auto& sample : samples) std::filesystem::remove(sample.path);
  CHECK(epoch(cached, 1) == expected);  // every image came from memory, augmented as epoch 1 wants
  CHECK(cached.failed_files() == 0);
}

}  // namespace vit::data
