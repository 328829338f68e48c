#include "engine/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/full.h>
#include <ATen/ops/tensor.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "data/batch_tensor.h"
#include "data/image_folder.h"
#include "data/transforms.h"
#include "engine/collectives.h"
#include "engine/data_parallel.h"
#include "engine/ema.h"
#include "engine/evaluate.h"
#include "engine/mixup.h"
#include "engine/model_setup.h"
#include "engine/optimizer.h"
#include "engine/pictures.h"
#include "engine/preprocess.h"
#include "engine/runtime.h"
#include "engine/time_budget.h"
#include "engine/train_step.h"
#include "models/model_cost.h"
#include "models/state_dict.h"
#include "util/atomic_file.h"
#include "util/files.h"

namespace vit::engine {
namespace {

namespace fs = std::filesystem;

// In RUN_DIR while a run writes it, locked (util/files.h's FileLock); removed when the run ends (left, unlocked,
// by a killed one).
constexpr const char* kRunLockName = ".vit-train.lock";

// The numbers every optimizer step agrees on besides the gradients: TrainingRun::average_gradients.
constexpr int64_t kStepSideValues = 4;

at::Generator& cpu_generator() {
  static at::Generator generator = at::detail::getDefaultCPUGenerator();
  return generator;
}

class TrainingRun {
 public:
  TrainingRun(const TrainOptions& options, TrainObserver& observer, const std::atomic<bool>* stop,
              const DistributedEnv& env, const TrainClock& clock)
      : options_(options), observer_(observer), stop_(stop), env_(env), clock_(clock) {}

  TrainSummary run();

 private:
  enum class EpochEnd { Done, TimeSpent, Interrupted };

  void join_processes();
  void open_and_prepare();
  void prepare(std::optional<RunState> resumed);
  void continue_on_world_size(int64_t saved_world_size);
  void make_loaders();
  EpochEnd train_epoch();
  void train_batch(data::Batch&& batch);
  void collect_totals();
  void optimizer_step();
  double next_learning_rate(double now);
  bool tail_due(double now) const;
  // The first cycle's decay ending is not the run's: a --patch-drop-tail is still to come.
  bool tail_pending() const { return options_.patch_drop_tail > 0.0 && progress_.tail_start_step < 0; }
  void begin_tail(double now);
  int64_t first_cycle_steps() const;
  bool validation_due(EpochEnd end);
  bool little_time_left(double elapsed_s, double epoch_train_s);
  void check_epoch_trained(const EpochTotals& totals, const MetricsRow& row) const;
  void end_epoch(bool validate);
  bool any_rank(bool flag);
  double average_gradients();
  EpochTotals summed(const EpochTotals& local);
  bool lead() const { return env_.rank == 0; }  // the process that writes RUN_DIR
  void update_time_reserve();
  int64_t epochs_expected() const;
  StepReport step_report(int64_t batches, int64_t first_batch) const;
  void report_failures(std::vector<data::DecodeFailure>& failures);
  void warn_unlearnable_classes() const;
  void lock_out_dir();
  void save_weights_as(const std::string& name, VisionTransformer& model);
  void save_state();
  std::optional<RunState> open_run_folder();
  double seconds_since(double start) const { return clock_.now_s() - start; }
  double elapsed() const { return progress_.elapsed_s + seconds_since(session_start_); }

  TrainOptions options_;
  TrainObserver& observer_;
  const std::atomic<bool>* stop_;
  DistributedEnv env_;
  const TrainClock& clock_;
  std::unique_ptr<Collectives> group_;         // with several processes
  std::unique_ptr<GradientAverager> averager_;  // with several processes
  // With several processes, agreed at the last optimizer step: some rank was asked to stop, or has spent its time.
  bool step_stop_ = false;
  bool step_spent_ = false;
  int64_t window_samples_ = 0;                 // samples in the gradients since the last optimizer step
  c10::Device device_{c10::kCPU};
  bool bf16_ = false;
  bool created_out_dir_ = false;  // --out did not exist before this run made it
  std::set<size_t> failed_train_samples_;  // indices into split_.train.samples of files that could not be read
  bool classes_checked_ = false;           // warn_unlearnable_classes has run
  std::unique_ptr<FileLock> out_lock_;     // the lead process's on --out: one run at a time writes a run folder
  TestTimeAugmentation val_tta_ = TestTimeAugmentation::kNone;
  data::DatasetSplit split_;
  ModelMetadata metadata_;
  VisionTransformer model_{nullptr};
  std::unique_ptr<ModelEma> ema_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<data::Loader> train_loader_;
  std::unique_ptr<data::Loader> val_loader_;
  LrSchedule schedule_;
  TimeBudget budget_;
  RunProgress progress_;
  int64_t steps_per_epoch_ = 0;
  int64_t micro_batches_ = 0;  // since the last optimizer step
  // The epoch's loss and correct predictions so far, summed on the model's device: reading them back after every
  // step would make the host wait for the GPU each time. Seeded from the totals at the epoch's (re)start, so the
  // sum is the same sequence of additions however often it is read.
  at::Tensor epoch_loss_;
  at::Tensor epoch_correct_;
  double session_start_ = clock_.now_s();
  double epoch_start_ = session_start_;
  double last_report_ = session_start_;
  TrainOutcome outcome_ = TrainOutcome::Completed;
};

void TrainingRun::prepare(std::optional<RunState> resumed) {
  set_threads(options_.threads > 0 || !group_ ? options_.threads : threads_per_process(env_.local_world_size));
  device_ = select_device(options_.device);
  if (device_.is_cuda() && group_) device_ = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank));
  bf16_ = options_.amp == "bf16";
  val_tta_ = parse_test_time_augmentation(options_.val_tta, "--val-tta");
  torch::manual_seed(options_.seed);

  if (options_.val_split > 0.0) {
    if (auto folder = data::validation_folder(options_.data_dir, options_.val_dir))
      throw std::invalid_argument("--val-split cannot be combined with a validation folder ('" + folder->string() +
                                  "')");
  }
  split_ = data::open_dataset(options_.data_dir, options_.val_dir, options_.val_split, options_.seed);
  spdlog::info(
      "data: {} training images in {} classes from '{}'{}", split_.train.samples.size(), split_.train.classes.size(),
      split_.train.root.string(),
      split_.val
          ? fmt::format(
                ", {} validation images from '{}'{}", split_.val->samples.size(), split_.val->root.string(),
                val_tta_ == TestTimeAugmentation::kNone ? "" : ", validated with their mirror images (--val-tta hflip)")
          : std::string(", no validation data") +
                (val_tta_ == TestTimeAugmentation::kNone ? "" : " (--val-tta has nothing to do)"));

  if (resumed) {
    metadata_ = resumed->metadata;
    if (metadata_.class_names != split_.train.classes)
      throw std::invalid_argument("--resume: the classes in '" + options_.data_dir.string() +
                                  "' differ from the run's; resume with the same data");
    model_ = VisionTransformer(metadata_.config);
    load_state_dict(*model_, resumed->model, resume_path(options_.out_dir).string());
  } else {
    metadata_ = training_metadata(options_, split_.train.classes);
    // On the CPU the weights, their gradients and AdamW's two moments share the machine's memory.
    if (device_.is_cpu())
      check_parameters_fit_in_memory(metadata_.config, 4 * sizeof(float),
                                     "training (float32 weights, gradients and AdamW's two moments)");
    model_ = build_training_model(metadata_, options_);
  }
  model_->to(device_);
  model_->train();
  if (group_) broadcast_module(*group_, *model_);  // every replica starts from rank 0's weights
  if (options_.ema) {
    ema_ = std::make_unique<ModelEma>(model_, options_.ema_decay);
    if (resumed) load_state_dict(*ema_->model(), resumed->ema, "EMA weights in the resume state");
  }
  optimizer_ = std::make_unique<AdamW>(named_parameters(*model_),
                                       AdamWOptions{options_.beta1, options_.beta2, 1e-8, options_.weight_decay});
  if (group_) {
    std::vector<at::Tensor> trainable;
    for (const auto& p : model_->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    averager_ = std::make_unique<GradientAverager>(std::move(trainable), kStepSideValues);
  }

  make_loaders();
  steps_per_epoch_ = (train_loader_->batches_per_epoch() + options_.grad_accum - 1) / options_.grad_accum;
  schedule_.base_lr = options_.lr;
  schedule_.min_lr = options_.min_lr;
  schedule_.warmup_steps =
      static_cast<int64_t>(std::lround(options_.warmup_epochs * static_cast<double>(steps_per_epoch_)));
  if (resumed) {
    progress_ = resumed->progress;
    optimizer_->load_state(resumed->optimizer, progress_.step);
    std::lock_guard<std::mutex> lock(cpu_generator().mutex());
    cpu_generator().set_state(resumed->rng_state);
  } else {
    progress_.epochs_target = options_.epochs;
    progress_.total_steps = options_.epochs * steps_per_epoch_;
  }
  if (resumed) continue_on_world_size(resumed->progress.world_size);
  progress_.world_size = env_.world_size;
  if (group_ && !lead()) {
    // Dropout and drop-path draw differently on every rank (rank 0 keeps the run's stream); and the epoch's totals
    // so far, saved summed, are counted once, by rank 0.
    torch::manual_seed(options_.seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(env_.rank) +
                       static_cast<uint64_t>(progress_.step));
    progress_.current.loss_sum = 0.0;
    progress_.current.correct = 0;
    progress_.current.seen = 0;
  }
  schedule_.total_steps = first_cycle_steps();
  budget_ = TimeBudget(options_.time_limit);
  if (schedule_.warmup_steps == 0 && progress_.warmup_end_s < 0.0) progress_.warmup_end_s = 0.0;
  // A state saved before the warm-up's end was recorded: past the warm-up, the decay by time starts now.
  if (progress_.warmup_end_s < 0.0 && progress_.step >= schedule_.warmup_steps)
    progress_.warmup_end_s = progress_.elapsed_s;
  if (options_.patch_drop_tail > 0.0) {
    if (metadata_.config.patch_drop_rate == 0.0)
      throw std::invalid_argument(
          "--patch-drop-tail: the model trains without PatchDropout (--patch-drop 0), so a "
          "tail without it would change nothing");
    if (!budget_.limited() && first_cycle_steps() >= progress_.total_steps)
      throw std::invalid_argument(fmt::format("--patch-drop-tail {:g}: less than one of the run's {} steps",
                                              options_.patch_drop_tail, progress_.total_steps));
    if (schedule_.warmup_steps >= first_cycle_steps() ||
        (budget_.limited() && options_.patch_drop_tail >= 1.0 - TimeBudget::kWarmupShare))
      throw std::invalid_argument(fmt::format(
          "--patch-drop-tail {:g}: the warm-up ({} steps{}) must end before the tail begins (after step {})",
          options_.patch_drop_tail, schedule_.warmup_steps,
          budget_.limited() ? fmt::format(", or {:g}% of --time-limit", 100.0 * TimeBudget::kWarmupShare) : "",
          first_cycle_steps()));
    if (progress_.tail_start_step >= 0) model_->set_patch_drop_rate(0.0);
    if (!resumed)
      spdlog::info(
          "--patch-drop-tail {:g}: PatchDropout {:g} until the last {:.3g}% of the run{}, then every token, the "
          "learning rate restarting at {:g}",
          options_.patch_drop_tail, metadata_.config.patch_drop_rate, 100.0 * options_.patch_drop_tail,
          budget_.limited() ? " (of its steps or its time, whichever comes first)" : "", options_.tail_start_lr());
  }
  if (budget_.limited() && !resumed) {
    spdlog::info(
        "time limit {:g} s: after the warm-up the learning rate decays with the time left (or over the {} "
        "epochs, if they come first); training stops in time to validate and save the last epoch",
        options_.time_limit, options_.epochs);
  }

  const nlohmann::json config{
      {"options", options_},
      {"model",
       {{"config", metadata_.config}, {"preprocess", metadata_.preprocess}, {"class_names", metadata_.class_names}}}};
  if (lead())
    write_file_atomically(options_.out_dir / "config.json", [&](std::ostream& out) { out << config.dump(2) << '\n'; });
}

// A run saved by another number of processes: the epoch's position is carried over by images trained (the rest
// of that epoch is dealt anew, so a few images may be seen twice or not at all in it), and the steps, done and
// left, are recounted at the new global batch.
void TrainingRun::continue_on_world_size(int64_t saved_world_size) {
  if (saved_world_size == env_.world_size) return;
  const int64_t batches = train_loader_->batches_per_epoch();
  const int64_t images_done = progress_.next_batch * options_.batch_size * saved_world_size;
  const int64_t global_batch = options_.batch_size * env_.world_size;
  progress_.next_batch = std::min(batches, (images_done + global_batch - 1) / global_batch);
  // As if the run had always had the new size (AdamW keeps its own count, for its bias correction): the schedule
  // -- warm-up, decay, the --patch-drop-tail boundary -- then goes on from where it was, by images trained.
  // Recounting only the steps left had restarted the decay from a step count of the old size.
  const int64_t saved_step = progress_.step;
  const int64_t steps_in_epoch = (progress_.next_batch + options_.grad_accum - 1) / options_.grad_accum;
  progress_.step = progress_.epoch * steps_per_epoch_ + steps_in_epoch;
  if (progress_.tail_start_step >= 0 && saved_step > 0) {
    progress_.tail_start_step = std::llround(static_cast<double>(progress_.tail_start_step) *
                                             static_cast<double>(progress_.step) / static_cast<double>(saved_step));
  }
  progress_.total_steps = progress_.epochs_target * steps_per_epoch_;
  schedule_.total_steps = first_cycle_steps();
  spdlog::info("resuming a run of {} process{} on {}: epoch {} continues at batch {} of {}, {} steps left", saved_world_size,
               saved_world_size == 1 ? "" : "es", env_.world_size, progress_.epoch + 1, progress_.next_batch, batches,
               progress_.total_steps - progress_.step);
}

void TrainingRun::make_loaders() {
  const ViTConfig& c = metadata_.config;
  data::LoaderOptions loader;
  loader.batch_size = options_.batch_size;
  loader.image_size = c.image_size;
  loader.workers = options_.workers > 0 ? options_.workers : default_workers();
  loader.seed = options_.seed;
  loader.decode = {static_cast<int>(c.in_chans), options_.max_pixels};
  loader.world_size = env_.world_size;
  loader.rank = env_.rank;
  // The cache budget is shared between the two sets in proportion to their sizes, and between the processes of
  // this machine.
  const auto train_images = static_cast<double>(split_.train.samples.size());
  const double val_images = split_.val ? static_cast<double>(split_.val->samples.size()) : 0.0;
  const double budget =
      static_cast<double>(options_.cache_images_mib) * (1 << 20) / static_cast<double>(env_.local_world_size);
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
  train_loader_ = std::make_unique<data::Loader>(split_.train.samples, loader,
                                                 [train](const cv::Mat& image, data::SampleRng& rng, float* out) {
                                                   data::train_transform(image, train, rng, out);
                                                 });

  if (split_.val) {
    loader.shuffle = false;
    loader.even_shares = false;  // every validation image once, summed over the processes
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
  std::vector<uint32_t> keys{static_cast<uint32_t>(options_.seed), static_cast<uint32_t>(progress_.epoch),
                             static_cast<uint32_t>(batch_index)};
  if (group_) keys.push_back(static_cast<uint32_t>(env_.rank));  // each rank mixes its own batch its own way
  std::seed_seq seed(keys.begin(), keys.end());
  std::mt19937_64 rng(seed);
  const MixedBatch mixed =
      mix_batch(images, labels, metadata_.config.num_classes, options_.label_smoothing, options_.mixup, rng);
  const auto step =
      forward_backward(model_, mixed.images, mixed.targets, bf16_, static_cast<double>(options_.grad_accum));

  const auto n = labels.size(0);
  if (!epoch_loss_.defined()) {
    epoch_loss_ = at::full({}, progress_.current.loss_sum, step.loss.options().dtype(at::kDouble));
    epoch_correct_ = at::full({}, progress_.current.correct, labels.options().dtype(at::kLong));
  }
  epoch_loss_.add_(step.loss.to(at::kDouble), static_cast<double>(n));
  epoch_correct_.add_(step.logits.argmax(1).eq(labels).sum());
  progress_.current.seen += n;
  window_samples_ += n;
}

void TrainingRun::collect_totals() {
  if (!epoch_loss_.defined()) return;
  progress_.current.loss_sum = epoch_loss_.item<double>();
  progress_.current.correct = epoch_correct_.item<int64_t>();
}

void TrainingRun::optimizer_step() {
  const double now = average_gradients();
  window_samples_ = 0;
  if (options_.clip_grad > 0.0) clip_grad_norm(model_->parameters(), options_.clip_grad);
  progress_.lr = next_learning_rate(now);
  optimizer_->step(progress_.lr);
  optimizer_->zero_grad();
  if (ema_) ema_->update(model_);
  ++progress_.step;
  micro_batches_ = 0;
  // Decided between steps from the agreed time, so every rank switches before the same step.
  if (tail_due(now)) begin_tail(now);
}

// The learning rate of the step about to be taken: warm-up and cosine decay (to the tail's start with
// --patch-drop-tail), or in the tail its own cosine from --tail-lr; each decay by steps or by time, whichever is
// further along.
double TrainingRun::next_learning_rate(double now) {
  if (progress_.tail_start_step >= 0) {
    const LrSchedule tail{options_.tail_start_lr(), options_.min_lr, 0,
                          std::max<int64_t>(1, progress_.total_steps - progress_.tail_start_step)};
    progress_.decay_time = std::max(progress_.decay_time, budget_.decay_progress(now, progress_.tail_start_s));
    return tail.at(progress_.step - progress_.tail_start_step, 0.0, progress_.decay_time);
  }
  const double warmup_time = progress_.warmup_end_s >= 0.0 ? 1.0 : budget_.warmup_progress(now);
  if (progress_.warmup_end_s < 0.0 && !schedule_.warming_up(progress_.step, warmup_time)) {
    progress_.warmup_end_s = now;
  }
  // The decay never goes back, even when the time kept for the last epoch's end is revised down. It ends where
  // the tail begins: at the training's end without one.
  const double decay_end_s = budget_.tail_start_s(options_.patch_drop_tail);
  progress_.decay_time =
      std::max(progress_.decay_time, budget_.decay_progress(now, progress_.warmup_end_s, decay_end_s));
  return schedule_.at(progress_.step, warmup_time, progress_.decay_time);
}

// --patch-drop-tail: the steps before the tail, the first cycle's length.
int64_t TrainingRun::first_cycle_steps() const {
  const auto tail_steps =
      static_cast<int64_t>(std::llround(options_.patch_drop_tail * static_cast<double>(progress_.total_steps)));
  return progress_.total_steps - tail_steps;
}

bool TrainingRun::tail_due(double now) const {
  if (!tail_pending() || progress_.step >= progress_.total_steps) return false;
  return progress_.step >= first_cycle_steps() ||
         (budget_.limited() && now >= budget_.tail_start_s(options_.patch_drop_tail));
}

void TrainingRun::begin_tail(double now) {
  progress_.tail_start_step = progress_.step;
  progress_.tail_start_s = now;
  progress_.decay_time = 0.0;
  model_->set_patch_drop_rate(0.0);
  spdlog::info(
      "after step {} (epoch {}, {:.0f} s): PatchDropout off for the rest of the run (--patch-drop-tail "
      "{:g}), the learning rate restarting at {:g}",
      progress_.step, progress_.epoch + 1, now, options_.patch_drop_tail, options_.tail_start_lr());
}

// Whether `flag` holds on any rank: decisions that change the loop are taken by all ranks together.
bool TrainingRun::any_rank(bool flag) {
  if (!group_) return flag;
  return !all_ranks_ok(*group_, !flag);
}

// With several processes, averages the gradients over the ranks and agrees, in the same all-reduce, on what the
// loop decides between steps: whether any rank was asked to stop or has spent its time, and the time the learning
// rate follows (the ranks' mean clock) with the time kept back for the last epoch's end (their mean), so that every
// rank computes the same learning rate. Each collective of their own would cost a step a round trip between the
// processes: one all-reduce a step instead of three made the two-process main job's epochs 1.13x faster (README,
// "Several processes"). Returns the time the learning rate follows.
double TrainingRun::average_gradients() {
  if (!averager_) return elapsed();
  const double local = elapsed();
  std::vector<double> side{stop_ != nullptr && stop_->load() ? 1.0 : 0.0, budget_.training_done(local) ? 1.0 : 0.0,
                           local, budget_.reserved_s()};
  averager_->average(*group_, window_samples_, &side);
  step_stop_ = side[0] > 0.0;
  step_spent_ = side[1] > 0.0;
  const double ranks = group_->world_size();
  if (budget_.limited()) budget_.reserve(side[3] / ranks);
  return side[2] / ranks;
}

// This rank's epoch totals added up over the ranks (in double: exact for the counts).
EpochTotals TrainingRun::summed(const EpochTotals& local) {
  if (!group_) return local;
  std::vector<at::Tensor> sums{at::tensor(
      {local.loss_sum, static_cast<double>(local.correct), static_cast<double>(local.seen)}, at::kDouble)};
  group_->all_reduce_sum(sums);
  EpochTotals total = local;
  total.loss_sum = sums[0][0].item<double>();
  total.correct = static_cast<int64_t>(sums[0][1].item<double>());
  total.seen = static_cast<int64_t>(sums[0][2].item<double>());
  return total;
}

void TrainingRun::update_time_reserve() {
  if (!budget_.limited()) return;
  if (progress_.longest_epoch_end_s >= 0.0) {
    budget_.reserve(TimeBudget::reserve_after_timing(progress_.longest_epoch_end_s));
    return;
  }
  const double val_passes =
      split_.val ? static_cast<double>(split_.val->samples.size() * forward_passes(val_tta_)) : 0.0;
  // A step with PatchDropout computes only the tokens it keeps; validation computes them all.
  const double kept = progress_.tail_start_step >= 0 ? 1.0 : 1.0 - metadata_.config.patch_drop_rate;
  const double seconds_per_image =
      progress_.current.seen > 0 ? progress_.current.seconds / static_cast<double>(progress_.current.seen) / kept : 0.0;
  budget_.reserve(TimeBudget::estimate_epoch_end(val_passes, seconds_per_image, count_parameters(metadata_.config),
                                                 ema_ != nullptr));
}

int64_t TrainingRun::epochs_expected() const {
  if (!budget_.limited()) return progress_.epochs_target;
  // With a time limit the run ends when the time is spent: estimated from this epoch's pace.
  const int64_t batches = train_loader_->batches_per_epoch();
  const double done_in_epoch = static_cast<double>(progress_.next_batch) / static_cast<double>(batches);
  const double epoch_seconds =
      done_in_epoch > 0.0 ? progress_.current.seconds / done_in_epoch + std::max(0.0, progress_.longest_epoch_end_s)
                          : 0.0;
  const double at_end =
      budget_.epochs_at_end(static_cast<double>(progress_.epoch) + done_in_epoch, elapsed(), epoch_seconds);
  return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(at_end)), progress_.epoch + 1, progress_.epochs_target);
}

StepReport TrainingRun::step_report(int64_t batches, int64_t first_batch) const {
  StepReport report;
  report.epoch = progress_.epoch + 1;
  report.epochs = epochs_expected();
  report.batch = progress_.next_batch;
  report.batches = batches;
  const auto seen = static_cast<double>(std::max<int64_t>(1, progress_.current.seen));
  report.loss = progress_.current.loss_sum / seen;
  report.accuracy = static_cast<double>(progress_.current.correct) / seen;
  report.lr = progress_.lr;
  // The tail's first step is the one after tail_start_step steps.
  const bool in_tail = progress_.tail_start_step >= 0 && progress_.step > progress_.tail_start_step;
  report.patch_drop = in_tail ? 0.0 : metadata_.config.patch_drop_rate;
  report.images_per_s = static_cast<double>(progress_.current.seen) / std::max(1e-9, progress_.current.seconds);
  const double per_batch = seconds_since(epoch_start_) / static_cast<double>(progress_.next_batch - first_batch);
  report.eta_s = per_batch * static_cast<double>(batches - progress_.next_batch);
  return report;
}

TrainingRun::EpochEnd TrainingRun::train_epoch() {
  const int64_t batches = train_loader_->batches_per_epoch();
  observer_.on_epoch_start(progress_.epoch + 1, progress_.epochs_target, batches);
  train_loader_->start_epoch(progress_.epoch, progress_.next_batch);
  model_->train();
  epoch_start_ = clock_.now_s();
  const double epoch_seconds_before = progress_.current.seconds;
  const int64_t first_batch = progress_.next_batch;
  while (auto batch = train_loader_->next()) {
    for (const auto& failure : batch->failures) failed_train_samples_.insert(failure.sample);
    report_failures(batch->failures);
    const bool last = batch->index == batches - 1;
    progress_.next_batch = batch->index + 1;
    if (batch->size > 0) train_batch(std::move(*batch));
    if (++micro_batches_ < options_.grad_accum && !last) continue;

    optimizer_step();
    progress_.current.seconds = epoch_seconds_before + seconds_since(epoch_start_);
    update_time_reserve();
    // On a GPU the totals are read (a host-device sync) only when a report is due: at most every half second.
    if (device_.is_cpu() || last || seconds_since(last_report_) >= 0.5) {
      collect_totals();
      last_report_ = clock_.now_s();
      observer_.on_step(step_report(batches, first_batch));
    }

    // With several processes, as the ranks agreed at the step (average_gradients).
    const bool stop = group_ ? step_stop_ : stop_ != nullptr && stop_->load();
    const bool spent = group_ ? step_spent_ : budget_.training_done(elapsed());
    if (stop) return EpochEnd::Interrupted;
    if (spent) return EpochEnd::TimeSpent;
  }
  // Once a whole epoch has tried every file (one process: each of several reads only its share).
  if (first_batch == 0 && !group_ && !classes_checked_) {
    warn_unlearnable_classes();
    classes_checked_ = true;
  }
  return EpochEnd::Done;
}

// A class none of whose training images can be read is never learnt, yet the run would go on and validate as if
// it were; said once (a set with no readable image at all stops the run in check_epoch_trained instead).
void TrainingRun::warn_unlearnable_classes() const {
  const auto& samples = split_.train.samples;
  if (failed_train_samples_.empty() || failed_train_samples_.size() == samples.size()) return;
  const auto& classes = split_.train.classes;
  std::vector<int64_t> total(classes.size(), 0);
  std::vector<int64_t> failed(classes.size(), 0);
  for (const auto& sample : samples) ++total[static_cast<size_t>(sample.label)];
  for (size_t index : failed_train_samples_) ++failed[static_cast<size_t>(samples[index].label)];
  for (size_t c = 0; c < classes.size(); ++c) {
    if (total[c] > 0 && failed[c] == total[c])
      spdlog::warn("class '{}' has no readable training image (all {} failed): the model cannot learn it", classes[c],
                   total[c]);
  }
}

void TrainingRun::save_weights_as(const std::string& name, VisionTransformer& model) {
  if (lead()) vit::save_weights(options_.out_dir / name, model, metadata_);
}

// Whether the epoch just trained is validated: every --val-every-th, and the run's last. That one is the epoch
// --epochs ends with, the one the time limit stopped, or one after which so little time is left that the run
// ends (TimeBudget::stop_after_epoch), judged as if its end took as long as the longest validated one so far. An
// epoch ended without validation never ends the run (run() holds to that): were the guess wrong, the next epoch
// trains until the time is spent, and is validated. With a time limit the first epoch is validated too: from then
// on the time kept back for the last epoch's end comes from a timed validation, not from an estimate.
bool TrainingRun::validation_due(EpochEnd end) {
  if (!val_loader_) return true;  // nothing to skip: every epoch end is alike
  const int64_t number = progress_.epoch + 1;
  if (number % options_.val_every == 0 || number >= progress_.epochs_target || end == EpochEnd::TimeSpent ||
      (number == 1 && budget_.limited()))
    return true;
  const double train_s = progress_.next_batch == train_loader_->batches_per_epoch() ? progress_.current.seconds
                                                                                    : progress_.last_epoch_train_s;
  return little_time_left(elapsed() + std::max(0.0, progress_.longest_epoch_end_s), train_s);
}

// Whether the run ends at `elapsed_s`, after an epoch that trained for `epoch_train_s`: its time spent, or too little
// left for another (TimeBudget::stop_after_epoch; the first cycle's decay does not count while a tail is to come).
bool TrainingRun::little_time_left(double elapsed_s, double epoch_train_s) {
  return any_rank(budget_.stop_after_epoch(elapsed_s, tail_pending() ? 0.0 : progress_.decay_time, epoch_train_s));
}

// An epoch that read no image, or whose loss is no longer a number, has nothing worth saving: the run stops before
// its weights replace the last good ones (and before NaN logits, whose arg-max is class 0, score as a validation).
// Every rank sees the same summed totals, so all of them stop.
void TrainingRun::check_epoch_trained(const EpochTotals& totals, const MetricsRow& row) const {
  const int64_t epoch = progress_.epoch + 1;
  if (totals.seen == 0 && progress_.next_batch == train_loader_->batches_per_epoch())
    throw std::runtime_error(fmt::format(
        "epoch {} trained on no image: none of the {} training files could be read (the warnings above say why)", epoch,
        train_loader_->num_samples()));
  if (!std::isfinite(row.train_loss)) {
    const std::string kept = epoch == 1
                                 ? std::string("no weights are saved")
                                 : fmt::format("'{}' keeps epoch {}'s weights", options_.out_dir.string(), epoch - 1);
    throw std::runtime_error(
        fmt::format("training diverged: epoch {}'s mean training loss is {}, and {}. Start again (another --out) with "
                    "a lower --lr, a longer --warmup-epochs or --clip-grad",
                    epoch, row.train_loss, kept));
  }
}

void TrainingRun::end_epoch(bool validate) {
  const double end_start = clock_.now_s();
  collect_totals();
  const EpochTotals totals = summed(progress_.current);
  MetricsRow row;
  row.epoch = progress_.epoch + 1;
  const auto seen = static_cast<double>(std::max<int64_t>(1, totals.seen));
  row.train_loss = totals.loss_sum / seen;
  row.train_acc = static_cast<double>(totals.correct) / seen;
  row.lr = progress_.lr;
  row.images_per_s = static_cast<double>(totals.seen) / std::max(1e-9, totals.seconds);
  row.seconds = totals.seconds;
  check_epoch_trained(totals, row);
  if (val_loader_ && validate) {
    EvalResult result = evaluate(model_, *val_loader_, device_, bf16_, val_tta_, group_.get());
    report_failures(result.failures);
    row.val_loss = result.loss;
    row.val_top1 = result.top1;
    row.val_top5 = result.top5;
    if (ema_) {
      EvalResult ema_result = evaluate(ema_->model(), *val_loader_, device_, bf16_, val_tta_, group_.get());
      row.ema_val_top1 = ema_result.top1;
      row.ema_val_top5 = ema_result.top5;
    }
  }
  const double validated = clock_.now_s();
  save_weights_as("last.safetensors", model_);
  if (ema_) save_weights_as("ema.safetensors", ema_->model());
  // Without validation data the latest weights are the best we know of.
  const double score = val_loader_ ? row.val_top1 : 0.0;
  if ((validate && score > progress_.best_top1) || !val_loader_) {
    progress_.best_top1 = score;
    progress_.best_top5 = val_loader_ ? row.val_top5 : 0.0;
    progress_.best_epoch = row.epoch;
    save_weights_as("best.safetensors", model_);
  }
  progress_.history.push_back(row);
  const double saved = clock_.now_s();
  if (lead()) {
    write_metrics_csv(options_.out_dir / "metrics.csv", progress_.history);
    try {  // a picture is not worth stopping a run for
      write_training_curves(options_.out_dir / "curves.png", progress_.history,
                            "vit train: " + options_.out_dir.filename().string());
    } catch (const std::exception& e) {
      spdlog::warn("curves.png not written: {}", e.what());
    }
  }
  const double drawn = clock_.now_s();
  observer_.on_epoch_end(row);
  if (progress_.epoch == 0 && progress_.next_batch == train_loader_->batches_per_epoch()) {
    spdlog::info("image cache (--cache-images {} MiB): decoded training images {}", options_.cache_images_mib,
                 train_loader_->cache().summary());
  }

  if (progress_.next_batch == train_loader_->batches_per_epoch())
    progress_.last_epoch_train_s = progress_.current.seconds;
  ++progress_.epoch;
  progress_.next_batch = 0;
  progress_.current = EpochTotals{};
  epoch_loss_ = at::Tensor();
  epoch_correct_ = at::Tensor();
  // Timed up to here; the resume state saved below records it, so a resumed run keeps back as much. Only a validated
  // end counts: the time kept back is for the last epoch's, which is always validated.
  if (validate) progress_.longest_epoch_end_s = std::max(progress_.longest_epoch_end_s, seconds_since(end_start) + 0.1);
  const double state_start = clock_.now_s();
  save_state();
  spdlog::debug(
      "epoch {} end: validation {:.2f} s, weights files {:.2f} s, metrics and curves {:.2f} s, resume state "
      "{:.2f} s",
      progress_.epoch, validated - end_start, saved - validated, drawn - saved, seconds_since(state_start));
  update_time_reserve();
}

// Called by every rank (the totals are summed); rank 0 writes, and the others wait until the file is complete.
void TrainingRun::save_state() {
  collect_totals();
  const EpochTotals totals = summed(progress_.current);
  if (!lead()) {
    group_->barrier();
    return;
  }
  RunState state;
  state.options = options_;
  state.metadata = metadata_;
  state.progress = progress_;
  state.progress.current = totals;
  state.progress.elapsed_s = elapsed();
  state.model = state_dict(*model_);
  if (ema_) state.ema = state_dict(*ema_->model());
  state.optimizer = optimizer_->state();
  {
    std::lock_guard<std::mutex> lock(cpu_generator().mutex());
    state.rng_state = cpu_generator().get_state();
  }
  save_run_state(resume_path(options_.out_dir), state);
  if (group_) group_->barrier();
}

// The run folder to train in: a fresh one, or with --resume the saved state, whose options then replace the
// command line's (the run continues exactly as it started) except for where the data and the run folder are.
// Two runs writing one folder would interleave checkpoints (a --resume of a run still going in another terminal,
// or the same command started twice): the lead process locks it, before reading a state another run may be writing.
void TrainingRun::lock_out_dir() {
  if (!lead() || out_lock_) return;
  out_lock_ = std::make_unique<FileLock>(options_.out_dir / kRunLockName);
  if (out_lock_->busy())
    throw std::invalid_argument(
        "--out: '" + options_.out_dir.string() + "' is in use by another vit train" +
        (out_lock_->holder().empty() ? std::string() : " (process " + out_lock_->holder() + ")") +
        "; wait for it to end or choose another folder");
}

std::optional<RunState> TrainingRun::open_run_folder() {
  std::optional<RunState> resumed;
  std::error_code error;
  if (fs::is_directory(options_.out_dir, error)) lock_out_dir();
  // torchrun --max_restarts: a restarted worker group continues from the state its predecessor saved.
  if (!options_.resume && env_.restart_count > 0 && fs::exists(resume_path(options_.out_dir), error)) {
    spdlog::info("torchrun restart {}: resuming the run saved in '{}'", env_.restart_count, options_.out_dir.string());
    options_.resume = true;
  }
  if (options_.resume) {
    const fs::path state_path = resume_path(options_.out_dir);
    if (!fs::exists(state_path, error))
      throw std::invalid_argument("--resume: '" + options_.out_dir.string() + "' holds no run to resume (no " +
                                  state_path.filename().string() + ")");
    resumed = load_run_state(state_path);
    const TrainOptions given = options_;
    options_ = resumed->options;
    options_.data_dir = given.data_dir;
    options_.out_dir = given.out_dir;
    // How the processes meet is a property of this launch, not of the run.
    options_.dist_backend = given.dist_backend;
    options_.dist_timeout = given.dist_timeout;
    const fs::path& out_dir = options_.out_dir;
    options_.resume = true;
    if (resumed->progress.epoch >= resumed->progress.epochs_target) {
      throw std::invalid_argument("--resume: the run in '" + out_dir.string() + "' already finished its " +
                                  std::to_string(resumed->progress.epochs_target) + " epochs" +
                                  (options_.epochs > resumed->progress.epochs_target
                                       ? fmt::format(" (it used its --time-limit of {:g} s)", options_.time_limit)
                                       : std::string()));
    }
  } else {
    // Any file a run's epochs write marks a run, even one trimmed down to its best weights: a new run would
    // overwrite it. (Not config.json: the lead process writes it while preparing, perhaps before another process
    // has looked here; a folder holding only that is a run that never finished an epoch.)
    const fs::path& out = options_.out_dir;
    for (const fs::path& file : {resume_path(out), out / "last.safetensors", out / "best.safetensors",
                                 out / "ema.safetensors", out / "metrics.csv", out / "curves.png"}) {
      if (fs::exists(file, error))
        throw std::invalid_argument("--out: '" + out.string() +
                                    "' already holds a training run; continue it with --resume or choose another "
                                    "folder (a new run would overwrite its " +
                                    file.filename().string() + ")");
    }
  }
  created_out_dir_ = !fs::exists(options_.out_dir, error);
  fs::create_directories(options_.out_dir, error);
  if (error) throw std::runtime_error("cannot create '" + options_.out_dir.string() + "': " + error.message());
  lock_out_dir();
  return resumed;
}

// Joins the other processes before anything else, so that a failure on one rank reaches all of them.
void TrainingRun::join_processes() {
  if (!env_.distributed()) return;
  CollectivesOptions collectives;
  collectives.backend = options_.dist_backend;
  collectives.cuda = options_.device == "cuda";
  collectives.timeout = std::chrono::milliseconds(static_cast<int64_t>(options_.dist_timeout * 1000.0));
  group_ = Collectives::connect(env_, collectives);
  spdlog::info("rank {} of {} (local {} of {}, {}): joined over {} through {}:{}{}", env_.rank, env_.world_size,
               env_.local_rank, env_.local_world_size, env_.launcher, group_->backend(), env_.master_addr,
               env_.master_port, group_->sums_in_shared_memory() ? "; gradients summed in shared memory" : "");
}

// Every rank checks and reads the run folder and prepares; if one fails, all stop, the others saying which.
void TrainingRun::open_and_prepare() {
  std::exception_ptr failure;
  try {
    prepare(open_run_folder());
  } catch (...) {
    failure = std::current_exception();
    // A run that never started leaves no empty folder behind (remove() takes a folder only when it is empty).
    std::error_code ignored;
    out_lock_.reset();  // removes the lock file if this process held it, never another's
    if (created_out_dir_) fs::remove(options_.out_dir, ignored);
  }
  if (group_ && !all_ranks_ok(*group_, failure == nullptr) && !failure)
    throw std::runtime_error("rank " + std::to_string(env_.rank) +
                             ": another rank could not start the run (its error says why)");
  if (failure) std::rethrow_exception(failure);
  if (group_ && lead())
    spdlog::info("{} processes x {} images per batch = {} images per step{}", env_.world_size, options_.batch_size,
                 env_.world_size * options_.batch_size * options_.grad_accum,
                 options_.grad_accum > 1 ? fmt::format(" ({} accumulated batches)", options_.grad_accum) : "");
}

TrainSummary TrainingRun::run() {
  options_.validate();
  join_processes();
  open_and_prepare();
  if (options_.resume)
    spdlog::info("resuming at epoch {}, batch {} (step {})", progress_.epoch + 1, progress_.next_batch, progress_.step);
  else
    save_state();  // before any weights file: from the first last.safetensors on, --resume works wherever a kill lands

  while (progress_.epoch < progress_.epochs_target) {
    const EpochEnd end = train_epoch();
    if (end == EpochEnd::Interrupted) {
      outcome_ = TrainOutcome::Interrupted;
      save_weights_as("last.safetensors", model_);  // mid-epoch: the newest weights, and the state to resume from
      save_state();
      break;
    }
    // After the time is spent too: the last, partial epoch is validated and saved like any other.
    const bool validate = validation_due(end);
    end_epoch(validate);
    // Only a validated epoch may be the last (validation_due decides with this rule in mind).
    const bool time_spent =
        end == EpochEnd::TimeSpent || (validate && little_time_left(elapsed(), progress_.last_epoch_train_s) &&
                                       progress_.epoch < progress_.epochs_target);
    if (time_spent) {
      outcome_ = TrainOutcome::TimeLimit;
      if (progress_.epochs_target != progress_.epoch) {  // the run's final length, in the state too (for --resume)
        progress_.epochs_target = progress_.epoch;
        save_state();
      }
      break;
    }
    if (any_rank(stop_ != nullptr && stop_->load())) {
      outcome_ = TrainOutcome::Interrupted;
      break;
    }
  }
  if (group_) group_->barrier();  // no rank leaves while another may still need it

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

double TrainClock::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

TrainSummary train(const TrainOptions& options, TrainObserver& observer, const std::atomic<bool>* stop,
                   const DistributedEnv& env, const TrainClock& clock) {
  return TrainingRun(options, observer, stop, env, clock).run();
}

}  // namespace vit::engine
