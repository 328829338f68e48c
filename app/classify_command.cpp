#include "app/classify_command.h"

#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli_checks.h"
#include "app/exit_codes.h"
#include "app/inference_options.h"
#include "app/prediction_writer.h"
#include "data/input_paths.h"
#include "engine/pictures.h"
#include "engine/predict.h"
#include "util/files.h"

namespace vit::app {
namespace {

struct ClassifyOptions {
  InferenceOptions model;
  std::vector<std::string> inputs;
  int64_t top_k = 5;
  std::string format = "text";
  bool logits = false;
  std::string attention_dir;              // --attention-maps: write a picture per image here
  std::optional<int64_t> attention_head;  // --attention-head
};

// Refuses --attention-maps / --attention-head that this model cannot honour, before any input is read.
void check_attention_options(const ClassifyOptions& o, const ImageClassifier& model) {
  if (o.attention_head && o.attention_dir.empty())
    throw std::invalid_argument("--attention-head needs --attention-maps DIR");
  if (o.attention_dir.empty()) return;
  if (!model.has_attention_maps() || !model.info().config) {
    throw std::invalid_argument("--attention-maps: '" + o.model.model + "' is " + model.info().kind +
                                "; attention maps need a vit weights file or a timm / Hugging Face checkpoint, "
                                "whose attention weights vit can reach");
  }
  const int64_t heads = model.info().config->num_heads;
  if (o.attention_head && (*o.attention_head < 0 || *o.attention_head >= heads)) {
    throw std::invalid_argument(
        fmt::format("--attention-head {}: the model has {} heads (0 to {})", *o.attention_head, heads, heads - 1));
  }
  create_output_folder(o.attention_dir, "--attention-maps");
}

int run_classify(const ClassifyOptions& o) {
  auto model = open_inference_model(o.model);
  engine::PredictOptions predict = predict_options(o.model);
  predict.top_k = o.top_k;
  predict.keep_logits = o.logits;

  check_attention_options(o, *model);
  predict.attention_maps = !o.attention_dir.empty();
  predict.attention_head = o.attention_head;
  std::optional<engine::AttentionPictureWriter> pictures;
  if (predict.attention_maps) pictures.emplace(o.attention_dir, model->info(), o.attention_head);

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
    if (pictures) pictures->write(prediction);
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
  add_inference_options(cli, options->model);
  cli->add_option("INPUT", options->inputs,
                  "Image files, folders (searched recursively), or - to read paths from standard input, one per line")
      ->required();
  cli->add_option("-k,--top-k", options->top_k, "Classes to show per image (at most the class count)")
      ->check(whole_number_from(1))
      ->capture_default_str();
  cli->add_option("--format", options->format, "text (a table per image), json (one object per line) or csv")
      ->check(CLI::IsMember({"text", "json", "csv"}))
      ->capture_default_str();
  cli->add_flag("--logits", options->logits,
                "Also print every class's raw score (with --tta hflip, the log of the averaged probability)");
  cli->add_option("--attention-maps", options->attention_dir,
                  "Also write a picture per image into DIR: the image beside its last-block attention and attention "
                  "rollout (weights files and timm / Hugging Face checkpoints)");
  cli->add_option_function<int64_t>(
      "--attention-head", [o = options.get()](const int64_t& head) { o->attention_head = head; },
      "With --attention-maps: show this head (0-based) instead of the mean over heads");
  cli->footer(
      "Exit status: 0 when every input was classified, 1 when some could not be (each gets an error record), 2 for a "
      "usage or model error.");
  return {cli, [options] { return run_classify(*options); }};
}

}  // namespace vit::app
