// Streaming prediction: results in input order, one per input, failures in place, the model's own numbers,
// and inputs read only a chunk ahead of the results.

#include <torch/nn/functional/activation.h>

#include <cmath>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "engine/predict.h"
#include "models/image_classifier.h"
#include "models/open_classifier.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"
#include "tests/models/small_model.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::engine {
namespace {

namespace fs = std::filesystem;

// The shared small model with 3 classes, made grayscale 8x8 with mean = 0, std = 1, crop 1: an 8x8 image goes in
// unchanged / 255.
// `broken`: a head bias of NaN, as a damaged or diverged checkpoint has.
fs::path write_model(const TempDir& dir, bool broken = false) {
  ModelMetadata m = vit::test::small_metadata();
  m.config.image_size = 8;
  m.config.in_chans = 1;
  m.preprocess.crop_pct = 1.0;
  m.preprocess.mean = {0.0};
  m.preprocess.std = {1.0};
  torch::manual_seed(3);
  VisionTransformer model(m.config);
  if (broken) {
    torch::NoGradGuard no_grad;
    model->named_parameters()["head.bias"][1].fill_(std::nan(""));
  }
  save_weights(dir / "model.safetensors", model, m);
  return dir / "model.safetensors";
}

}  // namespace

TEST_CASE("predict: one result per input, in order, with the model's probabilities", "[predict]") {
  TempDir dir;
  auto model = open_classifier(write_model(dir), {}, c10::Device(c10::kCPU));
  cv::Mat pixels(8, 8, CV_8UC1);
  cv::randu(pixels, 0, 255);
  REQUIRE(cv::imwrite((dir / "image.png").string(), pixels));
  vit::test::write_bytes(dir / "broken.png", "not a png");

  // The expected logits, from the model directly on the image's pixels / 255.
  at::Tensor expected;
  {
    c10::InferenceMode guard;
    cv::Mat scaled;
    pixels.convertTo(scaled, CV_32F, 1.0 / 255);
    expected = model->forward(torch::from_blob(scaled.data, {1, 1, 8, 8}).clone())[0];
  }

  std::ostringstream lines;
  for (int i = 0; i < 100; ++i) lines << ((i == 41) ? dir / "broken.png" : dir / "image.png").string() << '\n';
  const std::string text = lines.str();
  const auto line_length = static_cast<std::streamoff>((dir / "image.png").string().size() + 1);
  std::istringstream stdin_lines(text);
  data::InputPaths inputs({"-"}, stdin_lines);

  PredictOptions options;
  options.batch_size = 2;  // chunks of 2 x 16 = 32 inputs
  options.top_k = 2;
  options.keep_logits = true;
  std::vector<Prediction> results;
  std::streamoff read_at_first_result = -1;
  const int64_t failed = predict(*model, inputs, options, [&](const Prediction& p) {
    if (results.empty()) read_at_first_result = stdin_lines.tellg();
    results.push_back(p);
  });

  CHECK(failed == 1);
  REQUIRE(results.size() == 100);
  // Streaming: the first result came when only the first chunk had been read.
  CHECK(read_at_first_result > 0);
  CHECK(read_at_first_result <= 33 * line_length);
  CHECK_THAT(results[41].error, Contains("broken.png"));
  CHECK(results[41].classes.empty());
  const auto probabilities = torch::nn::functional::softmax(expected, 0);
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 41) continue;
    const Prediction& p = results[i];
    REQUIRE(p.error.empty());
    REQUIRE(p.classes.size() == 2);
    CHECK(p.probabilities[0] >= p.probabilities[1]);
    CHECK(p.classes[0] == probabilities.argmax().item<int64_t>());
    CHECK(p.probabilities[0] == Approx(probabilities.max().item<float>()).margin(1e-6));
    REQUIRE(p.logits.size() == 3);
    for (int64_t c = 0; c < 3; ++c)
      CHECK(p.logits[static_cast<size_t>(c)] == Approx(expected[c].item<float>()).margin(1e-5));
  }
}

TEST_CASE("predict: a model whose output is NaN fails each input, naming why, and never reports an answer",
          "[predict]") {
  TempDir dir;
  auto model = open_classifier(write_model(dir, /*broken=*/true), {}, c10::Device(c10::kCPU));
  cv::Mat pixels(8, 8, CV_8UC1, cv::Scalar(90));
  REQUIRE(cv::imwrite((dir / "image.png").string(), pixels));
  std::istringstream no_stdin;
  data::InputPaths inputs({(dir / "image.png").string(), (dir / "image.png").string()}, no_stdin);
  std::vector<Prediction> results;
  const int64_t failed = predict(*model, inputs, PredictOptions{}, [&](const Prediction& p) { results.push_back(p); });
  CHECK(failed == 2);
  REQUIRE(results.size() == 2);
  for (const auto& p : results) {
    CHECK_THAT(p.error, Contains("the model's output is not finite"));
    CHECK(p.classes.empty());
    CHECK(p.probabilities.empty());
  }
}

TEST_CASE("predict: with standard input not ready, what was read is classified first", "[predict]") {
  TempDir dir;
  auto model = open_classifier(write_model(dir), {}, c10::Device(c10::kCPU));
  REQUIRE(cv::imwrite((dir / "image.png").string(), cv::Mat(8, 8, CV_8UC1, cv::Scalar(7))));
  std::ostringstream lines;
  for (int i = 0; i < 5; ++i) lines << (dir / "image.png").string() << '\n';
  std::istringstream stdin_lines(lines.str());
  // A producer that has written nothing more yet: every input becomes its own chunk.
  data::InputPaths inputs({"-"}, stdin_lines, [] { return false; });
  const auto line_length = static_cast<std::streamoff>((dir / "image.png").string().size() + 1);
  std::vector<std::streamoff> read_at_result;
  predict(*model, inputs, PredictOptions{}, [&](const Prediction&) { read_at_result.push_back(stdin_lines.tellg()); });
  REQUIRE(read_at_result.size() == 5);
  CHECK(read_at_result[0] == line_length);  // answered before the second line was read
  CHECK(read_at_result[3] == 4 * line_length);
}

TEST_CASE("predict: with hflip test-time augmentation, the mean of the image's and its mirror's probabilities",
          "[predict]") {
  TempDir dir;
  auto model = open_classifier(write_model(dir), {}, c10::Device(c10::kCPU));
  cv::Mat pixels(8, 8, CV_8UC1);
  cv::randu(pixels, 0, 255);
  REQUIRE(cv::imwrite((dir / "image.png").string(), pixels));

  // The reference: the model on the pixels / 255 and on them mirrored by OpenCV, probabilities averaged.
  at::Tensor mean_probabilities;
  {
    c10::InferenceMode guard;
    cv::Mat mirrored;
    cv::flip(pixels, mirrored, 1);
    at::Tensor sum = at::zeros({3});
    for (const cv::Mat& image : {pixels, mirrored}) {
      cv::Mat scaled;
      image.convertTo(scaled, CV_32F, 1.0 / 255);
      sum += torch::nn::functional::softmax(model->forward(torch::from_blob(scaled.data, {1, 1, 8, 8}).clone())[0], 0);
    }
    mean_probabilities = sum / 2;
  }

  std::istringstream no_stdin;
  data::InputPaths inputs({(dir / "image.png").string()}, no_stdin);
  PredictOptions options;
  options.top_k = 3;
  options.keep_logits = true;
  options.tta = TestTimeAugmentation::kHorizontalFlip;
  std::vector<Prediction> results;
  predict(*model, inputs, options, [&](const Prediction& p) { results.push_back(p); });
  REQUIRE(results.size() == 1);
  const Prediction& p = results[0];
  REQUIRE(p.error.empty());
  REQUIRE(p.classes.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const int64_t c = p.classes[i];
    CHECK(p.probabilities[i] == Approx(mean_probabilities[c].item<float>()).margin(1e-6));
    // The logits reported are the log of that mean.
    CHECK(p.logits[static_cast<size_t>(c)] == Approx(std::log(mean_probabilities[c].item<float>())).margin(1e-5));
  }
  // This random image is not symmetric: without augmentation the answer differs.
  std::istringstream no_stdin_again;
  data::InputPaths again({(dir / "image.png").string()}, no_stdin_again);
  options.tta = TestTimeAugmentation::kNone;
  std::vector<Prediction> plain;
  predict(*model, again, options, [&](const Prediction& result) { plain.push_back(result); });
  REQUIRE(plain.size() == 1);
  REQUIRE(plain[0].error.empty());
  CHECK(std::abs(plain[0].probabilities[0] - p.probabilities[0]) > 1e-5);
}

TEST_CASE("predict: options are checked", "[predict]") {
  PredictOptions options;
  options.top_k = 0;
  CHECK_THROWS_WITH(options.validate(), Contains("--top-k must be positive"));
}

}  // namespace vit::engine
