#include "app/classify_command.h"

#include <poll.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/exit_codes.h"
#include "app/model_options.h"
#include "app/prediction_writer.h"
#include "data/input_paths.h"
#include "engine/predict.h"

namespace vit::app {
namespace {

struct ClassifyOptions {
  ModelOptions model;
  std::vector<std::string> inputs;
  int64_t top_k = 5;
  std::string format = "text";
  bool logits = false;
};

int run_classify(const ClassifyOptions& o) {
  auto model = open_model(o.model);
  engine::PredictOptions predict;
  predict.batch_size = o.model.batch_size;
  predict.workers = workers_or_default(o.model);
  predict.top_k = o.top_k;
  predict.keep_logits = o.logits;
  predict.bf16 = o.model.amp == "bf16";
  predict.max_pixels = o.model.max_pixels;

  auto writer = make_prediction_writer(o.format, model->info(), o.logits, std::cout);
  // Whether standard input has something to read right now (or is at its end): poll, without waiting.
  const auto stdin_ready = [] {
    pollfd stdin_fd{STDIN_FILENO, POLLIN, 0};
    return ::poll(&stdin_fd, 1, 0) > 0;
  };
  data::InputPaths inputs(o.inputs, std::cin, stdin_ready);
  int64_t total = 0;
  const int64_t failed = engine::predict(*model, inputs, predict, [&](const engine::Prediction& prediction) {
    ++total;
    // The text table shows errors itself; beside JSON or CSV they also go to stderr for whoever watches.
    if (!prediction.error.empty() && o.format != "text")
      spdlog::warn("{}", prediction.error);  // the reason names the file
    writer->write(prediction);
  });
  if (total == 0) {
    spdlog::error("no inputs: give image files, folders, or - to read paths from standard input");
    return kExitUsage;
  }
  if (failed > 0) {
    spdlog::warn("{} of {} input{} could not be classified", failed, total, total == 1 ? "" : "s");
    return kExitSomeFailed;
  }
  return kExitOk;
}

}  // namespace

Command setup_classify(CLI::App& app) {
  auto options = std::make_shared<ClassifyOptions>();
  CLI::App* cli = app.add_subcommand("classify", "Classify images: top-k classes with probabilities");
  add_model_options(cli, options->model);
  cli->add_option("INPUT", options->inputs,
                  "Image files, folders (searched recursively), or - to read paths from standard input, one per line")
      ->required();
  cli->add_option("-k,--top-k", options->top_k, "Classes to show per image (at most the class count)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli->add_option("--format", options->format, "text (a table per image), json (one object per line) or csv")
      ->check(CLI::IsMember({"text", "json", "csv"}))
      ->capture_default_str();
  cli->add_flag("--logits", options->logits, "Also print every class's raw score");
  cli->footer(
      "Exit status: 0 when every input was classified, 1 when some could not be (each gets an error record), 2 for a "
      "usage or model error.");
  return {cli, [options] { return run_classify(*options); }};
}

}  // namespace vit::app
