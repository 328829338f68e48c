#pragma once
// What a training run leaves in its RUN_DIR, and the state it resumes from.
//
// clang-format off
//   last.safetensors / best.safetensors  weights files (models/vit_weights_file.h): the latest, the best by val top-1
//   ema.safetensors                      the EMA weights, with --ema
//   metrics.csv                          one row per epoch
//   curves.png                           loss, accuracy and learning rate against epoch (engine/pictures.h)
//   config.json                          the options and the resolved model, as run
//   resume.safetensors                   everything needed to continue: weights, EMA, optimizer moments, RNG state
//                                        and progress, in ONE file written atomically, so it is never inconsistent
// clang-format on

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/train_options.h"
#include "models/safetensors.h"
#include "models/vit_weights_file.h"

namespace vit::engine {

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

struct MetricsRow {
  int64_t epoch = 0;  // 1-based, as printed
  double train_loss = kNoValue;
  double train_acc = kNoValue;
  double val_loss = kNoValue;
  double val_top1 = kNoValue;
  double val_top5 = kNoValue;
  double ema_val_top1 = kNoValue;
  double ema_val_top5 = kNoValue;
  double lr = kNoValue;
  double images_per_s = kNoValue;
  double seconds = kNoValue;
};

// Running sums over the current epoch's training batches.
struct EpochTotals {
  double loss_sum = 0.0;  // sum over samples of the per-sample loss
  int64_t correct = 0;    // argmax == label
  int64_t seen = 0;
  double seconds = 0.0;  // time spent on training steps
};

struct RunProgress {
  int64_t epoch = 0;          // 0-based epoch in progress (== epochs_target when done)
  int64_t next_batch = 0;     // first batch of `epoch` not yet trained
  int64_t step = 0;           // optimizer steps taken
  int64_t epochs_target = 0;  // epochs this run trains at most (--epochs); --time-limit may end it sooner
  int64_t total_steps = 0;    // schedule length in steps
  double lr = 0.0;            // the learning rate of the last step
  // With --time-limit (time_budget.h): when the warm-up ended (elapsed_s; < 0: not yet), how far the decay has
  // advanced by time (it never goes back), and the timings the time kept back for the last epoch comes from.
  double warmup_end_s = -1.0;
  double decay_time = 0.0;
  double longest_epoch_end_s = -1.0;  // validation and saving at an epoch's end (< 0: none timed yet)
  // --patch-drop-tail: the step and the time (elapsed_s) its all-token cycle began; < 0: not yet. decay_time then
  // measures that cycle's decay.
  int64_t tail_start_step = -1;
  double tail_start_s = -1.0;
  double last_epoch_train_s = 0.0;    // training time of the last whole epoch
  double best_top1 = -1.0;
  double best_top5 = -1.0;
  int64_t best_epoch = 0;
  double elapsed_s = 0.0;  // training wall time so far, across resumes
  int64_t world_size = 1;  // processes the run trained on when saved (next_batch counts that many shares)
  EpochTotals current;     // summed over the processes
  std::vector<MetricsRow> history;
};

struct RunState {
  TrainOptions options;
  ModelMetadata metadata;
  RunProgress progress;
  TensorMap model;       // weights by timm name
  TensorMap ema;         // empty without --ema
  TensorMap optimizer;   // AdamW moments (AdamW::state())
  at::Tensor rng_state;  // LibTorch's default CPU generator
};

std::filesystem::path resume_path(const std::filesystem::path& run_dir);

void save_run_state(const std::filesystem::path& path, const RunState& state);
RunState load_run_state(const std::filesystem::path& path);  // errors name the file and what is missing

// The whole history, rewritten atomically; empty cells where a value does not apply.
void write_metrics_csv(const std::filesystem::path& path, const std::vector<MetricsRow>& rows);
// Reads metrics.csv as write_metrics_csv writes it (also while a run is going: the file is replaced atomically).
// Throws std::invalid_argument naming the file and the line for a missing file, another header, or a bad row.
std::vector<MetricsRow> read_metrics_csv(const std::filesystem::path& path);

void to_json(nlohmann::json& j, const MetricsRow& row);
void from_json(const nlohmann::json& j, MetricsRow& row);

}  // namespace vit::engine
