#include "engine/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "data/batch_tensor.h"
#include "data/image_folder.h"
#include "data/transforms.h"
#include "engine/ema.h"
#include "engine/evaluate.h"
#include "engine/mixup.h"
#include "engine/model_setup.h"
#include "engine/optimizer.h"
#include "engine/preprocess.h"
#include "engine/runtime.h"
#include "engine/train_step.h"
#include "engine/training_plots.h"
#include "models/atomic_file.h"
#include "models/state_dict.h"

namespace vit::engine {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kTimeBudgetShare = 0.97;  // of --time-limit planned for; the rest absorbs noise

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

at::Generator& cpu_generator() {
  static at::Generator generator = at::detail::getDefaultCPUGenerator();
  return generator;
}

class TrainingRun {
 public:
  TrainingRun(const TrainOptions& options, TrainObserver& observer, const std::atomic<bool>* stop)
      : options_(options), observer_(observer), stop_(stop) {}

  TrainSummary run();

 private:
  void prepare(std::optional<RunState> resumed);
  void make_loaders();
  bool train_epoch();  // false when the run stops before the epoch ends
  void train_batch(data::Batch&& batch);
  void optimizer_step();
  void end_epoch();
  void fit_to_time_limit(double epoch_seconds, double budget_seconds);
  void fit_from_first_steps(double seconds_per_step);
  void refit_after_epoch();
  bool time_is_up() const;
  StepReport step_report(int64_t batches, int64_t first_batch) const;
  void report_failures(std::vector<data::DecodeFailure>& failures);
  void save_weights_as(const std::string& name, VisionTransformer& model);
  void save_state();
  double elapsed() const { return progress_.elapsed_s + seconds_since(session_start_); }

  TrainOptions options_;
  TrainObserver& observer_;
  const std::atomic<bool>* stop_;
  c10::Device device_{c10::kCPU};
  bool bf16_ = false;
  data::DatasetSplit split_;
  ModelMetadata metadata_;
  VisionTransformer model_{nullptr};
  std::unique_ptr<ModelEma> ema_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<data::Loader> train_loader_;
  std::unique_ptr<data::Loader> val_loader_;
  LrSchedule schedule_;
  RunProgress progress_;
  int64_t steps_per_epoch_ = 0;
  int64_t micro_batches_ = 0;  // since the last optimizer step
  Clock::time_point session_start_ = Clock::now();
  Clock::time_point epoch_start_ = Clock::now();
  int64_t session_steps_ = 0;
  Clock::time_point timing_start_;
  bool fitted_ = false;         // the schedule is final: no time limit, already fitted, or resumed
  bool epoch_began_at_start_ = true;  // the epoch in progress was not resumed part-way
  std::vector<double> session_epoch_seconds_;  // wall time of each whole epoch this process trained, with validation
  TrainOutcome outcome_ = TrainOutcome::Completed;
};

void TrainingRun::prepare(std::optional<RunState> resumed) {
  set_threads(options_.threads);
  device_ = select_device(options_.device);
  bf16_ = options_.amp == "bf16";
  torch::manual_seed(options_.seed);

  split_ = data::open_dataset(options_.data_dir, options_.val_dir, options_.val_split, options_.seed);
  spdlog::info("data: {} training images in {} classes from '{}'{}", split_.train.samples.size(),
               split_.train.classes.size(), split_.train.root.string(),
               split_.val ? fmt::format(", {} validation images from '{}'", split_.val->samples.size(),
                                        split_.val->root.string())
                          : std::string(", no validation data"));

  if (resumed) {
    metadata_ = resumed->metadata;
    if (metadata_.class_names != split_.train.classes)
      throw std::invalid_argument("--resume: the classes in '" + options_.data_dir.string() +
                                  "' differ from the run's; resume with the same data");
    model_ = VisionTransformer(metadata_.config);
    load_state_dict(*model_, resumed->model, resume_path(options_.out_dir).string());
  } else {
    metadata_ = training_metadata(options_, split_.train.classes);
    model_ = build_training_model(metadata_, options_);
  }
  model_->to(device_);
  model_->train();
  if (options_.ema) {
    ema_ = std::make_unique<ModelEma>(model_, options_.ema_decay);
    if (resumed) load_state_dict(*ema_->model(), resumed->ema, "EMA weights in the resume state");
  }
  optimizer_ = std::make_unique<AdamW>(named_parameters(*model_), AdamWOptions{0.9, 0.999, 1e-8, options_.weight_decay});

  make_loaders();
  steps_per_epoch_ = (train_loader_->batches_per_epoch() + options_.grad_accum - 1) / options_.grad_accum;
  schedule_.base_lr = options_.lr;
  schedule_.min_lr = options_.min_lr;
  schedule_.warmup_steps = static_cast<int64_t>(std::lround(options_.warmup_epochs * static_cast<double>(steps_per_epoch_)));
  if (resumed) {
    progress_ = resumed->progress;
    optimizer_->load_state(resumed->optimizer, progress_.step);
    std::lock_guard<std::mutex> lock(cpu_generator().mutex());
    cpu_generator().set_state(resumed->rng_state);
  } else {
    progress_.epochs_target = options_.epochs;
    progress_.total_steps = options_.epochs * steps_per_epoch_;
  }
  schedule_.total_steps = progress_.total_steps;
  fitted_ = resumed.has_value() || options_.time_limit <= 0.0;

  const nlohmann::json config{{"options", options_},
                              {"model", {{"config", metadata_.config},
                                         {"preprocess", metadata_.preprocess},
                                         {"class_names", metadata_.class_names}}}};
  write_file_atomically(options_.out_dir / "config.json", [&](std::ostream& out) { out << config.dump(2) << '\n'; });
}

void TrainingRun::make_loaders() {
  const ViTConfig& c = metadata_.config;
  data::LoaderOptions loader;
  loader.batch_size = options_.batch_size;
  loader.image_size = c.image_size;
  loader.workers = options_.workers > 0 ? options_.workers : default_workers();
  loader.seed = options_.seed;
  loader.decode = {static_cast<int>(c.in_chans), options_.max_pixels};
  // The cache budget is shared between the two sets in proportion to their sizes.
  const auto train_images = static_cast<double>(split_.train.samples.size());
  const double val_images = split_.val ? static_cast<double>(split_.val->samples.size()) : 0.0;
  const double budget = static_cast<double>(options_.cache_images_mib) * (1 << 20);
  loader.cache_bytes = static_cast<int64_t>(budget * train_images / (train_images + val_images));

  data::TrainTransformOptions train;
  train.image_size = c.image_size;
  train.scale_min = options_.scale_min;
  train.scale_max = options_.scale_max;
  train.ratio_min = options_.ratio_min;
  train.ratio_max = options_.ratio_max;
  train.hflip = options_.hflip;
  train.auto_augment = {data::parse_auto_augment(options_.auto_augment), options_.ra_num_ops, options_.ra_magnitude};
  train.random_erasing = options_.random_erasing;
  train.interpolation = interpolation_of(metadata_.preprocess);
  train.normalization = normalization_of(metadata_.preprocess);
  train.validate(static_cast<int>(c.in_chans));
  train_loader_ = std::make_unique<data::Loader>(
      split_.train.samples, loader,
      [train](const cv::Mat& image, data::SampleRng& rng, float* out) { data::train_transform(image, train, rng, out); });

  if (split_.val) {
    loader.shuffle = false;
    loader.cache_bytes = static_cast<int64_t>(budget) - loader.cache_bytes;
    val_loader_ = std::make_unique<data::Loader>(
        split_.val->samples, loader,
        eval_sample_transform(eval_transform_options(metadata_.preprocess, c.image_size, c.in_chans)));
  }
}

void TrainingRun::report_failures(std::vector<data::DecodeFailure>& failures) {
  for (const auto& failure : failures) observer_.on_bad_file(failure);
}

void TrainingRun::train_batch(data::Batch&& batch) {
  const int64_t batch_index = batch.index;
  auto tensors = data::to_tensors(std::move(batch), train_loader_->channels(), train_loader_->image_size());
  const auto images = tensors.images.to(device_);
  const auto labels = tensors.labels.to(device_);
  // Mixing depends only on (seed, epoch, batch): the same after a resume.
  std::seed_seq seed{static_cast<uint32_t>(options_.seed), static_cast<uint32_t>(progress_.epoch),
                     static_cast<uint32_t>(batch_index)};
  std::mt19937_64 rng(seed);
  const MixedBatch mixed = mix_batch(images, labels, metadata_.config.num_classes, options_.label_smoothing,
                                     options_.mixup, rng);
  const auto step = forward_backward(model_, mixed.images, mixed.targets, bf16_,
                                     static_cast<double>(options_.grad_accum));

  const auto n = labels.size(0);
  progress_.current.loss_sum += step.loss.item<double>() * static_cast<double>(n);
  progress_.current.correct += step.logits.argmax(1).eq(labels).sum().item<int64_t>();
  progress_.current.seen += n;
}

void TrainingRun::optimizer_step() {
  if (options_.clip_grad > 0.0) torch::nn::utils::clip_grad_norm_(model_->parameters(), options_.clip_grad);
  optimizer_->step(schedule_.at(progress_.step));
  optimizer_->zero_grad();
  if (ema_) ema_->update(model_);
  ++progress_.step;
  micro_batches_ = 0;
}

void TrainingRun::fit_to_time_limit(double epoch_seconds, double budget_seconds) {
  // Whole epochs are fitted, so every epoch ends with its validation and checkpoint.
  const auto more = static_cast<int64_t>(std::max(0.0, budget_seconds) / epoch_seconds);
  const auto epochs = std::clamp<int64_t>(progress_.epoch + more, std::max<int64_t>(1, progress_.epoch), options_.epochs);
  if (epochs != progress_.epochs_target) {
    spdlog::info("time limit {:.0f} s: about {:.1f} s per epoch, so training {} epoch{} instead of {}",
                 options_.time_limit, epoch_seconds, epochs, epochs == 1 ? "" : "s", progress_.epochs_target);
  }
  progress_.epochs_target = epochs;
  progress_.total_steps = epochs * steps_per_epoch_;
  schedule_.total_steps = progress_.total_steps;
}

void TrainingRun::fit_from_first_steps(double seconds_per_step) {
  // An epoch costs its training steps plus a validation pass, estimated at a third of a training step per
  // image (forward only). The time of the steps already taken counts towards the first epoch; 3% of the
  // budget is kept back for noise.
  const double val_images = split_.val ? static_cast<double>(split_.val->samples.size()) : 0.0;
  const double images_per_step = static_cast<double>(options_.batch_size * options_.grad_accum);
  const double epoch_seconds = static_cast<double>(steps_per_epoch_) * seconds_per_step +
                               val_images / images_per_step * seconds_per_step / 3.0;
  fit_to_time_limit(epoch_seconds, kTimeBudgetShare * options_.time_limit - elapsed() +
                                       static_cast<double>(progress_.step) * seconds_per_step);
}

void TrainingRun::refit_after_epoch() {
  // The first estimate comes from a few steps; whole epochs measure the real pace (validation included, and
  // the machine's load as it is now), so the plan is corrected while the learning rate is still being set.
  // The median, not the mean: on a shared machine one epoch slowed by a neighbour would otherwise cost the rest
  // of the run an epoch it has time for.
  std::vector<double> seconds = session_epoch_seconds_;
  std::nth_element(seconds.begin(), seconds.begin() + static_cast<long>(seconds.size() / 2), seconds.end());
  fit_to_time_limit(seconds[seconds.size() / 2], kTimeBudgetShare * options_.time_limit - elapsed());
}

StepReport TrainingRun::step_report(int64_t batches, int64_t first_batch) const {
  StepReport report;
  report.epoch = progress_.epoch + 1;
  report.epochs = progress_.epochs_target;
  report.batch = progress_.next_batch;
  report.batches = batches;
  const auto seen = static_cast<double>(std::max<int64_t>(1, progress_.current.seen));
  report.loss = progress_.current.loss_sum / seen;
  report.accuracy = static_cast<double>(progress_.current.correct) / seen;
  report.lr = schedule_.at(progress_.step - 1);
  report.images_per_s = static_cast<double>(progress_.current.seen) / std::max(1e-9, progress_.current.seconds);
  const double per_batch = seconds_since(epoch_start_) / static_cast<double>(progress_.next_batch - first_batch);
  report.eta_s = per_batch * static_cast<double>(batches - progress_.next_batch);
  return report;
}

bool TrainingRun::time_is_up() const { return options_.time_limit > 0.0 && elapsed() >= options_.time_limit; }

bool TrainingRun::train_epoch() {
  const int64_t batches = train_loader_->batches_per_epoch();
  observer_.on_epoch_start(progress_.epoch + 1, progress_.epochs_target, batches);
  train_loader_->start_epoch(progress_.epoch, progress_.next_batch);
  model_->train();
  epoch_start_ = Clock::now();
  epoch_began_at_start_ = progress_.next_batch == 0;
  const double epoch_seconds_before = progress_.current.seconds;
  const int64_t first_batch = progress_.next_batch;
  while (auto batch = train_loader_->next()) {
    report_failures(batch->failures);
    const bool last = batch->index == batches - 1;
    progress_.next_batch = batch->index + 1;
    if (batch->size > 0) train_batch(std::move(*batch));
    if (++micro_batches_ < options_.grad_accum && !last) continue;

    optimizer_step();
    progress_.current.seconds = epoch_seconds_before + seconds_since(epoch_start_);
    if (++session_steps_ == 3) timing_start_ = Clock::now();  // the first steps warm up allocators and caches
    if (!fitted_ && session_steps_ == 3 + std::min<int64_t>(20, std::max<int64_t>(5, steps_per_epoch_ / 4))) {
      fit_from_first_steps(seconds_since(timing_start_) / static_cast<double>(session_steps_ - 3));
      fitted_ = true;
    }
    observer_.on_step(step_report(batches, first_batch));

    if (stop_ != nullptr && stop_->load()) {
      outcome_ = TrainOutcome::Interrupted;
      return false;
    }
    if (time_is_up()) {
      outcome_ = TrainOutcome::TimeLimit;
      return false;
    }
  }
  return true;
}

void TrainingRun::save_weights_as(const std::string& name, VisionTransformer& model) {
  vit::save_weights(options_.out_dir / name, model, metadata_);
}

void TrainingRun::end_epoch() {
  MetricsRow row;
  row.epoch = progress_.epoch + 1;
  const auto seen = static_cast<double>(std::max<int64_t>(1, progress_.current.seen));
  row.train_loss = progress_.current.loss_sum / seen;
  row.train_acc = static_cast<double>(progress_.current.correct) / seen;
  row.lr = schedule_.at(std::max<int64_t>(0, progress_.step - 1));
  row.images_per_s = static_cast<double>(progress_.current.seen) / std::max(1e-9, progress_.current.seconds);
  row.seconds = progress_.current.seconds;
  if (val_loader_) {
    EvalResult result = evaluate(model_, *val_loader_, device_, bf16_);
    report_failures(result.failures);
    row.val_loss = result.loss;
    row.val_top1 = result.top1;
    row.val_top5 = result.top5;
    if (ema_) {
      EvalResult ema_result = evaluate(ema_->model(), *val_loader_, device_, bf16_);
      row.ema_val_top1 = ema_result.top1;
      row.ema_val_top5 = ema_result.top5;
    }
  }
  save_weights_as("last.safetensors", model_);
  if (ema_) save_weights_as("ema.safetensors", ema_->model());
  // Without validation data the latest weights are the best we know of.
  const double score = val_loader_ ? row.val_top1 : 0.0;
  if (score > progress_.best_top1) {
    progress_.best_top1 = score;
    progress_.best_top5 = val_loader_ ? row.val_top5 : 0.0;
    progress_.best_epoch = row.epoch;
    save_weights_as("best.safetensors", model_);
  }
  progress_.history.push_back(row);
  write_metrics_csv(options_.out_dir / "metrics.csv", progress_.history);
  try {  // a picture is not worth stopping a run for
    write_training_curves(options_.out_dir / "curves.png", progress_.history,
                          "vit train: " + options_.out_dir.filename().string());
  } catch (const std::exception& e) {
    spdlog::warn("curves.png not written: {}", e.what());
  }
  observer_.on_epoch_end(row);

  const bool whole_epoch = progress_.next_batch == train_loader_->batches_per_epoch() && epoch_began_at_start_;
  ++progress_.epoch;
  progress_.next_batch = 0;
  progress_.current = EpochTotals{};
  if (whole_epoch && options_.time_limit > 0.0 && !options_.resume) {
    session_epoch_seconds_.push_back(seconds_since(epoch_start_));
    if (progress_.epoch < progress_.epochs_target) refit_after_epoch();
  }
  save_state();
}

void TrainingRun::save_state() {
  RunState state;
  state.options = options_;
  state.metadata = metadata_;
  state.progress = progress_;
  state.progress.elapsed_s = elapsed();
  state.model = state_dict(*model_);
  if (ema_) state.ema = state_dict(*ema_->model());
  state.optimizer = optimizer_->state();
  {
    std::lock_guard<std::mutex> lock(cpu_generator().mutex());
    state.rng_state = cpu_generator().get_state();
  }
  save_run_state(resume_path(options_.out_dir), state);
}

TrainSummary TrainingRun::run() {
  options_.validate();
  std::optional<RunState> resumed;
  std::error_code error;
  if (options_.resume) {
    const fs::path state_path = resume_path(options_.out_dir);
    if (!fs::exists(state_path, error))
      throw std::invalid_argument("--resume: '" + options_.out_dir.string() + "' holds no run to resume (no " +
                                  state_path.filename().string() + ")");
    resumed = load_run_state(state_path);
    const fs::path data_dir = options_.data_dir;
    const fs::path out_dir = options_.out_dir;
    options_ = resumed->options;  // the run continues exactly as it started
    options_.data_dir = data_dir;
    options_.out_dir = out_dir;
    options_.resume = true;
    if (resumed->progress.epoch >= resumed->progress.epochs_target)
      throw std::invalid_argument("--resume: the run in '" + out_dir.string() + "' already finished its " +
                                  std::to_string(resumed->progress.epochs_target) + " epochs");
  } else if (fs::exists(options_.out_dir / "last.safetensors", error) ||
             fs::exists(resume_path(options_.out_dir), error)) {
    throw std::invalid_argument("--out: '" + options_.out_dir.string() +
                                "' already holds a training run; continue it with --resume or choose another folder");
  }
  fs::create_directories(options_.out_dir, error);
  if (error) throw std::runtime_error("cannot create '" + options_.out_dir.string() + "': " + error.message());

  prepare(std::move(resumed));
  if (progress_.epoch > 0 || progress_.next_batch > 0)
    spdlog::info("resuming at epoch {}, batch {} (step {})", progress_.epoch + 1, progress_.next_batch, progress_.step);

  while (progress_.epoch < progress_.epochs_target) {
    if (!train_epoch()) break;
    end_epoch();
    if (stop_ != nullptr && stop_->load()) {
      outcome_ = TrainOutcome::Interrupted;
      break;
    }
    if (time_is_up() && progress_.epoch < progress_.epochs_target) {
      outcome_ = TrainOutcome::TimeLimit;
      break;
    }
  }
  if (outcome_ != TrainOutcome::Completed && progress_.next_batch > 0) {
    save_weights_as("last.safetensors", model_);  // mid-epoch: the newest weights, and the state to resume from
    save_state();
  }

  TrainSummary summary;
  summary.outcome = outcome_;
  summary.epochs_done = progress_.epoch;
  summary.epochs_target = progress_.epochs_target;
  summary.best_top1 = val_loader_ ? progress_.best_top1 : -1.0;
  summary.best_top5 = val_loader_ ? progress_.best_top5 : -1.0;
  summary.best_epoch = progress_.best_epoch;
  summary.seconds = elapsed();
  summary.bad_files = train_loader_->failed_files() + (val_loader_ ? val_loader_->failed_files() : 0);
  summary.run_dir = options_.out_dir;
  return summary;
}

}  // namespace

TrainSummary train(const TrainOptions& options, TrainObserver& observer, const std::atomic<bool>* stop) {
  return TrainingRun(options, observer, stop).run();
}

}  // namespace vit::engine
