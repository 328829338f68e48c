#pragma once
// The training loop: `vit train` without the command line. Progress is reported through an observer, so the
// front end decides how to show it (progress bar, log lines, nothing).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/loader.h"
#include "engine/distributed_env.h"
#include "engine/run_state.h"
#include "engine/train_options.h"

namespace vit::engine {

struct StepReport {
  int64_t epoch = 0;   // 1-based
  int64_t epochs = 0;  // epochs this run trains
  int64_t batch = 0;   // 1-based, within the epoch
  int64_t batches = 0;
  double loss = 0.0;  // epoch means so far
  double accuracy = 0.0;
  double lr = 0.0;
  double patch_drop = 0.0;  // the PatchDropout rate the step trained with (0 in a --patch-drop-tail)
  double images_per_s = 0.0;
  double eta_s = 0.0;  // to the end of the epoch
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_epoch_start(int64_t /*epoch*/, int64_t /*epochs*/, int64_t /*batches*/) {}
  virtual void on_step(const StepReport& /*report*/) {}
  virtual void on_epoch_end(const MetricsRow& /*row*/) {}
  virtual void on_bad_file(const data::DecodeFailure& /*failure*/) {}
};

// Where the trainer reads the time, in seconds from any fixed origin: the --time-limit schedule and the
// throughput figures follow it. The default is the steady clock; tests pass one that advances as they say, so that
// a time-limited schedule is checked step by step whatever the load on the machine.
class TrainClock {
 public:
  virtual ~TrainClock() = default;
  virtual double now_s() const;
};

enum class TrainOutcome {
  Completed,    // every epoch trained
  TimeLimit,    // the --time-limit was spent (the learning rate decayed over it; the last epoch may be partial)
  Interrupted,  // stopped on request (SIGINT / SIGTERM); resumable
};

struct TrainSummary {
  TrainOutcome outcome = TrainOutcome::Completed;
  int64_t epochs_done = 0;
  int64_t epochs_target = 0;
  double best_top1 = -1.0;  // -1 without validation data
  double best_top5 = -1.0;
  int64_t best_epoch = 0;
  double seconds = 0.0;
  int64_t bad_files = 0;
  std::filesystem::path run_dir;
};

// Trains as `options` say, writing RUN_DIR as described in run_state.h. With options.resume, continues the run
// saved in RUN_DIR (its saved options win over the given ones, except data_dir). `stop` is polled after every
// step; when it becomes true the step finishes, the state is saved, and the run returns Interrupted.
// Throws std::invalid_argument / std::runtime_error with a clear message for unusable options, data or files.
//
// With `env` naming several processes (torchrun, Slurm), every process calls this and they train one model
// data-parallel over c10d (engine/collectives.h): rank 0's initial weights broadcast; each process takes its
// share of every epoch (DistributedSampler's dealing; options.batch_size is per process) and the gradients are
// averaged, weighted by samples, before every optimizer step, so the replicas stay identical; validation is
// sharded and summed, equal to one process's. Rank 0 alone writes RUN_DIR. Stopping (a signal on any rank, the
// time limit) is agreed, so all stop after the same step. A lost peer ends every rank with LostPeerError.
TrainSummary train(const TrainOptions& options, TrainObserver& observer, const std::atomic<bool>* stop = nullptr,
                   const DistributedEnv& env = {}, const TrainClock& clock = TrainClock{});

}  // namespace vit::engine
