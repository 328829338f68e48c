// Training end to end on a small generated dataset: it learns, writes its run folder, survives a bad file, a run
// interrupted and resumed ends bit-identical to an uninterrupted one, and a time-limited run spends its budget.

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "engine/run_state.h"
#include "engine/trainer.h"
#include "models/safetensors.h"
#include "models/vit_weights_file.h"
#include "tests/catch.h"
#include "tests/error_of.h"
#include "tests/temp_dir.h"

using vit::test::Contains;
using vit::test::TempDir;

namespace vit::engine {
namespace {

namespace fs = std::filesystem;

// Three classes told apart by their dominant colour, under per-pixel noise: learnable in a few epochs.
void write_dataset(const fs::path& root, int train_per_class, int val_per_class) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> noise(0, 90);
  const char* classes[] = {"blue", "green", "red"};
  for (int label = 0; label < 3; ++label) {
    for (const auto& [split, count] : {std::pair<const char*, int>{"train", train_per_class}, {"val", val_per_class}}) {
      const fs::path dir = root / split / classes[label];
      fs::create_directories(dir);
      for (int i = 0; i < count; ++i) {
        cv::Mat image(20, 20, CV_8UC3);
        for (int y = 0; y < 20; ++y) {
          for (int x = 0; x < 20; ++x) {
            cv::Vec3b p(static_cast<uint8_t>(noise(rng)), static_cast<uint8_t>(noise(rng)),
                        static_cast<uint8_t>(noise(rng)));
            p[label] = static_cast<uint8_t>(p[label] + 150);  // BGR order: blue, green, red
            image.at<cv::Vec3b>(y, x) = p;
          }
        }
        REQUIRE(cv::imwrite((dir / (std::to_string(i) + ".png")).string(), image));
      }
    }
  }
}

TrainOptions tiny_options(const fs::path& data, const fs::path& out) {
  TrainOptions o;
  o.data_dir = data;
  o.out_dir = out;
  o.model = "vit_mini_patch4_32";
  o.overrides.image_size = 16;
  o.overrides.embed_dim = 32;
  o.overrides.depth = 2;
  o.overrides.num_heads = 2;
  o.epochs = 3;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.warmup_epochs = 0.5;
  o.scale_min = 0.5;
  o.threads = 1;
  o.workers = 2;
  return o;
}

class Recorder : public TrainObserver {
 public:
  explicit Recorder(std::atomic<bool>* stop = nullptr, int64_t stop_after_steps = -1)
      : stop_(stop), stop_after_(stop_after_steps) {}
  void on_step(const StepReport&) override {
    if (stop_ != nullptr && ++steps_ == stop_after_) stop_->store(true);
  }
  void on_epoch_end(const MetricsRow& row) override { rows.push_back(row); }
  void on_bad_file(const data::DecodeFailure& failure) override { bad.push_back(failure); }

  std::vector<MetricsRow> rows;
  std::vector<data::DecodeFailure> bad;

 private:
  std::atomic<bool>* stop_;
  int64_t stop_after_;
  int64_t steps_ = 0;
};

// A tiny run in `dir`/run, stopped in the middle of its second epoch (4 steps per epoch); its options, to resume.
TrainOptions interrupted_run(const TempDir& dir) {
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  std::atomic<bool> stop{false};
  Recorder first(&stop, 6);
  REQUIRE(train(o, first, &stop).outcome == TrainOutcome::Interrupted);
  return o;
}

}  // namespace

TEST_CASE("training learns a small dataset and writes its run folder", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 24, 8);
  vit::test::write_bytes(dir / "data/train/red/broken.png", "this is not a png");
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 6;
  o.ema = true;
  o.ema_decay = 0.9;
  Recorder recorder;
  const auto summary = train(o, recorder);

  CHECK(summary.outcome == TrainOutcome::Completed);
  CHECK(summary.epochs_done == 6);
  CHECK(summary.best_top1 >= 0.8);  // chance is 1/3
  CHECK(summary.bad_files == 1);
  REQUIRE(recorder.bad.size() == 1);
  CHECK_THAT(recorder.bad[0].reason, Contains("broken.png': not an image in a supported format"));
  REQUIRE(recorder.rows.size() == 6);
  CHECK(recorder.rows.back().train_loss < recorder.rows.front().train_loss);
  CHECK(recorder.rows.back().ema_val_top1 >= 0.0);

  const auto best = load_weights(dir / "run/best.safetensors");
  CHECK(best.metadata.class_names == std::vector<std::string>{"blue", "green", "red"});
  CHECK(best.metadata.config.image_size == 16);
  CHECK(fs::exists(dir / "run/last.safetensors"));
  CHECK(fs::exists(dir / "run/ema.safetensors"));
  std::ifstream csv(dir / "run/metrics.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header ==
        "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,ema_val_top1,ema_val_top5,lr,images_per_s,seconds");
  int lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == 6);
  const auto config = nlohmann::json::parse(std::ifstream(dir / "run/config.json"));
  CHECK(config["options"]["model"] == "vit_mini_patch4_32");
  CHECK(config["model"]["config"]["embed_dim"] == 32);

  // The run folder is never overwritten by a new run; finished runs cannot be resumed.
  CHECK_THROWS_WITH(train(o, recorder), Contains("already holds a training run; continue it with --resume"));
  o.resume = true;
  CHECK_THROWS_WITH(train(o, recorder), Contains("already finished its 6 epochs"));
}

TEST_CASE("AdamW's betas (--opt-betas) reach the optimizer and are written to the run's config", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "default");
  o.epochs = 1;
  Recorder first;
  REQUIRE(train(o, first).outcome == TrainOutcome::Completed);
  o.out_dir = dir / "betas";
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  Recorder second;
  REQUIRE(train(o, second).outcome == TrainOutcome::Completed);

  // The same seed and data: only the optimizer's averages differ, so every trained weight does.
  const auto a = read_safetensors(dir / "default/last.safetensors").tensors;
  const auto b = read_safetensors(dir / "betas/last.safetensors").tensors;
  CHECK_FALSE(torch::equal(a.at("patch_embed.proj.weight"), b.at("patch_embed.proj.weight")));
  CHECK_FALSE(torch::equal(a.at("head.weight"), b.at("head.weight")));
  const auto config = nlohmann::json::parse(std::ifstream(dir / "betas/config.json"));
  CHECK(config["options"]["beta1"] == 0.8);
  CHECK(config["options"]["beta2"] == 0.95);
}

TEST_CASE("a run interrupted mid-epoch and resumed ends bit-identical to an uninterrupted one", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "straight");
  o.mixup.mixup_alpha = 0.4;  // randomness in mixing, dropout and stochastic depth must all be restored
  o.beta2 = 0.95;             // and options beside the defaults, from the resume state
  o.overrides.drop_path = 0.1;
  o.overrides.drop_rate = 0.1;
  Recorder straight;
  REQUIRE(train(o, straight).outcome == TrainOutcome::Completed);

  o.out_dir = dir / "interrupted";
  std::atomic<bool> stop{false};
  Recorder first(&stop, 6);  // 4 steps per epoch: stop in the middle of epoch 2
  const auto stopped = train(o, first, &stop);
  REQUIRE(stopped.outcome == TrainOutcome::Interrupted);
  CHECK(stopped.epochs_done == 1);
  o.resume = true;
  Recorder second;
  REQUIRE(train(o, second).outcome == TrainOutcome::Completed);

  const auto a = read_safetensors(dir / "straight/last.safetensors").tensors;
  const auto b = read_safetensors(dir / "interrupted/last.safetensors").tensors;
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    INFO(name);
    CHECK(torch::equal(tensor, b.at(name)));
  }
  REQUIRE(second.rows.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(second.rows[i].train_loss == straight.rows[i + 1].train_loss);
    CHECK(second.rows[i].val_top1 == straight.rows[i + 1].val_top1);
  }
}

namespace {

// A clock that moves only with the training steps: each takes `step_s`, and steps `first`..`last` (1-based) take
// `extra_s` more, as a busy neighbour would slow them. A time-limited schedule is so checked step by step, the same
// on a loaded machine as on an idle one (validating and saving take no time on it). Records every step's learning
// rate, PatchDropout rate and time; with `stop`, asks for a stop after `stop_after` steps.
class SteppedClock : public TrainObserver, public TrainClock {
 public:
  explicit SteppedClock(double step_s) : step_s_(step_s) {}
  SteppedClock& slow(int64_t first, int64_t last, double extra_s) {
    first_ = first;
    last_ = last;
    extra_s_ = extra_s;
    return *this;
  }
  SteppedClock& stop_after(int64_t steps, std::atomic<bool>* stop) {
    stop_after_ = steps;
    stop_ = stop;
    return *this;
  }

  double now_s() const override { return now_; }
  void on_step(const StepReport& report) override {
    lrs.push_back(report.lr);
    patch_drops.push_back(report.patch_drop);
    times.push_back(now_ - kOrigin);
    const auto step = static_cast<int64_t>(lrs.size());
    now_ += step_s_ + (step >= first_ && step <= last_ ? extra_s_ : 0.0);
    if (stop_ != nullptr && step == stop_after_) stop_->store(true);
  }
  void on_epoch_end(const MetricsRow& row) override { rows.push_back(row); }

  std::vector<double> lrs;
  std::vector<double> patch_drops;  // the rate each step trained with
  std::vector<double> times;        // seconds since the run began, when each step was taken
  std::vector<MetricsRow> rows;

 private:
  static constexpr double kOrigin = 1000.0;  // any
  double step_s_;
  double now_ = kOrigin;
  int64_t first_ = 0, last_ = -1;
  double extra_s_ = 0.0;
  int64_t stop_after_ = -1;
  std::atomic<bool>* stop_ = nullptr;
};

}  // namespace

TEST_CASE("with a time limit, the schedule runs on time through a slow stretch and anneals at the limit",
          "[training][time_limit]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 100000;  // never reached: the time decides
  o.time_limit = 8.0;
  o.min_lr = 1e-5;
  SteppedClock observer(0.05);
  observer.slow(10, 30, 0.1);  // two seconds of slow steps, early on
  const auto summary = train(o, observer, nullptr, {}, observer);

  CHECK(summary.outcome == TrainOutcome::TimeLimit);
  // The whole budget is used, and not overrun: the time the last validation and save take is kept back.
  CHECK(summary.seconds <= o.time_limit + 0.5);  // the last validation and save cannot be cut short
  CHECK(summary.seconds >= 0.85 * o.time_limit);
  REQUIRE(observer.lrs.size() > 60);
  // Warm-up (half an epoch: 2 steps), then a decay that never rises ...
  CHECK(observer.lrs[1] == Approx(o.lr));
  for (size_t i = 2; i < observer.lrs.size(); ++i) REQUIRE(observer.lrs[i] <= observer.lrs[i - 1]);
  // ... that the slow stretch did not cut short: a plan of epochs made from the slow pace would finish its cosine
  // early and idle at the minimum; following the time, the rate comes within 1% of its minimum (the last ~6% of
  // the decay's time) only in the last quarter of the steps. (No fixed rate at a fixed step: how far the time has
  // gone by then depends on the machine's load.)
  const double near_min = o.min_lr + 0.01 * (o.lr - o.min_lr);
  const auto first_near_min =
      std::find_if(observer.lrs.begin(), observer.lrs.end(), [&](double lr) { return lr <= near_min; }) -
      observer.lrs.begin();
  CHECK(static_cast<double>(first_near_min) >= 0.75 * static_cast<double>(observer.lrs.size()));
  // ... and reached the minimum when the time was spent.
  CHECK(observer.lrs.back() - o.min_lr < 0.05 * (o.lr - o.min_lr));
  // The last (partial) epoch was validated and saved like the others.
  REQUIRE_FALSE(observer.rows.empty());
  CHECK(observer.rows.back().val_top1 >= 0.0);
  CHECK(observer.rows.back().lr == observer.lrs.back());
  CHECK(summary.epochs_done == static_cast<int64_t>(observer.rows.size()));
  CHECK(fs::exists(dir / "run/last.safetensors"));

  // Spent: a resume has nothing left to do.
  o.resume = true;
  CHECK_THROWS_WITH(train(o, observer, nullptr, {}, observer), Contains("epochs (it used its --time-limit of 8 s)"));
}

TEST_CASE("a time limit shorter than the warm-up still warms up, decays and anneals", "[training][time_limit]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 100000;
  o.warmup_epochs = 1000;  // far more than the time allows
  o.time_limit = 4.0;
  o.min_lr = 1e-5;
  SteppedClock observer(0.05);
  REQUIRE(train(o, observer, nullptr, {}, observer).outcome == TrainOutcome::TimeLimit);
  REQUIRE(observer.lrs.size() > 20);
  // The warm-up ends by time (a tenth of it) at the peak rate, then the decay reaches the minimum at the limit.
  const double peak = *std::max_element(observer.lrs.begin(), observer.lrs.end());
  CHECK(peak > 0.95 * o.lr);
  CHECK(peak <= o.lr);
  CHECK(observer.lrs.back() - o.min_lr < 0.05 * (o.lr - o.min_lr));
}

TEST_CASE("a time-limited run interrupted and resumed keeps its schedule: the rate never rises",
          "[training][time_limit]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 100000;
  o.time_limit = 6.0;
  o.min_lr = 1e-5;
  std::atomic<bool> stop{false};
  SteppedClock first(0.05);
  first.stop_after(60, &stop);  // part-way: after 15 epochs of 4 steps, 3 of the 6 seconds
  REQUIRE(train(o, first, &stop, {}, first).outcome == TrainOutcome::Interrupted);
  o.resume = true;
  SteppedClock after(0.05);
  REQUIRE(train(o, after, nullptr, {}, after).outcome == TrainOutcome::TimeLimit);
  REQUIRE(after.lrs.size() > 10);
  // The rate the interrupted run had reached is where the resumed one goes on from, downwards.
  const auto state = load_run_state(dir / "run/resume.safetensors");
  for (size_t i = 1; i < after.lrs.size(); ++i) REQUIRE(after.lrs[i] <= after.lrs[i - 1]);
  CHECK(after.lrs.back() - o.min_lr < 0.05 * (o.lr - o.min_lr));
  CHECK(state.progress.epochs_target == state.progress.epoch);  // finished: a further --resume refuses
  CHECK(state.progress.elapsed_s <= o.time_limit + 0.5);
}

namespace {

// The index of the first step trained with every token (PatchDropout 0), or the step count if none was.
size_t first_all_token_step(const std::vector<double>& patch_drops) {
  return static_cast<size_t>(std::find(patch_drops.begin(), patch_drops.end(), 0.0) - patch_drops.begin());
}

}  // namespace

TEST_CASE("a run with --patch-drop-tail ends with every token, in a cosine cycle of its own from --tail-lr",
          "[training][patch_drop_tail]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 4;  // 4 steps per epoch: 16 steps, the last 4 the tail
  o.overrides.patch_drop = 0.5;
  o.patch_drop_tail = 0.25;
  o.min_lr = 1e-5;
  SteppedClock observer(0.05);  // no time limit: the clock only keeps the test's records
  REQUIRE(train(o, observer, nullptr, {}, observer).outcome == TrainOutcome::Completed);
  const auto& lrs = observer.lrs;
  REQUIRE(lrs.size() == 16);
  REQUIRE(first_all_token_step(observer.patch_drops) == 12);
  for (size_t i = 0; i < 16; ++i) CHECK(observer.patch_drops[i] == (i < 12 ? 0.5 : 0.0));
  // The first cycle warms up (2 steps) and decays over its 12 steps, short of the minimum by one step's worth ...
  CHECK(lrs[1] == Approx(o.lr));
  for (size_t i = 3; i < 12; ++i) REQUIRE(lrs[i] < lrs[i - 1]);
  CHECK(lrs[11] < 0.03 * o.lr);
  // ... then the tail restarts at --tail-lr (default --lr / 4) and decays again, to near the minimum at the end.
  CHECK(o.tail_start_lr() == Approx(o.lr / 4.0));
  CHECK(lrs[12] == Approx(o.lr / 4.0));
  for (size_t i = 13; i < 16; ++i) REQUIRE(lrs[i] < lrs[i - 1]);
  CHECK(lrs[15] - o.min_lr < 0.15 * (o.tail_start_lr() - o.min_lr));
  // The last epoch's row shows the tail's rate; the weights files keep the model's PatchDropout for whoever
  // trains them on.
  REQUIRE(observer.rows.size() == 4);
  CHECK(observer.rows.back().lr == lrs.back());
  CHECK(load_weights(dir / "run/last.safetensors").metadata.config.patch_drop_rate == 0.5);
}

TEST_CASE("with a time limit, --patch-drop-tail begins when the last share of the time is left, slow stretch or not",
          "[training][patch_drop_tail][time_limit]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 100000;  // the time decides
  o.time_limit = 8.0;
  o.min_lr = 1e-5;
  o.overrides.patch_drop = 0.5;
  o.patch_drop_tail = 0.25;
  o.tail_lr = 1e-3;
  SteppedClock observer(0.05);
  observer.slow(10, 30, 0.1);  // a slow stretch early on: by steps the tail would start far too late
  REQUIRE(train(o, observer, nullptr, {}, observer).outcome == TrainOutcome::TimeLimit);
  const auto& lrs = observer.lrs;
  const size_t tail = first_all_token_step(observer.patch_drops);
  REQUIRE(tail > 60);
  REQUIRE(tail < lrs.size() - 20);
  // Every step from then on has every token; the switch came with a quarter of the training time left (the time
  // kept back for the last epoch's end is 0.15 s on this clock).
  for (size_t i = tail; i < lrs.size(); ++i) REQUIRE(observer.patch_drops[i] == 0.0);
  CHECK(observer.times[tail] == Approx(0.75 * (0.99 * o.time_limit - 0.15)).margin(0.1));
  // The first cycle had decayed to its minimum by then; the tail restarts at --tail-lr and anneals at the limit.
  CHECK(lrs[tail - 1] - o.min_lr < 0.01 * (o.lr - o.min_lr));
  CHECK(lrs[tail] == Approx(*o.tail_lr).epsilon(0.01));  // one step of its decay done
  for (size_t i = tail + 1; i < lrs.size(); ++i) REQUIRE(lrs[i] <= lrs[i - 1]);
  CHECK(lrs.back() - o.min_lr < 0.05 * (*o.tail_lr - o.min_lr));
}

TEST_CASE(
    "a --patch-drop-tail run interrupted before or in its tail and resumed ends bit-identical, and one saved "
    "by another number of processes keeps its schedule",
    "[training][patch_drop_tail]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  TrainOptions o = tiny_options(dir / "data", dir / "straight");
  o.overrides.patch_drop = 0.5;
  o.patch_drop_tail = 0.34;  // 3 epochs of 4 steps: the tail is the last 4
  SteppedClock straight(0.05);
  REQUIRE(train(o, straight, nullptr, {}, straight).outcome == TrainOutcome::Completed);
  REQUIRE(straight.lrs.size() == 12);
  const auto expected = read_safetensors(dir / "straight/last.safetensors").tensors;

  for (const int64_t stop_after : {6, 10}) {  // before the tail, and in it
    for (const bool as_two_processes : {false, true}) {
      INFO("stopped after step " << stop_after << (as_two_processes ? ", saved as by two processes" : ""));
      o.out_dir = dir / ("stopped-" + std::to_string(stop_after) + (as_two_processes ? "-two" : ""));
      o.resume = false;
      std::atomic<bool> stop{false};
      SteppedClock first(0.05);
      first.stop_after(stop_after, &stop);
      REQUIRE(train(o, first, &stop, {}, first).outcome == TrainOutcome::Interrupted);
      const fs::path state = o.out_dir / "resume.safetensors";
      CHECK(load_run_state(state).progress.tail_start_step == (stop_after > 8 ? 8 : -1));
      if (as_two_processes) {
        // The same images trained by two processes of 16 images a batch take half the steps and batches: resumed on
        // one, the run recounts them, or its schedule (and the tail's start) would shift.
        auto saved = read_safetensors(state);
        auto progress = nlohmann::json::parse(saved.metadata.at("progress"));
        for (const char* key : {"step", "next_batch", "tail_start_step"}) {
          if (progress[key].get<int64_t>() > 0) progress[key] = progress[key].get<int64_t>() / 2;
        }
        progress["world_size"] = 2;
        saved.metadata["progress"] = progress.dump();
        write_safetensors(state, saved.tensors, saved.metadata);
      }
      o.resume = true;
      SteppedClock second(0.05);
      REQUIRE(train(o, second, nullptr, {}, second).outcome == TrainOutcome::Completed);
      // The rest of the schedule as the uninterrupted run had it: learning rates and PatchDropout, step by step.
      const auto rest = static_cast<std::ptrdiff_t>(stop_after);
      CHECK(second.lrs == std::vector<double>(straight.lrs.begin() + rest, straight.lrs.end()));
      CHECK(second.patch_drops == std::vector<double>(straight.patch_drops.begin() + rest, straight.patch_drops.end()));
      // On the same number of processes, the same weights bit for bit (AdamW's bias correction counts the steps
      // taken, fewer for two processes: not so there).
      if (as_two_processes) continue;
      const auto resumed = read_safetensors(o.out_dir / "last.safetensors").tensors;
      REQUIRE(resumed.size() == expected.size());
      for (const auto& [name, tensor] : expected) {
        INFO(name);
        CHECK(torch::equal(tensor, resumed.at(name)));
      }
      CHECK(second.rows.back().train_loss == straight.rows.back().train_loss);
    }
  }
}

TEST_CASE("a resume state saved before the time-limit fields existed still resumes", "[training]") {
  TempDir dir;
  TrainOptions o = interrupted_run(dir);
  // Strip what this version added from the saved progress and options, as an earlier version wrote them.
  const auto path = dir / "run/resume.safetensors";
  auto content = read_safetensors(path);
  auto progress = nlohmann::json::parse(content.metadata.at("progress"));
  for (const char* key : {"lr", "warmup_end_s", "decay_time", "longest_epoch_end_s", "last_epoch_train_s"}) {
    REQUIRE(progress.erase(key) == 1);
  }
  auto options = nlohmann::json::parse(content.metadata.at("options"));
  REQUIRE(options.erase("cache_images_mib") == 1);
  content.metadata["progress"] = progress.dump();
  content.metadata["options"] = options.dump();
  write_safetensors(path, content.tensors, content.metadata);

  o.resume = true;
  Recorder second;
  const auto summary = train(o, second);
  CHECK(summary.outcome == TrainOutcome::Completed);
  CHECK(summary.epochs_done == 3);
  CHECK(second.rows.size() == 2);
}

TEST_CASE("a damaged resume state is refused naming the file and what is wrong, before anything trusts it",
          "[training]") {
  TempDir dir;
  TrainOptions o = interrupted_run(dir);
  const auto path = dir / "run/resume.safetensors";
  const auto saved = read_safetensors(path);
  REQUIRE_NOTHROW(load_run_state(path));

  // One field changed in the saved JSON (key path, value) -> what the error says.
  struct Damage {
    std::string entry, key, sub_key;
    nlohmann::json value;
    std::string expected;
  };
  for (const auto& d : std::vector<Damage>{
           {"progress", "world_size", "", 0, "progress: world_size 0 is not at least 1"},
           {"progress", "next_batch", "", -3, "progress: next_batch -3 is negative"},
           {"progress", "epoch", "", 99, "progress: epoch 99 is outside 0..3"},
           {"progress", "epochs_target", "", 0, "progress: epochs_target 0 is not at least 1"},
           {"progress", "current", "correct", 1000000, "correct of"},
           {"progress", "decay_time", "", 7.5, "elapsed_s or decay_time out of range"},
           {"progress", "tail_start_step", "", 999999, "progress: tail_start_step 999999 is after step"},
           {"options", "batch_size", "", 0, "--batch-size: expected at least 1, got 0"},
           {"options", "lr", "", -1.0, "--lr: expected a positive learning rate"},
           {"model", "preprocess", "mean", {0.5, 0.5}, "mean"},
       }) {
    INFO(d.entry << "." << d.key);
    auto metadata = saved.metadata;
    auto entry = nlohmann::json::parse(metadata.at(d.entry));
    auto& field = d.sub_key.empty() ? entry.at(d.key) : entry.at(d.key).at(d.sub_key);
    field = d.value;
    metadata[d.entry] = entry.dump();
    write_safetensors(path, saved.tensors, metadata);
    const std::string error = vit::test::error_of([&] { load_run_state(path); });
    CHECK_THAT(error, Contains("'" + path.string() + "': damaged resume metadata: "));
    CHECK_THAT(error, Contains(d.expected));
  }
  // The generator state LibTorch would refuse with its own check.
  auto tensors = saved.tensors;
  tensors["rng.cpu"] = tensors.at("rng.cpu").slice(0, 0, 100).clone();
  write_safetensors(path, tensors, saved.metadata);
  CHECK_THAT(vit::test::error_of([&] { load_run_state(path); }),
             Contains("the random generator state 'rng.cpu' is not "));
  tensors["rng.cpu"] = saved.tensors.at("rng.cpu").to(at::kFloat);
  write_safetensors(path, tensors, saved.metadata);
  CHECK_THAT(vit::test::error_of([&] { load_run_state(path); }), Contains("bytes (uint8)"));

  // `vit train --resume` says the same; the intact state then resumes.
  write_safetensors(path, saved.tensors, [&] {
    auto metadata = saved.metadata;
    auto progress = nlohmann::json::parse(metadata.at("progress"));
    progress["world_size"] = -2;
    metadata["progress"] = progress.dump();
    return metadata;
  }());
  o.resume = true;
  Recorder second;
  CHECK_THROWS_WITH(train(o, second), Contains("progress: world_size -2 is not at least 1"));
  write_safetensors(path, saved.tensors, saved.metadata);
  CHECK(train(o, second).outcome == TrainOutcome::Completed);
}

TEST_CASE("gradient clipping (--clip-grad) bounds the gradient: clipped to almost nothing, the model does not learn", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);
  auto run = [&](const std::string& name, double clip_grad, double lr) {
    TrainOptions o = tiny_options(dir / "data", dir / name);
    o.clip_grad = clip_grad;
    o.lr = lr;
    o.min_lr = lr / 10.0;
    Recorder recorder;
    train(o, recorder);
    REQUIRE(recorder.rows.size() == 3);
    return recorder.rows;
  };
  const auto free_run = run("free", 0.0, 3e-3);
  // AdamW divides the gradient by its own scale, so only a norm far below its eps (1e-8) stalls it: the steps are
  // then ~1e-4 of the learning rate, and the run's losses are those of a run whose learning rate is all but zero
  // (the same images, augmentations and weight decay's negligible shrinking).
  const auto clipped = run("clipped", 1e-12, 3e-3);
  const auto still = run("still", 0.0, 1e-12);
  for (size_t i = 0; i < 3; ++i) CHECK(clipped[i].train_loss == Approx(still[i].train_loss).margin(1e-3));
  CHECK(free_run.back().train_loss < still.back().train_loss - 0.1);
}

TEST_CASE("without validation data, best.safetensors holds the latest weights", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 8, 1);
  TrainOptions o = tiny_options(dir / "data/train", dir / "run");  // class folders straight away: no val/
  o.epochs = 2;
  Recorder recorder;
  const auto summary = train(o, recorder);
  CHECK(summary.best_top1 < 0.0);
  const auto best = read_safetensors(dir / "run/best.safetensors").tensors;
  const auto last = read_safetensors(dir / "run/last.safetensors").tensors;
  for (const auto& [name, tensor] : last) {
    INFO(name);
    CHECK(torch::equal(tensor, best.at(name)));
  }
}

TEST_CASE(
    "with --val-every N, every N-th epoch and the run's last are validated, and best.safetensors is the best of those",
    "[training][val_every]") {
  TempDir dir;
  write_dataset(dir / "data", 20, 6);

  SECTION("by epochs: the 3rd, the 6th and the 7th, the last") {
    TrainOptions o = tiny_options(dir / "data", dir / "run");
    o.epochs = 7;
    o.val_every = 3;
    Recorder recorder;
    const auto summary = train(o, recorder);
    REQUIRE(recorder.rows.size() == 7);
    double best = -1.0;
    for (const auto& row : recorder.rows) {
      INFO("epoch " << row.epoch);
      const bool due = row.epoch % 3 == 0 || row.epoch == 7;
      CHECK(std::isnan(row.val_top1) == !due);
      CHECK(std::isnan(row.val_loss) == !due);
      if (due) best = std::max(best, row.val_top1);
    }
    CHECK(summary.best_top1 == best);
    CHECK((summary.best_epoch == 3 || summary.best_epoch == 6 || summary.best_epoch == 7));
    // metrics.csv leaves the validation columns of the epochs between empty.
    std::ifstream csv(dir / "run/metrics.csv");
    std::string line;
    std::getline(csv, line);  // header
    std::getline(csv, line);
    CHECK_THAT(line, Catch::Matchers::StartsWith("1,"));
    CHECK_THAT(line, Contains(",,,,,"));  // val_loss, val_top1, val_top5 and the two EMA columns
  }

  // Epochs of 4 steps of 0.05 s until `limit` s are spent, validated only when they must be.
  SteppedClock observer(0.05);
  auto run_by_time = [&](double limit) {
    TrainOptions o = tiny_options(dir / "data", dir / "run");
    o.epochs = 100000;
    o.time_limit = limit;
    o.val_every = 1000;
    const auto summary = train(o, observer, nullptr, {}, observer);
    CHECK(summary.outcome == TrainOutcome::TimeLimit);
    CHECK(summary.seconds <= limit);
    return summary;
  };

  SECTION("by time: the first epoch (timing the validation) and the one the limit ends, whatever N") {
    const auto summary = run_by_time(4.0);
    REQUIRE(observer.rows.size() >= 3);
    CHECK(observer.rows.front().val_top1 >= 0.0);
    for (size_t i = 1; i + 1 < observer.rows.size(); ++i) CHECK(std::isnan(observer.rows[i].val_top1));
    CHECK(observer.rows.back().val_top1 >= 0.0);
    CHECK(summary.best_top1 == std::max(observer.rows.front().val_top1, observer.rows.back().val_top1));
  }

  SECTION("by time: an epoch after which too little time is left for another is the last, and validated") {
    // 4 steps of 0.05 s per epoch: this limit leaves under a quarter of an epoch after the 20th, so the run ends
    // there (TimeBudget::stop_after_epoch). Were that epoch not validated, the run would go on to a 21st of one
    // step, stopped by the time, to validate that.
    run_by_time(4.21);
    REQUIRE(observer.rows.size() == 20);
    CHECK(observer.lrs.size() == 80);
    CHECK(std::isnan(observer.rows[18].val_top1));
    CHECK(observer.rows[19].val_top1 >= 0.0);
  }
}

TEST_CASE("training refuses unusable options and data with a clear message", "[training]") {
  TempDir dir;
  write_dataset(dir / "data", 2, 1);
  Recorder recorder;
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.resume = true;
  CHECK_THROWS_WITH(train(o, recorder), Contains("holds no run to resume (no resume.safetensors)"));
  o = tiny_options(dir / "data", dir / "run");
  o.batch_size = 0;
  CHECK_THROWS_WITH(train(o, recorder), Contains("--batch-size: expected at least 1, got 0"));
  o = tiny_options(dir / "data", dir / "run");
  o.model = "vit_gigantic";
  CHECK_THROWS_WITH(train(o, recorder), Contains("--model: unknown model 'vit_gigantic'"));
  o = tiny_options(dir / "data", dir / "run");
  o.overrides.num_heads = 3;
  CHECK_THROWS_WITH(train(o, recorder), Contains("embed_dim 32 must be divisible by num_heads 3"));
  o = tiny_options(dir / "nothing", dir / "run");
  CHECK_THROWS_WITH(train(o, recorder), Contains("does not exist or is not a folder"));
  o = tiny_options(dir / "data", dir / "run");
  o.patch_drop_tail = 1.0;
  CHECK_THROWS_WITH(train(o, recorder), Contains("--patch-drop-tail: expected a share of the run in [0, 1), got 1"));
  o.patch_drop_tail = 0.2;
  CHECK_THROWS_WITH(train(o, recorder), Contains("--patch-drop-tail: the model trains without PatchDropout"));
  o.overrides.patch_drop = 0.5;
  o.tail_lr = 0.0;
  CHECK_THROWS_WITH(train(o, recorder), Contains("--tail-lr: expected a positive learning rate, at least --min-lr"));
  o.tail_lr.reset();
  o.lr = 2e-6;  // the default tail rate, lr / 4, falls below --min-lr 1e-6
  CHECK_THROWS_WITH(train(o, recorder), Contains("at least --min-lr (the default is --lr / 4), got 5e-07"));
  o.lr = 3e-3;
  o.patch_drop_tail = 0.1;  // 3 steps (one batch per epoch): 0.3 of a step
  CHECK_THROWS_WITH(train(o, recorder), Contains("--patch-drop-tail 0.1: less than one of the run's 3 steps"));
  o.patch_drop_tail = 0.2;
  o.warmup_epochs = 2;
  CHECK_THROWS_WITH(train(o, recorder),
                    Contains("the warm-up (2 steps) must end before the tail begins (after step 2)"));
  o.warmup_epochs = 0.5;
  o.patch_drop_tail = 0.0;
  o.tail_lr = 1e-3;
  CHECK_THROWS_WITH(train(o, recorder), Contains("--tail-lr is the learning rate of a --patch-drop-tail"));
}

}  // namespace vit::engine
