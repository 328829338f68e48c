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

#include "app/exit_codes.h"
#include "app/model_options.h"
#include "app/prediction_writer.h"
#include "data/attention_picture.h"
#include "data/input_paths.h"
#include "data/plots.h"
#include "engine/predict.h"
#include "models/atomic_file.h"

namespace vit::app {
namespace {

struct ClassifyOptions {
  ModelOptions model;
  std::vector<std::string> inputs;
  int64_t top_k = 5;
  std::string format = "text";
  bool logits = false;
  std::string attention_dir;              // --attention-maps: write a picture per image here
  std::optional<int64_t> attention_head;  // --attention-head
};

// --attention-maps: a picture per classified image, DIR/NNNNN-<name>.png in input order (names stay unique when
// inputs from different folders share a file name). Existing files are left alone.
class AttentionPictureWriter {
 public:
  AttentionPictureWriter(const ClassifyOptions& o, const ClassifierInfo& info)
      : dir_(o.attention_dir), info_(info), head_(o.attention_head) {
    std::filesystem::create_directories(dir_);
  }

  void write(const engine::Prediction& p) {
    ++index_;
    if (!p.error.empty() || !p.image.defined()) return;
    const auto path = dir_ / fmt::format("{:05d}-{}.png", index_, p.path.stem().string());
    if (std::filesystem::exists(path)) {
      spdlog::warn("'{}' exists; not replaced", path.string());
      return;
    }
    const at::Tensor image = p.image.contiguous();
    const at::Tensor last = p.attention_last_block.contiguous();
    const at::Tensor rollout = p.attention_rollout.contiguous();
    data::AttentionPictureInput in;
    in.image = image.data_ptr<float>();
    in.channels = static_cast<int>(image.size(0));
    in.size = static_cast<int>(image.size(1));
    in.mean.assign(info_.preprocess.mean.begin(), info_.preprocess.mean.end());
    in.std.assign(info_.preprocess.std.begin(), info_.preprocess.std.end());
    in.last_block = last.data_ptr<float>();
    in.rollout = rollout.data_ptr<float>();
    in.grid = static_cast<int>(last.size(0));
    const auto top = static_cast<size_t>(p.classes.at(0));
    const std::string label = top < info_.class_names.size() ? info_.class_names[top] : std::to_string(top);
    in.caption = fmt::format("top-1: {}  p = {:.3f}", label, p.probabilities.at(0));
    in.map_source = p.attention_from_class_token ? "of the class token" : "averaged over patch tokens (no class token)";
    in.heads = head_ ? fmt::format("head {}", *head_) : fmt::format("mean of {} heads", info_.config->num_heads);
    write_file_atomically(path, data::encode_png(data::attention_picture(in)));
  }

 private:
  std::filesystem::path dir_;
  const ClassifierInfo& info_;
  std::optional<int64_t> head_;
  int64_t index_ = 0;
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
    throw std::invalid_argument(fmt::format("--attention-head {}: the model has {} heads (0 to {})",
                                            *o.attention_head, heads, heads - 1));
  }
}

int run_classify(const ClassifyOptions& o) {
  auto model = open_model(o.model);
  engine::PredictOptions predict;
  predict.batch_size = o.model.batch_size;
  predict.workers = workers_or_default(o.model);
  predict.top_k = o.top_k;
  predict.keep_logits = o.logits;
  predict.bf16 = o.model.amp == "bf16";
  predict.max_pixels = o.model.max_pixels;

  check_attention_options(o, *model);
  predict.attention_maps = !o.attention_dir.empty();
  predict.attention_head = o.attention_head;
  std::optional<AttentionPictureWriter> pictures;
  if (predict.attention_maps) pictures.emplace(o, model->info());

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
